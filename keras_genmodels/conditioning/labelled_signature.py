"""The `labels` input of a class-conditional model's exported `sample` signature.

`LabelledSampleSignature` is mixed into the export side of every family whose
`num_classes` makes it class-conditional without other signature inputs (the
VAE and the GAN): `sample(num_samples, seed[, labels])`, `labels` int32
`[num_samples]` in `[0, num_classes)`, checked in the graph, and an example
that cycles through the classes as `sample(labels=None)` does.
"""

import numpy as np
import tensorflow as tf

from keras_genmodels.conditioning.checks import check_served_labels


class LabelledSampleSignature:
    """`sample_signature_inputs`, `check_sample_inputs` and the example for
    models with a `num_classes` attribute (`None`: unconditional)."""

    def example_labels(self, rows):
        """`rows` labels cycling through the classes, as int32 numpy."""
        return (np.arange(rows) % self.num_classes).astype("int32")

    def sample_signature_inputs(self):
        if self.num_classes is None:
            return []
        return [tf.TensorSpec([None], tf.int32, name="labels")]

    def check_sample_inputs(self, checks, num_samples, limits, labels=None):
        if labels is None:
            return {}
        return {"labels": check_served_labels(checks, labels, num_samples, self.num_classes)}

    def sample_signature_example(self):
        example = super().sample_signature_example()
        if self.num_classes is not None:
            example["labels"] = self.example_labels(int(example["num_samples"]))
        return example
