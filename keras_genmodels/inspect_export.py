"""`keras-genmodels inspect`: what an export holds, without loading it.

Reads a SavedModel version's `saved_model.pb`, warm-up requests and model
card (`keras_genmodels.serving_protos`, `.serving_warmup`, `.model_card`), or
a `.tflite` file's signatures (`ai_edge_litert`), and describes its
signatures, their limits and a ready TF Serving REST request body for each.
Nothing here imports TensorFlow, Keras or the model code, so inspecting an
export is quick and runs no code from it.

Example:

```python
info = describe("savedmodels/vae")  # The newest version.
info["signatures"]["sample"]["rest"]["body"]
# {"signature_name": "sample", "inputs": {"num_samples": 3, "seed": [1, 2]}}
print(format_text(info))
```
"""

import base64
import json
import os
import re

import numpy as np

from keras_genmodels import model_card, serving_warmup

#: TF Serving's default REST port.
REST_PORT = 8501
#: Printed values longer than this are cut (`--json` gives them whole).
_MAX_VALUE_CHARS = 400
# `NAME-vN.tflite`, or a quantised `NAME-vN.float16.tflite` beside it.
_TFLITE_NAME = re.compile(
    r"(?P<name>.+)-v(?P<version>\d+)(?:\.(?P<quantization>[a-z0-9_]+))?\.tflite"
)


def _versions(model_dir):
    if not os.path.isdir(model_dir):
        return []
    return sorted(
        int(entry) for entry in os.listdir(model_dir)
        if entry.isdigit() and os.path.isdir(os.path.join(model_dir, entry))
    )


def resolve(path):
    """What `path` names: a SavedModel version, a model directory or a `.tflite`.

    Args:
        path: A version directory (holding `saved_model.pb`), a model
            directory (`BASE/NAME`: its newest version is taken) or a
            `.tflite` file.

    Returns:
        `("savedmodel", version directory)` or `("tflite", file)`.
    """
    if os.path.isfile(path):
        if path.endswith(".tflite"):
            return "tflite", path
        raise ValueError(f"{path} is a file but not a .tflite file.")
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return "savedmodel", path
    versions = _versions(path)
    if versions:
        return "savedmodel", os.path.join(path, str(versions[-1]))
    raise ValueError(
        f"{path} is not a SavedModel version directory (no saved_model.pb), a "
        "model directory with numbered versions, or a .tflite file."
    )


def json_value(value):
    """A request value as TF Serving's REST API takes it: lists of numbers,
    UTF-8 strings, and `{"b64": ...}` for bytes that are not UTF-8."""
    array = np.asarray(value)
    if array.dtype.kind in "SO":
        def text(item):
            item = item if isinstance(item, bytes) else str(item).encode("utf-8")
            try:
                return item.decode("utf-8")
            except UnicodeDecodeError:
                return {"b64": base64.b64encode(item).decode("ascii")}

        return np.vectorize(text, otypes=[object])(array).tolist()
    return array.tolist()


def rest_request(model_name, version, signature, inputs):
    """The URL path and JSON body of a TF Serving REST `:predict` call."""
    where = f"/v1/models/{model_name}" + (f"/versions/{version}" if version else "")
    return {
        "url": f"{where}:predict",
        "body": {
            "signature_name": signature,
            "inputs": {name: json_value(value) for name, value in sorted(inputs.items())},
        },
    }


def _describe_savedmodel(version_dir):
    version_dir = os.path.abspath(version_dir)
    model_dir, version_name = os.path.split(version_dir)
    version = int(version_name) if version_name.isdigit() else None
    model_name = os.path.basename(model_dir) if version is not None else version_name
    card = model_card.read_card(version_dir)
    examples = serving_warmup.read_warmup_requests(version_dir)
    card_signatures = (card or {}).get("signatures", {})
    signatures = {}
    for name, spec in serving_warmup.read_signatures(version_dir).items():
        entry = {"inputs": spec["inputs"], "outputs": spec["outputs"]}
        from_card = card_signatures.get(name, {})
        if "alias_of" in from_card:
            entry["alias_of"] = from_card["alias_of"]
        entry["limits"] = from_card.get("limits")
        entry["rest"] = (
            rest_request(model_name, version, name, examples[name])
            if name in examples else None
        )
        signatures[name] = entry
    info = {
        "kind": "savedmodel",
        "path": version_dir,
        "model_name": model_name,
        "version": version,
        "versions": _versions(model_dir) if version is not None else [],
        "warmup_requests": sorted(examples),
        "card": card,
        "signatures": signatures,
        "tflite": None,
    }
    lite = (card or {}).get("tflite")
    if lite:
        path = os.path.join(model_dir, lite["file"])
        info["tflite"] = {
            "path": path,
            "exists": os.path.isfile(path),
            "sha256_matches_card": (
                model_card.sha256(path) == lite["sha256"] if os.path.isfile(path) else None
            ),
        }
    return info


