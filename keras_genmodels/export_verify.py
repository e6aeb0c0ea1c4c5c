"""Verification of exports: the SavedModel in a fresh process, TF Lite against it.

`verify_savedmodel` loads an export in a fresh Python process that imports only
TensorFlow and calls every signature twice; `compare_tflite` runs the
`.tflite` file in `ai_edge_litert` (`run_tflite`) and checks it against the
SavedModel signature of the same name within an absolute tolerance.
`keras_genmodels.export.export_and_verify` runs both before a version is
published; `keras_genmodels.export` re-exports these names.
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from keras_genmodels._startup import quiet_native_logs

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
