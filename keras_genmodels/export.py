"""Exports for TF Serving and TF Lite, and their verification.

`export_savedmodel` writes `BASE/NAME/VERSION/`, the layout TensorFlow Serving
watches, through a temporary directory renamed into place so a server never
sees a half-written version. `export_tflite` converts the model's static-shape
`tflite_endpoints()` into one `.tflite` file with one signature each.

`verify_savedmodel` loads an export in a fresh Python process that imports only
TensorFlow and calls every signature; `compare_tflite` runs the `.tflite` file
in `ai_edge_litert` and checks it against the SavedModel signature of the same
name, within the model's `tflite_tolerance` (absolute, 1e-4 by default).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf


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


def next_version(model_dir):
    """Returns the next integer version under a TF Serving model directory.

    Args:
        model_dir: `BASE/NAME`; it may not exist yet.

    Returns:
        1 plus the largest all-digit entry of `model_dir`, or 1 if none.
    """
    if not os.path.isdir(model_dir):
        return 1
    versions = [int(e) for e in os.listdir(model_dir) if e.isdigit()]
    return max(versions, default=0) + 1


def export_savedmodel(model, base_dir, name=None, version=None):
    """Writes the model's serving signatures as `base_dir/name/version/`.

    Args:
        model: A `GenerativeModel`.
        base_dir: The directory TF Serving's `--model_base_path` points above.
        name: Model name (the directory under `base_dir`); defaults to
            `model.name`.
        version: Positive int; defaults to the next free integer version. An
            existing version is never overwritten.

    Returns:
        The path of the written version directory.

    Example:

    ```python
    path = export_savedmodel(vae, "savedmodels", name="vae")
    # savedmodels/vae/1, servable by tensorflow_model_server.
    ```
    """
    name = name or model.name
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(
            "`name` may contain only letters, digits, '_', '.' and '-'. "
            f"Received: name={name!r}"
        )
    model_dir = os.path.join(base_dir, name)
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
    os.makedirs(model_dir, exist_ok=True)
    # TF Serving ignores entries that are not all digits, so the temporary
    # directory next to the versions is invisible to it until the rename.
    tmp = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=model_dir)
    try:
        _write_archive(
            model,
            _checked_endpoints(model, model.serving_endpoints(), "serving_endpoints"),
            tmp,
        )
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
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
        outputs[signature + "/" + name] = value.numpy()
np.savez(outputs_file, **outputs)
foreign = sorted(m for m in sys.modules if m.split(".")[0] == "keras_genmodels")
print(json.dumps({"repeatable": repeatable, "foreign": foreign}))
"""


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
            `model.signature_examples()`. Signatures absent from the
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
            outputs = _unflatten({k: data[k] for k in data.files})
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


def predict_request(model_name, signature_name, inputs):
    """Builds the TF Serving gRPC `PredictRequest` for a signature call.

    Needs the `tensorflow-serving-api` package (the `test` extra).

    Args:
        model_name: The served model's name (the directory under the base).
        signature_name: Signature to call, e.g. `"sample"`.
        inputs: `{argument: array}`.

    Returns:
        A `tensorflow_serving.apis.predict_pb2.PredictRequest`.
    """
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(np.asarray(value)))
    return request


def run_predict_request(savedmodel, request):
    """Answers a `PredictRequest` the way TF Serving does, in process.

    Args:
        savedmodel: A path or an object returned by `tf.saved_model.load`.
        request: A `PredictRequest`.

    Returns:
        `{output name: numpy array}`.
    """
    if isinstance(savedmodel, (str, os.PathLike)):
        savedmodel = tf.saved_model.load(str(savedmodel))
    fn = savedmodel.signatures[request.model_spec.signature_name]
    arguments = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
    outputs = fn(**{k: tf.constant(v) for k, v in arguments.items()})
    return {k: v.numpy() for k, v in outputs.items()}


def rest_request_body(signature_name, inputs):
    """Returns the JSON body of a TF Serving REST `:predict` call.

    Args:
        signature_name: Signature to call.
        inputs: `{argument: array or scalar}`.

    Returns:
        A JSON string, `{"signature_name": ..., "inputs": {...}}`.
    """
    def to_json(value):
        value = np.asarray(value)
        if value.dtype.kind in "SO":
            value = np.vectorize(
                lambda s: s.decode() if isinstance(s, bytes) else s, otypes=[object]
            )(value)
        return value.tolist()

    return json.dumps(
        {
            "signature_name": signature_name,
            "inputs": {k: to_json(v) for k, v in inputs.items()},
        }
    )


def export_and_verify(model, base_dir, name=None, version=None, tflite=True):
    """Exports a model for TF Serving and TF Lite and verifies both.

    The SavedModel is loaded in a fresh TensorFlow-only process and every
    signature is called twice with `model.signature_examples()`; the `.tflite`
    file (written as `base_dir/name/name-vVERSION.tflite`, outside the version
    directories TF Serving scans) is compared with the SavedModel within
    `model.tflite_tolerance`.

    Args:
        model: A `GenerativeModel`.
        base_dir: TF Serving base directory.
        name: Model name; defaults to `model.name`.
        version: Version number; defaults to the next free one.
        tflite: Whether to write and check the `.tflite` file too.

    Returns:
        A dict with `savedmodel` (path), `signatures` (names), `tflite`
        (path or `None`) and `tflite_max_abs_diff` (`{signature: float}`).
    """
    path = export_savedmodel(model, base_dir, name=name, version=version)
    outputs = verify_savedmodel(path, model.signature_examples())
    report = {
        "savedmodel": path,
        "signatures": sorted(outputs),
        "tflite": None,
        "tflite_max_abs_diff": {},
    }
    if tflite:
        model_dir, version_name = os.path.split(path)
        lite_path = os.path.join(
            model_dir, f"{os.path.basename(model_dir)}-v{version_name}.tflite"
        )
        export_tflite(model, lite_path)
        report["tflite"] = lite_path
        report["tflite_max_abs_diff"] = compare_tflite(
            lite_path, path, model.signature_examples(batch_size=1),
            atol=model.tflite_tolerance,
        )
    return report
