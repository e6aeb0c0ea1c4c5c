"""Reading an export: its path, its model card and its signatures.

`resolve_export` turns what a user names (a SavedModel version directory, a
model directory, a `.tflite` file) into one file to read; `read_model_card`
and `card_field` read `assets.extra/model_card.json` where it exists (never
required); `load_signatures` gives the signatures of either format behind
one interface: `names()`, `inputs(name)` and `outputs(name)` (`{argument:
(shape, dtype name)}`) and calling `signatures(name, **numpy inputs)` for
`{output: numpy array}`. A SavedModel is loaded with `tf.saved_model.load`
only (no Keras model is rebuilt), a `.tflite` file by one `ai_edge_litert`
interpreter. `keras_genmodels.evaluation.exported` builds on it.
"""

import json
import os
import re

import numpy as np
import tensorflow as tf

from keras_genmodels.model_card import CARD_FILE

SAVED_MODEL_FILE = "saved_model.pb"


class ExportError(ValueError):
    """An export that cannot be evaluated as asked; the message says why."""


def resolve_export(path):
    """The format and file of an export path.

    Args:
        path: A SavedModel version directory, a model directory holding
            numbered versions (the newest is taken) or a `.tflite` file.

    Returns:
        `("savedmodel", version directory)` or `("tflite", file)`.
    """
    path = os.fspath(path)
    if os.path.isfile(path) and path.endswith(".tflite"):
        return "tflite", path
    if os.path.isfile(os.path.join(path, SAVED_MODEL_FILE)):
        return "savedmodel", path
    if os.path.isdir(path):
        versions = [
            int(entry) for entry in os.listdir(path)
            if entry.isdigit() and os.path.isfile(os.path.join(path, entry, SAVED_MODEL_FILE))
        ]
        if versions:
            return "savedmodel", os.path.join(path, str(max(versions)))
    raise ExportError(
        f"{path} is not a SavedModel version directory (no {SAVED_MODEL_FILE}), a "
        "model directory with numbered versions or a .tflite file. Received: "
        f"export path {path!r}"
    )


def read_model_card(version_dir):
    """The export's `assets.extra/model_card.json` as a dict, or `None`."""
    path = os.path.join(version_dir, CARD_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            card = json.load(f)
    except (OSError, ValueError):
        from keras_genmodels import progress

        progress.warn(f"{path} is not readable JSON; evaluating without the model card.")
        return None
    return card if isinstance(card, dict) else None


def card_directory(export_format, path):
    """Where an export's model card lives: its version directory; for
    `BASE/NAME/NAME-vN.tflite` (as `export_and_verify` names it), version N's."""
    if export_format == "savedmodel":
        return path
    found = re.fullmatch(r".*-v(\d+)(?:\.[a-z0-9_]+)?\.tflite", os.path.basename(path))
    return os.path.join(os.path.dirname(path), found.group(1)) if found else path


def card_field(card, *keys):
    """`card[keys[0]][keys[1]]...` of a model card, or `None` where missing.

    Example:

    ```python
    card_field(card, "config", "sampling_steps")  # 50, or None
    card_field(card, "training", "dataset")  # "mnist-5k"
    ```
    """
    for key in keys:
        if not isinstance(card, dict):
            return None
        card = card.get(key)
    return card


class _SavedModelSignatures:
    """The signatures of a SavedModel loaded with `tf.saved_model.load`."""

    format = "savedmodel"

    def __init__(self, path):
        self._loaded = tf.saved_model.load(path)
        self._functions = {
            name: fn for name, fn in self._loaded.signatures.items() if name != "serving_default"
        }

    def names(self):
        return sorted(self._functions)

    def inputs(self, name):
        specs = self._functions[name].structured_input_signature[1]
        return {k: (tuple(s.shape.as_list()), s.dtype.name) for k, s in specs.items()}

    def outputs(self, name):
        specs = self._functions[name].structured_outputs
        return {k: (tuple(s.shape.as_list()), s.dtype.name) for k, s in specs.items()}

    def __call__(self, name, **inputs):
        specs = self._functions[name].structured_input_signature[1]
        tensors = {k: tf.constant(v, specs[k].dtype) for k, v in inputs.items()}
        return {k: v.numpy() for k, v in self._functions[name](**tensors).items()}


class _TFLiteSignatures:
    """The signatures of a `.tflite` file, run by one `ai_edge_litert` interpreter."""

    format = "tflite"

    def __init__(self, path):
        from ai_edge_litert.interpreter import Interpreter

        from keras_genmodels._startup import quiet_native_logs

        self._quiet = quiet_native_logs
        with quiet_native_logs():
            self._interpreter = Interpreter(model_path=path)
        self._runners = {}

    def _runner(self, name):
        if name not in self._runners:
            self._runners[name] = self._interpreter.get_signature_runner(name)
        return self._runners[name]

    def names(self):
        return sorted(self._interpreter.get_signature_list())

    @staticmethod
    def _details(details):
        return {
            k: (tuple(int(d) for d in v["shape"]), np.dtype(v["dtype"]).name)
            for k, v in details.items()
        }

    def inputs(self, name):
        return self._details(self._runner(name).get_input_details())

    def outputs(self, name):
        return self._details(self._runner(name).get_output_details())

    def __call__(self, name, **inputs):
        details = self._runner(name).get_input_details()
        cast = {k: np.asarray(v).astype(details[k]["dtype"]) for k, v in inputs.items()}
        with self._quiet():
            return self._runner(name)(**cast)


def load_signatures(export_format, path):
    """The signatures of an export (`resolve_export`'s format and path).

    Raises:
        ExportError: The file does not load; the message names it.
    """
    try:
        if export_format == "savedmodel":
            return _SavedModelSignatures(path)
        return _TFLiteSignatures(path)
    except Exception as error:  # A corrupt file: one line naming it.
        raise ExportError(
            f"Could not load the {export_format} export at {path}: "
            f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
        ) from error
