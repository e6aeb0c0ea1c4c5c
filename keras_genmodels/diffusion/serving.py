"""The DDPM's exported signatures: `sample`, `predict_noise`, `denoise_step`.

`DDPMSignatures` is mixed into `DDPM`; it holds the export side of the model
(limits, signatures and their examples) and uses the model's
`sample_from_seed`, `predict_noise` and `process`.
"""

import numpy as np
import tensorflow as tf

from keras_genmodels.serving_limits import InputChecks, ServingLimits


class DDPMSignatures:
    """The serving and TF Lite signatures of a `DDPM`.

    - `sample(num_samples, seed, num_steps) -> samples`: the base class's
      `sample` endpoint with the extra input `num_steps` (in `[1, limit]`,
      the limit at most T); it runs `sample_from_seed`, so it equals
      `model.sample(num_samples, seed=seed, num_steps=num_steps)`.
    - `predict_noise(x_t, t) -> noise`: the EMA network's prediction.
    - `denoise_step(x_t, t, noise) -> x_prev`: one ancestral step; the TF
      Lite file holds it with a static batch, for a loop run by the app.

    Every input is checked in the graph; timesteps must be in `[0, T)`.
    """

    @property
    def default_export_name(self):
        """Default model name of an export: `diffusion` for images,
        `diffusion-points` for vectors (different signature shapes)."""
        return "diffusion" if self.data_kind == "image" else "diffusion-points"

    @property
    def serving_limits(self):
        """The limits the serving signatures enforce (`ServingLimits`).

        Image models default to 256 samples or rows per request (a U-Net
        pass per reverse step); `num_steps` is at most T.
        """
        size = 256 if self.data_kind == "image" else 1024
        return ServingLimits(
            {
                "sample": ("num_samples", "num_steps"),
                "predict_noise": ("batch_size",),
                "denoise_step": ("batch_size",),
            },
            defaults={"num_samples": size, "batch_size": size, "num_steps": self.timesteps},
            maxima={"num_steps": self.timesteps},
        )

    # ------------------------------------------------------------------
    # The `sample` signature's extra input.
    # ------------------------------------------------------------------
    def sample_signature_inputs(self):
        return [tf.TensorSpec([], tf.int32, name="num_steps")]

    def check_sample_inputs(self, checks, num_samples, limits, num_steps):
        return {"num_steps": checks.count("num_steps", num_steps, limits["num_steps"])}

    def sample_signature_example(self):
        example = super().sample_signature_example()
        example["num_steps"] = np.int32(3)
        return example

    # ------------------------------------------------------------------
    # Signatures.
    # ------------------------------------------------------------------
    def _check_noisy_batch(self, checks, x_t, t, limit, noise=None):
        shape = [None, *self.data_shape]
        x_t = checks.batch("x_t", x_t, shape, limit, finite=True)
        t = checks.shape("t", t, [None])
        if noise is None:
            checks.same_rows(x_t=x_t, t=t)
        else:
            noise = checks.batch("noise", noise, shape, limit, finite=True)
            checks.same_rows(x_t=x_t, t=t, noise=noise)
        checks.values("t", t, 0, self.timesteps - 1)
        return checks.gate(x_t, t, noise)

    def serving_endpoints(self, limits=None):
        """The `sample`, `predict_noise` and `denoise_step` signatures.

        Every input is checked in the graph: `num_steps` must lie in
        `[1, limit]` (at most T), timesteps in `[0, T)`.

        Args:
            limits: Optional `{limit name: int}` replacing the defaults of
                `serving_limits`.
        """
        limits = self.serving_limits.resolve(limits)

        @tf.function(
            autograph=False,
            input_signature=[
                tf.TensorSpec([None, *self.data_shape], tf.float32, name="x_t"),
                tf.TensorSpec([None], tf.int32, name="t"),
            ],
        )
        def predict_noise(x_t, t):
            x_t, t, _ = self._check_noisy_batch(InputChecks(), x_t, t, limits["batch_size"])
            return {"noise": self.predict_noise(x_t, t)}

        return {
            "sample": self.sample_endpoint(limits),
            "predict_noise": predict_noise,
            "denoise_step": self._denoise_step_endpoint(None, limits["batch_size"]),
        }

    def _denoise_step_endpoint(self, batch_size, limit=None):
        """`denoise_step`; with a row `limit` (serving) its inputs are checked."""

        @tf.function(
            autograph=False,
            input_signature=[
                tf.TensorSpec([batch_size, *self.data_shape], tf.float32, name="x_t"),
                tf.TensorSpec([batch_size], tf.int32, name="t"),
                tf.TensorSpec([batch_size, *self.data_shape], tf.float32, name="noise"),
            ],
        )
        def denoise_step(x_t, t, noise):
            if limit is not None:
                x_t, t, noise = self._check_noisy_batch(InputChecks(), x_t, t, limit, noise)
            eps = self.predict_noise(x_t, t)
            return {"x_prev": self.process.ddpm_step(x_t, t, eps, noise)}

        return denoise_step

    def tflite_endpoints(self, batch_size=1):
        return {"denoise_step": self._denoise_step_endpoint(batch_size)}

    def signature_examples(self, batch_size=1):
        rng = np.random.default_rng(0)
        shape = (batch_size, *self.data_shape)
        return {
            "sample": self.sample_signature_example(),
            "predict_noise": {
                "x_t": rng.standard_normal(shape).astype("float32"),
                "t": rng.integers(0, self.timesteps, batch_size).astype("int32"),
            },
            "denoise_step": {
                "x_t": rng.standard_normal(shape).astype("float32"),
                "t": rng.integers(0, self.timesteps, batch_size).astype("int32"),
                "noise": rng.standard_normal(shape).astype("float32"),
            },
        }
