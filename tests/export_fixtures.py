"""One tiny export per family, shared by the warm-up, model card and inspect tests.

`export_of(family)` builds the family's tiny model and exports it with
`export_and_verify(tflite=True)` once per process (the three test modules
share the xdist group `export_fixtures`, so one worker makes them), into a
temporary base directory removed at exit. The VAE is trained for two steps
into a run directory and exported by `keras-genmodels export RUN`, so its
model card carries what the run knows; the others are bare models exported
from Python. `tf_only_process()` is one shared `TensorFlowOnlyProcess`.
"""

import atexit
import contextlib
import dataclasses
import io
import json
import os
import shutil
import tempfile

import keras
import numpy as np

from keras_genmodels import cli, export, presets
from keras_genmodels.run_dir import RunDirectory
from tests import contract_support

#: family -> (preset, overrides on top of `contract_support.TINY`): a
#: class-conditional GAN (int labels) and a text model (string prompts).
FAMILIES = {
    "vae": ("reference", {}),
    "gan": ("dcgan", {"num_classes": 3}),
    "ar": ("transformer-small", {}),
    "flow": ("mlp2d", {}),
    "diffusion": ("mlp2d", {}),
}
#: The VAE run's `run.json` and `metrics.json` (as `keras-genmodels train`
#: writes them; the figures are made up, the card must carry them as they are).
RUN = {
    "family": "vae", "preset": "reference", "requested_dataset": "mnist",
    "dataset": "mnist-5k", "batch_size": contract_support.BATCH_SIZE, "seed": 0,
    "overrides": {"latent_dim": 2, "hidden_units": 8}, "epochs": 1,
}
METRICS = {
    "family": "vae", "preset": "reference", "requested_dataset": "mnist",
    "dataset": "mnist-5k", "parameters": 0, "epochs": 1, "train_seconds": 1.25,
    "final": {"loss": 11.5}, "test": {"negative_elbo": 101.5, "iwae_nll": 99.25},
}
#: Optimizer steps of the VAE run: one epoch of NUM_EXAMPLES in BATCH_SIZE batches.
RUN_STEPS = contract_support.NUM_EXAMPLES // contract_support.BATCH_SIZE

_BASE = None
_EXPORTS = {}
_PROCESS = []


@dataclasses.dataclass
class Export:
    """A tiny model of one family and the report of its export."""

    family: str
    model: keras.Model
    report: dict
    run_dir: str = None

    @property
    def path(self):
        """The version directory."""
        return self.report["savedmodel"]


def base_dir():
    """The temporary directory every export of this process goes under."""
    global _BASE
    if _BASE is None:
        _BASE = tempfile.mkdtemp(prefix="export-fixtures-")
        atexit.register(shutil.rmtree, _BASE, True)
    return _BASE


def build(family):
    """The family's tiny model (`contract_support.TINY` plus `FAMILIES`)."""
    preset, extra = FAMILIES[family]
    overrides = {"seed": 0, **contract_support.TINY.get((family, preset), {}), **extra}
    shape = contract_support.TINY_SHAPES.get((family, preset))
    if shape is not None:
        overrides["data_shape"] = shape
    return presets.build(family, preset, **overrides)


def _exported_run(model):
    """Trains `model` for `RUN_STEPS` steps into a run directory; exports it by command."""
    run_dir = os.path.join(base_dir(), "runs", model.default_export_name)
    os.makedirs(run_dir)
    batches = model.prepare_dataset(
        contract_support.synthetic_dataset(model), contract_support.BATCH_SIZE
    )
    history = os.path.join(run_dir, "history.csv")
    model.fit(batches, epochs=1, verbose=0, callbacks=[keras.callbacks.CSVLogger(history)])
    run = RunDirectory(run_dir)
    run.save_model(model)
    run.write_run(RUN)
    run.write_metrics({**METRICS, "parameters": int(model.count_params())})
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = cli.main(["export", run_dir, "--base-dir", base_dir(), "--tflite"])
    assert status == 0, out.getvalue()
    return run_dir, json.loads(out.getvalue())


def export_of(family):
    """The family's `Export`, made on first use."""
    if family not in _EXPORTS:
        model = build(family)
        if family == "vae":
            run_dir, report = _exported_run(model)
        else:
            run_dir, report = None, export.export_and_verify(model, base_dir(), tflite=True)
        _EXPORTS[family] = Export(family, model, report, run_dir)
    return _EXPORTS[family]


def tf_only_process():
    """One `TensorFlowOnlyProcess` for every test module of this process."""
    if not _PROCESS:
        workdir = tempfile.mkdtemp(prefix="tf-only-", dir=base_dir())
        _PROCESS.append(contract_support.TensorFlowOnlyProcess(workdir))
        atexit.register(_PROCESS[0].close)
    return _PROCESS[0]


def npz_safe(value):
    """An input array that `np.savez` stores without pickles (strings as bytes)."""
    array = np.asarray(value)
    if array.dtype.kind == "O":
        return np.array(array.tolist(), dtype=bytes).reshape(array.shape)
    return array


def tensorflow_signatures(path):
    """`{signature: {"inputs": {name: {"dtype", "shape"}}, "outputs": ...}}` as
    TensorFlow's own protos read `saved_model.pb` (internal signatures left out)."""
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    (graph,) = [g for g in saved.meta_graphs if "serve" in g.meta_info_def.tags]

    def tensors(infos):
        return {
            name: {
                "dtype": tf.as_dtype(info.dtype).name,
                "shape": [d.size for d in info.tensor_shape.dim],
            }
            for name, info in sorted(infos.items())
        }

    return {
        name: {"inputs": tensors(sig.inputs), "outputs": tensors(sig.outputs)}
        for name, sig in sorted(graph.signature_def.items())
        if not name.startswith("__")
    }
