"""Export layout, versioning and the TF Serving request helpers."""

import json
import os
import stat
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import keras_genmodels
from keras_genmodels import export, export_layout


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


@pytest.mark.parametrize("name", [".", "..", ".hidden", ".tmp-1", "-x", "a/b", ""])
def test_names_that_escape_or_hide_are_refused(tiny_vae, tmp_path, name):
    base = tmp_path / "base"
    with pytest.raises(ValueError, match="name"):
        export.export_savedmodel(tiny_vae, str(base), name=name)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_version_directories_follow_the_umask(tiny_vae, tmp_path, umask):
    old = os.umask(umask)
    try:
        path = export.export_savedmodel(tiny_vae, str(tmp_path), name="m")
    finally:
        os.umask(old)
    # Not mkdtemp's 0o700: a TF Serving process of another user can read it.
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o777 & ~umask
    assert stat.S_IMODE(os.stat(os.path.join(path, "saved_model.pb")).st_mode) == (
        0o666 & ~umask
    )


def test_stale_staging_entries_are_removed_by_the_next_export(tiny_vae, tmp_path):
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # A process that is gone, as after a SIGKILLed export.
    host = export_layout._host()
    killed = model_dir / f".tmp-1-{child.pid}-{host}-abc123"
    killed_lite = model_dir / f".tmp-1-{child.pid}-{host}-abc123.tflite"
    running = model_dir / f".tmp-2-{os.getpid()}-{host}-def456"
    old_style = model_dir / ".tmp-3-x1y2z3"
    recent_old_style = model_dir / ".tmp-4-q7r8s9"
    for path in (killed, running, old_style, recent_old_style):
        path.mkdir()
        (path / "saved_model.pb").write_bytes(b"partial")
    killed_lite.write_bytes(b"partial")
    day_ago = time.time() - export_layout.STALE_AFTER_SECONDS - 60
    os.utime(old_style, (day_ago, day_ago))
    export.export_savedmodel(tiny_vae, str(tmp_path), name="m")
    assert sorted(os.listdir(model_dir)) == sorted(
        ["1", running.name, recent_old_style.name]
    )


@pytest.mark.parametrize("failing", ["verify_savedmodel", "compare_tflite"])
def test_a_version_that_fails_verification_is_never_served(
    tiny_vae, tmp_path, monkeypatch, failing
):
    def broken(*args, **kwargs):
        raise AssertionError("outputs differ")

    if failing == "compare_tflite":  # Skip the slow fresh-process check.
        monkeypatch.setattr(
            export, "verify_savedmodel", lambda path, requests: {"sample": {}}
        )
    monkeypatch.setattr(export, failing, broken)
    with pytest.raises(RuntimeError, match=(
        r"failed verification, so version 1 of .*m was not published and its "
        r"files were removed: AssertionError: outputs differ"
    )):
        export.export_and_verify(tiny_vae, str(tmp_path), name="m")
    assert os.listdir(tmp_path / "m") == []  # No version, staging or .tflite.


def test_export_and_verify_applies_and_reports_limits(tiny_vae, tmp_path):
    report = export.export_and_verify(
        tiny_vae, str(tmp_path), tflite=False, limits={"num_samples": 5}
    )
    assert report["savedmodel"] == os.path.join(str(tmp_path), "vae", "1")
    assert report["limits"]["sample"] == {"num_samples": 5}
    assert report["limits"]["encode"] == {"batch_size": 1024}
    loaded = tf.saved_model.load(report["savedmodel"])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"num_samples must be in \[1, 5\]"):
        loaded.signatures["sample"](num_samples=tf.constant(6), seed=tf.constant([1, 2]))


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
