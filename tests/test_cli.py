"""The keras-genmodels command, end to end on the VAE."""

import csv
import json
import os

import keras
import pytest
from PIL import Image

from keras_genmodels import cli, training

# Its module-scoped models are built once: one worker runs the module.
pytestmark = pytest.mark.xdist_group("test_cli")


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    run = str(tmp_path_factory.mktemp("runs") / "vae")
    status = cli.main(
        ["train", "vae", "--preset", "reference", "--dataset", "mnist-5k",
         "--epochs", "1", "--out", run]
    )
    assert status == 0
    return run


def test_train_writes_every_file(vae_run):
    for name in ("run.json", "model.keras", "history.csv", "samples.png", "metrics.json"):
        assert os.path.isfile(os.path.join(vae_run, name)), name
    assert os.listdir(os.path.join(vae_run, "logs"))  # TensorBoard event files.
    with open(os.path.join(vae_run, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["parameters"] == 404_244
    assert metrics["test"]["num_images"] == 1_000
    assert metrics["test"]["iwae_nll"] <= metrics["test"]["negative_elbo"]
    fid, floor = metrics["test"]["classifier_fid"], metrics["test"]["classifier_fid_floor"]
    assert fid["fid"] > floor["fid"] > 0  # One epoch is far from real digits.
    assert 0.0 <= fid["precision"] <= 1.0 and 0.0 <= fid["recall"] <= 1.0
    with open(os.path.join(vae_run, "history.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and float(rows[0]["loss"]) > 0
    grid = Image.open(os.path.join(vae_run, "samples.png"))
    assert grid.size == (8 * 30 + 2, 8 * 30 + 2)


def test_export_sample_evaluate(vae_run, tmp_path, capsys):
    base = str(tmp_path / "savedmodels")
    assert cli.main(["export", vae_run, "--base-dir", base, "--tflite"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["savedmodel"] == os.path.join(base, "vae", "1")
    assert os.path.isfile(os.path.join(base, "vae", "vae-v1.tflite"))
    assert report["signatures"] == ["decode", "encode", "sample", "sample_batch"]

    out = str(tmp_path / "grid.png")
    assert cli.main(["sample", vae_run, "--num", "9", "--seed", "1", "--out", out]) == 0
    assert Image.open(out).size == (3 * 30 + 2, 3 * 30 + 2)

    capsys.readouterr()
    assert cli.main(["evaluate", vae_run]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert set(figures) >= {"negative_elbo", "iwae_nll"}


def test_sample_rows_of_labels_and_refused_conditioning(vae_run, tmp_path, capsys):
    run = str(tmp_path / "vae-cond")
    assert cli.main(
        ["train", "vae", "--preset", "conv-cond", "--dataset", "mnist-5k", "--steps", "2",
         "--set", "latent_dim=2", "--set", "embedding_dim=2", "--out", run]
    ) == 0
    out = str(tmp_path / "rows.png")
    assert cli.main(["sample", run, "--labels", "7,0,7", "--num", "4", "--out", out]) == 0
    assert Image.open(out).size == (4 * 30 + 2, 3 * 30 + 2)  # A row of 4 per label.
    capsys.readouterr()
    assert cli.main(["sample", run, "--guidance", "2", "--out", out, "--overwrite"]) == 2
    assert "not conditioned on `guidance_scale`" in capsys.readouterr().err
    assert cli.main(["sample", vae_run, "--labels", "1", "--out", out, "--overwrite"]) == 2
    assert "not conditioned on `labels`; it takes no conditioning" in capsys.readouterr().err
    assert cli.main(["sample", run, "--labels", "3,10", "--out", out, "--overwrite"]) == 2
    assert "must lie in [0, 10). Received: 10" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["sample", run, "--labels", "seven"])
    assert "expected comma-separated integer labels" in capsys.readouterr().err


def test_interrupted_training_resumes(tmp_path):
    run = str(tmp_path / "resumed")

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise KeyboardInterrupt  # As if the user pressed Ctrl-C.

    args = cli.parser().parse_args(
        ["train", "vae", "--preset", "reference", "--dataset", "mnist-5k",
         "--epochs", "2", "--batch-size", "500", "--out", run]
    )
    with pytest.raises(training.TrainingInterrupted, match="after epoch 1 of 2;"):
        cli.cmd_train(args, callbacks=[Interrupt()])
    assert not os.path.exists(os.path.join(run, "model.keras"))
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(epoch)

    cli.cmd_train(args, callbacks=[Record()])
    assert seen == [1]  # Only the second epoch ran again.
    with open(os.path.join(run, "history.csv")) as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1"]
    with pytest.raises(cli.CommandError, match="already holds a finished run"):
        cli.cmd_train(args)


def test_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["train", "bert"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "keras-genmodels: error: Unknown family 'bert'. "
        "Expected one of: vae, gan, ar, flow, diffusion."
    ]
    assert cli.main(["sample", str(tmp_path)]) == 2
    assert "is not a run directory" in capsys.readouterr().err
    assert cli.main(["train", "vae", "--dataset", "nope", "--out", str(tmp_path / "r")]) == 2
    assert "Unknown data set 'nope'" in capsys.readouterr().err
    assert cli.main(["train", "vae", "--batch-size", "0", "--out", str(tmp_path / "s")]) == 2
    assert "--batch-size must be positive" in capsys.readouterr().err


def test_list_names_families_presets_and_datasets(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "vae:" in out and "conv (default)" in out and "mnist-5k" in out


def test_sample_chooses_the_diffusion_sampler(vae_run, tmp_path, capsys):
    run = str(tmp_path / "ddpm")
    assert cli.main(
        ["train", "diffusion", "--preset", "mlp2d", "--dataset", "moons:num=256", "--steps", "2",
         "--set", "hidden_units=16", "--set", "timesteps=20", "--out", run]
    ) == 0
    out = str(tmp_path / "points.png")
    assert cli.main(
        ["sample", run, "--num", "16", "--method", "dpmpp_2m", "--num-steps", "5", "--out", out]
    ) == 0
    assert "Wrote 16 samples" in capsys.readouterr().out and os.path.getsize(out) > 0
    assert cli.main(["sample", run, "--method", "euler", "--out", out, "--overwrite"]) == 2
    assert "('ddpm', 'ddim', 'dpmpp_2m'). Received: method='euler'" in capsys.readouterr().err
    assert cli.main(["sample", vae_run, "--num-steps", "5", "--out", out, "--overwrite"]) == 2
    assert "--num-steps applies to diffusion runs" in capsys.readouterr().err
