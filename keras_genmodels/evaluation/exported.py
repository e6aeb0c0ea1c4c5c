"""A model export seen through its signatures alone, as the figures need it.

`ExportedModel(path)` loads a SavedModel version directory (or a model
directory, whose newest numbered version it takes) with
`tf.saved_model.load`, or a `.tflite` file with `ai_edge_litert`; no Keras
model is rebuilt and no `.keras` file is read. From the signatures it tells
the model's family, data kind and data shape, and it gives the held-out
figures (`keras_genmodels.evaluation.exported_figures`) what they need:

- `sample(num_samples, seed)`: the export's `sample` signature, called the
  way `GenerativeModel.sample` is, so the same seed gives the same samples.
  A request above the export's `num_samples` limit is split: the first call
  keeps the seed pair (its rows equal the first rows of one big draw), call
  `j` uses `tf.random.experimental.stateless_fold_in(seed, j)`, and
  `notes` records that the draws then differ from the in-process ones.
  A `.tflite` file has no `sample`; for the families whose sampler is
  `decode(stateless_normal([n, d], seed))` (VAE, GAN, flow) the same
  latents are drawn with TensorFlow and decoded by the TF Lite signature.
- `call_rows(signature, inputs)`: a batched signature over any number of
  rows, in chunks within the export's row limit (TF Lite: its static batch,
  the last chunk padded).
- `limit(signature, name)`: a limit fixed at export, read from the
  signature's own input check (a request with a size of 0 fails with
  `"... must be in [1, L]"`, `"... 1 <= N <= L"` or `"... 1 to L bytes"`
  before anything runs).

The model card (`assets.extra/model_card.json`) is read when present, never
required: it supplies defaults the signatures do not carry (a diffusion
model's `sampling_steps`, a guidance scale).
"""

import re

import numpy as np
import tensorflow as tf

from keras_genmodels.base import MAX_SEED, check_positive_int
from keras_genmodels.evaluation.export_signatures import (
    ExportError,
    card_directory,
    card_field,
    load_signatures,
    read_model_card,
    resolve_export,
)

#: Family (as in the export names) -> the signatures that identify it, in
#: the order they are tried; SavedModel and TF Lite sets.
FAMILY_SIGNATURES = (
    ("diffusion", ("predict_noise",)),
    ("diffusion", ("denoise_step",)),
    ("flow", ("log_prob", "decode")),
    ("vae", ("encode", "decode")),
    ("ar-transformer", ("next_token_logits",)),
    ("ar-rnn", ("forecast",)),
    ("ar-rnn-text", ("score", "step")),
    ("gan", ("generate",)),
    ("vae", ("decode",)),
    ("ar-rnn", ("step",)),  # TF Lite: told from the byte model by its float input.
)
#: Families whose sampler is `decode(stateless_normal([n, d], seed))`: the
#: TF Lite signature that decodes, and its latents input.
LATENT_DECODERS = {"vae": "decode", "gan": "generate", "flow": "decode"}

_PATTERNS = {
    "count": r"{name} must be in \[-?\d+, (\d+)\]",
    "rows": r"1 <= N <= (\d+)",
    "bytes": r"{name} must have \d+ to (\d+) bytes",
}


