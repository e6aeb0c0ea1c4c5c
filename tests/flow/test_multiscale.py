"""Image flows: actnorm, 1x1 convolution, couplings, squeeze, factor-out, and
the multi-scale RealNVP and Glow built from them."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_genmodels
from keras_genmodels.flow import presets
from keras_genmodels.flow.image_bijectors import FactorOut, LayerBijector, Squeeze
from keras_genmodels.flow.image_layers import (
    ActNorm,
    AffineCoupling,
    ConvResNet,
    Invertible1x1Conv,
    data_dependent_init,
    lu_decompose,
)
from keras_genmodels.flow.multiscale import MultiScaleFlow

SHAPE = (4, 4, 2)


def _perturb(layer, scale=0.1, seed=0):
    rng = np.random.default_rng(seed)
    for variable in layer.trainable_variables:
        noise = scale * rng.standard_normal(variable.shape).astype("float32")
        variable.assign(variable.numpy() + noise)
    return layer


def _built(layer, shape=SHAPE):
    layer.build((None, *shape))
    return _perturb(layer)


def _images(num, shape, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (num, *shape)) / 255.0).astype("float32")


def _check_bijector(bijector, shape=SHAPE, atol=1e-4):
    """Round trip to `atol` and log-det equal to autodiff's `log|det J|`."""
    x = tf.constant(np.random.default_rng(1).standard_normal((3, *shape)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = bijector.forward(x)
    size = int(np.prod(shape))
    jacobian = tape.batch_jacobian(y, x).numpy().reshape(3, size, -1).astype("float64")
    np.testing.assert_allclose(bijector.inverse(tf.identity(y)).numpy(), x.numpy(), atol=atol)
    expected = np.linalg.slogdet(jacobian)[1]
    fldj = bijector.forward_log_det_jacobian(x, event_ndims=3).numpy()
    np.testing.assert_allclose(np.broadcast_to(fldj, (3,)), expected, atol=atol)
    return expected


@pytest.fixture(scope="module")
def trained_glow():
    keras.utils.set_random_seed(0)
    model = presets.build_glow_mnist(data_shape=(8, 8, 1), steps_per_scale=2, filters=8,
                                     seed=0, decay_steps=None)
    images = tf.data.Dataset.from_tensor_slices(_images(128, (8, 8, 1)))
    history = model.fit(model.prepare_dataset(images, 32), epochs=3, verbose=0)
    return model, history


# ----------------------------------------------------------------------
# Each bijector: round trip and log-determinant against autodiff.
# ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: ActNorm(),
        lambda: Invertible1x1Conv(seed=3),
        lambda: AffineCoupling("checkerboard", 0, filters=4),
        lambda: AffineCoupling("checkerboard", 1, filters=4),
        lambda: AffineCoupling("channel", 0, filters=4),
        lambda: AffineCoupling("channel", 1, filters=4, num_blocks=0),
    ],
    ids=["actnorm", "conv1x1", "checker0", "checker1", "channel0", "channel1"],
)
def test_layer_bijectors_invert_with_exact_log_det(make):
    log_det = _check_bijector(LayerBijector(_built(make())))
    assert np.abs(log_det).max() > 1e-2  # Not volume preserving.


def test_squeeze_and_factor_out_invert_with_exact_log_det():
    assert Squeeze().forward(tf.zeros((1, *SHAPE))).shape == (1, 2, 2, 8)
    np.testing.assert_allclose(_check_bijector(Squeeze()), 0.0, atol=1e-5)
    inner = LayerBijector(_built(AffineCoupling("channel", 0, filters=4), (4, 4, 2)))
    wrapped = FactorOut(inner)
    x = tf.constant(np.random.default_rng(0).standard_normal((2, 4, 4, 4)), tf.float32)
    y = wrapped.forward(x)
    np.testing.assert_array_equal(y[..., :2].numpy(), x[..., :2].numpy())  # Factored out.
    _check_bijector(wrapped, (4, 4, 4))


def test_lu_decomposition_and_1x1_determinant():
    matrix = np.random.default_rng(0).standard_normal((5, 5))
    p, lower, upper = lu_decompose(matrix)
    np.testing.assert_allclose(p @ lower @ upper, matrix, atol=1e-12)
    conv = _built(Invertible1x1Conv(seed=1), (2, 2, 5))
    weight = conv.weight_matrix().numpy().astype("float64")
    np.testing.assert_allclose(
        np.log(np.abs(np.linalg.det(weight))), conv.log_s.numpy().sum(), atol=1e-5
    )


def test_actnorm_initialises_from_its_first_batch():
    norm = ActNorm()
    norm.build((None, *SHAPE))
    x = tf.constant(3.0 + 2.0 * np.random.default_rng(0).standard_normal((64, *SHAPE)),
                    tf.float32)
    y, _ = norm.forward_and_log_det(x)  # Outside the scope: no initialisation.
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    with data_dependent_init():
        y, log_det = norm.forward_and_log_det(x)
    np.testing.assert_allclose(y.numpy().mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.numpy().std(axis=(0, 1, 2)), 1.0, atol=1e-3)
    assert float(norm.initialized.numpy()) == 1.0
    np.testing.assert_allclose(log_det.numpy(), 16 * norm.log_scale.numpy().sum(), rtol=1e-6)
    # Initialised once: a second batch does not move it.
    bias = norm.bias.numpy()
    with data_dependent_init():
        norm.forward_and_log_det(x * 5.0)
    np.testing.assert_array_equal(norm.bias.numpy(), bias)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="mask"):
        AffineCoupling("stripes")
    with pytest.raises(ValueError, match="parity"):
        AffineCoupling("channel", parity=2)
    with pytest.raises(ValueError, match="at least 2 channels"):
        AffineCoupling("channel").build((None, 4, 4, 1))
    with pytest.raises(ValueError, match="filters"):
        ConvResNet(2, filters=0)
    with pytest.raises(ValueError, match="divisible by 4"):
        MultiScaleFlow((6, 6, 1), architecture="glow", num_scales=2)
    with pytest.raises(ValueError, match="architecture"):
        MultiScaleFlow((8, 8, 1), architecture="flow++")


