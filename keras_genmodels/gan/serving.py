"""The GAN's exported signatures: `sample` and `generate` (TF Serving, TF Lite).

`GANServing` is mixed into `keras_genmodels.gan.GAN`; it relies on the
model's `latent_dim`, `num_classes`, `data_kind` and `_generate(latents,
labels)` (the sampling generator, float32 out).

- `sample(num_samples, seed[, labels])` -> `samples`: the base class's
  `sample` signature (`GenerativeModel.sample_endpoint`); `labels` is an
  extra input of class-conditional models, `num_samples` ints in
  `[0, num_classes)`, as in `GAN.sample(..., labels=...)`.
- `generate(latents[, labels])` -> `images` (image data) or `samples`
  (points): the generator on given latents; the only TF Lite signature,
  with a static batch.
"""

import numpy as np
import tensorflow as tf

from keras_genmodels.conditioning import check_served_labels
from keras_genmodels.conditioning.labelled_signature import LabelledSampleSignature
from keras_genmodels.serving_limits import InputChecks, ServingLimits


class GANServing(LabelledSampleSignature):
    """The export side of `GAN`: signatures, their limits and examples."""

    @property
    def default_export_name(self):
        """Default model name of an export: `gan`, plus `-cond` for a
        class-conditional model (its signatures take `labels`) and `-points`
        for vector data, so exports with different signatures never become
        versions of one servable."""
        conditional = "" if self.num_classes is None else "-cond"
        points = "" if self.data_kind == "image" else "-points"
        return f"gan{conditional}{points}"

    @property
    def serving_limits(self):
        """The limits the serving signatures enforce (`ServingLimits`)."""
        return ServingLimits({"sample": ("num_samples",), "generate": ("batch_size",)})

    def serving_endpoints(self, limits=None):
        """The `sample` and `generate` signatures, inputs checked.

        Args:
            limits: Optional `{limit name: int}` replacing the defaults of
                `serving_limits`.
        """
        limits = self.serving_limits.resolve(limits)
        return {
            "sample": self.sample_endpoint(limits),
            "generate": self._generate_endpoint(None, limits["batch_size"]),
        }

    def _generate_endpoint(self, batch_size, limit=None):
        """`generate`; with a row `limit` (serving) its inputs are checked."""
        shape = [batch_size, self.latent_dim]
        specs = [tf.TensorSpec(shape, tf.float32, name="latents")]
        if self.num_classes is not None:
            specs.append(tf.TensorSpec([batch_size], tf.int32, name="labels"))
        output = "images" if self.data_kind == "image" else "samples"

        @tf.function(input_signature=specs)
        def generate(latents, labels=None):
            if limit is not None:
                checks = InputChecks()
                latents = checks.batch("latents", latents, shape, limit, finite=True)
                if labels is not None:
                    labels = check_served_labels(
                        checks, labels, tf.shape(latents)[0], self.num_classes
                    )
                latents, labels = checks.gate(latents, labels)
            return {output: self._generate(latents, labels)}

        return generate

    def tflite_endpoints(self, batch_size=1):
        return {"generate": self._generate_endpoint(batch_size)}

    def signature_examples(self, batch_size=1):
        rng = np.random.default_rng(0)
        generate = {
            "latents": rng.standard_normal((batch_size, self.latent_dim)).astype("float32")
        }
        if self.num_classes is not None:
            generate["labels"] = self.example_labels(batch_size)
        return {"sample": self.sample_signature_example(), "generate": generate}