def seed_pair(seed):
    """`[s, 0]` for an int seed, the pair itself for a pair (as `resolve_seed`)."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        pair = [int(seed), 0]
    else:
        pair = [int(s) for s in np.asarray(seed).reshape(-1)]
    if len(pair) != 2 or not all(0 <= s <= MAX_SEED for s in pair):
        raise ValueError(
            "`seed` must be an int in [0, 2**31 - 1] or a pair of such ints. "
            f"Received: seed={seed!r}"
        )
    return np.array(pair, np.int32)


def chunk_seed(pair, index):
    """The seed of chunk `index` of a split draw: the pair itself, then folds."""
    if index == 0:
        return pair
    folded = tf.random.experimental.stateless_fold_in(tf.constant(pair), index)
    return (folded.numpy().astype(np.int64) & MAX_SEED).astype(np.int32)


class ExportedModel:
    """An export, through its signatures, with what the figures need of a model.

    Args:
        path: A SavedModel version directory, a model directory (its newest
            version) or a `.tflite` file.
        sample_inputs: Optional `{input: value}` for the extra inputs of the
            `sample` signature (`num_steps`, `labels`, `guidance_scale`,
            `max_new_tokens`); without one, `labels` cycle through the
            classes as `sample(labels=None)` does, `num_steps` is the model
            card's `sampling_steps` (else `timesteps`, else the export's
            `num_steps` limit) and other inputs come from the model card.

    Attributes:
        path: The version directory or `.tflite` file read.
        format: `"savedmodel"` or `"tflite"`.
        family: `"vae"`, `"gan"`, `"flow"`, `"diffusion"`,
            `"ar-transformer"`, `"ar-rnn-text"` or `"ar-rnn"`.
        data_kind: `"image"`, `"points"`, `"text"` or `"sequence"`.
        data_shape: The shape of one example, or `None` for streams.
        card: The model card (dict), or `None`.
        notes: Lines saying where the figures could not follow the
            in-process evaluation (e.g. a split draw).

    Example:

    ```python
    model = ExportedModel("savedmodels/vae")  # the newest version
    model.family, model.data_shape  # ("vae", (28, 28, 1))
    images = model.sample(16, seed=0)  # == vae.sample(16, seed=0)
    ```
    """

    def __init__(self, path, sample_inputs=None):
        self.format, self.path = resolve_export(path)
        self.card = read_model_card(card_directory(self.format, self.path))
        self.signatures = load_signatures(self.format, self.path)
        self.sample_inputs = dict(sample_inputs or {})
        self.notes = []
        #: The scalar extra `sample` inputs used (e.g. `num_steps`), by name.
        self.inputs_used = {}
        self._limits = {}
        self.family = self._detect_family()
        self.data_kind, self.data_shape = self._detect_data()

    # ------------------------------------------------------------------
    # What the export is.
    # ------------------------------------------------------------------
    @property
    def names(self):
        """The signature names."""
        return self.signatures.names()

    def _detect_family(self):
        names = set(self.names)
        for family, required in FAMILY_SIGNATURES:
            if set(required) <= names:
                if required == ("step",) and self.signatures.inputs("step")["x"][1] == "int32":
                    return "ar-rnn-text"
                return family
        raise ExportError(
            f"The export at {self.path} has signatures {sorted(names)}, none of "
            "this package's families (vae, gan, flow, diffusion, ar). Received: "
            f"export path {self.path!r}"
        )

    def _detect_data(self):
        family = self.family
        if family in ("ar-transformer", "ar-rnn-text"):
            return "text", None
        if family == "ar-rnn":
            return "sequence", None
        if family == "diffusion":
            name = "predict_noise" if "predict_noise" in self.names else "denoise_step"
            shape = self.signatures.inputs(name)["x_t"][0][1:]
        elif family == "flow":
            shape = self.signatures.inputs("log_prob")["x"][0][1:]
        elif family == "vae" and "encode" in self.names:
            shape = self.signatures.inputs("encode")["images"][0][1:]
        else:
            name = LATENT_DECODERS[family]
            (shape, _), = self.signatures.outputs(name).values()
            shape = shape[1:]
        shape = tuple(int(d) for d in shape)
        return ("image" if len(shape) == 3 else "points"), shape

    @property
    def conditioning(self):
        """The conditioning the `sample` signature takes, as `model.conditioning`
        names it (`labels`, `prompt`, `guidance_scale`)."""
        if "sample" not in self.names:
            return ()
        inputs = self.signatures.inputs("sample")
        return tuple(n for n in ("labels", "prompt", "guidance_scale") if n in inputs)

    @property
    def uses_labels(self):
        """Whether the likelihood signatures take the test labels (a CVAE)."""
        return self.family == "vae" and "labels" in self.signatures.inputs(
            "encode" if "encode" in self.names else "decode"
        )

    @property
    def num_classes(self):
        """Classes of a class-conditional export (its `labels` range), or `None`."""
        if "labels" not in self._sample_or_decoder_inputs():
            return None
        if self.format == "tflite" or "sample" not in self.names:
            classes = card_field(self.card, "config", "num_classes")
            if classes is None:
                raise ExportError(
                    f"The export at {self.path} takes `labels` but says nowhere how "
                    "many classes there are; pass the labels (--input labels=...)."
                )
            return int(classes)
        if ("sample", "labels") not in self._limits:
            probe = self._valid_sample_inputs(1, with_defaults=False)
            probe["labels"] = np.array([-1], np.int32)
            self._limits["sample", "labels"] = self._probe("sample", probe, "count", "labels")
        return self._limits["sample", "labels"] + 1

    def _sample_or_decoder_inputs(self):
        if "sample" in self.names:
            return self.signatures.inputs("sample")
        return self.signatures.inputs(LATENT_DECODERS.get(self.family, self.names[0]))

    # ------------------------------------------------------------------
    # Limits.
    # ------------------------------------------------------------------
    def _probe(self, signature, inputs, kind, name=""):
        pattern = _PATTERNS[kind].format(name=re.escape(name))
        try:
            self.signatures(signature, **inputs)
        except tf.errors.InvalidArgumentError as error:
            found = re.search(pattern, error.message)
            if found:
                return int(found.group(1))
            raise ExportError(
                f"Could not read the {name or 'row'} limit of signature {signature!r} "
                f"of {self.path}: {' '.join(error.message.split())[:300]}"
            ) from error
        return None  # No check: no limit.

    def limit(self, signature, name):
        """A limit the export enforces: `num_samples`, `num_steps`, `text`,
        `max_new_tokens`, or `rows` (most rows of a batched input).

        Returns:
            An int, or `None` when the signature checks no such limit. TF
            Lite signatures have a static batch: their `rows` is that batch.
        """
        key = (signature, name)
        if key in self._limits:
            return self._limits[key]
        inputs = self.signatures.inputs(signature)
        if self.format == "tflite":
            value = next(iter(inputs.values()))[0][0] if name == "rows" else None
        elif name == "rows":
            empty = {
                k: np.zeros([0 if i == 0 else (d or 1) for i, d in enumerate(shape)], dtype)
                for k, (shape, dtype) in inputs.items()
            }
            value = self._probe(signature, empty, "rows")
        elif name == "text":
            value = self._probe(signature, {"text": b""}, "bytes", "text")
        else:
            probe = self._valid_sample_inputs(1, with_defaults=False)
            probe[name] = np.int32(0)
            value = self._probe(signature, probe, "count", name)
        self._limits[key] = value
        return value

    # ------------------------------------------------------------------
    # Sampling.
    # ------------------------------------------------------------------
    def _valid_sample_inputs(self, num_samples, with_defaults=True):
        """Inputs of `sample` that pass its checks (defaults or placeholders)."""
        values = {"num_samples": np.int32(num_samples), "seed": np.zeros(2, np.int32)}
        for name, (_, dtype) in self.signatures.inputs("sample").items():
            if name in values:
                continue
            if with_defaults:
                values[name] = self.sample_input(name, num_samples)
            elif name == "labels":
                values[name] = np.zeros([num_samples], np.int32)
            elif name == "prompt":
                values[name] = np.array([b"a"], dtype=object)
            else:
                values[name] = np.array(1 if dtype.startswith("int") else 0.0, dtype)
        return values

    @property
    def num_steps(self):
        """Reverse steps of a diffusion export's samples (see the class doc)."""
        if "num_steps" in self.sample_inputs:
            return int(self.sample_inputs["num_steps"])
        steps = card_field(self.card, "config", "sampling_steps") or card_field(
            self.card, "config", "timesteps"
        )
        if steps is None and self.format == "savedmodel":
            steps = self.limit("sample", "num_steps")
        if steps is None:
            raise ExportError(
                f"The export at {self.path} does not say how many reverse steps to "
                "run; pass them (--input num_steps=N)."
            )
        return int(steps)

    # What `sliced_wasserstein_figures` reads of a DDPM.
    sampling_steps = num_steps

    @property
    def timesteps(self):
        return card_field(self.card, "config", "timesteps") or self.num_steps

    def sample_input(self, name, num_samples):
        """The value of the `sample` signature's extra input `name`."""
        value = self.sample_inputs.get(name)
        if name == "labels":
            if value is None:
                return (np.arange(num_samples) % self.num_classes).astype(np.int32)
            return np.broadcast_to(np.asarray(value, np.int32), [num_samples]).copy()
        if name == "num_steps":
            return np.int32(self.num_steps)
        if name == "prompt":
            if value is None:
                value = card_field(self.card, "config", "default_prompts")
            if value is None:
                raise ExportError(
                    f"The sample signature of {self.path} takes `prompt`, which has no "
                    "default without a model card; pass it (--input prompt=TEXT)."
                )
            prompts = [value] if isinstance(value, (str, bytes)) else list(value)
            rows = [prompts[i % len(prompts)] for i in range(num_samples)]
            return np.array([p.encode("utf-8") if isinstance(p, str) else p for p in rows],
                            dtype=object)
        if value is None:
            value = card_field(self.card, "config", name)
        if value is None:
            raise ExportError(
                f"The sample signature of {self.path} takes `{name}`, which has no "
                f"default without a model card; pass it (--input {name}=VALUE)."
            )
        return np.asarray(value)

    @property
    def sample_limit(self):
        """Most samples one call draws (`num_samples` limit or static batch)."""
        if self.format == "tflite":
            return self.limit(LATENT_DECODERS[self.family], "rows")
        return self.limit("sample", "num_samples") or num_samples_fallback()

    def sample(self, num_samples, seed=0, **inputs):
        """Draws samples as the model's `sample(num_samples, seed)` does.

        Args:
            num_samples: Positive int.
            seed: An int or a pair of ints.
            **inputs: Values of extra `sample` inputs for this call (e.g.
                `num_steps`; `None` means the default).

        Returns:
            A numpy array (a `list` of `str` for text exports).
        """
        num_samples = check_positive_int(num_samples, "num_samples")
        pair = seed_pair(seed)
        saved, self.sample_inputs = self.sample_inputs, {
            **self.sample_inputs, **{k: v for k, v in inputs.items() if v is not None}
        }
        try:
            if self.format == "tflite":  # Latents of one draw; decoded in rows.
                return self._decode_latents(num_samples, pair)
            limit = self.sample_limit
            sizes = [min(limit, num_samples - s) for s in range(0, num_samples, limit)]
            if len(sizes) > 1:
                self.note(
                    f"{num_samples:,} samples exceed the export's num_samples limit "
                    f"{limit:,}: drawn in {len(sizes)} calls, so only the first "
                    f"{limit:,} equal the in-process draw of the same seed"
                )
            parts = [self._sample_call(n, chunk_seed(pair, i)) for i, n in enumerate(sizes)]
        finally:
            self.sample_inputs = saved
        if self.data_kind == "text":
            return [text for part in parts for text in part]
        return np.concatenate(parts)

    def _sample_call(self, num_samples, pair):
        if "sample" not in self.names:
            raise ExportError(f"The export at {self.path} has no `sample` signature.")
        inputs = self._valid_sample_inputs(num_samples)
        inputs["seed"] = pair
        for name, value in inputs.items():
            if name not in ("num_samples", "seed") and np.ndim(value) == 0:
                self.inputs_used[name] = value.item()
        (samples,) = self.signatures("sample", **inputs).values()
        if self.data_kind == "text":
            return [t.decode("utf-8", errors="replace") for t in samples.reshape(-1)]
        return samples

    def _decode_latents(self, num_samples, pair):
        name = LATENT_DECODERS.get(self.family)
        if name is None:
            raise ExportError(
                f"A {self.family} TF Lite file cannot draw samples here: its loop needs "
                "the in-process noise schedule (keras_genmodels.litert runs it)."
            )
        size = self.signatures.inputs(name)["latents"][0][1]
        latents = tf.random.stateless_normal([num_samples, size], seed=pair).numpy()
        inputs = {"latents": latents}
        if "labels" in self.signatures.inputs(name):
            inputs["labels"] = self.sample_input("labels", num_samples)
        (samples,) = self.call_rows(name, inputs).values()
        return samples

    # ------------------------------------------------------------------
    # Batched signatures.
    # ------------------------------------------------------------------
    def call_rows(self, signature, inputs):
        """Runs a batched signature over every row of `inputs`, in chunks.

        Args:
            signature: The signature name (e.g. `"decode"`, `"log_prob"`).
            inputs: `{input: array}`, every array with the same rows.

        Returns:
            `{output: array}` with one row per input row.
        """
        rows = len(next(iter(inputs.values())))
        step = self.limit(signature, "rows") or rows
        static = self.format == "tflite"
        outputs = {}
        for start in range(0, rows, step):
            part = {k: np.asarray(v)[start : start + step] for k, v in inputs.items()}
            size = len(next(iter(part.values())))
            if static and size < step:  # Pad a static batch with the last row.
                part = {
                    k: np.concatenate([v, np.repeat(v[-1:], step - size, 0)])
                    for k, v in part.items()
                }
            for k, v in self.signatures(signature, **part).items():
                outputs.setdefault(k, []).append(np.asarray(v)[:size])
        return {k: np.concatenate(v) for k, v in outputs.items()}

    def prepare_dataset(self, dataset, batch_size, shuffle=False):
        """Batches a test split in order, features only (as the base class)."""
        del shuffle
        if isinstance(dataset.element_spec, tuple):
            dataset = dataset.map(lambda x, *_: x)
        return dataset.batch(batch_size)

    def note(self, line):
        """Records a line for the report's `notes` (once)."""
        if line not in self.notes:
            self.notes.append(line)


def num_samples_fallback():
    """Samples per call when an export checks no `num_samples` limit."""
    from keras_genmodels.serving_limits import DEFAULT_LIMITS

    return DEFAULT_LIMITS["num_samples"]
