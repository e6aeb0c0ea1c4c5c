"""Flow family: TFP RealNVP chain, exact likelihoods, training, signatures."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_genmodels
from keras_genmodels import data
from keras_genmodels.data import toy2d
from keras_genmodels.flow import presets
from keras_genmodels.flow.networks import CouplingNetwork
from keras_genmodels.flow.realnvp import RealNVP

IMAGE_SHAPE = (4, 4, 1)


def _perturb(model, scale=0.3, seed=0):
    """Moves the zero-initialised output layers away from the identity flow."""
    rng = np.random.default_rng(seed)
    for net in model.coupling_networks:
        for variable in net.output_layer.trainable_variables:
            noise = scale * rng.standard_normal(variable.shape)
            variable.assign(variable.numpy() + noise.astype("float32"))
    return model


def _quantised_images(num, shape=IMAGE_SHAPE, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (num, *shape)) / 255.0).astype("float32")


@pytest.fixture(scope="module")
def moons():
    return np.stack(list(data.load("moons:num=2048").as_numpy_iterator()))


@pytest.fixture(scope="module")
def trained_reference(moons):
    keras.utils.set_random_seed(0)
    model = keras_genmodels.build("flow", "reference", seed=0)
    history = model.fit(
        model.prepare_dataset(tf.data.Dataset.from_tensor_slices(moons), 128),
        epochs=5,
        verbose=0,
    )
    return model, history


@pytest.fixture(scope="module")
def image_flow():
    keras.utils.set_random_seed(0)
    model = presets.build_mnist(
        data_shape=IMAGE_SHAPE, num_coupling_layers=3, hidden_units=(16,), seed=0
    )
    images = tf.data.Dataset.from_tensor_slices(_quantised_images(256))
    history = model.fit(model.prepare_dataset(images, 64), epochs=3, verbose=0)
    return model, history


# ----------------------------------------------------------------------
# Architecture.
# ----------------------------------------------------------------------
def test_presets_are_registered():
    assert keras_genmodels.presets.default_preset("flow") == "mnist"
    assert {"reference", "mlp2d", "mnist", "maf2d", "iaf2d", "maf-tabular",
            "iaf-tabular"} <= set(keras_genmodels.list_presets("flow"))
    for name in ("reference", "mlp2d", "mnist"):
        _, preset = keras_genmodels.presets.get_preset("flow", name)
        assert preset.adapts_to_data_shape
    assert keras_genmodels.RealNVP is RealNVP


def test_reference_is_the_seed_flow():
    model = keras_genmodels.build("flow", "reference")
    assert model.count_params() == 1_356
    assert model.num_masked == 1 and model.data_shape == (2,)
    assert model.data_kind == "points"
    base = model.distribution.distribution
    np.testing.assert_array_equal(base.loc.numpy(), [0.0, 0.0])
    # One net: (1*16 + 16) + (16*16 + 16) + (16*2 + 2) + 1 log-scale factor.
    assert [n.count_params() for n in model.coupling_networks] == [339] * 4


def test_preset_sizes():
    mlp2d = keras_genmodels.build("flow", "mlp2d")
    assert mlp2d.num_coupling_layers >= 8
    assert mlp2d.count_params() == 16 * (2 * 64 + 64 * 64 + 64 + 64 * 2 + 2 + 1) == 70_704
    mnist = keras_genmodels.build("flow", "mnist", data_shape=(28, 28, 1))
    per_net = 392 * 256 + 256 + 256 * 256 + 256 + 256 * 784 + 784 + 392
    assert mnist.count_params() == 8 * per_net
    assert mnist.data_kind == "image"
    assert (mnist.logit_alpha, mnist.num_levels) == (0.05, 256)


def test_coupling_variables_are_trainable_variables(trained_reference):
    model, _ = trained_reference
    owned = {id(v) for v in model.trainable_variables}
    coupling = [v for net in model.coupling_networks for v in net.trainable_variables]
    assert len(coupling) == 4 * 7
    assert all(id(v) in owned for v in coupling)
    assert len(model.trainable_variables) == len(coupling)
    # The TFP chain really reads them: every one gets a gradient.
    x = tf.constant(np.random.default_rng(0).standard_normal((8, 2)), tf.float32)
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(model(x))
    gradients = tape.gradient(loss, model.trainable_variables)
    assert all(g is not None and np.any(g.numpy() != 0) for g in gradients)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="data_shape"):
        RealNVP(data_shape=(1,))
    with pytest.raises(ValueError, match="num_masked"):
        RealNVP(data_shape=(2,), num_masked=2)
    with pytest.raises(ValueError, match="permutation"):
        RealNVP(data_shape=(2,), permutation="shuffle")
    with pytest.raises(ValueError, match="num_levels"):
        RealNVP(data_shape=(2, 2, 1), logit_alpha=0.05)
    with pytest.raises(ValueError, match="logit_alpha"):
        RealNVP(data_shape=(2, 2, 1), logit_alpha=0.5, num_levels=256)
    with pytest.raises(ValueError, match="num_coupling_layers"):
        RealNVP(data_shape=(2,), num_coupling_layers=0)
    with pytest.raises(ValueError, match="hidden_units"):
        RealNVP(data_shape=(2,), hidden_units=())
    with pytest.raises(ValueError, match="output_units"):
        CouplingNetwork(output_units=0)
    net = CouplingNetwork(output_units=2)
    with pytest.raises(ValueError, match="output_units=3"):
        net(tf.zeros((1, 2)), output_units=3)


def test_methods_check_shapes(trained_reference):
    model, _ = trained_reference
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        model.log_prob(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="latents"):
        model.decode(np.zeros((3,)))
    for temperature in (0.0, -1.0, float("inf"), float("nan"), "hot", True):
        with pytest.raises(ValueError, match="temperature"):
            model.sample(2, temperature=temperature)
    with pytest.raises(TypeError):
        model.sample(2, 0, 1.0)  # Options are keyword-only.
    with pytest.raises(ValueError, match="num_samples"):
        model.sample(0)


def test_call_builds_symbolically():
    model = keras_genmodels.build("flow", "reference")
    assert tuple(model(keras.Input((2,))).shape) == (None,)
    assert isinstance(model(tf.zeros((1, 2))), tf.Tensor)


# ----------------------------------------------------------------------
# Exactness: inverses and log-determinants.
# ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["reference", "mlp2d"])
def test_decode_inverts_encode_2d(name):
    model = _perturb(keras_genmodels.build("flow", name))
    x = np.random.default_rng(1).standard_normal((64, 2)).astype("float32")
    z = model.encode(x)
    assert np.abs(z - x).max() > 1e-2  # Not the identity.
    np.testing.assert_allclose(model.decode(z), x, atol=1e-4)
    np.testing.assert_allclose(model.encode(model.decode(z)), z, atol=1e-4)


def test_decode_inverts_encode_mnist_preset():
    model = _perturb(keras_genmodels.build("flow", "mnist"), scale=0.01)
    images = np.stack(list(data.load("mnist-5k", "test").take(8).as_numpy_iterator()))
    z = model.encode(images)
    assert np.isfinite(z).all()
    np.testing.assert_allclose(model.decode(z), images, atol=1e-4)


def test_log_det_matches_the_autodiff_jacobian():
    model = _perturb(keras_genmodels.build("flow", "mlp2d", num_coupling_layers=8), 0.2)
    z = tf.constant(np.random.default_rng(2).standard_normal((32, 2)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(z)
        x = model.bijector.forward(z)
    jacobian = tape.batch_jacobian(x, z)
    expected = np.log(np.abs(np.linalg.det(jacobian.numpy().astype("float64"))))
    fldj = model.bijector.forward_log_det_jacobian(z, event_ndims=1).numpy()
    assert np.abs(expected).max() > 0.1  # Not volume preserving.
    np.testing.assert_allclose(fldj, expected, atol=1e-4)
    ildj = model.bijector.inverse_log_det_jacobian(x, event_ndims=1).numpy()
    np.testing.assert_allclose(ildj, -expected, atol=1e-4)


def test_log_prob_is_change_of_variables_2d():
    model = _perturb(keras_genmodels.build("flow", "reference"))
    x = tf.constant(np.random.default_rng(3).standard_normal((16, 2)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = model.bijector.inverse(x)
    det = np.linalg.det(tape.batch_jacobian(z, x).numpy().astype("float64"))
    z = z.numpy().astype("float64")
    expected = -0.5 * (z**2).sum(1) - math.log(2 * math.pi) + np.log(np.abs(det))
    np.testing.assert_allclose(model.log_prob(x.numpy()), expected, atol=1e-4)


def test_image_log_prob_counts_the_logit_jacobian():
    # Two pixels, so the whole data -> latent map has a 2x2 Jacobian.
    model = _perturb(presets.build_mnist(data_shape=(1, 2, 1), hidden_units=(8,)))
    images = np.array([[0, 255], [17, 128], [200, 3]], np.float32).reshape(3, 1, 2, 1)
    images /= 255.0
    y = tf.constant((images.reshape(3, 2) * 255.0 + 0.5) / 256.0)
    with tf.GradientTape() as tape:
        tape.watch(y)
        z = model.bijector.inverse(y)
    det = np.linalg.det(tape.batch_jacobian(z, y).numpy().astype("float64"))
    z = z.numpy().astype("float64")
    density = -0.5 * (z**2).sum(1) - math.log(2 * math.pi) + np.log(np.abs(det))
    expected = density - 2 * math.log(256.0)
    np.testing.assert_allclose(model.log_prob(images), expected, atol=1e-4)
    np.testing.assert_allclose(model.encode(images), z, atol=1e-4)


# ----------------------------------------------------------------------
# Training, sampling, evaluation.
# ----------------------------------------------------------------------
def test_training_lowers_the_nll(trained_reference):
    _, history = trained_reference
    losses = history.history["loss"]
    assert set(history.history) == {"loss", "bits_per_dim"}
    assert losses[-1] < losses[0] - 0.3
    np.testing.assert_allclose(
        history.history["bits_per_dim"], np.array(losses) / (2 * math.log(2)), rtol=1e-5
    )


def test_image_training_tracks_bits_per_dim(image_flow):
    model, history = image_flow
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    # Uniform noise images: a perfect model reaches 8 bits/dim.
    bpd = history.history["bits_per_dim"][-1]
    assert 8.0 <= bpd < 9.5
    np.testing.assert_allclose(bpd, losses[-1] / (16 * math.log(2)), rtol=1e-5)


def test_temperature_scales_the_latent(trained_reference):
    model, _ = trained_reference
    a = model.sample(500, seed=3)
    np.testing.assert_array_equal(a, model.sample(500, seed=3, temperature=1.0))
    cold = model.sample(500, seed=3, temperature=0.5)
    np.testing.assert_allclose(model.encode(cold), 0.5 * model.encode(a), atol=1e-4)
    hot = model.sample(500, seed=3, temperature=2.0)
    np.testing.assert_allclose(model.encode(hot), 2.0 * model.encode(a), atol=1e-4)
    # One trace serves every temperature (a tensor input of the sampler).
    sampler = model.traced_function(("sample",), None)
    assert sampler.experimental_get_tracing_count() == 1


def test_trained_samples_lie_on_the_data(trained_reference, moons):
    model, _ = trained_reference
    a = model.sample(500, seed=3)
    assert a.shape == (500, 2)
    # Trained samples lie where the data is, not spread like N(0, I).
    assert model.log_prob(a).mean() > model.log_prob(np.random.randn(500, 2)).mean() + 1.0
    assert np.abs(a.mean(0) - moons.mean(0)).max() < 0.25


def test_image_samples_are_images(image_flow):
    model, _ = image_flow
    images = model.sample(6, seed=0)
    assert images.shape == (6, *IMAGE_SHAPE)
    assert images.min() >= 0.0 and images.max() <= 1.0


def test_evaluation_reports_the_true_entropy(trained_reference):
    model, _ = trained_reference
    name = "moons:num=1000"
    metrics = model.evaluation_metrics(data.load(name, "test"), dataset_name=name)
    test = np.stack(list(data.load(name, "test").as_numpy_iterator()))
    assert metrics["num_examples"] == 1000
    assert metrics["test_nll"] == pytest.approx(-model.log_prob(test).mean(), abs=1e-4)
    assert metrics["true_entropy"] == pytest.approx(
        -toy2d.true_log_prob(name, test).mean()
    )
    assert metrics["nll_minus_entropy"] > 0.0
    plain = model.evaluation_metrics(data.load(name, "test"))
    assert "true_entropy" not in plain


def test_image_evaluation_reports_bits_per_dim(image_flow):
    model, _ = image_flow
    images = tf.data.Dataset.from_tensor_slices(_quantised_images(100, seed=5))
    metrics = model.evaluation_metrics(images, dataset_name="mnist-5k")
    assert metrics["num_examples"] == 100
    assert metrics["bits_per_dim"] == pytest.approx(
        metrics["test_nll"] / (16 * math.log(2))
    )
    assert metrics["bits_per_dim"] > 8.0
    assert model.evaluation_metrics(images) == metrics  # Seeded noise.


# ----------------------------------------------------------------------
# Serving signatures (the contract suite checks them against `sample` and
# TF Lite; here: the flow's own signatures answer like its methods).
# ----------------------------------------------------------------------
@pytest.mark.parametrize("which", ["points", "image"])
def test_serving_signatures_answer_like_the_methods(which, trained_reference, image_flow):
    model = trained_reference[0] if which == "points" else image_flow[0]
    assert model.default_export_name == ("flow-points" if which == "points" else "flow")
    endpoints = model.serving_endpoints()
    assert sorted(endpoints) == ["decode", "encode", "log_prob", "sample"]
    assert sorted(model.tflite_endpoints()) == ["decode", "log_prob"]
    inputs = {
        name: [spec.name for spec in fn.input_signature] for name, fn in endpoints.items()
    }
    assert inputs == {
        "sample": ["num_samples", "seed"],  # No temperature: served at 1.0.
        "log_prob": ["x"],
        "encode": ["x"],
        "decode": ["latents"],
    }
    requests = model.signature_examples()
    x, latents = requests["log_prob"]["x"], requests["decode"]["latents"]
    served = endpoints["log_prob"](x=tf.constant(x))
    np.testing.assert_allclose(served["log_prob"].numpy(), model.log_prob(x), atol=1e-4)
    served = endpoints["encode"](x=tf.constant(x))
    np.testing.assert_allclose(served["latents"].numpy(), model.encode(x), atol=1e-5)
    served = endpoints["decode"](latents=tf.constant(latents))
    np.testing.assert_allclose(served["samples"].numpy(), model.decode(latents), atol=1e-5)
    lite = model.tflite_endpoints(batch_size=1)["decode"](tf.constant(latents[:1]))
    np.testing.assert_allclose(lite["samples"].numpy(), model.decode(latents[:1]), atol=1e-5)


def test_a_config_written_before_the_data_shape_rename_still_loads():
    model = keras_genmodels.build("flow", "reference", seed=0)
    config = model.get_config()
    config["event_shape"] = config.pop("data_shape")  # As files before the rename.
    old = RealNVP.from_config(config)
    assert old.data_shape == (2,)
    old.set_weights(model.get_weights())
    np.testing.assert_array_equal(old.sample(4, seed=1), model.sample(4, seed=1))
