"""The DDPM's samplers: `sample`, its options and the guided noise predictor.

`DDPMSampling` is mixed into `keras_genmodels.diffusion.DDPM`; it relies on
the model's `ema_network`, `process` (`GaussianDiffusion`), `condition`
(`None` or a `keras_genmodels.diffusion.guidance` conditioning),
`timesteps`, `sampling_steps`, `sampling_method`, `data_shape` and
`from_process_space`.
"""

import numbers

import tensorflow as tf

from keras_genmodels.base import check_positive_int
from keras_genmodels.conditioning import check_guidance_scale, check_labels
from keras_genmodels.diffusion.guidance import guided_noise

METHODS = ("ddpm", "ddim")


class DDPMSampling:
    """Sampling of a `DDPM`: the reverse process with the EMA network, guided
    by classifier-free guidance when the model is conditional."""

    # ------------------------------------------------------------------
    # Sampling.
    # ------------------------------------------------------------------
    def predict_noise(self, x_t, t, labels=None, guidance_scale=None):
        """The EMA network's noise prediction, float32 (pure TF).

        Args:
            x_t: float32 `(batch, ...)` noisy data in the process's scale.
            t: int32 `(batch,)` timesteps.
            labels: Conditional models: int32 `(batch,)` labels.
            guidance_scale: Conditional models: the guidance weight (scalar
                or `(batch,)`); `None` uses the model's `guidance_scale`.

        Returns:
            The (guided) predicted noise, shaped like `x_t`.
        """
        if self.condition is None:
            return tf.cast(self.ema_network([x_t, t], training=False), "float32")
        return self.guided_predictor(labels, guidance_scale)(x_t, t)

    def guided_predictor(self, raw_condition, guidance_scale=None):
        """The classifier-free guided noise predictor `(x_t, t) -> eps`.

        The condition's network inputs (and the null condition's) are made
        once, outside the sampling loop.

        Args:
            raw_condition: The raw condition, one row per sample.
            guidance_scale: Scalar or per-sample `w`; `None` uses the
                model's `guidance_scale`.

        Returns:
            A callable for `GaussianDiffusion.sample`.
        """
        if guidance_scale is None:
            guidance_scale = self.guidance_scale
        condition = self.condition.network_inputs(raw_condition)
        null = self.condition.network_inputs(self.condition.null(tf.shape(raw_condition)[0]))

        def predict(x_t, t):
            return guided_noise(self.ema_network, x_t, t, condition, null, guidance_scale)

        return predict

    def sample(
        self, num_samples, seed=None, *, labels=None, guidance_scale=None, num_steps=None,
        method=None, eta=0.0, jit_compile=False, **conditioning,
    ):
        """Runs the reverse process with the EMA network, in one compiled loop.

        The loop is a `tf.while_loop` inside a `tf.function` traced once per
        `(num_steps, method, eta, jit_compile)` and reused for any
        `num_samples` and seed. With the default `method` the result equals
        the exported `sample` signature's for the same seed and `num_steps`.

        Args:
            num_samples: Positive int.
            seed: `None`, an int or a pair of ints.
            labels: Class-conditional models: an int or `num_samples` ints
                in `[0, num_classes)`; `None` cycles `0, 1, 2, ...`.
            guidance_scale: Class-conditional models: the classifier-free
                guidance weight `w >= 0` (0: unconditional, 1: conditional);
                `None` uses the model's `guidance_scale`. A tensor input of
                the traced sampler, as are `labels`: changing them does not
                retrace.
            num_steps: Reverse steps in `[1, T]`; `None` uses
                `sampling_steps` (T if that is `None`).
            method: `"ddpm"` (ancestral; respaced when `num_steps < T`, i.e.
                DDIM with `eta = 1`) or `"ddim"`; `None` is ancestral DDPM
                at T steps and `sampling_method` below T (what the exported
                `sample` signature runs).
            eta: DDIM noise scale (0 is deterministic given `x_T`).
            jit_compile: Whether each reverse step (network and update) runs
                as one XLA cluster. On the 2-core development CPU (quiet) it
                sped the `unet-mnist` loop up 2.4x at 1 image, 1.5x at 8 and
                1.1x at 16 and the MLP's 1.1-1.2x, but was 10% slower at 64
                images (the grid the command writes) and its first call
                compiles for seconds, so it is off by default. Samples then
                match the default to float32 rounding, not bit for bit.
                Exports never use XLA (TF Serving disables XLA:CPU by default).
            **conditioning: `prompt`, or conditioning an unconditional model
                does not take: refused with a `ValueError`.

        Returns:
            numpy float32: images `(n, H, W, C)` in `[0, 1]`, or points
            `(n, d)`.
        """
        return super().sample(
            num_samples, seed, labels=labels, guidance_scale=guidance_scale,
            num_steps=num_steps, method=method, eta=eta, jit_compile=jit_compile,
            **conditioning,
        )

    def sample_options(
        self, num_samples, num_steps=None, method=None, eta=0.0, jit_compile=False,
        labels=None, guidance_scale=None,
    ):
        if method is not None and method not in METHODS:
            raise ValueError(
                f"`method` must be one of {METHODS}. Received: method={method!r}"
            )
        if num_steps is None:
            num_steps = self.sampling_steps or self.timesteps
        num_steps = check_steps(num_steps, self.timesteps)
        if eta < 0:
            raise ValueError(f"`eta` must be non-negative. Received: eta={eta}")
        static = {
            "num_steps": num_steps,
            "method": method or self.default_method(num_steps),
            "eta": float(eta),
            "jit_compile": bool(jit_compile),
        }
        if self.condition is None:
            return static, {}
        tensors = {
            "labels": tf.constant(check_labels(labels, num_samples, self.num_classes)),
            "guidance_scale": tf.constant(
                check_guidance_scale(guidance_scale, self.guidance_scale), tf.float32
            ),
        }
        return static, tensors

    def default_method(self, num_steps):
        """The sampler of `method=None`: ancestral DDPM at T steps, else
        `sampling_method` (Python int `num_steps`)."""
        return "ddpm" if num_steps >= self.timesteps else self.sampling_method

    def sample_from_seed(
        self, num_samples, seed, num_steps=None, method=None, eta=0.0, jit_compile=False,
        labels=None, guidance_scale=None,
    ):
        """The sampler behind `sample` and the exported `sample` signature.

        Args:
            num_samples: int32 scalar.
            seed: int32 `[2]`.
            num_steps: Python int or int32 scalar, clipped to `[1, T]`;
                `None` uses `sampling_steps` (T if that is `None`).
            method: `"ddpm"`, `"ddim"` or `None` (`default_method`; a
                `tf.cond` when `num_steps` is a tensor).
            eta: DDIM noise scale.
            jit_compile: Whether each reverse step is one XLA cluster.
            labels: Conditional models: int32 `(num_samples,)` labels
                (`None` cycles through the classes).
            guidance_scale: Conditional models: float32 `w` (`None`: the
                model's default).

        Returns:
            float32 samples (images in `[0, 1]`).
        """
        if num_steps is None:
            num_steps = self.sampling_steps or self.timesteps
        if method is None and isinstance(num_steps, numbers.Integral):
            method = self.default_method(num_steps)
        shape = tf.concat([tf.reshape(tf.cast(num_samples, tf.int32), [1]), self.data_shape], 0)
        steps = tf.clip_by_value(tf.cast(num_steps, tf.int32), 1, self.timesteps)
        predict = self.predict_noise
        if self.condition is not None:
            if labels is None:
                labels = tf.range(shape[0]) % self.num_classes
            predict = self.guided_predictor(labels, guidance_scale)

        def run(method):
            x = self.process.sample(
                predict, shape, seed, steps, method=method, eta=eta,
                jit_compile=jit_compile,
            )
            return self.from_process_space(x)

        if method is not None:
            return run(method)
        if self.sampling_method == "ddpm":
            return run("ddpm")
        return tf.cond(steps >= self.timesteps, lambda: run("ddpm"), lambda: run("ddim"))

    def traced_function(self, key, fn, **function_kwargs):
        # The sampler has no Python control flow on tensors: without autograph
        # nothing is converted (or cached by code object) at trace time.
        function_kwargs.setdefault("autograph", False)
        return super().traced_function(key, fn, **function_kwargs)


def check_steps(num_steps, timesteps, name="num_steps"):
    """Validates a step count in `[1, timesteps]`; returns it as an int."""
    num_steps = check_positive_int(num_steps, name)
    if num_steps > timesteps:
        raise ValueError(
            f"`{name}` must be at most timesteps={timesteps}. "
            f"Received: {name}={num_steps}"
        )
    return num_steps
