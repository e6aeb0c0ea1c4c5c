"""DPM-Solver++(2M): its accuracy on data with an analytic noise predictor,
its step table, and `sample(method="dpmpp_2m")` with and without guidance.

The phone loop (`solver_step`, `sample_loop`, the TF Lite loop) is checked
in `tests/diffusion/test_phone_loop.py`.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_genmodels.diffusion.ddpm import DDPM
from keras_genmodels.diffusion.gaussian import METHODS, GaussianDiffusion
from keras_genmodels.presets import build

pytestmark = pytest.mark.xdist_group("test_diffusion_solvers")

MU, S = 0.5, 0.5  # Data: N(MU, S^2) in each of 2 dimensions.


def _gaussian_case(process, num_steps, rows=2000):
    """The exact noise predictor of N(MU, S^2) data, start noise, and the
    exact answer of the sampler's ODE for that noise.

    Under the process `x_t ~ N(a_t MU, a_t^2 S^2 + s_t^2)` (`a_t^2 =
    alpha_bar_t`, `s_t^2 = 1 - alpha_bar_t`), and the probability-flow ODE
    keeps `z = (x_t - a_t MU) / sqrt(a_t^2 S^2 + s_t^2)` fixed. Every
    sampler starts at the last respaced timestep and ends with the same
    data prediction from `t = 0`, `E[x_0 | x_0' = a_0 MU + sqrt(...) z]`,
    so that is the exact answer each discretisation error is measured from.
    """
    alpha_bar = tf.constant(process.np["alpha_bar"], tf.float32)

    def predict(x_t, t):
        ab = tf.gather(alpha_bar, t)[:, None]
        return tf.sqrt(1.0 - ab) * (x_t - tf.sqrt(ab) * MU) / (ab * S * S + 1.0 - ab)

    seed = tf.constant([1, 2])
    x_T = tf.random.stateless_normal([rows, 2], seed=seed).numpy().astype("float64")
    ab = process.np["alpha_bar"]
    start = int(process.timestep_sequence(num_steps).numpy()[-1])
    z = (x_T - np.sqrt(ab[start]) * MU) / np.sqrt(ab[start] * S * S + 1.0 - ab[start])
    a0 = ab[0]
    x_first = np.sqrt(a0) * MU + np.sqrt(a0 * S * S + 1.0 - a0) * z
    exact = MU + S * S * np.sqrt(a0) / (a0 * S * S + 1.0 - a0) * (x_first - np.sqrt(a0) * MU)
    return predict, seed, exact


@pytest.mark.parametrize("num_steps, min_ratio", [(10, 2.5), (20, 10.0)])
def test_dpmpp_2m_is_much_closer_to_the_exact_ode_solution_than_ddim(num_steps, min_ratio):
    process = GaussianDiffusion(1000, "cosine")
    predict, seed, exact = _gaussian_case(process, num_steps)
    errors = {}
    for method in ("ddim", "dpmpp_2m"):
        out = process.sample(predict, [2000, 2], seed, num_steps, method=method).numpy()
        errors[method] = np.sqrt(np.mean((out - exact) ** 2))
    # Measured: 10 steps 0.072 vs 0.022 (3.2x), 20 steps 0.037 vs 4.8e-4 (78x).
    assert errors["ddim"] / errors["dpmpp_2m"] > min_ratio, errors


def test_dpmpp_2m_error_falls_faster_than_first_order():
    process = GaussianDiffusion(1000, "cosine")
    errors = []
    for num_steps in (10, 20):
        predict, seed, exact = _gaussian_case(process, num_steps)
        out = process.sample(predict, [2000, 2], seed, num_steps, method="dpmpp_2m")
        errors.append(np.sqrt(np.mean((out.numpy() - exact) ** 2)))
    # First order would halve the error; the solver gains far more.
    assert errors[1] < errors[0] / 4, errors


def test_table_is_first_order_at_both_ends_and_the_same_in_graph():
    process = GaussianDiffusion(100, "linear")
    table = process.dpmpp_2m_table(8)
    assert isinstance(table["t"], np.ndarray)
    np.testing.assert_array_equal(table["t"], [87, 75, 62, 50, 37, 25, 12, 0])
    second = table["prev_x0_coef"] != 0
    np.testing.assert_array_equal(second, [False] + [True] * 5 + [False, False])
    # Into the data: x_0 is the last data prediction.
    assert table["x_coef"][-1] == 0 and table["x0_coef"][-1] == 1
    # The weights of D_t and D_u sum to the first-order (DDIM) weight of D.
    ab = process.np["alpha_bar"]
    t, s = table["t"][:-1], table["t"][1:]
    lam = 0.5 * np.log(ab / (1.0 - ab))
    ddim = np.sqrt(ab[s]) * -np.expm1(-(lam[s] - lam[t]))
    total = (table["x0_coef"] + table["prev_x0_coef"])[:-1]
    np.testing.assert_allclose(total, ddim, rtol=1e-6)
    np.testing.assert_allclose(table["x_coef"][:-1], np.sqrt((1 - ab[s]) / (1 - ab[t])), rtol=1e-6)
    in_graph = tf.function(process.dpmpp_2m_table)(tf.constant(8))
    for name, value in table.items():
        np.testing.assert_array_equal(in_graph[name].numpy(), value, err_msg=name)


@pytest.mark.parametrize("num_steps", [1, 2, 3])
def test_three_steps_or_fewer_are_ddim(num_steps):
    process = GaussianDiffusion(50, "linear", clip_range=1.0)

    def predict(x_t, t):
        return 0.3 * x_t + tf.cast(t, tf.float32)[:, None] / 50.0

    seed = tf.constant([5, 6])
    ddim = process.sample(predict, [8, 3], seed, num_steps, method="ddim", eta=0.0)
    solver = process.sample(predict, [8, 3], seed, num_steps, method="dpmpp_2m")
    np.testing.assert_allclose(solver.numpy(), ddim.numpy(), atol=1e-6)


def test_clipping_bounds_the_data_prediction():
    process = GaussianDiffusion(50, "linear", clip_range=1.0)
    table = process.dpmpp_2m_table(5)
    x = tf.fill([2, 3], 4.0)
    _, x0 = process.dpmpp_2m_step(lambda x_t, t: -x_t, x, tf.zeros_like(x), table, 2)
    np.testing.assert_array_equal(x0.numpy(), np.ones((2, 3)))


@pytest.fixture(scope="module")
def points_model():
    return build("diffusion", "mlp2d", timesteps=50, hidden_units=8, num_layers=1, seed=0)


def test_sample_is_deterministic_and_seeded(points_model):
    first = points_model.sample(6, seed=[1, 2], method="dpmpp_2m", num_steps=10)
    again = points_model.sample(6, seed=[1, 2], method="dpmpp_2m", num_steps=10)
    other = points_model.sample(6, seed=[3, 4], method="dpmpp_2m", num_steps=10)
    np.testing.assert_array_equal(first, again)
    assert first.shape == (6, 2) and np.all(np.isfinite(first))
    assert not np.allclose(first, other)
    # It is the process's solver from the seed's x_T, with the EMA network.
    x_T = tf.random.stateless_normal([6, 2], seed=[1, 2])
    direct = points_model.process.dpmpp_2m_loop(points_model.noise_predictor(), x_T, 10)
    np.testing.assert_allclose(first, direct.numpy(), rtol=1e-5, atol=1e-5)


def test_unknown_method_lists_the_valid_ones(points_model):
    assert METHODS == ("ddpm", "ddim", "dpmpp_2m")
    expected = "`method` must be one of ('ddpm', 'ddim', 'dpmpp_2m'). Received: method='euler'"
    with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        points_model.sample(2, method="euler")
    with pytest.raises(ValueError, match="dpmpp_2m"):
        GaussianDiffusion(5).sample(lambda x, t: x, [1, 2], [0, 0], 5, method="heun")


def test_sampling_method_dpmpp_2m_serves_a_tensor_step_count():
    model = build(
        "diffusion", "mlp2d", timesteps=30, hidden_units=8, num_layers=1, seed=0,
        sampling_method="dpmpp_2m", sampling_steps=6,
    )
    default = model.sample(3, seed=[1, 2])
    explicit = model.sample(3, seed=[1, 2], method="dpmpp_2m", num_steps=6)
    np.testing.assert_array_equal(default, explicit)
    # The served `sample` signature's step count is a tensor: the table is
    # then computed in the graph, to the same numbers.
    served = model.serving_endpoints()["sample"](
        num_samples=tf.constant(3), seed=tf.constant([1, 2]), num_steps=tf.constant(6)
    )
    np.testing.assert_allclose(served["samples"].numpy(), explicit, atol=1e-6)


def _conditional_points_model(num_classes=3, timesteps=20):
    """An untrained class-conditional DDPM on 2-D points (no clipping, so
    every label shows in the samples)."""
    keras.utils.set_random_seed(0)
    x = keras.Input((2,))
    t = keras.Input((), dtype="int32")
    labels = keras.Input((), dtype="int32")
    features = keras.layers.Concatenate()([
        x,
        keras.layers.Embedding(timesteps, 8)(t),
        keras.layers.Embedding(num_classes + 1, 8, embeddings_initializer="normal")(labels),
    ])
    hidden = keras.layers.Dense(16, activation="tanh")(features)
    network = keras.Model([x, t, labels], keras.layers.Dense(2)(hidden))
    return DDPM(network, timesteps=timesteps, num_classes=num_classes, seed=0)


def test_guidance_works_with_the_solver():
    model = _conditional_points_model()
    options = dict(seed=[1, 2], method="dpmpp_2m", num_steps=8)
    zeros, ones = [0, 0, 0, 0], [1, 1, 1, 1]
    guided = model.sample(4, labels=zeros, guidance_scale=3.0, **options)
    assert guided.shape == (4, 2) and np.all(np.isfinite(guided))

    def differs(**kwargs):
        other = model.sample(4, **{**dict(labels=zeros, guidance_scale=3.0), **kwargs}, **options)
        return np.abs(guided - other).max() / np.abs(guided).max() > 1e-3

    assert differs(labels=ones) and differs(guidance_scale=1.0)
    # w = 0 is the unconditional prediction: the labels no longer matter.
    np.testing.assert_allclose(
        model.sample(4, labels=zeros, guidance_scale=0.0, **options),
        model.sample(4, labels=ones, guidance_scale=0.0, **options), rtol=1e-6,
    )
    # The loop is the process's solver on the guided predictor, unchanged.
    x_T = tf.random.stateless_normal([4, 2], seed=[1, 2])
    predict = model.guided_predictor(tf.constant(zeros), 3.0)
    direct = model.process.dpmpp_2m_loop(predict, x_T, 8)
    np.testing.assert_allclose(guided, direct.numpy(), rtol=1e-5, atol=1e-5)
