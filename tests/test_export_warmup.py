"""TF Serving warm-up requests: the hand-written protobuf encoding and the file
every export writes, read back with `tensorflow-serving-api` and run by a
process that imports only TensorFlow."""

import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from keras_genmodels import serving_protos, serving_warmup
from tests import export_fixtures
from tests.export_fixtures import FAMILIES

# The exports are shared with test_model_card and test_inspect: one worker.
pytestmark = pytest.mark.xdist_group("export_fixtures")


def _records(path):
    file = os.path.join(path, serving_warmup.WARMUP_FILE)
    return [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(file)
    ]


def test_prediction_log_encoding_is_what_the_serving_protos_parse():
    tensors = {
        "prompt": tf.make_tensor_proto(np.array(b"def ")).SerializeToString(),
        "seed": tf.make_tensor_proto(np.array([1, -2], np.int32)).SerializeToString(),
    }
    data = serving_protos.prediction_log("lm", "generate", tensors)
    log = prediction_log_pb2.PredictionLog.FromString(data)
    assert log.WhichOneof("log_type") == "predict_log"
    request = log.predict_log.request
    assert request.model_spec.name == "lm"
    assert request.model_spec.signature_name == "generate"
    assert sorted(request.inputs) == ["prompt", "seed"]
    assert tf.make_ndarray(request.inputs["prompt"]) == b"def "
    np.testing.assert_array_equal(tf.make_ndarray(request.inputs["seed"]), [1, -2])
    # And back, from what the real protos serialize.
    name, signature, back = serving_protos.parse_prediction_log(log.SerializeToString())
    assert (name, signature, sorted(back)) == ("lm", "generate", ["prompt", "seed"])
    assert back["seed"] == request.inputs["seed"].SerializeToString()


@pytest.mark.parametrize("value", [
    np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5,
    np.float32(0.7),
    np.array([[1, -2, 3]], np.int32),
    np.int32(-5),
    np.array([2**40, -1], np.int64),
    np.array([True, False, True]),
    np.array([0.5, -1.25], np.float16),
    np.array([[0, 255]], np.uint8),
    np.zeros((0, 2), np.float32),
    np.array(b"def "),
    np.array([b"a\x00", b"\xff\xfe", b""], dtype=object),
])
def test_tensor_protos_decode_as_tensorflow_does(value):
    proto = tf.make_tensor_proto(value)
    decoded = serving_protos.tensor_to_numpy(proto.SerializeToString())
    expected = tf.make_ndarray(proto)
    assert decoded.shape == expected.shape
    assert decoded.dtype == expected.dtype
    assert decoded.tolist() == expected.tolist()


def test_a_short_value_list_fills_the_shape_with_its_last_value():
    proto = tf.make_tensor_proto(7, dtype=tf.int32, shape=[2, 2])
    assert len(proto.int_val) == 1  # TensorFlow's compact form.
    decoded = serving_protos.tensor_to_numpy(proto.SerializeToString())
    np.testing.assert_array_equal(decoded, tf.make_ndarray(proto))


def test_dtype_names_are_tensorflows():
    for number, name in serving_protos.DTYPE_NAMES.items():
        assert tf.as_dtype(number).name == name


def test_tfrecords_read_as_tensorflow_writes_them(tmp_path):
    path = str(tmp_path / "records")
    records = [b"", b"one", bytes(range(256)) * 40]
    with tf.io.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)
    assert serving_protos.read_tfrecords(path) == records
    data = bytearray(open(path, "rb").read())
    data[-6] ^= 1  # Inside the last record.
    (tmp_path / "damaged").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="record 2 fails its CRC"):
        serving_protos.read_tfrecords(str(tmp_path / "damaged"))
    (tmp_path / "cut").write_bytes(bytes(data[:-3]))
    with pytest.raises(ValueError, match="truncated"):
        serving_protos.read_tfrecords(str(tmp_path / "cut"))


_SIGNATURES = {
    "sample": {
        "inputs": {
            "num_samples": {"dtype": "int32", "shape": []},
            "seed": {"dtype": "int32", "shape": [2]},
        },
        "outputs": {"samples": {"dtype": "float32", "shape": [-1, 2]}},
    },
    "serving_default": {
        "inputs": {
            "num_samples": {"dtype": "int32", "shape": []},
            "seed": {"dtype": "int32", "shape": [2]},
        },
        "outputs": {"samples": {"dtype": "float32", "shape": [-1, 2]}},
    },
}


def test_examples_are_checked_against_their_signature():
    good = {"sample": {"num_samples": np.int64(2), "seed": [1, 2]}}
    requests = serving_warmup.warmup_requests(_SIGNATURES, good)
    assert [name for name, _ in requests] == ["sample", "serving_default"]
    assert requests[1][1]["seed"].dtype == np.int32  # Cast, as declared.
    with pytest.raises(ValueError, match=(
        r"signature 'sample' must give its inputs \['num_samples', 'seed'\]\. "
        r"Received: \['n', 'seed'\]"
    )):
        serving_warmup.warmup_requests(_SIGNATURES, {"sample": {"n": 2, "seed": [1, 2]}})
    with pytest.raises(ValueError, match=r"`seed` of signature 'sample' does not fit in int32"):
        serving_warmup.warmup_requests(
            _SIGNATURES, {"sample": {"num_samples": 2, "seed": [1, 2**40]}}
        )
    with pytest.raises(ValueError, match=r"must be int32\. Received: dtype=float64"):
        serving_warmup.warmup_requests(
            _SIGNATURES, {"sample": {"num_samples": 1.5, "seed": [1, 2]}}
        )


@pytest.mark.parametrize("family", FAMILIES)
def test_one_warmup_request_per_signature_runs_without_this_package(family):
    exported = export_fixtures.export_of(family)
    path = exported.path
    signatures = export_fixtures.tensorflow_signatures(path)
    records = _records(path)
    names = [log.predict_log.request.model_spec.signature_name for log in records]
    assert sorted(names) == sorted(signatures)  # One each, serving_default too.
    process = export_fixtures.tf_only_process()
    outputs = {}
    for log in records:
        request = log.predict_log.request
        assert request.model_spec.name == os.path.basename(os.path.dirname(path))
        spec = signatures[request.model_spec.signature_name]
        assert {k: tf.as_dtype(v.dtype).name for k, v in request.inputs.items()} == {
            k: v["dtype"] for k, v in spec["inputs"].items()
        }
        inputs = {
            k: export_fixtures.npz_safe(tf.make_ndarray(v)) for k, v in request.inputs.items()
        }
        result = process.call(path, request.model_spec.signature_name, inputs)
        assert sorted(result) == sorted(spec["outputs"])
        for name, value in result.items():
            declared = spec["outputs"][name]["shape"]
            assert len(value.shape) == len(declared), (name, value.shape, declared)
            assert all(d in (-1, v) for d, v in zip(declared, value.shape)), name
            if value.dtype.kind == "f":
                assert np.all(np.isfinite(value)), name
        outputs[request.model_spec.signature_name] = result
    # serving_default aliases a signature: same request, same (seeded) outputs.
    alias = serving_warmup.alias_of(serving_warmup.read_signatures(path), "serving_default")
    assert alias in outputs
    for name, value in outputs["serving_default"].items():
        np.testing.assert_array_equal(value, outputs[alias][name])
    assert serving_warmup.read_warmup_requests(path).keys() == set(names)