# ----------------------------------------------------------------------
# Whole models.
# ----------------------------------------------------------------------
@pytest.mark.parametrize("architecture,num_scales", [("realnvp", 2), ("glow", 2)])
def test_multiscale_flow_is_exact(architecture, num_scales):
    model = MultiScaleFlow((4, 4, 2), architecture=architecture, num_scales=num_scales,
                           steps_per_scale=2, filters=4, seed=0)
    for layer in model.flow_layers:
        _perturb(layer, 0.05)
    images = _images(4, (4, 4, 2))
    z = model.encode(images)
    np.testing.assert_allclose(model.decode(z), images, atol=1e-4)
    # The whole chain (logit preprocessing included) against autodiff.
    z = tf.constant(z)
    with tf.GradientTape() as tape:
        tape.watch(z)
        y = model.bijector.forward(z)
    expected = np.linalg.slogdet(tape.batch_jacobian(y, z).numpy().astype("float64"))[1]
    fldj = model.bijector.forward_log_det_jacobian(z, event_ndims=1).numpy()
    np.testing.assert_allclose(fldj, expected, atol=1e-3)
    log_prob = model.distribution.log_prob(y).numpy()
    density = -0.5 * (z.numpy().astype("float64") ** 2).sum(1) - 16 * np.log(2 * np.pi) - fldj
    np.testing.assert_allclose(log_prob, density, atol=1e-3)


def test_log_prob_runs_each_network_once():
    model = MultiScaleFlow((8, 8, 1), architecture="realnvp", num_scales=3,
                           steps_per_scale=2, filters=4, seed=0)

    def convolutions(fn):
        spec = tf.TensorSpec((None, 8, 8, 1), tf.float32)
        graph = tf.function(fn).get_concrete_function(spec).graph
        return sum(op.type == "Conv2D" for op in graph.get_operations())

    couplings = sum(isinstance(layer, AffineCoupling) for layer in model.flow_layers)
    assert convolutions(model.encode_tensor) == 4 * couplings == 44
    assert convolutions(model.log_prob_tensor) == 4 * couplings


def test_training_initialises_actnorm_and_lowers_the_nll(trained_glow):
    model, history = trained_glow
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    norms = [layer for layer in model.flow_layers if isinstance(layer, ActNorm)]
    assert norms and all(float(n.initialized.numpy()) == 1.0 for n in norms)
    assert {id(v) for v in model.trainable_variables} == {
        id(v) for layer in model.flow_layers for v in layer.trainable_variables
    }
    # Serving graphs never assign variables (the initialisation is traced
    # for training only).
    graph = tf.function(model.log_prob_tensor).get_concrete_function(
        tf.TensorSpec((None, 8, 8, 1), tf.float32)
    ).graph
    assert not [op for op in graph.get_operations() if op.type == "AssignVariableOp"]


def test_trained_glow_samples_with_temperature(trained_glow):
    model, _ = trained_glow
    samples = model.sample(6, seed=1, temperature=0.7)
    assert samples.shape == (6, 8, 8, 1)
    assert samples.min() >= 0.0 and samples.max() <= 1.0
    cold = model.encode(model.sample(6, seed=1, temperature=0.5))
    warm = model.encode(model.sample(6, seed=1))
    # Quantisation to bin centres moves latents a little; the scale holds.
    assert np.abs(cold).mean() < 0.75 * np.abs(warm).mean()


def _resnet_params(cin, cout, filters, blocks):
    return (9 * cin * filters + filters + blocks * 2 * (9 * filters * filters + filters)
            + 9 * filters * 2 * cout + 2 * cout + cout)


def test_presets_have_exact_sizes():
    glow = keras_genmodels.build("flow", "glow-mnist", data_shape=(28, 28, 1))
    expected = 0
    for channels in (4, 8):  # After each squeeze: 14x14x4, then 7x7x8.
        expected += 8 * (2 * channels + 1)  # actnorm (+ its `initialized` flag)
        expected += 8 * (3 * channels * channels)  # 1x1: lower, upper (C^2 each), log_s
        expected -= 8 * (channels * channels - channels)  # ... log_s is C, not C^2
        expected += 8 * _resnet_params(channels // 2, channels - channels // 2, 48, 1)
    assert glow.count_params() == expected == 729_792
    realnvp = keras_genmodels.build("flow", "realnvp-mnist", data_shape=(28, 28, 1))
    assert realnvp.count_params() == 333_867
    assert glow.architecture == "glow" and realnvp.architecture == "realnvp"
    assert glow.data_kind == "image" and (glow.logit_alpha, glow.num_levels) == (0.05, 256)
    assert isinstance(glow.optimizer, keras.optimizers.AdamW)
    # 32x32 colour images build too.
    colour = keras_genmodels.build("flow", "glow-mnist", data_shape=(32, 32, 3), filters=8)
    assert colour.sample(1, seed=0).shape == (1, 32, 32, 3)
