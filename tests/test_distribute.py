"""Training under tf.distribute strategies and mixed precision."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_genmodels
from keras_genmodels import cli, distribute
from keras_genmodels.autoregressive.transformer import TransformerLM

# Float32 sums of per-replica gradients are added in another order than on one
# device, so weights agree to rounding, not bit for bit: the largest absolute
# difference of any weight (trainable or not: EMA copies, running statistics,
# seed and optimizer states are compared too) after three steps.
WEIGHT_TOLERANCE = 1e-5


def _images(n=64, size=28):
    return np.random.default_rng(0).uniform(size=(n, size, size, 1)).astype("float32")


def _points(n=64):
    return np.random.default_rng(0).normal(size=(n, 2)).astype("float32")


def _train(strategy, build, batches, steps):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = build()
    model.fit(batches.take(steps), epochs=1, verbose=0, shuffle=False)
    return model


def _largest_difference(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a.get_weights(), b.get_weights()))


def assert_same_update_under_mirrored(build, batches, steps=3, tolerance=WEIGHT_TOLERANCE):
    """Trains `steps` batches on one device and mirrored on 2 logical CPUs."""
    single = _train(tf.distribute.get_strategy(), build, batches, steps)
    mirrored = _train(distribute.make_strategy("mirrored"), build, batches, steps)
    assert len(single.get_weights()) == len(mirrored.get_weights())
    assert _largest_difference(single, mirrored) <= tolerance
    keras.utils.set_random_seed(0)
    initial = build()  # The same initial weights as both trained models.
    # Training really changed the weights, by far more than the tolerance.
    assert _largest_difference(single, initial) > 100 * tolerance
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


def test_gan_mirrored_matches_one_device():
    # Both optimizers, the R1 penalty and the generator EMA (mlp2d), with
    # latents drawn by `batch_noise`.
    batches = tf.data.Dataset.from_tensor_slices(_points()).batch(16)
    assert_same_update_under_mirrored(
        lambda: keras_genmodels.build("gan", "mlp2d", hidden_units=(32, 32), seed=0), batches
    )


def test_wgan_gp_mirrored_matches_one_device():
    # The gradient penalty's interpolation weights come from `batch_noise`;
    # `pack=2` checks the packed discriminator sees the same groups.
    batches = tf.data.Dataset.from_tensor_slices(_points()).batch(16)
    assert_same_update_under_mirrored(
        lambda: keras_genmodels.build(
            "gan", "mlp2d", hidden_units=(32,), loss="wgan_gp", r1_weight=0.0, pack=2, seed=0
        ),
        batches,
    )


def test_dcgan_batch_norm_mirrored_matches_one_device():
    # The generator's batch normalisation uses statistics of the global batch.
    batches = tf.data.Dataset.from_tensor_slices(_images(32, 8)).batch(8)
    assert_same_update_under_mirrored(
        lambda: keras_genmodels.build(
            "gan", "dcgan", data_shape=(8, 8, 1), latent_dim=4, generator_filters=(8, 4),
            discriminator_filters=(4, 8), seed=0,
        ),
        batches,
        steps=2,
    )


def test_flow_mirrored_matches_one_device():
    # Image flow: the dequantisation noise comes from `batch_noise`.
    batches = tf.data.Dataset.from_tensor_slices(_images(64, 4)).batch(16)
    assert_same_update_under_mirrored(
        lambda: keras_genmodels.build(
            "flow", "mnist", data_shape=(4, 4, 1), num_coupling_layers=2,
            hidden_units=(16,), jit_compile=False, seed=0,
        ),
        batches,
    )


def test_diffusion_mirrored_matches_one_device():
    # Times and noise come from `batch_noise`; the EMA network is compared.
    batches = tf.data.Dataset.from_tensor_slices(_points()).batch(16)
    assert_same_update_under_mirrored(
        lambda: keras_genmodels.build(
            "diffusion", "mlp2d", hidden_units=32, num_layers=1, timesteps=50, seed=0
        ),
        batches,
    )


def test_rnn_mirrored_matches_one_device():
    # The running statistics `sample` uses are means over the global batch.
    series = np.sin(np.arange(64 * 11) * 0.3).astype("float32").reshape(64, 11, 1)
    batches = tf.data.Dataset.from_tensor_slices((series[:, :-1], series[:, 1:])).batch(16)
    single, _ = assert_same_update_under_mirrored(
        lambda: keras_genmodels.build("ar", "reference", units=8, seed=0), batches
    )
    assert float(single.value_variance.numpy()) > 0.0


def test_transformer_mirrored_matches_one_device():
    # Embedding gradients (IndexedSlices) and AdamW with global-norm clipping,
    # which `GenerativeModel` moves after the all-reduce. Dropout is off:
    # Keras' dropout layers draw their masks per replica.
    tokens = np.random.default_rng(0).integers(0, 256, size=(64, 9)).astype("int32")
    batches = tf.data.Dataset.from_tensor_slices((tokens[:, :-1], tokens[:, 1:])).batch(16)

    def build():
        model = TransformerLM(
            context_length=8, d_model=16, num_heads=2, num_layers=1, dropout=0.0, seed=0
        )
        model.compile(
            optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.1, global_clipnorm=0.1)
        )
        return model

    model, _ = assert_same_update_under_mirrored(build, batches)
    assert model.optimizer.global_clipnorm == 0.1  # Restored after `fit`.


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


def test_mixed_float16_clipped_mirrored_matches_one_device():
    # The LossScaleOptimizer branch of the clipping after the all-reduce:
    # gradients are unscaled before clipping. Layers compute in float16, so
    # the replicas' halves round differently: tolerance 1e-4.
    batches = tf.data.Dataset.from_tensor_slices(_points()).batch(16)

    def build():
        keras.mixed_precision.set_global_policy("mixed_float16")
        try:
            model = keras_genmodels.build(
                "diffusion", "mlp2d", hidden_units=16, num_layers=1, timesteps=50, seed=0
            )
            model.compile(optimizer=keras.optimizers.Adam(1e-2, global_clipnorm=0.05))
        finally:
            keras.mixed_precision.set_global_policy("float32")
        return model

    model, _ = assert_same_update_under_mirrored(build, batches, tolerance=1e-4)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)


def _tiny_transformer():
    model = TransformerLM(context_length=8, d_model=16, num_heads=2, num_layers=1, seed=0)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, global_clipnorm=1.0))
    return model


def _tokens():
    tokens = np.random.default_rng(0).integers(0, 256, size=(32, 9)).astype("int32")
    return tokens[:, :-1], tokens[:, 1:]


def _series():
    series = np.sin(np.arange(32 * 11) * 0.3).astype("float32").reshape(32, 11, 1)
    return series[:, :-1], series[:, 1:]


BFLOAT16_CASES = {
    "gan": (lambda: keras_genmodels.build("gan", "mlp2d", hidden_units=(16,), seed=0),
            lambda: (_points(32),)),
    "wgan_gp": (lambda: keras_genmodels.build(
        "gan", "mlp2d", hidden_units=(16,), loss="wgan_gp", r1_weight=0.0, seed=0),
        lambda: (_points(32),)),
    "flow": (lambda: keras_genmodels.build(
        "flow", "mnist", data_shape=(4, 4, 1), num_coupling_layers=2, hidden_units=(16,),
        jit_compile=False, seed=0), lambda: (_images(32, 4),)),
    "diffusion": (lambda: keras_genmodels.build(
        "diffusion", "mlp2d", hidden_units=16, num_layers=1, timesteps=50, seed=0),
        lambda: (_points(32),)),
    "rnn": (lambda: keras_genmodels.build("ar", "reference", units=8, seed=0), _series),
    "transformer": (_tiny_transformer, _tokens),
}


@pytest.mark.parametrize("case", sorted(BFLOAT16_CASES))
def test_family_trains_under_mixed_bfloat16(case):
    build, data = BFLOAT16_CASES[case]
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.dtype_policy.name == "mixed_bfloat16"
    assert any(v.dtype == "float32" for v in model.trainable_variables)
    history = model.fit(*data(), batch_size=16, epochs=2, verbose=0)
    for name, values in history.history.items():
        assert np.all(np.isfinite(values)), (name, values)


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


def test_batch_noise_distributions():
    model = keras_genmodels.build("vae", "reference", hidden_units=8, seed=0)
    normal = model.batch_noise((256, 3)).numpy()
    assert normal.shape == (256, 3) and abs(normal.mean()) < 0.2
    uniform = model.batch_noise(tf.constant([256, 3]), "uniform").numpy()
    assert uniform.min() >= 0.0 and uniform.max() < 1.0
    times = model.batch_noise((256,), "integer", "int32", maxval=5).numpy()
    assert times.dtype == np.int32 and set(times) == {0, 1, 2, 3, 4}
    with pytest.raises(ValueError, match="Received: distribution='gamma'"):
        model.batch_noise((2,), "gamma")
    with pytest.raises(ValueError, match="needs `maxval`"):
        model.batch_noise((2,), "integer", "int32")
    with pytest.raises(ValueError, match="integer dtype"):
        model.batch_noise((2,), "integer", "float32", maxval=3)


def test_bad_distribution_settings():
    with pytest.raises(ValueError, match="TF_CONFIG"):
        os.environ.pop("TF_CONFIG", None)
        distribute.make_strategy("multi-worker")
    with pytest.raises(ValueError, match="Expected one of: default, mirrored, multi-worker"):
        distribute.make_strategy("tpu")
    with pytest.raises(ValueError, match="Unknown precision"):
        distribute.set_precision("float8")


def test_task_index_reads_tf_config(monkeypatch):
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}

    def set_task(kind, index):
        config = {"cluster": cluster, "task": {"type": kind, "index": index}}
        monkeypatch.setenv("TF_CONFIG", json.dumps(config))

    set_task("worker", 1)
    assert distribute.task_index() == 1
    cluster["chief"] = ["127.0.0.1:3"]
    set_task("worker", 0)
    assert distribute.task_index() == 1  # The chief is task 0.
    set_task("chief", 0)
    assert distribute.task_index() == 0
    monkeypatch.delenv("TF_CONFIG")
    assert distribute.task_index() == 0
