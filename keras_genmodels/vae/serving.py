"""The VAE's exported signatures: `sample`, `encode`, `decode` (TF Serving, TF Lite).

`VAEServing` is mixed into `keras_genmodels.vae.VAE`; it relies on the
model's `latent_dim`, `data_shape`, `num_classes` and its pure-TF
`_encode(images, labels)` and `_decode(latents, labels)` (float32 out).

- `sample(num_samples, seed[, labels])` -> `samples`: the base class's
  `sample` signature (`GenerativeModel.sample_endpoint`); `labels` is an
  extra input of class-conditional models, `num_samples` ints in
  `[0, num_classes)`, as in `VAE.sample(..., labels=...)`.
- `encode(images[, labels])` -> `z_mean`, `z_log_var`: the posterior
  `q(z | x[, y])`.
- `decode(latents[, labels])` -> `images`: pixel probabilities; the only TF
  Lite signature, with a static batch.
"""

import numpy as np
import tensorflow as tf

from keras_genmodels.conditioning import check_served_labels
from keras_genmodels.conditioning.labelled_signature import LabelledSampleSignature
from keras_genmodels.serving_limits import InputChecks, ServingLimits
from keras_genmodels.signatures import latents_endpoint


class VAEServing(LabelledSampleSignature):
    """The export side of `VAE`: signatures, their limits and examples."""

    @property
    def default_export_name(self):
        """Default model name of an export (`BASE/NAME/VERSION`): `vae`, or
        `vae-cond` for a class-conditional model, whose signatures take
        `labels`, so the two never become versions of one servable."""
        return "vae" if self.num_classes is None else "vae-cond"

    @property
    def serving_limits(self):
        """The limits the serving signatures enforce (`ServingLimits`)."""
        return ServingLimits(
            {"sample": ("num_samples",), "encode": ("batch_size",), "decode": ("batch_size",)}
        )

    def serving_endpoints(self, limits=None):
        """The `sample`, `encode` and `decode` signatures, inputs checked.

        Args:
            limits: Optional `{limit name: int}` replacing the defaults of
                `serving_limits`.
        """
        limits = self.serving_limits.resolve(limits)
        return {
            "sample": self.sample_endpoint(limits),
            "encode": self._encode_endpoint(limits["batch_size"]),
            "decode": self._decode_endpoint(None, limits["batch_size"]),
        }

    def _encode_endpoint(self, limit):
        """`encode(images[, labels])`, every input checked."""
        image_shape = [None, *self.data_shape]
        specs = [tf.TensorSpec(image_shape, tf.float32, name="images")]
        if self.num_classes is not None:
            specs.append(tf.TensorSpec([None], tf.int32, name="labels"))

        @tf.function(input_signature=specs)
        def encode(images, labels=None):
            checks = InputChecks()
            images = checks.batch("images", images, image_shape, limit, low=0.0, high=1.0)
            if labels is not None:
                labels = check_served_labels(
                    checks, labels, tf.shape(images)[0], self.num_classes
                )
            images, labels = checks.gate(images, labels)
            z_mean, z_log_var = self._encode(images, labels)
            return {"z_mean": z_mean, "z_log_var": z_log_var}

        return encode

    def _decode_endpoint(self, batch_size, limit=None):
        """`decode(latents[, labels])`; with a row `limit` (serving) its
        inputs are checked."""
        return latents_endpoint(
            "decode", self._decode, self.latent_dim, "images", batch_size, limit,
            num_classes=self.num_classes,
        )

    def tflite_endpoints(self, batch_size=1):
        return {"decode": self._decode_endpoint(batch_size)}

    def signature_examples(self, batch_size=1):
        rng = np.random.default_rng(0)
        encode = {
            "images": rng.uniform(size=(batch_size, *self.data_shape)).astype("float32")
        }
        decode = {
            "latents": rng.standard_normal((batch_size, self.latent_dim)).astype("float32")
        }
        if self.num_classes is not None:
            encode["labels"] = decode["labels"] = self.example_labels(batch_size)
        return {"sample": self.sample_signature_example(), "encode": encode, "decode": decode}
