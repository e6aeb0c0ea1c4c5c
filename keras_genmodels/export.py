"""Exports for TF Serving and TF Lite, and their verification.

`export_savedmodel` writes `BASE/NAME/VERSION/`, the layout TensorFlow Serving
watches, through a staging directory renamed into place so a server never
sees a half-written version (`keras_genmodels.export_layout`). Its signatures
check every input in the graph against limits fixed at export time
(`keras_genmodels.serving_limits`). `export_tflite` converts the model's
static-shape `tflite_endpoints()` into one `.tflite` file with one signature
each.

`verify_savedmodel` loads an export in a fresh Python process that imports only
TensorFlow and calls every signature; `compare_tflite` runs the `.tflite` file
in `ai_edge_litert` and checks it against the SavedModel signature of the same
name, within the model's `tflite_tolerance` (absolute, 1e-4 by default).
`export_and_verify` does both before the version is published. The TF
Serving request helpers live in `keras_genmodels.serving_requests`.
"""

import json
import os
import subprocess
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_genmodels import export_layout
from keras_genmodels._startup import quiet_native_logs
from keras_genmodels.export_layout import next_version
from keras_genmodels.serving_limits import resolve_limits
from keras_genmodels.serving_requests import (
    predict_request,
    rest_request_body,
    run_predict_request,
)

__all__ = [
    "compare_tflite",
    "export_and_verify",
    "export_savedmodel",
    "export_tflite",
    "next_version",
    "predict_request",
    "rest_request_body",
    "run_predict_request",
    "run_tflite",
    "tflite_signatures",
    "verify_savedmodel",
]


def _checked_endpoints(model, endpoints, method):
    if not endpoints:
        raise ValueError(f"{type(model).__name__}.{method}() returned no endpoints.")
    return endpoints


def _write_archive(model, endpoints, path):
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, fn in endpoints.items():
        archive.add_endpoint(name, fn)
    archive.write_out(path, verbose=False)


def _plan(model, base_dir, name, version, limits):
    """Checks the arguments of an export; returns its paths and endpoints."""
    if name is None:
        name = getattr(model, "default_export_name", None) or model.name
    model_dir = os.path.join(base_dir, export_layout.check_name(name))
    if version is None:
        version = next_version(model_dir)
    elif isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(
            f"`version` must be a positive integer. Received: version={version!r}"
        )
    target = os.path.join(model_dir, str(version))
    if os.path.exists(target):
        raise FileExistsError(
            f"Version {version} already exists at {target}; exports never "
            "overwrite a version. Pass another `version` or omit it."
        )
    endpoints = model.export_endpoints(resolve_limits(model, limits))
    return target, _checked_endpoints(model, endpoints, "export_endpoints")


def _write_staged(model, endpoints, target):
    """Writes the SavedModel into a staging directory beside `target`."""
    model_dir, version = os.path.split(target)
    staging = export_layout.stage(model_dir, version)
    try:
        _write_archive(model, endpoints, staging)
    except BaseException:
        export_layout.discard(staging)
        raise
    return staging


def export_savedmodel(model, base_dir, name=None, version=None, limits=None):
    """Writes the model's serving signatures as `base_dir/name/version/`.

    The version is written into a staging directory and renamed into place
    when complete (see `keras_genmodels.export_layout`); its directory gets
    the mode of the umask, so a server running as another user can read it.

    Args:
        model: A `GenerativeModel`.
        base_dir: The directory TF Serving's `--model_base_path` points above.
        name: Model name (the directory under `base_dir`): letters, digits,
            `_`, `.` and `-`, not starting with `.` or `-`; defaults to
            `model.default_export_name` (e.g. `vae`, `ar-transformer`).
        version: Positive int; defaults to the next free integer version. An
            existing version is never overwritten.
        limits: Optional `{limit name: positive int}` replacing the model's
            default serving limits (`model.serving_limits`), e.g.
            `{"num_samples": 64}`; see `keras_genmodels.serving_limits`.

    Returns:
        The path of the written version directory.

    Example:

    ```python
    path = export_savedmodel(vae, "savedmodels", limits={"num_samples": 64})
    # savedmodels/vae/1, servable by tensorflow_model_server; a request for
    # more than 64 samples fails with INVALID_ARGUMENT.
    ```
    """
    target, endpoints = _plan(model, base_dir, name, version, limits)
    staging = _write_staged(model, endpoints, target)
    try:
        export_layout.publish(staging, target)
    except BaseException:
        export_layout.discard(staging)
        raise
    return target


def export_tflite(model, path, batch_size=1):
    """Converts the model's `tflite_endpoints(batch_size)` to one `.tflite`.

    Only TF Lite built-in ops are allowed, so the file runs in the plain
    `ai_edge_litert` interpreter and on phones without the Flex delegate.

    Args:
        model: A `GenerativeModel`.
        path: Output file path (`.tflite`).
        batch_size: The static batch dimension of every signature.

    Returns:
        `path`.
    """
    endpoints = _checked_endpoints(
        model, model.tflite_endpoints(batch_size=batch_size), "tflite_endpoints"
    )
    with tempfile.TemporaryDirectory() as tmp:
        _write_archive(model, endpoints, tmp)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            tmp, signature_keys=list(endpoints)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        flatbuffer = converter.convert()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(flatbuffer)
    return path


