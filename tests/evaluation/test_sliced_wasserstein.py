"""The sliced Wasserstein distance, for equal and unequal sample sizes."""

import numpy as np
import pytest

from keras_genmodels.evaluation.sliced_wasserstein import quantile_grid, sliced_wasserstein


def _directions(dim, num_projections, seed):
    directions = np.random.default_rng(seed).standard_normal((dim, num_projections))
    return directions / np.linalg.norm(directions, axis=0, keepdims=True)


def _transport_cost(a, b, p):
    """Brute force: the optimal transport LP between two 1-D empirical measures."""
    optimize = pytest.importorskip("scipy.optimize")
    n, m = len(a), len(b)
    cost = np.abs(a[:, None] - b[None, :]) ** p
    rows = np.kron(np.eye(n), np.ones((1, m)))  # sum_j P_ij = 1 / n
    columns = np.kron(np.ones((1, n)), np.eye(m))  # sum_i P_ij = 1 / m
    result = optimize.linprog(
        cost.ravel(),
        A_eq=np.vstack([rows, columns]),
        b_eq=np.concatenate([np.full(n, 1 / n), np.full(m, 1 / m)]),
        bounds=(0, None),
        method="highs",
    )
    assert result.success
    return result.fun


@pytest.mark.parametrize(
    "n, m, p", [(3, 5, 2), (4, 6, 1), (7, 2, 3), (1, 4, 2), (6, 4, 1.5), (5, 5, 2)]
)
def test_matches_the_transport_lp_for_small_samples(n, m, p):
    rng = np.random.default_rng(n * 10 + m)
    x = rng.normal(size=(n, 3))
    y = rng.normal(size=(m, 3)) + 0.5
    num_projections, seed = 6, 4
    directions = _directions(3, num_projections, seed)
    costs = [
        _transport_cost(x @ directions[:, k], y @ directions[:, k], p)
        for k in range(num_projections)
    ]
    expected = np.mean(costs) ** (1 / p)
    assert sliced_wasserstein(x, y, num_projections, p, seed) == pytest.approx(
        expected, rel=1e-9, abs=1e-12
    )


def test_unequal_sizes_are_symmetric_and_zero_for_repeated_atoms():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 2)), rng.normal(size=(70, 2))
    assert sliced_wasserstein(x, y, 16) == pytest.approx(sliced_wasserstein(y, x, 16), 1e-12)
    # Each point twice is the same empirical measure.
    assert sliced_wasserstein(x, np.repeat(x, 2, axis=0), 16) == pytest.approx(0, abs=1e-12)
    # A shift by c moves every projection by theta^T c.
    c = np.array([3.0, 0.0])
    w1 = sliced_wasserstein(x, np.repeat(x, 3, axis=0) + c, 64, p=1, seed=2)
    assert w1 == pytest.approx(np.mean(np.abs(c @ _directions(2, 64, 2))), 1e-12)


def test_equal_sizes_keep_the_sorted_point_formula():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) * 2
    directions = _directions(2, 512, 0)
    x_proj, y_proj = np.sort(x @ directions, 0), np.sort(y @ directions, 0)
    before = float(np.mean(np.abs(x_proj - y_proj) ** 2) ** 0.5)
    assert sliced_wasserstein(x, y) == before  # Bit for bit.
    # The quantile grid of n and n atoms is the sorted points, weight 1/n each.
    weights, x_index, y_index = quantile_grid(200, 200)
    np.testing.assert_array_equal(x_index, np.arange(200))
    np.testing.assert_array_equal(y_index, np.arange(200))
    on_grid = np.mean(weights @ (np.abs(x_proj[x_index] - y_proj[y_index]) ** 2)) ** 0.5
    assert on_grid == pytest.approx(before, abs=1e-12)


def test_quantile_grid_of_two_and_three_atoms():
    weights, x_index, y_index = quantile_grid(2, 3)
    # Breakpoints 1/3, 1/2, 2/3, 1.
    np.testing.assert_allclose(weights, [1 / 3, 1 / 6, 1 / 6, 1 / 3])
    np.testing.assert_array_equal(x_index, [0, 0, 1, 1])
    np.testing.assert_array_equal(y_index, [0, 1, 1, 2])
    with pytest.raises(ValueError, match="n=0"):
        quantile_grid(0, 3)


def test_the_unequal_sizes_of_the_moons_command():
    # `train diffusion --dataset moons:num=600` compared 2,000 points with 600.
    rng = np.random.default_rng(3)
    value = sliced_wasserstein(rng.normal(size=(2000, 2)), rng.normal(size=(600, 2)))
    assert 0 < value < 0.2


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="same number of columns"):
        sliced_wasserstein(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="at least one point. Received: 3 and 0"):
        sliced_wasserstein(np.zeros((3, 2)), np.zeros((0, 2)))
    with pytest.raises(ValueError, match="finite"):
        sliced_wasserstein(np.zeros((3, 2)), np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="p=0.5"):
        sliced_wasserstein(np.zeros((3, 2)), np.zeros((2, 2)), p=0.5)
