"""Schedules, the forward process, the posterior and the samplers."""

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_genmodels.diffusion import schedules
from keras_genmodels.diffusion.gaussian import GaussianDiffusion


def test_linear_schedule_matches_ho_et_al():
    betas = schedules.linear(1000)
    assert betas.dtype == np.float64 and betas.shape == (1000,)
    assert betas[0] == pytest.approx(1e-4) and betas[-1] == pytest.approx(0.02)
    np.testing.assert_allclose(np.diff(betas), (0.02 - 1e-4) / 999)


def test_linear_schedule_rescales_for_other_lengths():
    betas = schedules.linear(100)
    assert betas[0] == pytest.approx(1e-3) and betas[-1] == pytest.approx(0.2)


def test_cosine_schedule_matches_closed_form():
    T, s = 1000, 0.008
    betas = schedules.cosine(T)
    alpha_bar = np.cumprod(1.0 - betas)
    t = np.arange(1, T + 1)
    expected = np.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2 / math.cos(
        s / (1 + s) * math.pi / 2
    ) ** 2
    unclipped = betas < 0.999
    np.testing.assert_allclose(alpha_bar[unclipped], expected[unclipped], rtol=1e-9)
    assert betas.max() <= 0.999


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: schedules.get("quadratic", 10), "Unknown schedule"),
        (lambda: schedules.linear(0), "timesteps"),
        (lambda: schedules.linear(10, beta_start=0.1, beta_end=0.01), "beta_start"),
        (lambda: schedules.cosine(10, max_beta=1.0), "max_beta"),
        (lambda: GaussianDiffusion(10, np.full(5, 0.1)), "schedule array"),
        (lambda: GaussianDiffusion(10, clip_range=0.0), "clip_range"),
    ],
)
def test_bad_arguments_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.fixture(scope="module")
def process():
    return GaussianDiffusion(1000, "linear")


def test_posterior_matches_bayes_rule(process):
    """`q(x_{t-1} | x_t, x_0)` from the product of the two Gaussians."""
    betas = process.np["betas"]
    alpha_bar = process.np["alpha_bar"]
    rng = np.random.default_rng(0)
    t = np.array([1, 10, 500, 999])
    x_0, x_t = rng.standard_normal((2, 4, 3))
    mean, variance = process.q_posterior(
        tf.constant(x_0, tf.float32), tf.constant(x_t, tf.float32), tf.constant(t)
    )
    a_t, ab_prev = 1.0 - betas[t], alpha_bar[t - 1]
    precision = a_t / betas[t] + 1.0 / (1.0 - ab_prev)
    expected_var = 1.0 / precision
    expected_mean = expected_var[:, None] * (
        np.sqrt(a_t)[:, None] / betas[t][:, None] * x_t
        + np.sqrt(ab_prev)[:, None] / (1.0 - ab_prev)[:, None] * x_0
    )
    np.testing.assert_allclose(mean.numpy(), expected_mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(variance.numpy()[:, 0], expected_var, rtol=1e-5)
    # At t = 0 the posterior is the data itself.
    mean_0, var_0 = process.q_posterior(
        tf.constant(x_0, tf.float32), tf.constant(x_t, tf.float32), tf.zeros([4], tf.int32)
    )
    np.testing.assert_allclose(mean_0.numpy(), x_0, atol=1e-6)
    assert np.all(var_0.numpy() == 0.0)


def test_q_sample_at_T_is_standard_normal(process):
    n = 200_000
    x_0 = tf.random.stateless_uniform([n, 2], [0, 1], -1.0, 1.0)
    noise = tf.random.stateless_normal([n, 2], [0, 2])
    t = tf.fill([n], process.timesteps - 1)
    x_t = process.q_sample(x_0, t, noise).numpy()
    # Standard error of the mean is 1 / sqrt(n) = 0.0022.
    np.testing.assert_allclose(x_t.mean(0), 0.0, atol=0.01)
    np.testing.assert_allclose(x_t.var(0), 1.0, atol=0.015)
    assert process.np["alpha_bar"][-1] < 5e-5


def test_predict_x0_inverts_q_sample(process):
    rng = np.random.default_rng(1)
    x_0 = tf.constant(rng.uniform(-1, 1, (5, 4, 4, 1)), tf.float32)
    noise = tf.constant(rng.standard_normal((5, 4, 4, 1)), tf.float32)
    t = tf.constant([0, 3, 100, 700, 900])
    x_t = process.q_sample(x_0, t, noise)
    np.testing.assert_allclose(
        process.predict_x0_from_noise(x_t, t, noise).numpy(), x_0.numpy(), atol=1e-3
    )
    np.testing.assert_allclose(
        process.predict_noise_from_x0(x_t, t, x_0).numpy(), noise.numpy(), atol=1e-3
    )


@pytest.mark.parametrize("clip", [None, 1.0])
def test_ddpm_step_is_ddim_with_eta_one(clip):
    process = GaussianDiffusion(100, "cosine", clip_range=clip)
    rng = np.random.default_rng(2)
    x_t, eps, z = (tf.constant(rng.standard_normal((4, 3)), tf.float32) for _ in range(3))
    t = tf.constant([1, 20, 50, 99])
    ddpm = process.ddpm_step(x_t, t, eps, z)
    ddim = process.ddim_step(x_t, t, t - 1, eps, z, eta=1.0)
    np.testing.assert_allclose(ddpm.numpy(), ddim.numpy(), atol=2e-5)


def test_timestep_sequence():
    process = GaussianDiffusion(10)
    assert process.timestep_sequence(10).numpy().tolist() == list(range(10))
    assert process.timestep_sequence(4).numpy().tolist() == [0, 2, 5, 7]
    assert process.timestep_sequence(1).numpy().tolist() == [0]


@pytest.mark.parametrize(
    "method, steps",
    [("ddpm", 50), ("ddpm", 7), ("ddim", 50), ("ddim", 5), ("dpmpp_2m", 10)],
)
def test_samplers_with_an_oracle_return_the_single_data_point(method, steps):
    """With the exact noise of a one-point data set every sampler ends there."""
    process = GaussianDiffusion(50, "linear")
    target = tf.constant([[0.5, -0.25]])
    alpha_bar = tf.constant(process.np["alpha_bar"], tf.float32)

    def oracle(x_t, t):
        ab = tf.gather(alpha_bar, t)[:, None]
        return (x_t - tf.sqrt(ab) * target) / tf.sqrt(1.0 - ab)

    out = process.sample(oracle, [16, 2], tf.constant([3, 4]), steps, method=method, eta=0.0)
    np.testing.assert_allclose(out.numpy(), np.tile(target.numpy(), (16, 1)), atol=1e-3)


def test_sample_rejects_unknown_method():
    with pytest.raises(ValueError, match="method"):
        GaussianDiffusion(5).sample(lambda x, t: x, [1, 2], [0, 0], 5, method="euler")
