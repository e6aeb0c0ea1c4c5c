"""Export layout, versioning and the TF Serving request helpers."""

import json
import os

import numpy as np
import pytest

import keras_genmodels
from keras_genmodels import export


@pytest.fixture(scope="module")
def tiny_vae():
    return keras_genmodels.build("vae", "reference", hidden_units=8, seed=0)


def test_versions_count_up_and_never_overwrite(tiny_vae, tmp_path):
    base = str(tmp_path)
    first = export.export_savedmodel(tiny_vae, base, name="digits")
    second = export.export_savedmodel(tiny_vae, base, name="digits")
    assert first == os.path.join(base, "digits", "1")
    assert second == os.path.join(base, "digits", "2")
    assert os.path.isfile(os.path.join(second, "saved_model.pb"))
    with pytest.raises(FileExistsError, match="Version 1 already exists"):
        export.export_savedmodel(tiny_vae, base, name="digits", version=1)
    # Only the two version directories: no temporary directory left behind.
    assert sorted(os.listdir(os.path.join(base, "digits"))) == ["1", "2"]
    assert export.export_savedmodel(tiny_vae, base, name="digits", version=7).endswith("7")
    assert export.next_version(os.path.join(base, "digits")) == 8


def test_default_name_and_bad_arguments(tiny_vae, tmp_path):
    assert export.export_savedmodel(tiny_vae, str(tmp_path)).endswith(
        os.path.join("vae", "1")
    )
    with pytest.raises(ValueError, match="name"):
        export.export_savedmodel(tiny_vae, str(tmp_path), name="a/b")
    with pytest.raises(ValueError, match="version"):
        export.export_savedmodel(tiny_vae, str(tmp_path), version=0)


def test_failed_export_leaves_nothing(tiny_vae, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "_write_archive", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export.export_savedmodel(tiny_vae, str(tmp_path), name="m")
    assert os.listdir(tmp_path / "m") == []


def test_predict_request_matches_the_signature(tiny_vae, tmp_path):
    path = export.export_savedmodel(tiny_vae, str(tmp_path))
    inputs = {"num_samples": np.int32(3), "seed": np.array([4, 5], np.int32)}
    request = export.predict_request("vae", "sample", inputs)
    assert request.model_spec.name == "vae"
    assert request.model_spec.signature_name == "sample"
    outputs = export.run_predict_request(path, request)
    np.testing.assert_allclose(
        outputs["samples"], tiny_vae.sample(3, seed=[4, 5]), atol=1e-6
    )


def test_rest_body_is_tf_serving_json():
    body = json.loads(
        export.rest_request_body(
            "sample", {"num_samples": np.int32(2), "seed": np.array([1, 2])}
        )
    )
    assert body == {"signature_name": "sample", "inputs": {"num_samples": 2, "seed": [1, 2]}}
    text = json.loads(export.rest_request_body("generate", {"prompt": np.array(b"def ")}))
    assert text["inputs"]["prompt"] == "def "


def test_verification_rejects_missing_example_inputs(tiny_vae, tmp_path):
    path = export.export_savedmodel(tiny_vae, str(tmp_path))
    examples = tiny_vae.signature_examples()
    del examples["encode"]
    with pytest.raises(RuntimeError, match="no example inputs for signatures: encode"):
        export.verify_savedmodel(path, examples)


def test_tflite_signature_inputs_are_checked(tiny_vae, tmp_path):
    path = export.export_tflite(tiny_vae, str(tmp_path / "vae.tflite"), batch_size=2)
    assert export.tflite_signatures(path) == ["decode"]
    out = export.run_tflite(path, "decode", {"latents": np.zeros((2, 2))})
    np.testing.assert_allclose(out["images"], tiny_vae.decode(np.zeros((2, 2))), atol=1e-5)
    with pytest.raises(ValueError, match="takes \\['latents'\\]"):
        export.run_tflite(path, "decode", {"z": np.zeros((2, 2))})
