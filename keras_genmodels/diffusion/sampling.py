"""The DDPM's samplers: `sample`, its options and the guided noise predictor.

`DDPMSampling` is mixed into `keras_genmodels.diffusion.DDPM`; it relies on
the model's `ema_network`, `process` (`GaussianDiffusion`), `condition`
(`None` or a `keras_genmodels.diffusion.guidance` conditioning),
`timesteps`, `sampling_steps`, `sampling_method`, `data_shape` and
`from_process_space` (and, for text, `max_prompt_bytes` and
`default_prompts`).
"""

import numbers

import tensorflow as tf

from keras_genmodels.base import check_positive_int
from keras_genmodels.conditioning import check_guidance_scale, check_labels, check_prompts
from keras_genmodels.conditioning.text import prompt_token_ids, tf_prompt_token_ids
from keras_genmodels.diffusion.gaussian import METHODS
from keras_genmodels.diffusion.guidance import guided_noise

__all__ = ["METHODS", "DDPMSampling", "check_steps"]


class DDPMSampling:
    """Sampling of a `DDPM`: the reverse process with the EMA network, guided
    by classifier-free guidance when the model is conditional."""

    # ------------------------------------------------------------------
    # Sampling.
    # ------------------------------------------------------------------
    def predict_noise(self, x_t, t, labels=None, guidance_scale=None, states=None, mask=None):
        """The EMA network's noise prediction, float32 (pure TF).

        Args:
            x_t: float32 `(batch, ...)` noisy data in the process's scale.
            t: int32 `(batch,)` timesteps.
            labels: Class-conditional models: int32 `(batch,)` labels.
            guidance_scale: Conditional models: the guidance weight (scalar
                or `(batch,)`); `None` uses the model's `guidance_scale`.
            states: Text-conditional models: the encoded prompts' token
                states `(batch, L, width)` (`encode_prompt`).
            mask: Text-conditional models: their mask `(batch, L)`.

        Returns:
            The (guided) predicted noise, shaped like `x_t`.
        """
        predict = self.noise_predictor(labels, guidance_scale, states, mask)
        return predict(x_t, t)

    def noise_predictor(self, labels=None, guidance_scale=None, states=None, mask=None):
        """`predict_noise` with its condition fixed: `(x_t, t) -> eps`.

        The condition's network inputs (and the null condition's, for
        guidance) are made once, when this is called, so a sampling loop
        calls it outside its body. Arguments as in `predict_noise`.
        """
        if self.condition is None:
            return lambda x_t, t: tf.cast(self.ema_network([x_t, t], training=False), "float32")
        if self.condition.option == "prompt":
            inputs = [tf.cast(states, tf.float32), tf.cast(mask, tf.float32)]
            return self.guided_predictor(None, guidance_scale, inputs)
        return self.guided_predictor(labels, guidance_scale)

    def encode_prompt(self, token_ids):
        """The EMA text encoder's `[states, mask]` of prompt ids (pure TF).

        Args:
            token_ids: int32 `(batch, L)` ids (`prompt_token_ids`).

        Returns:
            float32 `[states (batch, L, width), mask (batch, L)]`.
        """
        return self.condition.network_inputs(token_ids, averaged=True)

    def guided_predictor(self, raw_condition, guidance_scale=None, condition_inputs=None):
        """The classifier-free guided noise predictor `(x_t, t) -> eps`.

        The condition's network inputs (and the null condition's) are made
        once, outside the sampling loop, with the EMA text encoder.

        Args:
            raw_condition: The raw condition, one row per sample.
            guidance_scale: Scalar or per-sample `w`; `None` uses the
                model's `guidance_scale`.
            condition_inputs: The condition's network inputs, when they are
                already made (e.g. encoded prompts); `raw_condition` is then
                ignored.

        Returns:
            A callable for `GaussianDiffusion.sample`.
        """
        if guidance_scale is None:
            guidance_scale = self.guidance_scale
        condition = condition_inputs
        if condition is None:
            condition = self.condition.network_inputs(raw_condition, averaged=True)
        null = self.condition.null_inputs(tf.shape(condition[0])[0], averaged=True)

        def predict(x_t, t):
            return guided_noise(self.ema_network, x_t, t, condition, null, guidance_scale)

        return predict

    def sample(
        self, num_samples, seed=None, *, labels=None, prompt=None, guidance_scale=None,
        num_steps=None, method=None, eta=0.0, jit_compile=False, **conditioning,
    ):
        """Runs the reverse process with the EMA network, in one compiled loop.

        The loop is a `tf.while_loop` inside a `tf.function` traced once per
        `(num_steps, method, eta, jit_compile)` and reused for any
        `num_samples` and seed. With the default `method` the result equals
        the exported `sample` signature's for the same seed and `num_steps`.
        Classifier-free guidance wraps the noise predictor, so it works the
        same with every `method`.

        Args:
            num_samples: Positive int.
            seed: `None`, an int or a pair of ints.
            labels: Class-conditional models: an int or `num_samples` ints
                in `[0, num_classes)`; `None` cycles `0, 1, 2, ...`.
            prompt: Text-conditional models: a non-empty `str` for every
                sample or `num_samples` of them (a list or a numpy array;
                `bytes` are read as UTF-8), each at most `max_prompt_bytes`
                UTF-8 bytes; `None` cycles through `default_prompts`
                (`"a handwritten 0"`, `"a handwritten 1"`, ...).
            guidance_scale: Conditional models: the classifier-free
                guidance weight `w >= 0` (0: unconditional, 1: conditional);
                `None` uses the model's `guidance_scale`. A tensor input of
                the traced sampler, as are `labels` and the prompts' token
                ids: changing them does not retrace.
            num_steps: Reverse steps in `[1, T]`; `None` uses
                `sampling_steps` (T if that is `None`).
            method: `"ddpm"` (ancestral; respaced when `num_steps < T`, i.e.
                DDIM with `eta = 1`), `"ddim"` or `"dpmpp_2m"`
                (DPM-Solver++(2M), Lu et al. 2022: a deterministic
                second-order multistep solver, one network call per step, for
                few steps: `GaussianDiffusion.dpmpp_2m_loop`); `None` is
                ancestral DDPM at T steps and `sampling_method` below T
                (what the exported `sample` signature runs).
            eta: DDIM noise scale (0 is deterministic given `x_T`; ignored
                by `"ddpm"` and `"dpmpp_2m"`).
            jit_compile: Whether each reverse step (network and update) runs
                as one XLA cluster. On the 2-core development CPU (quiet) it
                sped the `unet-mnist` loop up 2.4x at 1 image, 1.5x at 8 and
                1.1x at 16 and the MLP's 1.1-1.2x, but was 10% slower at 64
                images (the grid the command writes) and its first call
                compiles for seconds, so it is off by default. Samples then
                match the default to float32 rounding, not bit for bit.
                Exports never use XLA (TF Serving disables XLA:CPU by default).
            **conditioning: Conditioning the model does not take (e.g.
                `labels` for a text model): refused with a `ValueError`.

        Returns:
            numpy float32: images `(n, H, W, C)` in `[0, 1]`, or points
            `(n, d)`.
        """
        return super().sample(
            num_samples, seed, labels=labels, prompt=prompt, guidance_scale=guidance_scale,
            num_steps=num_steps, method=method, eta=eta, jit_compile=jit_compile,
            **conditioning,
        )

    def sample_options(
        self, num_samples, num_steps=None, method=None, eta=0.0, jit_compile=False,
        labels=None, prompt=None, guidance_scale=None,
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
            "guidance_scale": tf.constant(
                check_guidance_scale(guidance_scale, self.guidance_scale), tf.float32
            ),
        }
        if self.condition.option == "prompt":
            if prompt is None:
                prompts = [
                    self.default_prompts[i % len(self.default_prompts)]
                    for i in range(num_samples)
                ]
            else:
                prompts = check_prompts(prompt, num_samples, self.max_prompt_bytes)
            tensors["prompt"] = tf.constant(prompt_token_ids(prompts, self.max_prompt_bytes))
        else:
            tensors["labels"] = tf.constant(check_labels(labels, num_samples, self.num_classes))
        return static, tensors

    def prompt_ids(self, prompt, num_samples):
        """Token ids of the `prompt` option or input (see `sample_from_seed`).

        Args:
            prompt: int32 ids `(rows, L)`, `tf.string` `(rows,)` or `None`.
            num_samples: int32 scalar (the rows of the default prompts).

        Returns:
            int32 ids `(rows, L)`; `num_samples` rows for `None`.
        """
        if prompt is None:
            table = tf.constant(prompt_token_ids(self.default_prompts, self.max_prompt_bytes))
            return tf.gather(table, tf.range(num_samples) % len(self.default_prompts))
        prompt = tf.convert_to_tensor(prompt)
        if prompt.dtype == tf.string:
            return tf_prompt_token_ids(prompt, self.max_prompt_bytes)
        return tf.cast(prompt, tf.int32)

    def default_method(self, num_steps):
        """The sampler of `method=None`: ancestral DDPM at T steps, else
        `sampling_method` (Python int `num_steps`)."""
        return "ddpm" if num_steps >= self.timesteps else self.sampling_method

    def sample_from_seed(
        self, num_samples, seed, num_steps=None, method=None, eta=0.0, jit_compile=False,
        labels=None, prompt=None, guidance_scale=None,
    ):
        """The sampler behind `sample` and the exported `sample` signature.

        Args:
            num_samples: int32 scalar.
            seed: int32 `[2]`.
            num_steps: Python int or int32 scalar, clipped to `[1, T]`;
                `None` uses `sampling_steps` (T if that is `None`).
            method: `"ddpm"`, `"ddim"`, `"dpmpp_2m"` or `None`
                (`default_method`; a `tf.cond` when `num_steps` is a tensor).
            eta: DDIM noise scale.
            jit_compile: Whether each reverse step is one XLA cluster.
            labels: Class-conditional models: int32 `(num_samples,)` labels
                (`None` cycles through the classes).
            prompt: Text-conditional models: int32 token ids `(rows, L)` or
                `tf.string` prompts `(rows,)` (tokenized here, as the served
                signature gives them), `rows` 1 (one prompt for every
                sample) or `num_samples`; `None` cycles through
                `default_prompts`. Encoded once, before the loop.
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
        if isinstance(num_steps, numbers.Integral):  # Tables become constants.
            steps = min(max(int(num_steps), 1), self.timesteps)
        else:
            steps = tf.clip_by_value(tf.cast(num_steps, tf.int32), 1, self.timesteps)
        predict = self.predict_noise
        if self.condition is not None and self.condition.option == "prompt":
            states, mask = self.encode_prompt(self.prompt_ids(prompt, shape[0]))
            condition = [
                tf.broadcast_to(states, tf.concat([shape[:1], tf.shape(states)[1:]], 0)),
                tf.broadcast_to(mask, tf.concat([shape[:1], tf.shape(mask)[1:]], 0)),
            ]
            predict = self.guided_predictor(None, guidance_scale, condition)
        elif self.condition is not None:
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
        return tf.cond(
            steps >= self.timesteps, lambda: run("ddpm"), lambda: run(self.sampling_method)
        )

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
