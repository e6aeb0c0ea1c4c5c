"""TF Serving requests: gRPC `PredictRequest`s, REST bodies, answered in process.

No TF Serving binary runs where the tests do: `run_predict_request` answers
a request from the loaded SavedModel's signature the way the server does
(the request's tensors go straight into the signature, unchecked).
"""

import json
import os

import numpy as np
import tensorflow as tf


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
