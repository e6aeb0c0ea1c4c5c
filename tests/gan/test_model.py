"""Tests of the GAN model: training, losses, EMA, conditioning, compile config, errors.

The checks every family shares (seeded `sample`, `.keras` outputs, served
`sample` and TF Lite parity) are in tests/test_contract.py.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_genmodels import data
from keras_genmodels.evaluation import registry
from keras_genmodels.gan import GAN, networks

TARGET = np.array([3.0, -2.0], "float32")


def tiny_gan(num_classes=None, ema_decay=None, latent_dim=4, from_logits=True, seed=1):
    generator = networks.mlp_generator(
        latent_dim, (2,), (32, 32), output_activation=None, num_classes=num_classes
    )
    discriminator = networks.mlp_discriminator(
        (2,), (32, 32), activation="leaky_relu",
        output_activation=None if from_logits else "sigmoid", num_classes=num_classes,
    )
    return GAN(
        generator, discriminator, latent_dim, num_classes=num_classes,
        ema_decay=ema_decay, from_logits=from_logits, seed=seed,
    )


def gaussian_points(num=2048, seed=0):
    rng = np.random.default_rng(seed)
    return (TARGET + 0.1 * rng.standard_normal((num, 2))).astype("float32")


@pytest.fixture(scope="module")
def trained():
    """A small EMA GAN trained to move its samples onto N((3, -2), 0.1^2)."""
    keras.utils.set_random_seed(0)
    model = tiny_gan(ema_decay=0.9)
    model.compile(
        d_optimizer=keras.optimizers.Adam(2e-3, beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(2e-3, beta_1=0.5),
    )
    before = model.sample(512, seed=0)
    ds = model.prepare_dataset(tf.data.Dataset.from_tensor_slices(gaussian_points()), 128)
    history = model.fit(ds, epochs=15, verbose=0)
    return model, before, history


def test_training_moves_samples_to_the_data(trained):
    model, before, history = trained
    after = model.sample(512, seed=0)
    distance_before = np.linalg.norm(before.mean(0) - TARGET)
    distance_after = np.linalg.norm(after.mean(0) - TARGET)
    assert distance_before > 3.0
    assert distance_after < 0.5 * distance_before
    assert set(history.history) == {"d_loss", "g_loss"}
    assert all(np.isfinite(history.history["d_loss"]))
    # One generator step per batch: 2048 / 128 = 16 batches per epoch.
    assert int(model.g_optimizer.iterations) == 15 * 16
    assert int(model.d_optimizer.iterations) == 15 * 16


def test_ema_generator_is_an_average(trained):
    model, _, _ = trained
    latents = np.random.default_rng(0).standard_normal((8, 4)).astype("float32")
    ema_out = model.ema_generator.predict(latents, verbose=0)
    raw_out = model.generator.predict(latents, verbose=0)
    assert not np.allclose(ema_out, raw_out)
    np.testing.assert_allclose(model.generate(latents), ema_out, atol=1e-6)
    np.testing.assert_allclose(model(latents), ema_out, atol=1e-6)
    # The EMA weights are not trained directly.
    assert not model.ema_generator.trainable_weights
    ema_ids = {id(v) for v in model.ema_generator.weights}
    assert not ema_ids & {id(v) for v in model.trainable_variables}


def batch_norm_gan(ema_decay):
    """A GAN whose generator is `Dense(2) -> BatchNormalization`, weights set."""
    latents = keras.Input((2,))
    x = keras.layers.Dense(2, name="dense")(latents)
    x = keras.layers.BatchNormalization(name="norm")(x)
    generator = keras.Model(latents, x)
    generator.set_weights([np.full((2, 2), 2.0), np.zeros(2), np.ones(2), np.zeros(2),
                           np.zeros(2), np.ones(2)])
    discriminator = networks.mlp_discriminator((2,), (4,), output_activation=None)
    return GAN(generator, discriminator, 2, ema_decay=ema_decay)


def test_ema_averages_trainable_weights_and_copies_batch_norm_statistics():
    model = batch_norm_gan(ema_decay=0.75)
    model.compile()
    # The twin starts as a copy of the generator.
    for a, b in zip(model.ema_generator.weights, model.generator.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # What one training step would leave in the generator.
    model.generator.set_weights([np.full((2, 2), 6.0), np.full(2, 4.0), np.full(2, 5.0),
                                 np.full(2, -4.0), np.full(2, 3.0), np.full(2, 2.0)])
    model.after_train_step()
    average = {w.name: w.numpy() for w in model.ema_generator.weights}
    # Trainable: 0.75 * average + 0.25 * weight.
    np.testing.assert_array_equal(average["kernel"], np.full((2, 2), 3.0))  # .75*2 + .25*6
    np.testing.assert_array_equal(average["bias"], np.full(2, 1.0))  # .75*0 + .25*4
    np.testing.assert_array_equal(average["gamma"], np.full(2, 2.0))  # .75*1 + .25*5
    np.testing.assert_array_equal(average["beta"], np.full(2, -1.0))  # .75*0 - .25*4
    # Batch-norm statistics: the generator's, copied.
    np.testing.assert_array_equal(average["moving_mean"], np.full(2, 3.0))
    np.testing.assert_array_equal(average["moving_variance"], np.full(2, 2.0))
    model.after_train_step()
    average = {w.name: w.numpy() for w in model.ema_generator.weights}
    np.testing.assert_array_equal(average["kernel"], np.full((2, 2), 3.75))  # .75*3 + .25*6
    np.testing.assert_array_equal(average["moving_mean"], np.full(2, 3.0))
    # The generator itself is untouched, and `sample` uses the average.
    assert float(model.generator.weights[0][0, 0]) == 6.0
    latents = np.ones((1, 2), "float32")
    np.testing.assert_allclose(
        model.generate(latents), model.ema_generator(latents, training=False), atol=1e-6
    )


def test_no_ema_samples_from_the_generator():
    model = batch_norm_gan(ema_decay=None)
    model.compile()
    assert model.ema_generator is None and model.sampling_generator is model.generator
    before = [w.numpy() for w in model.generator.weights]
    model.after_train_step()
    for a, b in zip(model.generator.weights, before):
        np.testing.assert_array_equal(a.numpy(), b)


def test_sample_argument_errors(trained):
    model, _, _ = trained
    assert model.sample(3).shape == (3, 2)
    with pytest.raises(ValueError, match="num_samples"):
        model.sample(0)
    with pytest.raises(ValueError, match=r"not conditioned on `labels`.*Received: labels=\[0, 1\]"):
        model.sample(2, labels=[0, 1])
    with pytest.raises(TypeError, match="positional arguments"):
        model.sample(2, 0, [0, 1])  # `labels` is keyword-only.


def test_compile_config_and_optimizers_survive_keras_round_trip(trained, tmp_path):
    model, _, _ = trained
    assert model.get_compile_config()["loss"] == "non_saturating"
    path = str(tmp_path / "gan.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, GAN)
    for a, b in zip(loaded.ema_generator.weights, model.ema_generator.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert loaded.loss == "non_saturating" and loaded.d_steps == 1
    assert loaded.get_compile_config()["loss"] == "non_saturating"
    assert loaded.ema_decay == 0.9 and loaded.latent_dim == 4
    # Both optimizers come back with their state, so training resumes.
    assert int(loaded.d_optimizer.iterations) == int(model.d_optimizer.iterations)
    assert int(loaded.g_optimizer.iterations) == int(model.g_optimizer.iterations)
    ds = loaded.prepare_dataset(tf.data.Dataset.from_tensor_slices(gaussian_points(256)), 128)
    loaded.fit(ds, epochs=1, verbose=0)
    assert int(loaded.g_optimizer.iterations) == int(model.g_optimizer.iterations) + 2


def test_compile_config_restores_every_compile_argument():
    model = tiny_gan()
    model.compile(loss="wgan_gp", gradient_penalty_weight=5.0, d_steps=3)
    config = model.get_compile_config()
    assert config["loss"] == "wgan_gp" and config["d_steps"] == 3
    other = tiny_gan()
    assert other.loss is None and other.get_compile_config() == {}
    other.compile_from_config(config)
    assert other.loss == "wgan_gp" and other.d_steps == 3
    assert other.gradient_penalty_weight == 5.0
    assert other.d_optimizer.get_config()["beta_2"] == 0.9
    assert [m.name for m in other.metrics] == ["d_loss", "g_loss", "gradient_penalty"]


def test_evaluation_on_2d_data(trained):
    model, _, _ = trained
    test = data.load("ring8:num=300", "test")
    own = model.evaluation_metrics(test, dataset_name="ring8:num=300", unknown_option=1)
    # The GAN reports its losses only; mode coverage comes from the registry.
    assert set(own) == {"d_loss", "g_loss", "d_accuracy", "num_test_examples"}
    assert own["num_test_examples"] == 300
    assert 0.0 <= own["d_accuracy"] <= 1.0
    metrics = registry.evaluate(model, test, "ring8:num=300")
    assert metrics["d_loss"] == own["d_loss"]
    assert metrics["num_modes"] == 8 and metrics["num_samples"] == 2500
    assert 0 <= metrics["modes_covered"] <= 8
    assert np.isfinite(metrics["sample_log_likelihood"])
    # Samples sit around (3, -2), far from the ring of radius 2.
    assert metrics["sample_log_likelihood"] < metrics["data_log_likelihood"]
    logs = model.evaluate(model.prepare_dataset(test, 100), verbose=0, return_dict=True)
    assert set(logs) == {"d_loss", "g_loss"}


@pytest.mark.parametrize(
    "loss, kwargs, trackers",
    [
        ("hinge", {"d_steps": 2}, {"d_loss", "g_loss"}),
        ("wgan_gp", {"d_steps": 3}, {"d_loss", "g_loss", "gradient_penalty"}),
        ("non_saturating", {"r1_weight": 1.0, "label_smoothing": 0.1},
         {"d_loss", "g_loss", "r1_penalty"}),
    ],
)
def test_other_losses_train(loss, kwargs, trackers):
    model = tiny_gan()
    # WGAN-GP oscillates more: a lower rate and no momentum (Gulrajani et al.).
    rate, beta_1 = (1e-3, 0.0) if loss == "wgan_gp" else (2e-3, 0.5)
    model.compile(
        d_optimizer=keras.optimizers.Adam(rate, beta_1=beta_1, beta_2=0.9),
        g_optimizer=keras.optimizers.Adam(rate, beta_1=beta_1, beta_2=0.9),
        loss=loss, **kwargs,
    )
    before = np.linalg.norm(model.sample(256, seed=0).mean(0) - TARGET)
    ds = model.prepare_dataset(tf.data.Dataset.from_tensor_slices(gaussian_points(1024)), 128)
    history = model.fit(ds, epochs=8, verbose=0)
    assert set(history.history) == trackers
    for values in history.history.values():
        assert np.all(np.isfinite(values))
    after = np.linalg.norm(model.sample(256, seed=0).mean(0) - TARGET)
    assert after < 0.75 * before
    steps = 8 * 8
    assert int(model.g_optimizer.iterations) == steps
    assert int(model.d_optimizer.iterations) == steps * kwargs.get("d_steps", 1)
    if loss == "wgan_gp":
        assert history.history["gradient_penalty"][-1] >= 0.0


def test_gradient_penalty_value():
    """A linear critic D(x) = w.x has ||grad D|| = ||w|| = 5 everywhere."""
    inputs = keras.Input((2,))
    critic = keras.Model(inputs, keras.layers.Dense(1, use_bias=False)(inputs))
    critic.set_weights([np.array([[3.0], [4.0]], "float32")])
    generator = networks.mlp_generator(2, (2,), (8,), output_activation=None)
    model = GAN(generator, critic, 2)
    model.compile(loss="wgan_gp")
    points = tf.constant(gaussian_points(16))
    latents = tf.random.normal((16, 2))
    total, logs = model._discriminator_objective(points, None, latents, False)
    assert float(logs["gradient_penalty"]) == pytest.approx((5.0 - 1.0) ** 2, rel=1e-5)
    assert float(total) == pytest.approx(float(logs["d_loss"]) + 10.0 * 16.0, rel=1e-5)


def test_nan_stops_training_with_a_clear_message():
    model = tiny_gan()
    model.compile()
    points = gaussian_points(256)
    points[5] = np.nan
    ds = tf.data.Dataset.from_tensor_slices(points).batch(64)
    with pytest.raises(FloatingPointError, match="d_loss became nan at epoch 1, batch 1"):
        model.fit(ds, epochs=2, verbose=0)


def test_sigmoid_discriminator_trains():
    model = tiny_gan(from_logits=False)
    model.compile()
    ds = model.prepare_dataset(tf.data.Dataset.from_tensor_slices(gaussian_points(512)), 128)
    history = model.fit(ds, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["g_loss"]))


def test_class_conditional_sampling():
    model = tiny_gan(num_classes=3)
    assert model.uses_labels
    model.compile()
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 512).astype("int32")
    points = (np.array([[0, 0], [4, 0], [0, 4]], "float32")[labels]
              + 0.1 * rng.standard_normal((512, 2))).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((points, labels))
    model.fit(model.prepare_dataset(ds, 128), epochs=2, verbose=0)
    default = model.sample(6, seed=0)
    np.testing.assert_array_equal(default, model.sample(6, seed=0, labels=[0, 1, 2, 0, 1, 2]))
    np.testing.assert_array_equal(model.sample(4, seed=0, labels=2),
                                  model.sample(4, seed=0, labels=[2, 2, 2, 2]))
    assert not np.allclose(model.sample(4, seed=0, labels=0), model.sample(4, seed=0, labels=1))
    with pytest.raises(ValueError, match=r"labels.*\[0, 3\)"):
        model.sample(2, labels=[0, 3])
    with pytest.raises(ValueError, match=r"one entry per sample \(2\).*Received 3 labels"):
        model.sample(2, labels=[0, 1, 2])
    with pytest.raises(ValueError, match="with_labels=True"):
        model.prepare_dataset(tf.data.Dataset.from_tensor_slices(points), 32)


def test_constructor_and_compile_errors():
    generator = networks.mlp_generator(4, (2,), (8,), output_activation=None)
    discriminator = networks.mlp_discriminator((2,), (8,), output_activation=None)
    with pytest.raises(ValueError, match="latent_dim=5"):
        GAN(generator, discriminator, 5)
    with pytest.raises(ValueError, match="discriminator's input shape"):
        GAN(generator, networks.mlp_discriminator((3,), (8,)), 4)
    with pytest.raises(ValueError, match="must take 2 input"):
        GAN(generator, discriminator, 4, num_classes=3)
    with pytest.raises(ValueError, match="ema_decay"):
        GAN(generator, discriminator, 4, ema_decay=1.0)
    model = GAN(generator, discriminator, 4)
    with pytest.raises(ValueError, match="Call `compile\\(\\)`"):
        model.fit(tf.data.Dataset.from_tensor_slices(gaussian_points(8)).batch(4))
    with pytest.raises(ValueError, match="loss='lsgan'"):
        model.compile(loss="lsgan")
    with pytest.raises(ValueError, match="label_smoothing"):
        model.compile(loss="hinge", label_smoothing=0.1)
    with pytest.raises(ValueError, match="d_steps"):
        model.compile(d_steps=0)
    sigmoid = GAN(generator, networks.mlp_discriminator((2,), (8,)), 4, from_logits=False)
    with pytest.raises(ValueError, match="from_logits=False"):
        sigmoid.compile(loss="wgan_gp")