def _describe_tflite(path):
    path = os.path.abspath(path)
    info = {
        "kind": "tflite",
        "path": path,
        "bytes": os.path.getsize(path),
        "sha256": model_card.sha256(path),
        "signatures": model_card.tflite_details(path),
        "card": None,
        "card_path": None,
        "sha256_matches_card": None,
    }
    match = _TFLITE_NAME.fullmatch(os.path.basename(path))
    if match:
        version_dir = os.path.join(os.path.dirname(path), match["version"])
        card = model_card.read_card(version_dir)
        entry = (card or {}).get("tflite") or {}
        if match["quantization"]:
            entry = (entry.get("quantized") or {}).get(match["quantization"]) or {}
        if entry.get("file") == match.group(0):
            info["card"] = card
            info["card_path"] = os.path.join(version_dir, model_card.CARD_FILE)
            info["sha256_matches_card"] = entry.get("sha256") == info["sha256"]
    return info


def describe(path):
    """Describes an export (see `resolve` for what `path` may name).

    Returns:
        A JSON-safe dict: `kind` (`"savedmodel"` or `"tflite"`), `path`, the
        model `card` (or `None`) and `signatures`
        (`{name: {"inputs", "outputs", "limits", "rest"}}` for a SavedModel,
        where `rest` holds the `url` path and `body` of a REST request built
        from the warm-up examples; `{name: {"inputs", "outputs"}}` for a
        `.tflite` file), and for a SavedModel its `model_name`, `version`,
        `versions`, `warmup_requests` and the `tflite` file beside it.
    """
    kind, target = resolve(path)
    return _describe_savedmodel(target) if kind == "savedmodel" else _describe_tflite(target)


# ----------------------------------------------------------------------
# Text.
# ----------------------------------------------------------------------
def _short(value):
    text = value if isinstance(value, str) else json.dumps(value)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[:_MAX_VALUE_CHARS] + f"... ({len(text):,} characters; --json shows all)"
    return text


def _tree(value, indent):
    lines = []
    for key, item in value.items():
        if isinstance(item, dict) and item and key != "config":
            lines.append(f"{indent}{key}:")
            lines.extend(_tree(item, indent + "  "))
        else:
            lines.append(f"{indent}{key}: {_short(item)}")
    return lines


def _tensors(specs, indent):
    return [
        f"{indent}{name}: {spec['dtype']} {spec['shape'] if spec['shape'] is not None else '?'}"
        for name, spec in specs.items()
    ]


def _signature_lines(name, entry):
    title = f"Signature {name}" + (
        f" (alias of {entry['alias_of']})" if entry.get("alias_of") else ""
    )
    lines = [title + ":", "  inputs:", *_tensors(entry["inputs"], "    ")]
    lines += ["  outputs:", *_tensors(entry["outputs"], "    ")]
    if "limits" in entry:
        limits = entry["limits"]
        text = ", ".join(f"{k} <= {v}" for k, v in limits.items()) if limits else "none"
        lines.append(f"  limits: {text if limits is not None else 'unknown (no model card)'}")
    if "rest" in entry:
        rest = entry["rest"]
        if rest is None:
            lines.append("  REST request: no warm-up example for this signature")
        else:
            lines.append(f"  REST request: POST http://HOST:{REST_PORT}{rest['url']}")
            lines.append("    " + json.dumps(rest["body"]))
    return lines


def format_text(info):
    """The human-readable report `keras-genmodels inspect` prints."""
    lines = []
    if info["kind"] == "savedmodel":
        where = f"model {info['model_name']}"
        if info["version"] is not None:
            others = ", ".join(str(v) for v in info["versions"])
            where += f", version {info['version']} (versions here: {others})"
        lines += [f"SavedModel {info['path']}", f"  {where}"]
        lines.append(
            f"  warm-up requests: {', '.join(info['warmup_requests']) or 'none'}"
        )
        lite = info["tflite"]
        if lite:
            state = (
                "missing" if not lite["exists"] else
                "SHA-256 matches the card" if lite["sha256_matches_card"] else
                "SHA-256 DIFFERS from the card"
            )
            lines.append(f"  TF Lite file: {lite['path']} ({state})")
    else:
        lines += [f"TF Lite file {info['path']}",
                  f"  {info['bytes']:,} bytes, SHA-256 {info['sha256']}"]
        if info["card"] is not None:
            state = "matches" if info["sha256_matches_card"] else "DIFFERS from"
            lines.append(f"  model card: {info['card_path']} (SHA-256 {state} the card)")
    card = info["card"]
    lines.append("")
    if card is None:
        lines.append("No model card.")
    else:
        lines.append("Model card:")
        shown = {k: v for k, v in card.items() if k != "signatures"}
        lines += _tree(shown, "  ")
    for name, entry in info["signatures"].items():
        lines.append("")
        lines += _signature_lines(name, entry)
    return "\n".join(lines)
