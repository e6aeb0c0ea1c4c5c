"""The flow's TF Serving and TF Lite signatures.

`FlowServing` is mixed into `keras_genmodels.flow.model.FlowModel`. It needs
from the model `data_shape`, `data_size` (`D`), `is_image`, `num_levels`,
the pure-TF `log_prob_tensor`, `encode_tensor` and `decode_tensor`, numpy
`decode`, and the base class's `sample_endpoint`.

Signatures (serving; TF Lite has `decode` and `log_prob` with a static
batch):

- `sample(num_samples, seed) -> samples`: what
  `sample(num_samples, seed, temperature=1.0)` gives;
- `log_prob(x) -> log_prob`, `encode(x) -> latents`,
  `decode(latents) -> samples`.
"""

import numpy as np
import tensorflow as tf

from keras_genmodels.serving_limits import InputChecks, ServingLimits
from keras_genmodels.signatures import latents_endpoint


class FlowServing:
    """The serving signatures, limits and examples of a flow model."""

    @property
    def default_export_name(self):
        """Default model name of an export: `flow` for images,
        `flow-points` for vectors (different signature shapes)."""
        return "flow" if self.is_image else "flow-points"

    @property
    def serving_limits(self):
        """The limits the serving signatures enforce (`ServingLimits`)."""
        return ServingLimits(
            {
                "sample": ("num_samples",),
                "log_prob": ("batch_size",),
                "encode": ("batch_size",),
                "decode": ("batch_size",),
            }
        )

    def _data_spec(self, batch_size):
        return tf.TensorSpec((batch_size, *self.data_shape), tf.float32, name="x")

    def _checked_data(self, x, limit):
        """`x` behind its checks: the shape, `limit` rows, and values in
        `[0, 1]` (images) or finite (vectors)."""
        checks = InputChecks()
        shape = [None, *self.data_shape]
        if self.is_image:
            x = checks.batch("x", x, shape, limit, low=0.0, high=1.0)
        else:
            x = checks.batch("x", x, shape, limit, finite=True)
        return checks.gate(x)

    def _log_prob_endpoint(self, batch_size, limit=None):
        """`log_prob`; with a row `limit` (serving) its input is checked."""
        @tf.function(input_signature=[self._data_spec(batch_size)])
        def log_prob(x):
            if limit is not None:
                x = self._checked_data(x, limit)
            return {"log_prob": self.log_prob_tensor(x)}

        return log_prob

    def _decode_endpoint(self, batch_size, limit=None):
        """`decode`; with a row `limit` (serving) its input is checked."""
        return latents_endpoint(
            "decode", self.decode_tensor, self.data_size, "samples", batch_size, limit
        )

    def serving_endpoints(self, limits=None):
        """The `sample`, `log_prob`, `encode` and `decode` signatures.

        Args:
            limits: Optional `{limit name: int}` replacing the defaults of
                `serving_limits`.
        """
        limits = self.serving_limits.resolve(limits)
        rows = limits["batch_size"]

        @tf.function(input_signature=[self._data_spec(None)])
        def encode(x):
            return {"latents": self.encode_tensor(self._checked_data(x, rows))}

        return {
            "sample": self.sample_endpoint(limits),
            "log_prob": self._log_prob_endpoint(None, rows),
            "encode": encode,
            "decode": self._decode_endpoint(None, rows),
        }

    def tflite_endpoints(self, batch_size=1):
        return {
            "decode": self._decode_endpoint(batch_size),
            "log_prob": self._log_prob_endpoint(batch_size),
        }

    def signature_examples(self, batch_size=1):
        rng = np.random.default_rng(0)
        latents = (0.7 * rng.standard_normal((batch_size, self.data_size))).astype(
            "float32"
        )
        # Data the model finds plausible, so log_prob stays in a sane range.
        x = self.decode(latents)
        if self.is_image:
            levels = self.num_levels - 1
            x = (np.round(x * levels) / levels).astype("float32")
        return {
            "sample": self.sample_signature_example(),
            "log_prob": {"x": x},
            "encode": {"x": x},
            "decode": {"latents": latents},
        }
