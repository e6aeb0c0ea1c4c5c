"""The one training routine behind the command and the benchmarks."""

import json

import numpy as np
import pytest

from keras_genmodels import training
from keras_genmodels.run_dir import CommandError


@pytest.mark.parametrize("steps, examples, batch, epochs", [
    (3000, 60_000, 128, 7),    # 469 steps per epoch: 6.4 epochs round up.
    (3000, 5_000, 128, 75),    # mnist-5k: 40 steps per epoch.
    (1, 5_000, 128, 1),        # Never fewer than one epoch.
    (10, 3, 128, 10),          # A partial batch is a step.
    (469, 60_000, 128, 1),
    (470, 60_000, 128, 2),
])
def test_epochs_for_steps_covers_the_budget_in_whole_epochs(steps, examples, batch, epochs):
    assert training.epochs_for_steps(steps, examples, batch) == epochs


@pytest.fixture(scope="module")
def tiny_images(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tiny.npy"
    images = np.random.default_rng(0).uniform(size=(40, 8, 8, 1)).astype("float32")
    np.save(path, images)
    return str(path)


def test_train_turns_a_step_budget_into_epochs_like_the_command(tiny_images, tmp_path):
    # 36 training rows in batches of 10: 4 steps per epoch, so 9 steps are 3 epochs.
    metrics = training.train(
        "vae", str(tmp_path / "run"), preset="reference", dataset=tiny_images,
        steps=9, batch_size=10, overrides={"latent_dim": 2, "hidden_units": 8},
    )
    assert metrics["epochs"] == 3
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["steps"] == 9 and run["epochs"] == 3
    assert run["overrides"] == {"latent_dim": 2, "hidden_units": 8}
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert len(history) == 1 + 3
    assert np.isfinite(metrics["test"]["iwae_nll"])


def test_train_refuses_unknown_options_and_bad_budgets(tiny_images, tmp_path):
    with pytest.raises(TypeError, match="Unknown train option\\(s\\): step\\b"):
        training.train("vae", str(tmp_path / "a"), step=3)
    with pytest.raises(CommandError, match="--steps must be positive. Received: 0"):
        training.train("vae", str(tmp_path / "b"), dataset=tiny_images, steps=0)
