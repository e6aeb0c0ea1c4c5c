"""The model card of an export: `assets.extra/model_card.json`.

Every SavedModel version carries a JSON card saying what the model is, what
it was trained on, how good it is and how to call it, readable by an operator
without this package (`keras-genmodels inspect`, or any JSON reader). TF
Serving ignores `assets.extra/` apart from its warm-up file.

Fields (docs/deploying.md describes each):

- `card_version`, `name`, `version`, `exported_at` (UTC, ISO 8601);
- `family`, `preset`, `class` (registered Keras name), `data_kind`,
  `conditioning`, `config` (`model.get_config()`, JSON-safe), `parameters`;
- `training`: `dataset` (the data set actually used), `requested_dataset`,
  `batch_size`, `seed`, `overrides`, `epochs`, `steps` (optimizer steps,
  from the model), `seconds`, `final_losses`, `run_directory` — `None` where
  unknown (a bare model exported from Python);
- `evaluation`: the run's held-out figures (`metrics.json`'s `test`), or
  `None`; `evaluation_error` when the run's evaluation failed;
- `signatures`: per signature its `inputs` and `outputs` (`dtype`, `shape`
  with -1 for a free dimension) and `limits`, and `alias_of` for Keras'
  `serving_default` (the signature it repeats); `limit_meanings`;
- `tflite`: `file`, `sha256`, `bytes`, `signatures`, `max_abs_diff`,
  `tolerance` of the `.tflite` file beside the version, or `None`; and
  `quantized` (`{quantization: quantized_entry}`) when a quantised file was
  written beside it;
- `versions`: `python`, `tensorflow`, `keras`, `keras_genmodels`.
"""

import csv
import datetime
import hashlib
import json
import math
import os
import platform

import numpy as np

from keras_genmodels import files

#: Where the card lives inside a version directory.
CARD_FILE = os.path.join("assets.extra", "model_card.json")
#: Bumped when a field changes meaning or goes away.
CARD_VERSION = 1
#: Card keys only the export writes; `card=` may not set them.
EXPORT_KEYS = (
    "card_version", "name", "version", "exported_at", "class", "config",
    "parameters", "signatures", "limit_meanings", "tflite", "versions",
)
#: Package of each family -> the family name the command uses.
_FAMILY_PACKAGES = {
    "vae": "vae", "gan": "gan", "autoregressive": "ar", "flow": "flow",
    "diffusion": "diffusion",
}
_TRAINING_KEYS = (
    "dataset", "requested_dataset", "batch_size", "seed", "overrides", "epochs",
    "steps", "seconds", "final_losses", "run_directory",
)


def json_safe(value):
    """`value` with tuples as lists, numpy scalars as Python numbers, NaN and
    infinities as `None`, and anything else JSON cannot hold as its `repr`."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        value = value.item()  # numpy scalars and 0-d arrays.
    if hasattr(value, "tolist"):
        return json_safe(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return repr(value)


def check_card(card):
    """Validates the `card=` argument of an export.

    Args:
        card: `None` or a dict of card fields (e.g. `preset`, `training`,
            `evaluation`) merged into the card; keys the export itself
            writes (`EXPORT_KEYS`) are refused.

    Returns:
        A JSON-safe copy (`{}` for `None`).
    """
    if card is None:
        return {}
    if not isinstance(card, dict):
        raise ValueError(f"`card` must be a dict of card fields. Received: card={card!r}")
    owned = sorted(set(card) & set(EXPORT_KEYS))
    if owned:
        raise ValueError(
            f"`card` may not set {owned}: the export writes them. Received keys: "
            f"{sorted(card)}"
        )
    return json_safe(card)


def _family(model):
    parts = type(model).__module__.split(".")
    if len(parts) > 1 and parts[0] == "keras_genmodels":
        return _FAMILY_PACKAGES.get(parts[1])
    return None


def _optimizer_steps(model):
    optimizer = getattr(model, "optimizer", None)
    iterations = getattr(optimizer, "iterations", None)
    return None if iterations is None else int(iterations.numpy())


def sha256(path):
    """The hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tflite_details(path):
    """`{signature: {"inputs": {...}, "outputs": {...}}}` of a `.tflite` file."""
    from ai_edge_litert.interpreter import Interpreter

    from keras_genmodels._startup import quiet_native_logs

    with quiet_native_logs():
        interpreter = Interpreter(model_path=path)
    details = {}
    for signature in sorted(interpreter.get_signature_list()):
        runner = interpreter.get_signature_runner(signature)
        details[signature] = {
            side: {
                name: {"dtype": np.dtype(detail["dtype"]).name, "shape": detail["shape"].tolist()}
                for name, detail in sorted(getter().items())
            }
            for side, getter in (
                ("inputs", runner.get_input_details), ("outputs", runner.get_output_details)
            )
        }
    return details


def tflite_entry(path, published_name, max_abs_diff, tolerance):
    """The card's `tflite` field for a written `.tflite` file.

    Args:
        path: Where the file is now (it may still be a staging name).
        published_name: The file name it is published under.
        max_abs_diff: `{signature: float}` from `compare_tflite`.
        tolerance: The absolute tolerance it was checked with.
    """
    return {
        "file": published_name,
        "sha256": sha256(path),
        "bytes": os.path.getsize(path),
        "signatures": tflite_details(path),
        "max_abs_diff": json_safe(max_abs_diff),
        "tolerance": tolerance,
    }


