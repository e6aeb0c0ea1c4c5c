"""Quantised TF Lite files: `export_tflite(quantization=...)` and `export --quantize`.

One VAE (`reference`, 64 hidden units, so its kernels are large enough to
quantise) is trained for two steps by the command; its float, float16 and
dynamic-range int8 files are written once for the module and run in
`ai_edge_litert`.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_genmodels import cli, export, export_layout, inspect_export, model_card
from keras_genmodels.evaluation import export_signatures
from keras_genmodels.run_dir import RunDirectory

# Its module-scoped run is trained once: one worker runs the module.
pytestmark = pytest.mark.xdist_group("test_quantization")

#: Largest absolute pixel difference (decoded images lie in [0, 1]) from the
#: float file's `decode` on the same latents.
PIXEL_TOLERANCE = {"float16": 1e-3, "dynamic_int8": 5e-2}


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    run = str(tmp_path_factory.mktemp("runs") / "vae")
    status = cli.main(
        ["train", "vae", "--preset", "reference", "--dataset", "mnist-5k", "--steps", "2",
         "--set", "latent_dim=2", "--set", "hidden_units=64", "--out", run]
    )
    assert status == 0
    return run


@pytest.fixture(scope="module")
def files(vae_run, tmp_path_factory):
    """`(model, {quantization: path})` with the float file under `None`."""
    _, model = RunDirectory(vae_run).load_model()
    folder = tmp_path_factory.mktemp("tflite")
    paths = {
        quantization: export.export_tflite(
            model, str(folder / f"vae.{quantization or 'float'}.tflite"),
            quantization=quantization,
        )
        for quantization in export.QUANTIZATIONS
    }
    return model, paths


def _decode(path, latents):
    return np.concatenate([
        export.run_tflite(path, "decode", {"latents": row[None]})["images"]
        for row in latents
    ])


def test_quantised_files_are_smaller(files):
    _, paths = files
    size = {q: os.path.getsize(p) for q, p in paths.items()}
    assert size["float16"] <= 0.6 * size[None]
    assert size["dynamic_int8"] <= 0.35 * size[None]


@pytest.mark.parametrize("quantization", ["float16", "dynamic_int8"])
def test_quantised_file_decodes_close_to_the_float_file(files, quantization):
    model, paths = files
    assert export.tflite_signatures(paths[quantization]) == ["decode"]
    latents = np.random.default_rng(1).standard_normal((8, model.latent_dim))
    reference = _decode(paths[None], latents)
    images = _decode(paths[quantization], latents)
    assert images.shape == reference.shape == (8, 28, 28, 1)
    assert images.dtype == np.float32  # Inputs and outputs keep their dtypes.
    difference = np.max(np.abs(images - reference))
    assert 0 < difference <= PIXEL_TOLERANCE[quantization]  # Changed, but slightly.


def test_compare_quantized_bounds_the_difference(files):
    model, paths = files
    requests = model.signature_examples(batch_size=1)
    rel = export.compare_quantized(paths["dynamic_int8"], paths[None], requests, rtol=0.1)
    assert 0 < rel["decode"] <= 0.1
    with pytest.raises(AssertionError, match="differs from the float file by .* > rtol=1e-09"):
        export.compare_quantized(paths["dynamic_int8"], paths[None], requests, rtol=1e-9)


def test_unknown_quantization_is_refused(files, tmp_path):
    model, _ = files
    path = str(tmp_path / "vae.tflite")
    with pytest.raises(ValueError) as info:
        export.export_tflite(model, path, quantization="int4")
    assert str(info.value) == (
        "`quantization` must be one of None, 'float16' or 'dynamic_int8'. "
        "Received: quantization='int4'"
    )
    assert not os.path.exists(path)
    with pytest.raises(ValueError, match="`quantization` needs `tflite=True`"):
        export.export_and_verify(
            model, str(tmp_path / "base"), tflite=False, quantization="float16"
        )
    assert not os.path.exists(tmp_path / "base")


def test_export_quantize_end_to_end(vae_run, tmp_path, capsys):
    base = str(tmp_path / "savedmodels")
    assert cli.main(
        ["export", vae_run, "--base-dir", base, "--tflite", "--quantize", "dynamic_int8"]
    ) == 0
    report = json.loads(capsys.readouterr().out)
    float_file = os.path.join(base, "vae", "vae-v1.tflite")
    quantised = os.path.join(base, "vae", "vae-v1.dynamic_int8.tflite")
    assert report["tflite"] == float_file and report["quantized_tflite"] == quantised
    assert 0 < report["quantized_rel_diff"]["decode"] <= export.QUANTIZED_RTOL["dynamic_int8"]
    assert sorted(os.listdir(os.path.join(base, "vae"))) == [
        "1", "vae-v1.dynamic_int8.tflite", "vae-v1.tflite",
    ]
    card = model_card.read_card(os.path.join(base, "vae", "1"))
    entry = card["tflite"]["quantized"]["dynamic_int8"]
    assert entry == {
        "file": "vae-v1.dynamic_int8.tflite",
        "quantization": "dynamic_int8",
        "sha256": model_card.sha256(quantised),
        "bytes": os.path.getsize(quantised),
        "max_rel_diff_from_float": report["quantized_rel_diff"],
        "rtol": export.QUANTIZED_RTOL["dynamic_int8"],
    }
    assert entry["bytes"] <= 0.35 * card["tflite"]["bytes"]
    # `inspect` finds the quantised file's card entry, and `evaluate
    # --export` its version's card.
    described = inspect_export.describe(quantised)
    assert described["card_path"] == os.path.join(base, "vae", "1", model_card.CARD_FILE)
    assert described["sha256_matches_card"] is True
    assert export_signatures.card_directory("tflite", quantised) == os.path.join(base, "vae", "1")

    assert cli.main(["export", vae_run, "--base-dir", base, "--quantize", "float16"]) == 2
    assert capsys.readouterr().err.strip() == (
        "keras-genmodels: error: --quantize float16 writes a TF Lite file: pass --tflite too."
    )
    with pytest.raises(SystemExit):
        cli.main(["export", vae_run, "--tflite", "--quantize", "int4"])
    assert "invalid choice: 'int4'" in capsys.readouterr().err
    assert sorted(os.listdir(os.path.join(base, "vae"))) == [
        "1", "vae-v1.dynamic_int8.tflite", "vae-v1.tflite",
    ]


def test_a_quantised_file_that_fails_its_check_publishes_nothing(
    files, tmp_path, monkeypatch
):
    model, _ = files

    def broken(*args, **kwargs):
        raise AssertionError("Quantised TF Lite signature 'decode' differs")

    # Skip the slow fresh-process check; the float file is still compared.
    monkeypatch.setattr(export, "verify_savedmodel", lambda path, requests: {"decode": {}})
    monkeypatch.setattr(export, "compare_quantized", broken)
    with pytest.raises(RuntimeError, match=(
        "version 1 of .* was not published and its files were removed: "
        "AssertionError: Quantised TF Lite signature 'decode' differs"
    )):
        export.export_and_verify(model, str(tmp_path), name="m", quantization="float16")
    assert os.listdir(tmp_path / "m") == []


def test_stale_quantised_staging_files_are_removed(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # A process that is gone, as after a SIGKILLed export.
    stale = f".tmp-1-{child.pid}-{export_layout._host()}-abc123"
    names = [stale + ".tflite", stale + ".float16.tflite", stale + ".dynamic_int8.tflite"]
    for name in names:
        (tmp_path / name).write_bytes(b"partial")
    removed = export_layout.remove_stale_staging(str(tmp_path))
    assert sorted(removed) == sorted(str(tmp_path / name) for name in names)
    assert os.listdir(tmp_path) == []
