"""The DDPM's exported signatures: `sample`, `predict_noise`, `denoise_step`.

`DDPMSignatures` is mixed into `DDPM`; it holds the export side of the model
(limits, signatures and their examples) and uses the model's
`sample_from_seed`, `predict_noise` and `process`.
"""

import numpy as np
import tensorflow as tf

from keras_genmodels.conditioning import check_served_labels
from keras_genmodels.serving_limits import InputChecks, ServingLimits
from keras_genmodels.signatures import named_function


class DDPMSignatures:
    """The serving and TF Lite signatures of a `DDPM`.

    - `sample(num_samples, seed, num_steps) -> samples`: the base class's
      `sample` endpoint with the extra input `num_steps` (in `[1, limit]`,
      the limit at most T); it runs `sample_from_seed`, so it equals
      `model.sample(num_samples, seed=seed, num_steps=num_steps)`.
    - `predict_noise(x_t, t) -> noise`: the EMA network's prediction.
    - `denoise_step(x_t, t, noise) -> x_prev`: one ancestral step; the TF
      Lite file holds it with a static batch, for a loop run by the app.

    A class-conditional model's signatures also take `labels` (int32, one
    per row, in `[0, num_classes)`) and `guidance_scale` (float32 scalar
    `w >= 0`), so `sample(num_samples, seed, labels, guidance_scale,
    num_steps)` equals `model.sample(..., labels=, guidance_scale=)` and
    the TF Lite `denoise_step` is the guided step in one call.

    Every input is checked in the graph; timesteps must be in `[0, T)`.
    """

    @property
    def default_export_name(self):
        """Default model name of an export: `diffusion` for images,
        `diffusion-points` for vectors (different signature shapes)."""
        name = "diffusion" if self.data_kind == "image" else "diffusion-points"
        return name if self.condition is None else f"{name}-cond"

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
    def _condition_specs(self, batch_size):
        if self.condition is None:
            return []
        return [
            tf.TensorSpec([batch_size], tf.int32, name="labels"),
            tf.TensorSpec([], tf.float32, name="guidance_scale"),
        ]

    def _check_condition(self, checks, rows, labels=None, guidance_scale=None):
        if self.condition is None:
            return {}
        return {
            "labels": check_served_labels(checks, labels, rows, self.num_classes),
            "guidance_scale": checks.scalar("guidance_scale", guidance_scale, low=0.0),
        }

    def _condition_example(self, rows):
        if self.condition is None:
            return {}
        return {
            "labels": (np.arange(rows) % self.num_classes).astype("int32"),
            "guidance_scale": np.float32(2.0),
        }

    def sample_signature_inputs(self):
        return [*self._condition_specs(None), tf.TensorSpec([], tf.int32, name="num_steps")]

    def check_sample_inputs(
        self, checks, num_samples, limits, num_steps, labels=None, guidance_scale=None
    ):
        inputs = self._check_condition(checks, num_samples, labels, guidance_scale)
        inputs["num_steps"] = checks.count("num_steps", num_steps, limits["num_steps"])
        return inputs

    def sample_signature_example(self):
        example = super().sample_signature_example()
        example.update(self._condition_example(int(example["num_samples"])))
        example["num_steps"] = np.int32(3)
        return example

    # ------------------------------------------------------------------
    # Signatures.
    # ------------------------------------------------------------------
    def _check_noisy_batch(self, checks, x_t, t, limit, noise=None, condition=None):
        shape = [None, *self.data_shape]
        x_t = checks.batch("x_t", x_t, shape, limit, finite=True)
        t = checks.shape("t", t, [None])
        if noise is None:
            checks.same_rows(x_t=x_t, t=t)
        else:
            noise = checks.batch("noise", noise, shape, limit, finite=True)
            checks.same_rows(x_t=x_t, t=t, noise=noise)
        checks.values("t", t, 0, self.timesteps - 1)
        condition = self._check_condition(checks, tf.shape(x_t)[0], **(condition or {}))
        gated = checks.gate(x_t, t, noise, *condition.values())
        return gated[:3], dict(zip(condition, gated[3:]))

    def serving_endpoints(self, limits=None):
        """The `sample`, `predict_noise` and `denoise_step` signatures.

        Every input is checked in the graph: `num_steps` must lie in
        `[1, limit]` (at most T), timesteps in `[0, T)`.

        Args:
            limits: Optional `{limit name: int}` replacing the defaults of
                `serving_limits`.
        """
        limits = self.serving_limits.resolve(limits)

        specs = [
            tf.TensorSpec([None, *self.data_shape], tf.float32, name="x_t"),
            tf.TensorSpec([None], tf.int32, name="t"),
            *self._condition_specs(None),
        ]

        def predict_noise(x_t, t, **condition):
            (x_t, t, _), condition = self._check_noisy_batch(
                InputChecks(), x_t, t, limits["batch_size"], condition=condition
            )
            return {"noise": self.predict_noise(x_t, t, **condition)}

        return {
            "sample": self.sample_endpoint(limits),
            "predict_noise": named_function(predict_noise, specs, autograph=False),
            "denoise_step": self._denoise_step_endpoint(None, limits["batch_size"]),
        }

    def _denoise_step_endpoint(self, batch_size, limit=None):
        """`denoise_step`; with a row `limit` (serving) its inputs are checked.

        For a conditional model it is the guided step: both noise
        predictions in one network call, mixed by `guidance_scale`.
        """
        specs = [
            tf.TensorSpec([batch_size, *self.data_shape], tf.float32, name="x_t"),
            tf.TensorSpec([batch_size], tf.int32, name="t"),
            tf.TensorSpec([batch_size, *self.data_shape], tf.float32, name="noise"),
            *self._condition_specs(batch_size),
        ]

        def denoise_step(x_t, t, noise, **condition):
            if limit is not None:
                (x_t, t, noise), condition = self._check_noisy_batch(
                    InputChecks(), x_t, t, limit, noise, condition
                )
            eps = self.predict_noise(x_t, t, **condition)
            return {"x_prev": self.process.ddpm_step(x_t, t, eps, noise)}

        return named_function(denoise_step, specs, autograph=False)

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
                **self._condition_example(batch_size),
            },
            "denoise_step": {
                "x_t": rng.standard_normal(shape).astype("float32"),
                "t": rng.integers(0, self.timesteps, batch_size).astype("int32"),
                "noise": rng.standard_normal(shape).astype("float32"),
                **self._condition_example(batch_size),
            },
        }
