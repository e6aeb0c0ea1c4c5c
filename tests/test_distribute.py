"""Training under tf.distribute strategies and mixed precision."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_genmodels
from keras_genmodels import cli, distribute

# Float32 sums of per-replica gradients are added in another order than on one
# device, so weights agree to rounding, not bit for bit.
WEIGHT_TOLERANCE = 1e-5


def _images(n=64):
    return np.random.default_rng(0).uniform(size=(n, 28, 28, 1)).astype("float32")


def _train(strategy, build, batches, steps):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = build()
    model.fit(batches.take(steps), epochs=1, verbose=0, shuffle=False)
    return model


def assert_same_update_under_mirrored(build, batches, steps=3):
    single = _train(tf.distribute.get_strategy(), build, batches, steps)
    mirrored = _train(distribute.make_strategy("mirrored"), build, batches, steps)
    worst = max(
        float(np.max(np.abs(a - b)))
        for a, b in zip(single.get_weights(), mirrored.get_weights())
    )
    assert worst <= WEIGHT_TOLERANCE
    moved = max(
        float(np.max(np.abs(a - b)))
        for a, b in zip(single.get_weights(), build().get_weights())
    )
    assert moved > 100 * WEIGHT_TOLERANCE  # Training really changed the weights.
    return single, mirrored


def test_mirrored_strategy_spans_both_logical_cpus():
    assert distribute.make_strategy("mirrored").num_replicas_in_sync == 2


def test_vae_mirrored_matches_one_device():
    batches = tf.data.Dataset.from_tensor_slices(_images()).batch(16)
    single, mirrored = assert_same_update_under_mirrored(
        lambda: keras_genmodels.build("vae", "reference", hidden_units=32, seed=0), batches
    )
    single_loss = single.evaluate(batches, verbose=0, return_dict=True)["loss"]
    mirrored_loss = mirrored.evaluate(batches, verbose=0, return_dict=True)["loss"]
    assert mirrored_loss == pytest.approx(single_loss, rel=1e-4)


def test_vae_trains_under_mixed_bfloat16():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = keras_genmodels.build("vae", "conv", latent_dim=4, seed=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.decoder.layers[-1].compute_dtype == "bfloat16"
    history = model.fit(_images(), batch_size=16, epochs=2, verbose=0)
    losses = np.array(history.history["loss"])
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert model.sample(2, seed=0).dtype == np.float32


def test_command_flags(tmp_path):
    status = cli.main(
        ["train", "vae", "--preset", "reference", "--dataset", "mnist-5k",
         "--epochs", "1", "--batch-size", "500", "--strategy", "mirrored",
         "--mixed-precision", "mixed_bfloat16", "--jit-compile", "off",
         "--set", "hidden_units=16",
         "--out", str(tmp_path / "run")]
    )
    assert status == 0
    assert keras.mixed_precision.global_policy().name == "float32"  # Restored.
    with open(tmp_path / "run" / "metrics.json") as f:
        assert np.isfinite(json.load(f)["final"]["loss"])
    status = cli.main(
        ["train", "vae", "--preset", "reference", "--dataset", "mnist-5k",
         "--epochs", "1", "--batch-size", "500", "--steps-per-execution", "4",
         "--set", "hidden_units=16", "--out", str(tmp_path / "multi-step")]
    )
    assert status == 0


def test_bad_distribution_settings():
    with pytest.raises(ValueError, match="TF_CONFIG"):
        os.environ.pop("TF_CONFIG", None)
        distribute.make_strategy("multi-worker")
    with pytest.raises(ValueError, match="Expected one of: default, mirrored, multi-worker"):
        distribute.make_strategy("tpu")
    with pytest.raises(ValueError, match="Unknown precision"):
        distribute.set_precision("float8")