def quantized_entry(path, published_name, quantization, rel_diff, rtol):
    """The card's `tflite.quantized[quantization]` for a quantised `.tflite` file.

    Args:
        path: Where the file is now (it may still be a staging name).
        published_name: The file name it is published under.
        quantization: `"float16"` or `"dynamic_int8"`.
        rel_diff: `{signature: float}` from `export.compare_quantized`: the
            largest difference from the float file, relative to the output's
            scale.
        rtol: The relative tolerance it was checked with.
    """
    return {
        "file": published_name,
        "quantization": quantization,
        "sha256": sha256(path),
        "bytes": os.path.getsize(path),
        "max_rel_diff_from_float": json_safe(rel_diff),
        "rtol": rtol,
    }


def _signatures(signatures, by_signature):
    """Each signature's inputs, outputs and limits; an alias (`serving_default`)
    names the signature it aliases and has its limits."""
    from keras_genmodels.serving_warmup import alias_of

    result = {}
    for signature, spec in sorted(signatures.items()):
        entry = {"inputs": spec["inputs"], "outputs": spec["outputs"]}
        source = signature
        if signature not in by_signature:
            source = alias_of(signatures, signature) or signature
            if source != signature:
                entry["alias_of"] = source
        entry["limits"] = by_signature.get(source, {})
        result[signature] = entry
    return result


def build_card(model, signatures, name, version, limits=None, tflite=None, card=None):
    """The model card of one export.

    Args:
        model: The exported `GenerativeModel`.
        signatures: `serving_warmup.read_signatures(version_dir)`.
        name: The export's model name; `version`: its version number.
        limits: The `limits` given to the export.
        tflite: The `tflite_entry`, or `None` when no `.tflite` was written.
        card: Fields merged in (`check_card`); dict fields such as
            `training` are merged key by key.

    Returns:
        A JSON-safe dict.
    """
    import keras
    import tensorflow as tf

    import keras_genmodels
    from keras_genmodels.serving_limits import LIMIT_MEANINGS

    by_signature = model.serving_limits.by_signature(limits)
    result = {
        "card_version": CARD_VERSION,
        "name": name,
        "version": int(version),
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "family": _family(model),
        "preset": None,
        "class": keras.saving.get_registered_name(type(model)),
        "data_kind": getattr(model, "data_kind", None),
        "conditioning": list(getattr(model, "conditioning", ())),
        "config": json_safe(model.get_config()),
        "parameters": int(model.count_params()),
        "training": {key: None for key in _TRAINING_KEYS},
        "evaluation": None,
        "signatures": _signatures(signatures, by_signature),
        "limit_meanings": {
            key: LIMIT_MEANINGS.get(key, key)
            for key in sorted({k for v in by_signature.values() for k in v})
        },
        "tflite": tflite,
        "versions": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "keras_genmodels": keras_genmodels.__version__,
        },
    }
    result["training"]["steps"] = _optimizer_steps(model)
    for key, value in check_card(card).items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = {**result[key], **value}
        else:
            result[key] = value
    return json_safe(result)


def write_card(version_dir, card):
    """Writes `card` as `assets.extra/model_card.json`; returns its path."""
    path = os.path.join(version_dir, CARD_FILE)
    files.write_json(path, card)
    return path


def read_card(version_dir):
    """The model card of a version directory, or `None` if it has none."""
    path = os.path.join(version_dir, CARD_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _history_epochs(path):
    if not os.path.isfile(path):
        return None
    with open(path, newline="", encoding="utf-8") as f:
        return sum(1 for _ in csv.DictReader(f)) or None


def run_information(run_path):
    """What a run directory of `keras-genmodels train` knows, as card fields.

    Reads `run.json` (the preset, the data set actually used, batch size,
    seed, overrides), `history.csv` (the epochs trained) and `metrics.json`
    (training seconds, final losses, held-out figures).

    Args:
        run_path: The run directory.

    Returns:
        A dict for the `card` argument of `export_and_verify`.

    Example:

    ```python
    export_and_verify(model, "savedmodels", card=run_information("runs/vae"))
    ```
    """
    from keras_genmodels.run_dir import HISTORY_FILE, RunDirectory

    run_dir = RunDirectory(run_path)
    run = run_dir.read_run()
    metrics = run_dir.read_metrics()
    epochs = _history_epochs(run_dir.file(HISTORY_FILE))
    info = {
        "family": run.get("family"),
        "preset": run.get("preset"),
        "training": {
            "dataset": metrics.get("dataset", run.get("dataset")),
            "requested_dataset": run.get("requested_dataset"),
            "batch_size": run.get("batch_size"),
            "seed": run.get("seed"),
            "overrides": run.get("overrides"),
            "epochs": epochs or metrics.get("epochs") or run.get("epochs"),
            "seconds": metrics.get("train_seconds"),
            "final_losses": metrics.get("final"),
            "run_directory": os.path.abspath(run_path),
        },
        "evaluation": metrics.get("test"),
    }
    if "test_error" in metrics:
        info["evaluation_error"] = metrics["test_error"]
    return info
