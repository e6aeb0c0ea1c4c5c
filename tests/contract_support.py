"""What `tests/test_contract.py` runs every preset with.

- `TINY`: constructor overrides that shrink a preset so each contract check
  takes about a second; a preset without an entry is built as it is.
- `TINY_SHAPES`: the data shape a preset is built for, passed under the
  one name every family uses, `data_shape`.
- `synthetic_dataset`: a few examples of the model's data kind, unbatched as
  `keras_genmodels.data.load` yields them.
- `TensorFlowOnlyProcess`: one long-lived child process that imports only
  TensorFlow (`tests/tf_only_runner.py`) and calls SavedModel signatures.
"""

import json
import os
import select
import subprocess
import sys

import numpy as np
import tensorflow as tf

from keras_genmodels import presets

#: (family, preset) -> constructor overrides that keep the preset's structure
#: (layer kinds, losses, samplers) but make it tiny.
TINY = {
    ("vae", "reference"): {"latent_dim": 2, "hidden_units": 8},
    ("vae", "conv"): {"latent_dim": 2},
    ("gan", "reference"): {"latent_dim": 4},
    ("gan", "dcgan"): {
        "latent_dim": 4, "generator_filters": (8, 4), "discriminator_filters": (4, 8),
    },
    ("gan", "mlp2d"): {"latent_dim": 2, "hidden_units": (8,)},
    ("ar", "reference"): {"units": 4, "sequence_length": 5, "sample_length": 8},
    ("ar", "transformer-small"): {
        "context_length": 8, "d_model": 8, "num_heads": 2, "num_layers": 1,
    },
    ("ar", "transformer-base"): {
        "context_length": 8, "d_model": 8, "num_heads": 2, "num_layers": 1,
    },
    ("flow", "reference"): {"num_coupling_layers": 2, "hidden_units": (4,)},
    ("flow", "mlp2d"): {"num_coupling_layers": 2, "hidden_units": (4,)},
    ("flow", "mnist"): {"num_coupling_layers": 2, "hidden_units": (8,)},
    ("flow", "maf2d"): {"num_flows": 2, "hidden_units": (4,)},
    ("flow", "iaf2d"): {"num_flows": 2, "hidden_units": (4,)},
    ("flow", "maf-tabular"): {"num_flows": 2, "hidden_units": (4,)},
    ("flow", "iaf-tabular"): {"num_flows": 2, "hidden_units": (4,)},
    ("flow", "realnvp-mnist"): {"num_scales": 2, "steps_per_scale": 1, "filters": 4},
    ("flow", "glow-mnist"): {"num_scales": 2, "steps_per_scale": 1, "filters": 4},
    ("diffusion", "mlp2d"): {"timesteps": 10, "hidden_units": 8, "num_layers": 1},
    # One U-Net level (its middle block still attends): tracing dominates.
    ("diffusion", "unet-mnist"): {
        "base_filters": 8, "channel_multipliers": (1,), "attention_resolutions": (),
        "timesteps": 10, "sampling_steps": 4,
    },
    ("diffusion", "unet-mnist-cond"): {
        "base_filters": 8, "channel_multipliers": (1,), "attention_resolutions": (),
        "timesteps": 10, "sampling_steps": 4,
    },
    ("diffusion", "unet-32"): {
        "base_filters": 8, "channel_multipliers": (1,), "attention_resolutions": (),
        "num_res_blocks": 1, "timesteps": 10, "sampling_steps": 4,
    },
    # The middle block cross-attends; a one-block text encoder of width 8.
    ("diffusion", "unet-mnist-text"): {
        "base_filters": 8, "channel_multipliers": (1,), "attention_resolutions": (),
        "timesteps": 10, "sampling_steps": 4, "text_width": 8, "text_layers": 1,
    },
}

#: (family, preset) -> the data shape to build for, for presets that take one.
TINY_SHAPES = {
    ("vae", "reference"): (4, 4, 1),
    ("vae", "conv"): (8, 8, 1),
    ("gan", "reference"): (4, 4, 1),
    ("gan", "dcgan"): (8, 8, 1),
    ("flow", "mnist"): (4, 4, 1),
    ("flow", "maf-tabular"): (5,),
    ("flow", "iaf-tabular"): (5,),
    ("flow", "realnvp-mnist"): (4, 4, 1),
    ("flow", "glow-mnist"): (4, 4, 1),
    ("diffusion", "unet-mnist"): (4, 4, 1),
    ("diffusion", "unet-mnist-cond"): (4, 4, 1),
    ("diffusion", "unet-mnist-text"): (4, 4, 1),
    ("diffusion", "unet-32"): (4, 4, 3),
}

#: Batch size of the two training steps (a multiple of any PacGAN pack).
BATCH_SIZE = 8
NUM_EXAMPLES = 2 * BATCH_SIZE
#: Elements of a synthetic text or sequence stream.
STREAM_LENGTH = 1024


def all_presets():
    """Every registered `(family, preset)`, in registry order."""
    return [
        (family, preset)
        for family, names in presets.list_presets().items()
        for preset in names
    ]


