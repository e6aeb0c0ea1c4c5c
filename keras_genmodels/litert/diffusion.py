"""Diffusion sampling from an exported DDPM `.tflite` file, numpy only.

The reference loop for app developers: it imports `ai_edge_litert` and
numpy, never TensorFlow or Keras, and runs the file's `solver_step`
signature (`keras_genmodels.diffusion.serving`), one DPM-Solver++(2M) call
per interpreter call:

- `solver_step(x_t, step int32 [], prev_x0[, labels, guidance_scale | states,
  mask, guidance_scale]) -> {"x_next", "x0", "remaining"}`.

The loop starts from standard normal `x_T` at `step = 0` with `prev_x0 = 0`,
feeds each call's `x_next` and `x0` to the next, and stops when `remaining`
is 0: the exported step count (20 by default) is read from the file, so the
number of calls per batch equals it. The solver is deterministic: the start
noise is the only randomness, so the same noise gives the SavedModel
`sample_loop`'s samples.

A class-conditional file takes `labels` (one per row) and
`guidance_scale`; a text-conditional one takes `prompt` (encoded once per
batch with the file's `encode_prompt` signature) and `guidance_scale`.

Example:

```python
import numpy as np
from keras_genmodels.litert import diffusion

noise = np.random.default_rng(0).standard_normal((4, 28, 28, 1)).astype("float32")
images, calls = diffusion.diffusion_sample("savedmodels/diffusion/diffusion-v1.tflite", noise)
images.shape, calls  # (4, 28, 28, 1), 80: 20 calls for each of 4 batches of 1
```
"""

import numbers

import numpy as np
from ai_edge_litert.interpreter import Interpreter

#: Token ids of a prompt (`keras_genmodels.conditioning.text`): PAD, BOS, byte + 2.
PAD_ID, BOS_ID, BYTE_OFFSET = 0, 1, 2
#: Stop a loop whose file never reports `remaining == 0`.
MAX_CALLS = 100_000


def _rows(value, name, batch, dtype):
    """`value` as a `dtype` array with `batch` rows (a scalar is repeated)."""
    array = np.asarray(value, dtype=dtype)
    if array.ndim == 0:
        array = np.full((batch,), array, dtype=dtype)
    if array.shape[0] != batch:
        raise ValueError(
            f"`{name}` must have one entry per noise row ({batch}). "
            f"Received: {name} with shape {array.shape}"
        )
    return array


def prompt_token_ids(prompts, length):
    """Byte token ids `[N, length]`: `[BOS, byte + 2 ..., PAD ...]`.

    Args:
        prompts: A sequence of `str` (UTF-8 encoded) or `bytes`.
        length: Ids per prompt (`max_prompt_bytes + 1`).

    Returns:
        int32 `(len(prompts), length)`.
    """
    ids = np.full((len(prompts), length), PAD_ID, "int32")
    ids[:, 0] = BOS_ID
    for row, prompt in enumerate(prompts):
        data = prompt.encode("utf-8") if isinstance(prompt, str) else bytes(prompt)
        if len(data) > length - 1:
            raise ValueError(
                f"A prompt may have at most {length - 1} UTF-8 bytes. "
                f"Received {len(data)} bytes: prompt={prompt!r}"
            )
        ids[row, 1 : 1 + len(data)] = np.frombuffer(data, np.uint8).astype("int32") + BYTE_OFFSET
    return ids


