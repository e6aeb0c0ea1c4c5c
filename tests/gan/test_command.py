"""The GAN through the `keras-genmodels train` command, as the command calls it."""

import json
import os

from keras_genmodels import cli


def test_train_mlp2d_through_the_command(tmp_path):
    out = str(tmp_path / "run")
    status = cli.main([
        "train", "gan", "--preset", "mlp2d", "--dataset", "ring8:num=512",
        "--epochs", "2", "--batch-size", "128", "--out", out, "--set", "hidden_units=[16]",
    ])
    assert status == 0
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["epochs"] == 2
    test = metrics["test"]
    assert test["num_modes"] == 8 and test["num_samples"] == 2500
    assert 0 <= test["modes_covered"] <= 8
    assert {"d_loss", "g_loss"} <= set(metrics["final"])
    assert os.path.isfile(os.path.join(out, "samples.png"))
