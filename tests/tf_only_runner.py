"""Calls SavedModel signatures in a process that imports only TensorFlow.

Run as a script (`python tests/tf_only_runner.py`) by
`tests.contract_support.TensorFlowOnlyProcess`, never imported. It reads one
JSON request per line on stdin:

    {"path": SAVEDMODEL, "signature": NAME, "inputs": IN.npz, "outputs": OUT.npz}

loads the SavedModel (kept until another path comes), calls the signature with the arrays of
IN.npz, writes the numeric outputs to OUT.npz and answers one JSON line:

    {"ok": true, "signatures": [...], "strings": {output: [hex, ...]},
     "string_shapes": {output: shape}, "foreign": [modules]}

String outputs travel as the hex of their bytes (npz would need pickles for
them, and fixed-width bytes drop trailing NULs). `foreign` lists the modules
of `keras_genmodels` (or of these tests) that are imported: there must be none.
A failed call answers `{"ok": false, "error": traceback}` and the loop goes on.
"""

import json
import os
import sys
import traceback

# The protocol owns the original stdout; anything printed goes to stderr.
_protocol = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

_loaded = {}


def _foreign_modules():
    return sorted(
        name for name in sys.modules if name.split(".")[0] in ("keras_genmodels", "tests")
    )


def _answer(request):
    path = request["path"]
    if path not in _loaded:
        _loaded.clear()  # The tests ask about one SavedModel at a time.
        _loaded[path] = tf.saved_model.load(path)
    loaded = _loaded[path]
    signatures = sorted(loaded.signatures)
    reply = {"ok": True, "signatures": signatures, "strings": {}, "string_shapes": {}}
    if request.get("signature") is not None:
        with np.load(request["inputs"], allow_pickle=False) as data:
            inputs = {name: tf.constant(data[name]) for name in data.files}
        outputs = loaded.signatures[request["signature"]](**inputs)
        numeric = {}
        for name, tensor in outputs.items():
            value = tensor.numpy()
            if tensor.dtype == tf.string:
                flat = np.asarray(value, dtype=object).reshape(-1)
                reply["strings"][name] = [bytes(item).hex() for item in flat]
                reply["string_shapes"][name] = list(np.shape(value))
            else:
                numeric[name] = value
        np.savez(request["outputs"], **numeric)
    reply["foreign"] = _foreign_modules()
    return reply


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = _answer(json.loads(line))
        except Exception:  # noqa: BLE001 - reported to the test, which fails.
            reply = {"ok": False, "error": traceback.format_exc(), "foreign": _foreign_modules()}
        _protocol.write(json.dumps(reply) + "\n")
        _protocol.flush()


if __name__ == "__main__":
    main()