def build_tiny(family, preset):
    """Builds a preset with its `TINY` overrides and `TINY_SHAPES` data shape.

    Returns:
        A compiled model, seeded (seed 0).
    """
    _, spec = presets.get_preset(family, preset)
    overrides = {"seed": 0, **TINY.get((family, preset), {})}
    shape = TINY_SHAPES.get((family, preset))
    if shape is not None:
        assert spec.adapts_to_data_shape, (
            f"TINY_SHAPES has a shape for {family}/{preset}, whose preset takes "
            "no data shape (Preset.adapts_to_data_shape is False)."
        )
        overrides["data_shape"] = shape
    return presets.build(family, preset, **overrides)


def synthetic_dataset(model, seed=0):
    """A few examples of `model.data_kind`, unbatched, as `data.load` gives them.

    Images are `data_shape` floats on the 256 levels of [0, 1], points are
    standard normal vectors, text is a stream of byte ids of English-like
    text, sequences a stream of a noisy sine. Class-conditional models
    (`uses_labels`) get `(example, label)` pairs.
    """
    rng = np.random.default_rng(seed)
    kind = model.data_kind
    if kind == "image":
        levels = rng.integers(0, 256, (NUM_EXAMPLES, *model.data_shape))
        examples = (levels / 255.0).astype("float32")
    elif kind == "points":
        examples = rng.standard_normal((NUM_EXAMPLES, *model.data_shape)).astype("float32")
    elif kind == "text":
        words = ["the", "value", "of", "a", "list", "returns", "def", "x", "(", ")", "\n"]
        text = " ".join(rng.choice(words, STREAM_LENGTH)).encode("utf-8")
        examples = np.frombuffer(text[:STREAM_LENGTH], np.uint8).astype("int32")
    elif kind == "sequence":
        t = np.arange(STREAM_LENGTH, dtype="float32")
        examples = (np.sin(0.3 * t) + 0.1 * rng.standard_normal(t.shape)).astype("float32")
    else:
        raise AssertionError(f"Unknown data_kind {kind!r} of {type(model).__name__}.")
    if model.uses_labels:
        labels = (np.arange(len(examples)) % model.num_classes).astype("int32")
        return tf.data.Dataset.from_tensor_slices((examples, labels))
    return tf.data.Dataset.from_tensor_slices(examples)


def python_options(inputs):
    """Signature inputs as `sample` keyword options: 0-d arrays to scalars."""
    return {
        name: value.item() if np.ndim(value) == 0 else value
        for name, value in inputs.items()
    }


class TensorFlowOnlyProcess:
    """A child process that imports only TensorFlow and calls signatures.

    One per test module: TensorFlow's import (~5 s) happens once, and each
    SavedModel is loaded there once.

    Args:
        workdir: A directory for the request and reply files.
        timeout: Seconds to wait for one answer.
    """

    def __init__(self, workdir, timeout=300):
        self.workdir = workdir
        self.timeout = timeout
        self._count = 0
        self._stderr = open(os.path.join(workdir, "stderr.txt"), "w+")
        runner = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tf_only_runner.py")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        env.pop("PYTHONPATH", None)
        self._process = subprocess.Popen(
            [sys.executable, runner],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=workdir,
            env=env,
        )

    def _stderr_tail(self):
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()[-3000:]

    def _request(self, request):
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        ready, _, _ = select.select([self._process.stdout], [], [], self.timeout)
        line = self._process.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(
                "The TensorFlow-only process gave no answer "
                f"(exit code {self._process.poll()}):\n{self._stderr_tail()}"
            )
        reply = json.loads(line)
        assert not reply["foreign"], (
            f"The TensorFlow-only process imported {reply['foreign']}: a SavedModel "
            "must load and run without this package."
        )
        if not reply["ok"]:
            raise RuntimeError(f"The TensorFlow-only process failed:\n{reply['error']}")
        return reply

    def signatures(self, path):
        """The signature names of the SavedModel at `path`."""
        return self._request({"path": os.path.abspath(path), "signature": None})["signatures"]

    def call(self, path, signature, inputs):
        """Calls `signature` of the SavedModel at `path` with numpy `inputs`.

        Returns:
            `{output name: numpy array}`; string outputs are object arrays
            of `bytes`.
        """
        self._count += 1
        stem = os.path.join(self.workdir, f"request-{self._count}")
        arrays = {name: np.asarray(value) for name, value in inputs.items()}
        np.savez(stem + "-in.npz", **arrays)
        reply = self._request({
            "path": os.path.abspath(path),
            "signature": signature,
            "inputs": stem + "-in.npz",
            "outputs": stem + "-out.npz",
        })
        with np.load(stem + "-out.npz", allow_pickle=False) as data:
            outputs = {name: data[name] for name in data.files}
        for name, items in reply["strings"].items():
            values = np.empty(len(items), dtype=object)
            values[:] = [bytes.fromhex(item) for item in items]
            outputs[name] = values.reshape(reply["string_shapes"][name])
        return outputs

    def close(self):
        if self._process.poll() is None:
            self._process.stdin.close()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._stderr.close()