class DiffusionLoop:
    """The `solver_step` (and `encode_prompt`) signatures of one `.tflite` file.

    Args:
        path: The `.tflite` file written by `export_tflite` for a `DDPM`.

    Attributes:
        batch_size: The file's static batch (rows per call).
        sample_shape: The shape of one sample, e.g. `(28, 28, 1)` or `(2,)`.
        condition: `None`, `"labels"` or `"prompt"`.
    """

    def __init__(self, path):
        self.path = path
        self.interpreter = Interpreter(model_path=path)
        signatures = self.interpreter.get_signature_list()
        if "solver_step" not in signatures:
            raise ValueError(
                f"{path} has no `solver_step` signature (a DDPM file exported by "
                f"this version). Received signatures: {sorted(signatures)}"
            )
        self.step_runner = self.interpreter.get_signature_runner("solver_step")
        self.inputs = self.step_runner.get_input_details()
        shape = tuple(int(d) for d in self.inputs["x_t"]["shape"])
        self.batch_size, self.sample_shape = shape[0], shape[1:]
        self.condition = None
        if "labels" in self.inputs:
            self.condition = "labels"
        elif "states" in self.inputs:
            self.condition = "prompt"
            self.encoder = self.interpreter.get_signature_runner("encode_prompt")
            self.prompt_length = int(self.inputs["mask"]["shape"][1])

    def condition_inputs(self, rows, labels=None, prompt=None, guidance_scale=None):
        """The conditioning inputs of `rows` samples, one entry per row.

        Returns:
            `{input name: array with `rows` rows}` plus `guidance_scale`;
            `{}` for an unconditional file.
        """
        if self.condition is None:
            if labels is not None or prompt is not None or guidance_scale is not None:
                raise ValueError(
                    f"{self.path} is unconditional: it takes no labels, prompt or "
                    "guidance_scale."
                )
            return {}
        if guidance_scale is None or not isinstance(guidance_scale, numbers.Real):
            raise ValueError(
                "A conditional file needs a number `guidance_scale` (the model's "
                f"default is not stored in it). Received: guidance_scale={guidance_scale!r}"
            )
        inputs = {}
        if self.condition == "labels":
            if labels is None:
                raise ValueError(f"{self.path} is class-conditional: pass `labels`.")
            inputs["labels"] = _rows(labels, "labels", rows, "int32")
        else:
            if prompt is None:
                raise ValueError(f"{self.path} is text-conditional: pass `prompt`.")
            prompts = [prompt] * rows if isinstance(prompt, (str, bytes)) else list(prompt)
            if len(prompts) != rows:
                raise ValueError(
                    f"`prompt` must be one string or one per noise row ({rows}). "
                    f"Received {len(prompts)} prompts"
                )
            padded = -(-rows // self.batch_size) * self.batch_size
            ids = prompt_token_ids(prompts + [""] * (padded - rows), self.prompt_length)
            encoded = [
                self.encoder(token_ids=ids[i : i + self.batch_size])
                for i in range(0, padded, self.batch_size)
            ]
            inputs["states"] = np.concatenate([e["states"] for e in encoded])[:rows]
            inputs["mask"] = np.concatenate([e["mask"] for e in encoded])[:rows]
        inputs["guidance_scale"] = np.float32(guidance_scale)
        return inputs

    def run(self, x_T, condition):
        """The solver loop on one batch of `batch_size` rows.

        Args:
            x_T: float32 `(batch_size, *sample_shape)` start noise.
            condition: This batch's conditioning inputs.

        Returns:
            `(x_0 in the process's scale, interpreter calls)`.
        """
        x = np.asarray(x_T, "float32")
        prev_x0 = np.zeros_like(x)
        for step in range(MAX_CALLS):
            out = self.step_runner(x_t=x, step=np.int32(step), prev_x0=prev_x0, **condition)
            x, prev_x0 = out["x_next"], out["x0"]
            if int(out["remaining"]) <= 0:
                return x, step + 1
        raise RuntimeError(f"{self.path}: solver_step never reported remaining == 0.")


def diffusion_sample(
    path, noise, labels=None, guidance_scale=None, prompt=None, loop=None
):
    """Samples with the `.tflite` file's `solver_step` loop (numpy only).

    Rows are run in batches of the file's static batch (the last batch
    padded with zeros, its extra rows dropped), `loop_steps` calls each.

    Args:
        path: The `.tflite` file of a `DDPM` export.
        noise: float32 `(n, *sample_shape)` standard normal start noise
            `x_T`; the SavedModel's `sample_loop(x_T=noise)` gives the same
            samples.
        labels: Class-conditional files: an int or `n` ints.
        guidance_scale: Conditional files: the guidance weight `w >= 0`
            (required: the file does not store the model's default).
        prompt: Text-conditional files: a string or `n` strings.
        loop: Optional `DiffusionLoop` of `path`, reused across calls.

    Returns:
        `(samples, calls)`: numpy float32 samples, images `(n, H, W, C)` in
        `[0, 1]` (`(x + 1) / 2`, clipped) or points `(n, d)` as they are,
        and the number of interpreter calls made (`solver_step` calls plus
        `encode_prompt` calls).
    """
    loop = loop or DiffusionLoop(path)
    noise = np.asarray(noise, "float32")
    if noise.ndim == len(loop.sample_shape):
        noise = noise[None]
    if noise.shape[1:] != loop.sample_shape or noise.shape[0] < 1:
        raise ValueError(
            f"`noise` must have shape (n, {', '.join(map(str, loop.sample_shape))}). "
            f"Received: noise with shape {noise.shape}"
        )
    rows, batch = noise.shape[0], loop.batch_size
    condition = loop.condition_inputs(rows, labels, prompt, guidance_scale)
    calls = -(-rows // batch) if loop.condition == "prompt" else 0
    padded = -(-rows // batch) * batch

    def pad(array):
        extra = np.zeros((padded - rows, *array.shape[1:]), array.dtype)
        return np.concatenate([array, extra]) if padded > rows else array

    noise = pad(noise)
    per_row = {k: pad(v) for k, v in condition.items() if np.ndim(v) > 0}
    outputs = []
    for start in range(0, padded, batch):
        chunk = {k: v[start : start + batch] for k, v in per_row.items()}
        if "guidance_scale" in condition:
            chunk["guidance_scale"] = condition["guidance_scale"]
        x, made = loop.run(noise[start : start + batch], chunk)
        outputs.append(x)
        calls += made
    samples = np.concatenate(outputs)[:rows]
    if len(loop.sample_shape) == 3:  # Images live in [-1, 1] in the process.
        samples = np.clip((samples + 1.0) / 2.0, 0.0, 1.0)
    return samples.astype("float32"), calls
