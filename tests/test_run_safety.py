"""The command under kills, interrupts, bad settings and foreign directories."""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import textwrap

import keras
import pytest

from keras_genmodels import cli, files, run_dir, training

SMALL_VAE = ["train", "vae", "--preset", "reference", "--dataset", "mnist-5k",
             "--batch-size", "500"]


def _args(out, *extra):
    return cli.parser().parse_args([*SMALL_VAE, "--out", str(out), *extra])


def test_replaced_atomically_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with files.replaced_atomically(str(target)) as partial:
            with open(partial, "w") as f:
                f.write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["metrics.json"]
    files.write_json(str(target), {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    assert oct(os.stat(target).st_mode & 0o777) == oct(0o666 & ~_umask())
    with pytest.raises(ValueError):
        files.write_json(str(target), {"a": float("nan")})


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    import keras
    from keras_genmodels import cli

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                os.kill(os.getpid(), signal.SIGKILL)

    args = cli.parser().parse_args(sys.argv[1:])
    cli.cmd_train(args, callbacks=[Kill()])
    """
)


def test_sigkill_mid_training_then_damaged_backup_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [*SMALL_VAE, "--epochs", "3", "--out", str(out)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_RUN, *argv], env=env, capture_output=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    backup = out / "backup"
    # Two epochs finished: the latest backup and the one before it are whole.
    assert sorted(os.listdir(backup)) == [
        "latest.weights.h5", "previous.weights.h5",
        "previous_training_metadata.json", "training_metadata.json",
    ]
    assert run_dir.RunDirectory(str(out)).state() == "interrupted"
    # Damage the newest backup as a full disk would.
    (backup / "latest.weights.h5").write_bytes(b"\x89HDF\r\n")
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(epoch)

    capsys.readouterr()
    cli.cmd_train(_args(out, "--epochs", "3"), callbacks=[Record()])
    err = capsys.readouterr().err
    assert "latest.weights.h5 is damaged" in err
    assert "resumed from the previous backup" in err
    assert seen == [1, 2]  # The previous backup holds epoch 1.
    assert not backup.exists()
    assert run_dir.RunDirectory(str(out)).state() == "finished"


def test_a_damaged_final_model_is_replaced_by_resuming(tmp_path, capsys):
    out = tmp_path / "run"

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    with pytest.raises(training.TrainingInterrupted):
        cli.cmd_train(_args(out, "--epochs", "1"), callbacks=[Interrupt()])
    # As a kill during an in-place save used to leave it.
    (out / "model.keras").write_bytes(b"")
    capsys.readouterr()
    cli.cmd_train(_args(out, "--epochs", "1"))
    assert "model.keras is damaged; resuming from the backup" in capsys.readouterr().err
    assert run_dir.RunDirectory(str(out)).model_is_complete()


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path, capsys, monkeypatch):
    def interrupted(args, callbacks=()):
        raise training.TrainingInterrupted(
            "interrupted after epoch 2 of 5; run the same command to resume."
        )

    monkeypatch.setattr(training, "train_run", interrupted)
    assert cli.main([*SMALL_VAE, "--out", str(tmp_path / "r")]) == cli.INTERRUPTED_STATUS
    assert capsys.readouterr().err.splitlines() == [
        "keras-genmodels: interrupted after epoch 2 of 5; run the same command to resume."
    ]


def test_non_finite_loss_stops_with_one_line(tmp_path, capsys):
    out = tmp_path / "diverges"
    status = cli.main([*SMALL_VAE, "--epochs", "2", "--set", "learning_rate=1e30",
                       "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1
    assert re.search(r"loss became (nan|inf|-inf) at epoch 1, batch [1-8]\.", err[0]), err
    assert not (out / "model.keras").exists()


def test_non_finite_settings_are_refused_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*SMALL_VAE, "--set", "learning_rate=NaN", "--out", str(tmp_path / "r")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "keras-genmodels: error: argument --set: learning_rate must be a finite "
        "number, received 'NaN' (see --help)"
    ]


def test_foreign_directories_and_existing_files_are_not_overwritten(tmp_path, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "metrics.json").write_text("keep")
    assert cli.main([*SMALL_VAE, "--epochs", "1", "--out", str(foreign)]) == 2
    assert "is not a keras-genmodels run" in capsys.readouterr().err
    assert (foreign / "metrics.json").read_text() == "keep"
    assert sorted(os.listdir(foreign)) == ["metrics.json"]


def test_sample_refuses_to_overwrite_or_change_the_suffix(tmp_path, capsys, finished_run):
    keep = tmp_path / "keep.png"
    keep.write_bytes(b"precious")
    assert cli.main(["sample", finished_run, "--num", "4", "--out", str(keep)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert keep.read_bytes() == b"precious"
    assert cli.main(["sample", finished_run, "--num", "4", "--out", str(tmp_path / "k.npy")]) == 2
    assert "--out must end in one of" in capsys.readouterr().err
    assert not (tmp_path / "k.npy").exists()
    assert cli.main(["sample", finished_run, "--num", "4", "--out", str(keep), "--overwrite"]) == 0
    assert keep.read_bytes()[:4] == b"\x89PNG"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    assert cli.main([*SMALL_VAE, "--epochs", "1", "--out", str(out)]) == 0
    return str(out)


def test_finished_run_records_what_ran_and_logs_samples(finished_run):
    with open(os.path.join(finished_run, "run.json")) as f:
        run = json.load(f)
    assert run["requested_dataset"] == run["dataset"] == "mnist-5k"
    from tensorboard.backend.event_processing import event_accumulator

    (events,) = glob.glob(os.path.join(finished_run, "logs", "samples", "events.*"))
    accumulator = event_accumulator.EventAccumulator(events, size_guidance={"tensors": 0})
    accumulator.Reload()
    (event,) = accumulator.Tensors("samples")  # One epoch, one grid.
    assert event.step == 1


def test_offline_fallback_is_recorded(tmp_path, monkeypatch):
    from keras_genmodels.data import images

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    monkeypatch.setattr(images, "_mnist_offline_reason", None)
    out = tmp_path / "offline"
    argv = ["train", "vae", "--preset", "reference", "--batch-size", "500", "--epochs",
            "1", "--out", str(out)]
    assert cli.main(argv) == 0
    for name in ("run.json", "metrics.json"):
        with open(out / name) as f:
            record = json.load(f)
        assert record["requested_dataset"] == "mnist"
        assert record["dataset"] == "mnist-5k"


def test_a_failed_evaluation_keeps_the_model_and_can_be_rerun(tmp_path, capsys, monkeypatch):
    from keras_genmodels import run_outputs

    real = run_outputs.evaluate

    def broken(model, run):
        raise ValueError("x has 2000 points, y has 600")

    monkeypatch.setattr(run_outputs, "evaluate", broken)
    out = tmp_path / "run"
    assert cli.main([*SMALL_VAE, "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "model.keras is saved, but the evaluation failed" in err
    with open(out / "metrics.json") as f:
        assert json.load(f)["test_error"] == "x has 2000 points, y has 600"
    assert cli.main([*SMALL_VAE, "--epochs", "1", "--out", str(out)]) == 2
    assert "already holds a finished run" in capsys.readouterr().err
    monkeypatch.setattr(run_outputs, "evaluate", real)
    assert cli.main(["evaluate", str(out)]) == 0
    with open(out / "metrics.json") as f:
        metrics = json.load(f)
    assert "test_error" not in metrics and metrics["test"]["num_images"] == 1_000


def test_the_command_prints_no_tensorflow_noise(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    proc = subprocess.run(
        [sys.executable, "-m", "keras_genmodels.cli", "train", "vae", "--dataset",
         "nope", "--out", str(tmp_path / "r")],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "keras-genmodels: error: Unknown data set 'nope'. Expected one of: "
        + proc.stderr.split("Expected one of: ", 1)[1].strip()
    ]
    assert proc.stdout == ""


@pytest.mark.parametrize(
    "preset, dataset, message",
    [
        ("reference", "TEXT", "models sequence data, but '{}' holds text data"),
        ("transformer-small", "sine", "models text data, but 'sine' holds sequence data"),
    ],
)
def test_data_of_the_wrong_kind_is_refused_before_training(
    tmp_path, capsys, preset, dataset, message
):
    if dataset == "TEXT":
        dataset = str(tmp_path / "notes.txt")
        with open(dataset, "w") as f:
            f.write("some text to model " * 50)
    out = tmp_path / "run"
    assert cli.main(["train", "ar", "--preset", preset, "--dataset", dataset,
                     "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and message.format(dataset) in err[0]
    assert not (out / "model.keras").exists()
