"""Autoregressive flows: MADE masks, MAF and IAF exactness, training, presets."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_genmodels
from keras_genmodels import data
from keras_genmodels.flow import presets
from keras_genmodels.flow.autoregressive import AutoregressiveFlow
from keras_genmodels.flow.made import MADE, MaskedDense, hidden_degrees


def _perturb(model, scale=0.3, seed=0):
    """Moves the zero-initialised MADE outputs away from the identity flow."""
    rng = np.random.default_rng(seed)
    for made in model.mades:
        for variable in made.output_layer.trainable_variables:
            noise = scale * rng.standard_normal(variable.shape)
            variable.assign(variable.numpy() + noise.astype("float32"))
    return model


@pytest.fixture(scope="module")
def trained_maf():
    keras.utils.set_random_seed(0)
    points = np.stack(list(data.load("moons:num=2048").as_numpy_iterator()))
    model = presets.build_maf2d(num_flows=4, hidden_units=(32, 32), seed=0,
                                decay_steps=None)
    history = model.fit(
        model.prepare_dataset(tf.data.Dataset.from_tensor_slices(points), 128),
        epochs=4, verbose=0,
    )
    return model, history


# ----------------------------------------------------------------------
# MADE.
# ----------------------------------------------------------------------
def test_made_parameter_count_is_exact():
    made = MADE(event_size=3, hidden_units=(8, 6))
    made.build((None, 3))
    # Whole kernels (masked at call time) + biases + the log-scale factor.
    expected = (3 * 8 + 8) + (8 * 6 + 6) + (6 * 6 + 6) + 3
    assert made.count_params() == expected == 131
    shapes = {w.path.split("/")[-1]: tuple(w.shape) for w in made.trainable_weights}
    assert shapes["log_scale_factor"] == (3,)


def test_made_is_autoregressive():
    made = MADE(event_size=4, hidden_units=(16, 16))
    made.build((None, 4))
    rng = np.random.default_rng(0)
    for variable in made.output_layer.trainable_variables:
        variable.assign(rng.standard_normal(variable.shape).astype("float32"))
    x = tf.constant(rng.standard_normal((5, 4)), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        shift, log_scale = made(x)
    for out in (shift, log_scale):
        jacobian = np.abs(tape.batch_jacobian(out, x).numpy()).sum(0)
        # Output d depends on inputs 1..d-1 only: strictly lower triangular.
        assert np.all(np.triu(jacobian) == 0)
        assert np.all(np.tril(jacobian, -1)[np.tril_indices(4, -1)] > 0)


def test_masks_follow_the_degrees():
    np.testing.assert_array_equal(hidden_degrees(5, 3), [1, 2, 1, 2, 1])
    np.testing.assert_array_equal(hidden_degrees(3, 2), [1, 1, 1])
    layer = MaskedDense(in_degrees=[1, 2], out_degrees=[1, 2, 1])
    np.testing.assert_array_equal(layer.mask, [[1, 1, 1], [0, 1, 0]])
    strict = MaskedDense(in_degrees=[1, 1], out_degrees=[1, 2], strict=True)
    np.testing.assert_array_equal(strict.mask, [[0, 1], [0, 1]])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="event_size=1"):
        MADE(event_size=1)
    with pytest.raises(ValueError, match="in_degrees"):
        MaskedDense(in_degrees=[], out_degrees=[1])
    with pytest.raises(ValueError, match="input degrees"):
        MaskedDense(in_degrees=[1, 2], out_degrees=[1])(tf.zeros((1, 3)))
    with pytest.raises(ValueError, match="inverse"):
        AutoregressiveFlow((2,), inverse="yes")
    with pytest.raises(ValueError, match="permutation"):
        AutoregressiveFlow((2,), permutation="shuffle")
    with pytest.raises(ValueError, match="num_flows"):
        AutoregressiveFlow((2,), num_flows=0)


# ----------------------------------------------------------------------
# Exactness.
# ----------------------------------------------------------------------
@pytest.mark.parametrize("inverse", [False, True], ids=["maf", "iaf"])
def test_decode_inverts_encode(inverse):
    model = _perturb(AutoregressiveFlow((3,), num_flows=3, hidden_units=(8,), inverse=inverse))
    x = np.random.default_rng(1).standard_normal((32, 3)).astype("float32")
    z = model.encode(x)
    assert np.abs(z - x).max() > 1e-2  # Not the identity.
    np.testing.assert_allclose(model.decode(z), x, atol=1e-4)
    np.testing.assert_allclose(model.encode(model.decode(z)), z, atol=1e-4)


@pytest.mark.parametrize("inverse", [False, True], ids=["maf", "iaf"])
def test_log_det_and_log_prob_match_autodiff(inverse):
    model = _perturb(AutoregressiveFlow((3,), num_flows=3, hidden_units=(8,), inverse=inverse))
    x = tf.constant(np.random.default_rng(2).standard_normal((16, 3)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = model.bijector.inverse(x)
    det = np.linalg.det(tape.batch_jacobian(z, x).numpy().astype("float64"))
    assert np.abs(np.log(np.abs(det))).max() > 0.1  # Not volume preserving.
    ildj = model.bijector.inverse_log_det_jacobian(x, event_ndims=1).numpy()
    np.testing.assert_allclose(ildj, np.log(np.abs(det)), atol=1e-4)
    z = z.numpy().astype("float64")
    expected = -0.5 * (z**2).sum(1) - 1.5 * math.log(2 * math.pi) + np.log(np.abs(det))
    np.testing.assert_allclose(model.log_prob(x.numpy()), expected, atol=1e-4)


def test_iaf_samples_in_one_pass_and_maf_in_d():
    maf = AutoregressiveFlow((4,), num_flows=1, hidden_units=(8,))
    iaf = AutoregressiveFlow((4,), num_flows=1, hidden_units=(8,), inverse=True)
    assert (maf.sequential_direction, iaf.sequential_direction) == ("decode", "encode")

    def has_loop(fn, spec):
        graph = tf.function(fn).get_concrete_function(spec).graph
        return any(op.type == "While" for op in graph.get_operations())

    spec = tf.TensorSpec((None, 4), tf.float32)
    assert has_loop(maf.decode_tensor, spec) and not has_loop(maf.log_prob_tensor, spec)
    assert has_loop(iaf.log_prob_tensor, spec) and not has_loop(iaf.decode_tensor, spec)


# ----------------------------------------------------------------------
# Training and presets.
# ----------------------------------------------------------------------
def test_maf_loss_falls_on_moons(trained_maf):
    model, history = trained_maf
    losses = history.history["loss"]
    assert losses[-1] < losses[0] - 0.3
    owned = {id(v) for v in model.trainable_variables}
    made_variables = [v for made in model.mades for v in made.trainable_variables]
    assert len(made_variables) == len(model.trainable_variables) == 4 * 7
    assert all(id(v) in owned for v in made_variables)


def test_trained_maf_samples_lie_on_the_moons(trained_maf):
    model, _ = trained_maf
    samples = model.sample(500, seed=1)
    assert samples.shape == (500, 2) and np.isfinite(samples).all()
    # Trained: samples are likelier under the model than N(0, I) draws are.
    noise = np.random.default_rng(0).standard_normal((500, 2)).astype("float32") * 2
    assert model.log_prob(samples).mean() > model.log_prob(noise).mean() + 1.0


def test_presets_have_exact_sizes():
    per_made_2d = (2 * 64 + 64) + (64 * 64 + 64) + (64 * 4 + 4) + 2
    for name, inverse in (("maf2d", False), ("iaf2d", True)):
        model = keras_genmodels.build("flow", name)
        assert isinstance(model, AutoregressiveFlow) and model.inverse is inverse
        assert model.count_params() == 16 * per_made_2d == 73_824
    d = 6
    per_made = (d * 128 + 128) + (128 * 128 + 128) + (128 * 2 * d + 2 * d) + d
    for name in ("maf-tabular", "iaf-tabular"):
        model = keras_genmodels.build("flow", name, data_shape=(d,))
        assert model.count_params() == 5 * per_made == 94_810
        assert model.data_kind == "points"


def test_tabular_preset_trains_on_a_npy_file(tmp_path):
    rng = np.random.default_rng(0)
    table = rng.standard_normal((400, 5)) @ rng.standard_normal((5, 5))
    path = str(tmp_path / "table.npy")
    np.save(path, table.astype("float32"))
    train = data.load(path, "train")
    assert tuple(train.element_spec.shape) == (5,)
    model = keras_genmodels.build(
        "flow", "maf-tabular", data_shape=tuple(train.element_spec.shape),
        num_flows=2, hidden_units=(16,), seed=0,
    )
    history = model.fit(model.prepare_dataset(train, 64), epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    metrics = model.evaluation_metrics(data.load(path, "test"))
    assert metrics["num_examples"] == 40 and np.isfinite(metrics["test_nll"])
