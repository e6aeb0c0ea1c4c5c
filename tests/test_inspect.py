"""`keras-genmodels inspect`: an export's card, signatures and REST requests,
read without loading the model (nor importing Keras or TensorFlow)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from keras_genmodels import cli, model_card, serving_warmup
from tests import export_fixtures
from tests.export_fixtures import FAMILIES

# The exports are shared with test_export_warmup and test_model_card: one worker.
pytestmark = pytest.mark.xdist_group("export_fixtures")

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: What `inspect_export` may import of this package.
_ALLOWED = {
    "keras_genmodels", "keras_genmodels.inspect_export", "keras_genmodels.model_card",
    "keras_genmodels.serving_warmup", "keras_genmodels.serving_protos",
    "keras_genmodels.files", "keras_genmodels._startup",
}


def _model_dir(family):
    return os.path.dirname(export_fixtures.export_of(family).path)


@pytest.fixture(scope="module")
def described():
    """Every family's model directory and `.tflite` file, described by one
    process that imports `inspect_export` alone (tests/inspect_runner.py)."""
    paths = []
    for family in FAMILIES:
        paths += [_model_dir(family), export_fixtures.export_of(family).report["tflite"]]
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [sys.executable, os.path.join(_ROOT, "tests", "inspect_runner.py"), *paths],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _warmup_inputs(path):
    """`{signature: {input: array}}` of the warm-up file, read by the real protos."""
    file = os.path.join(path, serving_warmup.WARMUP_FILE)
    requests = {}
    for record in tf.data.TFRecordDataset(file):
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        requests[request.model_spec.signature_name] = {
            k: tf.make_ndarray(v) for k, v in request.inputs.items()
        }
    return requests


def _from_json(value, dtype):
    if dtype == "string":
        array = np.array(value, dtype=object)
        return np.vectorize(lambda s: s.encode("utf-8"), otypes=[object])(array)
    return np.array(value, dtype=dtype)


def test_inspection_imports_neither_keras_nor_tensorflow(described):
    assert set(described["modules"]) <= _ALLOWED, described["modules"]


@pytest.mark.parametrize("family", FAMILIES)
def test_a_model_directory_is_described_by_its_newest_version(family, described):
    exported = export_fixtures.export_of(family)
    info = described["infos"][_model_dir(family)]
    assert info["path"] == os.path.abspath(exported.path)
    assert (info["kind"], info["version"], info["versions"]) == ("savedmodel", 1, [1])
    assert info["card"] == model_card.read_card(exported.path)
    assert info["tflite"] == {
        "path": os.path.abspath(exported.report["tflite"]), "exists": True,
        "sha256_matches_card": True,
    }
    served = export_fixtures.tensorflow_signatures(exported.path)
    assert sorted(info["signatures"]) == sorted(served) == info["warmup_requests"]
    for name, entry in info["signatures"].items():
        assert entry["inputs"] == served[name]["inputs"], name
        assert entry["outputs"] == served[name]["outputs"], name
        assert entry["limits"] == exported.report["limits"][entry.get("alias_of", name)]


@pytest.mark.parametrize("family", FAMILIES)
def test_rest_bodies_carry_the_warmup_requests(family, described):
    exported = export_fixtures.export_of(family)
    info = described["infos"][_model_dir(family)]
    name = os.path.basename(_model_dir(family))
    warmup = _warmup_inputs(exported.path)
    for signature, entry in info["signatures"].items():
        rest = entry["rest"]
        assert rest["url"] == f"/v1/models/{name}/versions/1:predict"
        assert rest["body"]["signature_name"] == signature
        inputs = rest["body"]["inputs"]
        assert sorted(inputs) == sorted(warmup[signature])
        for key, value in inputs.items():
            array = _from_json(value, entry["inputs"][key]["dtype"])
            expected = warmup[signature][key]
            assert array.shape == expected.shape, (signature, key)
            assert array.tolist() == expected.tolist(), (signature, key)  # Exactly.


@pytest.mark.parametrize("family", FAMILIES)
def test_a_tflite_file_is_described_with_its_card(family, described):
    from ai_edge_litert.interpreter import Interpreter

    exported = export_fixtures.export_of(family)
    path = exported.report["tflite"]
    info = described["infos"][path]
    assert info["kind"] == "tflite"
    assert info["card"] == model_card.read_card(exported.path)
    assert info["sha256_matches_card"] is True
    interpreter = Interpreter(model_path=path)
    assert sorted(info["signatures"]) == sorted(interpreter.get_signature_list())
    for name, entry in info["signatures"].items():
        runner = interpreter.get_signature_runner(name)
        for side, details in (("inputs", runner.get_input_details()),
                              ("outputs", runner.get_output_details())):
            assert entry[side] == {
                k: {"dtype": np.dtype(d["dtype"]).name, "shape": d["shape"].tolist()}
                for k, d in details.items()
            }
    text = described["texts"][path]
    assert "(SHA-256 matches the card)" in text


def test_the_text_names_what_an_operator_needs(described):
    info = described["infos"][_model_dir("vae")]
    text = described["texts"][_model_dir("vae")]
    assert "dataset: mnist-5k" in text and "preset: reference" in text
    assert "Signature sample:\n  inputs:\n    num_samples: int32 []\n    seed: int32 [2]" in text
    assert "  limits: num_samples <= " in text
    body = json.dumps(info["signatures"]["sample"]["rest"]["body"])
    assert (
        "  REST request: POST http://HOST:8501/v1/models/vae/versions/1:predict\n    "
        + body
    ) in text
    assert "Signature serving_default (alias of " in text


def test_the_command_prints_text_and_json(capsys):
    model_dir = _model_dir("flow")
    assert cli.main(["inspect", model_dir]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"SavedModel {os.path.abspath(model_dir)}{os.sep}1\n")
    assert "Signature log_prob:" in text
    assert cli.main(["inspect", model_dir, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["card"]["family"] == "flow" and "sample" in info["signatures"]


def test_a_savedmodel_from_elsewhere_is_described_from_its_graph(tmp_path):
    from keras_genmodels import inspect_export

    module = tf.Module()
    module.scale = tf.Variable(2.0)
    module.double = tf.function(
        lambda x: {"y": module.scale * x},
        input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")],
    )
    path = str(tmp_path / "plain")
    tf.saved_model.save(module, path, signatures={"double": module.double})
    info = inspect_export.describe(path)
    assert (info["model_name"], info["version"], info["card"]) == ("plain", None, None)
    assert info["signatures"] == {"double": {
        "inputs": {"x": {"dtype": "float32", "shape": [-1, 3]}},
        "outputs": {"y": {"dtype": "float32", "shape": [-1, 3]}},
        "limits": None,
        "rest": None,
    }}
    text = inspect_export.format_text(info)
    assert "No model card." in text and "limits: unknown (no model card)" in text
    assert "REST request: no warm-up example for this signature" in text


def test_paths_that_are_not_exports_get_one_line_errors(tmp_path, capsys):
    assert cli.main(["inspect", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "is not a SavedModel version directory (no saved_model.pb)" in error
    (tmp_path / "model.keras").write_bytes(b"")
    assert cli.main(["inspect", str(tmp_path / "model.keras")]) == 2
    assert "is a file but not a .tflite file" in capsys.readouterr().err


def test_the_command_does_not_import_keras():
    script = (
        "import sys; sys.argv = ['keras-genmodels', 'inspect', sys.argv[1]]; "
        "from keras_genmodels import cli; status = cli.main(sys.argv[1:]); "
        "print('keras' in sys.modules, status)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, _model_dir("vae")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.stdout.strip().splitlines()[-1] == "False 0", proc.stderr[-2000:]