#: Suffix of a string output's key in the verifier's `.npz` (hex-encoded).
_HEX = "#hex"

_VERIFY_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
path, inputs_file, outputs_file, require_all = sys.argv[1:5]
loaded = tf.saved_model.load(path)
inputs = np.load(inputs_file)
requests = {}
for key in inputs.files:
    signature, argument = key.split("/", 1)
    requests.setdefault(signature, {})[argument] = inputs[key]
missing = sorted(set(loaded.signatures) - set(requests) - {"serving_default"})
if missing and require_all == "1":
    sys.exit("no example inputs for signatures: " + ", ".join(missing))
outputs, repeatable = {}, {}
for signature, arguments in requests.items():
    fn = loaded.signatures[signature]
    first = fn(**{k: tf.constant(v) for k, v in arguments.items()})
    again = fn(**{k: tf.constant(v) for k, v in arguments.items()})
    repeatable[signature] = all(
        np.array_equal(first[name].numpy(), again[name].numpy()) for name in first
    )
    for name, value in first.items():
        array = np.array(value.numpy(), dtype=object if value.dtype == tf.string else None)
        if value.dtype == tf.string:  # Hex, as 'S' arrays drop trailing NULs.
            hexed = np.array([b.hex() for b in array.reshape(-1)], dtype=str)
            outputs[signature + "/" + name + "#hex"] = hexed.reshape(array.shape)
        else:
            outputs[signature + "/" + name] = array
np.savez(outputs_file, **outputs)
foreign = sorted(m for m in sys.modules if m.split(".")[0] == "keras_genmodels")
print(json.dumps({"repeatable": repeatable, "foreign": foreign}))
"""


def _output_key(key):
    return key[: -len(_HEX)] if key.endswith(_HEX) else key


def _output_array(key, array):
    """Decodes the verifier's hex-encoded string outputs back to bytes."""
    if not key.endswith(_HEX):
        return array
    decoded = [bytes.fromhex(h) for h in array.reshape(-1)]
    return np.array(decoded, dtype=object).reshape(array.shape)


def _flatten(requests):
    return {
        f"{signature}/{argument}": np.asarray(value)
        for signature, arguments in requests.items()
        for argument, value in arguments.items()
    }


def _unflatten(arrays):
    nested = {}
    for key, value in arrays.items():
        signature, name = key.split("/", 1)
        nested.setdefault(signature, {})[name] = value
    return nested


