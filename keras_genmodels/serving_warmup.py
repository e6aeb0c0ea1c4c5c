"""TF Serving warm-up requests: `assets.extra/tf_serving_warmup_requests`.

TensorFlow Serving runs the requests of this file against a version right
after loading it and before serving it, so the first client request does not
pay for the graph's first run. The file is a TFRecord file of
`tensorflow.serving.PredictionLog` records, each a `predict_log.request`; an
export writes one record per signature of the version, from the model's
example inputs (`GenerativeModel.export_examples()`). `serving_default`,
Keras' alias of the first endpoint, gets the example of the signature it
aliases. A warm-up request that fails makes TF Serving refuse the version, so
every example is checked against its signature (input names, dtypes) here.

The records are encoded by `keras_genmodels.serving_protos`, so neither the
`tensorflow-serving-api` package nor, for reading, TensorFlow is needed.
"""

import os

import numpy as np

from keras_genmodels import serving_protos

#: Where the warm-up file lives inside a version directory (TF Serving's name).
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
#: Signatures TensorFlow adds for itself, never requested.
_INTERNAL_PREFIX = "__"


def read_signatures(savedmodel_dir):
    """The signatures of a SavedModel, read from its `saved_model.pb`.

    Args:
        savedmodel_dir: A SavedModel (version) directory.

    Returns:
        `{signature: {"inputs": ..., "outputs": ..., "method_name": ...}}`
        (see `serving_protos.signature_defs`), without TensorFlow's internal
        `__saved_model_init_op`.
    """
    path = os.path.join(savedmodel_dir, "saved_model.pb")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{savedmodel_dir} is not a SavedModel: it has no saved_model.pb.")
    with open(path, "rb") as f:
        signatures = serving_protos.signature_defs(f.read())
    return {k: v for k, v in signatures.items() if not k.startswith(_INTERNAL_PREFIX)}


def alias_of(signatures, name):
    """The signature `name` aliases: the other one with the same inputs and outputs.

    Args:
        signatures: As returned by `read_signatures`.
        name: A signature name, e.g. `"serving_default"`.

    Returns:
        The aliased signature's name, or `None` if none (or several) match.
    """
    spec = {k: signatures[name][k] for k in ("inputs", "outputs")}
    twins = [
        other for other, value in signatures.items()
        if other != name and {k: value[k] for k in ("inputs", "outputs")} == spec
    ]
    return twins[0] if len(twins) == 1 else None


def _checked_array(signature, name, value, dtype):
    """`value` as an array of the declared `dtype`, refusing any lossy cast."""
    array = np.asarray(value)
    where = f"Warm-up input `{name}` of signature {signature!r}"
    if dtype == "string":
        if array.dtype.kind == "U":
            array = np.vectorize(lambda s: s.encode("utf-8"), otypes=[object])(array)
        if array.dtype.kind not in "SO":
            raise ValueError(f"{where} must be bytes (tf.string). Received: dtype={array.dtype}")
        return array
    target = np.dtype(serving_protos.NUMPY_DTYPES.get(dtype, object))
    kinds = {"b": "b", "i": "iu", "u": "iu", "f": "iuf"}.get(target.kind, "")
    if array.dtype.kind not in kinds:
        raise ValueError(f"{where} must be {dtype}. Received: dtype={array.dtype}")
    cast = array.astype(target)
    if array.dtype.kind in "iu" and not np.array_equal(cast.astype(array.dtype), array):
        raise ValueError(
            f"{where} does not fit in {dtype}. Received: {array.tolist()!r}"
        )
    return cast


def warmup_requests(signatures, examples):
    """Pairs each signature with its example inputs, checked against it.

    Args:
        signatures: As returned by `read_signatures`.
        examples: `{signature: {input: array}}`; examples of signatures the
            SavedModel lacks are ignored, and signatures without an example
            (other than an alias such as `serving_default`) get no record.

    Returns:
        A list of `(signature, {input: numpy array of the declared dtype})`,
        sorted by signature.
    """
    requests = []
    for signature, spec in sorted(signatures.items()):
        source = signature if signature in examples else alias_of(signatures, signature)
        if source not in examples:
            continue
        inputs = examples[source]
        if set(inputs) != set(spec["inputs"]):
            raise ValueError(
                f"The example of signature {signature!r} must give its inputs "
                f"{sorted(spec['inputs'])}. Received: {sorted(inputs)}"
            )
        requests.append((signature, {
            name: _checked_array(signature, name, value, spec["inputs"][name]["dtype"])
            for name, value in inputs.items()
        }))
    return requests


def write_warmup_requests(savedmodel_dir, examples, model_name=""):
    """Writes `assets.extra/tf_serving_warmup_requests` into a SavedModel.

    Args:
        savedmodel_dir: The (staging) version directory, already written.
        examples: `{signature: {input: array}}`, e.g.
            `model.export_examples()`.
        model_name: The served model's name, put in each request's
            `model_spec.name`.

    Returns:
        The path of the written file.

    Example:

    ```python
    write_warmup_requests("savedmodels/vae/1", vae.export_examples(), "vae")
    read_warmup_requests("savedmodels/vae/1")["sample"]
    # {"num_samples": array(2, dtype=int32), "seed": array([0, 1], dtype=int32)}
    ```
    """
    import tensorflow as tf

    requests = warmup_requests(read_signatures(savedmodel_dir), examples)
    path = os.path.join(savedmodel_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for signature, inputs in requests:
            tensors = {
                name: tf.make_tensor_proto(array).SerializeToString()
                for name, array in inputs.items()
            }
            writer.write(serving_protos.prediction_log(model_name, signature, tensors))
    return path


def read_warmup_requests(savedmodel_dir):
    """Reads a version's warm-up requests back, without TensorFlow.

    Args:
        savedmodel_dir: A version directory.

    Returns:
        `{signature: {input: numpy array}}` (string inputs as object arrays
        of `bytes`), or `{}` when the version has no warm-up file.
    """
    path = os.path.join(savedmodel_dir, WARMUP_FILE)
    if not os.path.isfile(path):
        return {}
    requests = {}
    for record in serving_protos.read_tfrecords(path):
        _, signature, tensors = serving_protos.parse_prediction_log(record)
        requests[signature] = {
            name: serving_protos.tensor_to_numpy(tensor) for name, tensor in tensors.items()
        }
    return requests
