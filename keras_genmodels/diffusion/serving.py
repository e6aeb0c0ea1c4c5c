"""The DDPM's exported signatures: `sample`, `predict_noise`, `denoise_step`,
the few-step phone loop `solver_step` and its in-graph twin `sample_loop`
(and `encode_prompt` for text).

`DDPMSignatures` is mixed into `DDPM`; it holds the export side of the model
(limits, signatures and their examples) and uses the model's
`sample_from_seed`, `predict_noise`, `encode_prompt` and `process`.
"""

import inspect

import numpy as np
import tensorflow as tf

from keras_genmodels.conditioning import check_served_labels
from keras_genmodels.conditioning.text import (
    VOCAB_SIZE,
    check_served_prompts,
    prompt_token_ids,
)
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
    - `solver_step(x_t, step, prev_x0) -> {x_next, x0, remaining}`: call
      `step` (int32 scalar, `0` first) of DPM-Solver++(2M) in
      `loop_steps` calls (`GaussianDiffusion.dpmpp_2m_step`; the respaced
      timesteps and coefficients are constants). `prev_x0` is the previous
      call's `x0` (zeros at step 0), `remaining` the calls still to make
      (0 after the last, whose `x_next` is the sample in the process's
      scale: images in `[-1, 1]`). Deterministic, so it takes no noise.
      The TF Lite file holds it with a static batch: an app makes
      `loop_steps` calls per image (`keras_genmodels.litert.diffusion`).
    - `sample_loop(x_T) -> samples`: the same `loop_steps` calls in one
      `tf.while_loop` from the given start noise `x_T` (standard normal),
      so a TF Lite loop can be checked against it on identical noise; it
      equals `model.sample(n, seed, method="dpmpp_2m",
      num_steps=loop_steps)` when `x_T` is that seed's
      `tf.random.stateless_normal([n, ...], seed)`. Samples as `sample`'s
      (images in `[0, 1]`).

    A class-conditional model's signatures also take `labels` (int32, one
    per row, in `[0, num_classes)`) and `guidance_scale` (float32 scalar
    `w >= 0`), so `sample(num_samples, seed, labels, guidance_scale,
    num_steps)` equals `model.sample(..., labels=, guidance_scale=)` and
    the TF Lite `denoise_step` is the guided step in one call.

    A text-conditional model's signatures:

    - `sample(num_samples, seed, prompt, guidance_scale, num_steps)`:
      `prompt` is `string [rows]`, one prompt for every sample (`rows = 1`)
      or one per sample, each of 1 to `max_prompt_bytes` UTF-8 bytes; it
      equals `model.sample(..., prompt=, guidance_scale=)`.
    - `encode_prompt(token_ids) -> {states, mask}`: the EMA text encoder on
      int32 ids `[N, L]`, `L = max_prompt_bytes + 1`: `[1 (BOS), byte + 2
      ..., 0 (PAD) ...]` (`conditioning.text.prompt_token_ids`), so an app
      encodes each prompt once.
    - `predict_noise(x_t, t, states, mask, guidance_scale)`,
      `denoise_step(x_t, t, noise, states, mask, guidance_scale)`,
      `solver_step(x_t, step, prev_x0, states, mask, guidance_scale)` and
      `sample_loop(x_T, states, mask, guidance_scale)`: the guided
      prediction, steps and loop on encoded prompts (the empty prompt's
      encoding, the unconditional branch, is computed inside).

    The TF Lite file holds `encode_prompt`, `denoise_step` and
    `solver_step`.

    Every input is checked in the graph; timesteps must be in `[0, T)`.

    Attributes:
        loop_steps: Network calls of the exported `solver_step` loop and
            `sample_loop` (default 20; capped at T). Set it on the model
            before exporting for another count.
    """

    loop_steps = 20

    @property
    def exported_loop_steps(self):
        """The step count of `solver_step` and `sample_loop`:
        `min(loop_steps, T)`."""
        steps = self.loop_steps
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(
                f"`loop_steps` must be a positive int. Received: loop_steps={steps!r}"
            )
        return min(int(steps), self.timesteps)

    @property
    def default_export_name(self):
        """Default model name of an export: `diffusion` for images,
        `diffusion-points` for vectors (different signature shapes), with
        `-cond` (class labels) or `-text` (prompts) for conditional models."""
        name = "diffusion" if self.data_kind == "image" else "diffusion-points"
        if self.condition is None:
            return name
        return f"{name}-text" if self._text else f"{name}-cond"

    @property
    def _text(self):
        return self.condition is not None and self.condition.option == "prompt"

    @property
    def serving_limits(self):
        """The limits the serving signatures enforce (`ServingLimits`).

        Image models default to 256 samples or rows per request (a U-Net
        pass per reverse step); `num_steps` is at most T.
        """
        size = 256 if self.data_kind == "image" else 1024
        signatures = {
            "sample": ("num_samples", "num_steps"),
            "predict_noise": ("batch_size",),
            "denoise_step": ("batch_size",),
            "solver_step": ("batch_size",),
            "sample_loop": ("batch_size",),
        }
        if self._text:
            signatures["encode_prompt"] = ("batch_size",)
        return ServingLimits(
            signatures,
            defaults={"num_samples": size, "batch_size": size, "num_steps": self.timesteps},
            maxima={"num_steps": self.timesteps},
        )

    # ------------------------------------------------------------------
    # The condition inputs: per row of `predict_noise`/`denoise_step`, and
    # of `sample` (labels, or the prompt strings of a text model).
    # ------------------------------------------------------------------
    def _condition_specs(self, batch_size):
        if self.condition is None:
            return []
        if self._text:
            length, width = self.condition.length, self.text_encoder.outputs[0].shape[-1]
            rows = [
                tf.TensorSpec([batch_size, length, width], tf.float32, name="states"),
                tf.TensorSpec([batch_size, length], tf.float32, name="mask"),
            ]
        else:
            rows = [tf.TensorSpec([batch_size], tf.int32, name="labels")]
        return [*rows, tf.TensorSpec([], tf.float32, name="guidance_scale")]

    def _check_condition(
        self, checks, rows, labels=None, guidance_scale=None, states=None, mask=None
    ):
        if self.condition is None:
            return {}
        if self._text:
            states = checks.shape("states", states, self._condition_specs(None)[0].shape)
            mask = checks.shape("mask", mask, [None, self.condition.length])
            checks.check(
                tf.equal(tf.shape(states)[0], rows) & tf.equal(tf.shape(mask)[0], rows),
                "states and mask must have one row per x_t row. Received: {} and {} "
                "rows for {}",
                tf.shape(states)[0], tf.shape(mask)[0], rows,
            )
            checks.finite("states", states)
            checks.values("mask", mask, 0.0, 1.0)
            inputs = {"states": states, "mask": mask}
        else:
            inputs = {"labels": check_served_labels(checks, labels, rows, self.num_classes)}
        inputs["guidance_scale"] = checks.scalar("guidance_scale", guidance_scale, low=0.0)
        return inputs

    def _example_prompts(self, rows):
        return [self.default_prompts[i % len(self.default_prompts)] for i in range(rows)]

    def _condition_example(self, rows):
        if self.condition is None:
            return {}
        if self._text:
            # Real encoded prompts, so TF Lite/SavedModel comparisons see
            # the states the app feeds.
            ids = prompt_token_ids(self._example_prompts(rows), self.max_prompt_bytes)
            states, mask = (np.asarray(v) for v in self.encode_prompt(tf.constant(ids)))
            example = {"states": states.astype("float32"), "mask": mask.astype("float32")}
        else:
            example = {"labels": (np.arange(rows) % self.num_classes).astype("int32")}
        example["guidance_scale"] = np.float32(2.0)
        return example

    def sample_signature_inputs(self):
        if self._text:
            condition = [
                tf.TensorSpec([None], tf.string, name="prompt"),
                tf.TensorSpec([], tf.float32, name="guidance_scale"),
            ]
        else:
            condition = self._condition_specs(None)
        return [*condition, tf.TensorSpec([], tf.int32, name="num_steps")]

    def check_sample_inputs(
        self, checks, num_samples, limits, num_steps, labels=None, guidance_scale=None,
        prompt=None,
    ):
        if self._text:
            prompt = check_served_prompts(
                checks, prompt, limits["num_samples"], self.max_prompt_bytes
            )
            rows = tf.shape(prompt)[0]
            checks.check(
                tf.equal(rows, 1) | tf.equal(rows, num_samples),
                "prompt must have one string for every sample or one per sample. "
                "Received: {} prompts for {} samples",
                rows, num_samples,
            )
            inputs = {
                "prompt": prompt,
                "guidance_scale": checks.scalar("guidance_scale", guidance_scale, low=0.0),
            }
        else:
            inputs = self._check_condition(checks, num_samples, labels, guidance_scale)
        inputs["num_steps"] = checks.count("num_steps", num_steps, limits["num_steps"])
        return inputs

    def sample_signature_example(self):
        example = super().sample_signature_example()
        rows = int(example["num_samples"])
        if self._text:
            example["prompt"] = np.array(self._example_prompts(rows))
            example["guidance_scale"] = np.float32(2.0)
        else:
            example.update(self._condition_example(rows))
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

        endpoints = {
            "sample": self.sample_endpoint(limits),
            "predict_noise": named_function(predict_noise, specs, autograph=False),
            "denoise_step": self._denoise_step_endpoint(None, limits["batch_size"]),
            "solver_step": self._solver_step_endpoint(None, limits["batch_size"]),
            "sample_loop": self._sample_loop_endpoint(limits["batch_size"]),
        }
        if self._text:
            endpoints["encode_prompt"] = self._encode_prompt_endpoint(None, limits["batch_size"])
        return endpoints

    def _checked_loop_inputs(self, limit, inputs, condition):
        """Checks `{name: batch}` of the sample's shape (and `step`, when
        present) and the condition; returns them gated, as two dicts."""
        checks = InputChecks()
        shape = [None, *self.data_shape]
        checked = {}
        for name, value in inputs.items():
            if name == "step":
                checked[name] = checks.count(name, value, self.exported_loop_steps - 1, low=0)
            else:
                checked[name] = checks.batch(name, value, shape, limit, finite=True)
        batches = {k: v for k, v in checked.items() if k != "step"}
        if len(batches) > 1:
            checks.same_rows(**batches)
        rows = tf.shape(next(iter(batches.values())))[0]
        condition = self._check_condition(checks, rows, **condition)
        gated = checks.gate(*checked.values(), *condition.values())
        gated = gated if isinstance(gated, tuple) else (gated,)
        return dict(zip(checked, gated)), dict(zip(condition, gated[len(checked):]))

    def _solver_step_endpoint(self, batch_size, limit=None):
        """`solver_step`; with a row `limit` (serving) its inputs are checked,
        without one (TF Lite) `step` is clipped to the table."""
        x_spec = tf.TensorSpec([batch_size, *self.data_shape], tf.float32, name="x_t")
        specs = [
            x_spec,
            tf.TensorSpec([], tf.int32, name="step"),
            tf.TensorSpec(x_spec.shape, tf.float32, name="prev_x0"),
            *self._condition_specs(batch_size),
        ]
        steps = self.exported_loop_steps
        table = self.process.dpmpp_2m_table(steps)

        def solver_step(x_t, step, prev_x0, **condition):
            if limit is not None:
                inputs, condition = self._checked_loop_inputs(
                    limit, {"x_t": x_t, "step": step, "prev_x0": prev_x0}, condition
                )
                x_t, step, prev_x0 = inputs["x_t"], inputs["step"], inputs["prev_x0"]
            else:
                step = tf.clip_by_value(step, 0, steps - 1)
            predict = self.noise_predictor(**condition)
            x_next, x0 = self.process.dpmpp_2m_step(predict, x_t, prev_x0, table, step)
            return {"x_next": x_next, "x0": x0, "remaining": steps - 1 - step}

        return named_function(solver_step, specs, autograph=False)

    def _sample_loop_endpoint(self, limit):
        """`sample_loop(x_T, ...) -> samples`, every input checked."""
        specs = [
            tf.TensorSpec([None, *self.data_shape], tf.float32, name="x_T"),
            *self._condition_specs(None),
        ]
        names = [spec.name for spec in specs]
        steps = self.exported_loop_steps

        def sample_loop(*args):
            inputs = dict(zip(names, args))
            x_T = inputs.pop("x_T")
            checked, condition = self._checked_loop_inputs(limit, {"x_T": x_T}, inputs)
            predict = self.noise_predictor(**condition)
            x = self.process.dpmpp_2m_loop(predict, checked["x_T"], steps)
            return {self.sample_output_name: self.from_process_space(x)}

        sample_loop.__signature__ = inspect.Signature(
            [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
        )
        return tf.function(sample_loop, input_signature=specs, autograph=False)

    def _encode_prompt_endpoint(self, batch_size, limit=None):
        """`encode_prompt(token_ids) -> {states, mask}` with the EMA encoder;
        with a row `limit` (serving) the ids are checked."""
        spec = tf.TensorSpec([batch_size, self.condition.length], tf.int32, name="token_ids")

        def encode_prompt(token_ids):
            if limit is not None:
                checks = InputChecks()
                token_ids = checks.batch(
                    "token_ids", token_ids, spec.shape, limit, low=0, high=VOCAB_SIZE - 1
                )
                token_ids = checks.gate(token_ids)
            states, mask = self.encode_prompt(token_ids)
            return {"states": states, "mask": mask}

        return tf.function(encode_prompt, input_signature=[spec], autograph=False)

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
        endpoints = {
            "denoise_step": self._denoise_step_endpoint(batch_size),
            "solver_step": self._solver_step_endpoint(batch_size),
        }
        if self._text:
            endpoints["encode_prompt"] = self._encode_prompt_endpoint(batch_size)
        return endpoints

    def signature_examples(self, batch_size=1):
        rng = np.random.default_rng(0)
        shape = (batch_size, *self.data_shape)
        extra = {}
        if self._text:
            extra["encode_prompt"] = {
                "token_ids": prompt_token_ids(
                    self._example_prompts(batch_size), self.max_prompt_bytes
                ),
            }
        return {
            **extra,
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
            # A middle call: second order once the loop has 5 calls or more.
            "solver_step": {
                "x_t": rng.standard_normal(shape).astype("float32"),
                "step": np.int32(self.exported_loop_steps // 2),
                "prev_x0": (0.5 * rng.standard_normal(shape)).astype("float32"),
                **self._condition_example(batch_size),
            },
            "sample_loop": {
                "x_T": rng.standard_normal(shape).astype("float32"),
                **self._condition_example(batch_size),
            },
        }