def verify_savedmodel(path, requests, require_all=True, timeout=300):
    """Calls every signature of a SavedModel in a fresh TensorFlow-only process.

    The child process imports numpy and TensorFlow only and calls each
    signature twice; it fails if any signature lacks example inputs, gives
    different outputs for the same inputs (seeded sampling must be
    repeatable), or if `keras_genmodels` got imported.

    Args:
        path: The SavedModel directory (a version directory).
        requests: `{signature: {argument: array}}`, e.g. from
            `model.export_examples()`. Signatures absent from the
            SavedModel are skipped.
        require_all: Whether every signature of the SavedModel must have
            inputs in `requests` (and so be called).
        timeout: Seconds before the child process is killed.

    Returns:
        `{signature: {output name: numpy array}}`.
    """
    path = os.path.abspath(path)
    loaded_names = _signature_names(path)
    requests = {k: v for k, v in requests.items() if k in loaded_names}
    with tempfile.TemporaryDirectory() as tmp:
        inputs_file = os.path.join(tmp, "inputs.npz")
        outputs_file = os.path.join(tmp, "outputs.npz")
        np.savez(inputs_file, **_flatten(requests))
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        proc = subprocess.run(
            [
                sys.executable, "-c", _VERIFY_SCRIPT,
                path, inputs_file, outputs_file, "1" if require_all else "0",
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=tmp,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"Loading {path} in a fresh TensorFlow process failed:\n"
                + proc.stderr[-3000:]
            )
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        if report["foreign"]:
            raise RuntimeError(
                f"The SavedModel at {path} imported {report['foreign']} "
                "when loaded; endpoints must be pure TensorFlow."
            )
        with np.load(outputs_file) as data:
            outputs = _unflatten({_output_key(k): _output_array(k, data[k]) for k in data.files})
    not_repeatable = sorted(k for k, same in report["repeatable"].items() if not same)
    if not_repeatable:
        raise RuntimeError(
            f"Signatures {not_repeatable} of {path} gave different outputs for "
            "the same inputs; randomness must come from the `seed` input."
        )
    return outputs


def _signature_names(path):
    from tensorflow.python.tools import saved_model_utils

    meta_graph = saved_model_utils.get_meta_graph_def(path, "serve")
    return set(meta_graph.signature_def)


def run_tflite(path, signature, inputs):
    """Runs one signature of a `.tflite` file in `ai_edge_litert`.

    Args:
        path: The `.tflite` file.
        signature: Signature name.
        inputs: `{argument: array}`; arrays are cast to the expected dtypes.

    Returns:
        `{output name: numpy array}`.
    """
    from ai_edge_litert.interpreter import Interpreter

    with quiet_native_logs():
        interpreter = Interpreter(model_path=path)
        runner = interpreter.get_signature_runner(signature)
    details = runner.get_input_details()
    expected = set(details)
    if set(inputs) != expected:
        raise ValueError(
            f"Signature {signature!r} of {path} takes {sorted(expected)}. "
            f"Received: {sorted(inputs)}"
        )
    cast = {
        k: np.asarray(v).astype(details[k]["dtype"]) for k, v in inputs.items()
    }
    with quiet_native_logs():  # The delegate announces itself on the first call.
        return runner(**cast)


def tflite_signatures(path):
    """Returns the signature names of a `.tflite` file."""
    from ai_edge_litert.interpreter import Interpreter

    return sorted(Interpreter(model_path=path).get_signature_list())


def compare_tflite(tflite_path, savedmodel_path, requests, atol=1e-4):
    """Checks every TF Lite signature against the same-named SavedModel one.

    Args:
        tflite_path: The `.tflite` file.
        savedmodel_path: The SavedModel version directory.
        requests: `{signature: {argument: array}}` with static-batch inputs,
            e.g. `model.signature_examples(batch_size)`.
        atol: Largest absolute difference allowed.

    Returns:
        `{signature: largest absolute difference}`.
    """
    loaded = tf.saved_model.load(savedmodel_path)
    differences = {}
    for signature in tflite_signatures(tflite_path):
        if signature not in loaded.signatures:
            raise ValueError(
                f"TF Lite signature {signature!r} has no SavedModel twin in "
                f"{savedmodel_path}."
            )
        inputs = requests[signature]
        lite = run_tflite(tflite_path, signature, inputs)
        fn = loaded.signatures[signature]
        reference = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        worst = 0.0
        for name, value in reference.items():
            if value.shape.num_elements():
                diff = np.max(np.abs(lite[name] - value.numpy()))
                worst = max(worst, float(diff))
        if worst > atol:
            raise AssertionError(
                f"TF Lite signature {signature!r} differs from the SavedModel "
                f"by {worst:.3g} > atol={atol:g}."
            )
        differences[signature] = worst
    return differences


def export_and_verify(model, base_dir, name=None, version=None, tflite=True, limits=None):
    """Exports a model for TF Serving and TF Lite and verifies both.

    The SavedModel is written into a staging directory, loaded in a fresh
    TensorFlow-only process and every signature is called twice with
    `model.export_examples()`; the `.tflite` file (written as
    `base_dir/name/name-vVERSION.tflite`, outside the version directories TF
    Serving scans) is compared with the SavedModel within
    `model.tflite_tolerance`. Only then is the version renamed into place: a
    version that fails verification is never served, and its files are
    removed.

    Args:
        model: A `GenerativeModel`.
        base_dir: TF Serving base directory.
        name: Model name; defaults to `model.default_export_name`.
        version: Version number; defaults to the next free one.
        tflite: Whether to write and check the `.tflite` file too.
        limits: Optional `{limit name: positive int}` replacing the model's
            default serving limits, as in `export_savedmodel`.

    Returns:
        A dict with `savedmodel` (path), `signatures` (names), `limits`
        (`{signature: {limit name: int}}`), `tflite` (path or `None`) and
        `tflite_max_abs_diff` (`{signature: float}`).

    Example:

    ```python
    report = export_and_verify(lm, "savedmodels", limits={"max_new_tokens": 256})
    report["savedmodel"]  # "savedmodels/ar-transformer/1"
    ```
    """
    target, endpoints = _plan(model, base_dir, name, version, limits)
    model_dir, version_name = os.path.split(target)
    lite_path = os.path.join(
        model_dir, f"{os.path.basename(model_dir)}-v{version_name}.tflite"
    )
    staging = _write_staged(model, endpoints, target)
    lite_staging = staging + ".tflite"
    published = []
    try:
        try:
            outputs = verify_savedmodel(staging, model.export_examples())
            differences = {}
            if tflite:
                export_tflite(model, lite_staging)
                differences = compare_tflite(
                    lite_staging, staging, model.signature_examples(batch_size=1),
                    atol=model.tflite_tolerance,
                )
        except Exception as error:
            raise RuntimeError(
                f"The export failed verification, so version {version_name} of "
                f"{model_dir} was not published and its files were removed: "
                f"{type(error).__name__}: {error}"
            ) from error
        if tflite:
            export_layout.publish(lite_staging, lite_path)
            published.append(lite_path)
        export_layout.publish(staging, target)
    except BaseException:
        for path in (staging, lite_staging, *published):
            export_layout.discard(path)
        raise
    return {
        "savedmodel": target,
        "signatures": sorted(outputs),
        "limits": model.serving_limits.by_signature(limits),
        "tflite": lite_path if tflite else None,
        "tflite_max_abs_diff": differences,
    }
