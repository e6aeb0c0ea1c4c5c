"""The sliced Wasserstein distance between two point clouds."""

import numpy as np


def sliced_wasserstein(x, y, num_projections=512, p=2, seed=0):
    """Monte Carlo sliced `p`-Wasserstein distance between two samples.

    `SW_p(X, Y) = (E_theta W_p^p(theta^T X, theta^T Y))^(1/p)` with `theta`
    uniform on the unit sphere. The expectation uses `num_projections`
    random directions drawn from `seed`, so two calls with the same seed use
    the same directions. Each 1-D distance is exact: between the empirical
    measures of `n` and `m` projected points,

    `W_p^p = int_0^1 |F^-1(u) - G^-1(u)|^p du`

    where `F^-1` and `G^-1` are the two quantile functions, step functions
    that change value at `u = i / n` and `u = j / m`. On the common grid of
    those `<= n + m - 1` steps the integral is a finite sum. When `n == m`
    it is the mean of `|x_(i) - y_(i)|^p` over the sorted points.

    References:
        Bonneel, Rabin, Peyre and Pfister, "Sliced and Radon Wasserstein
        Barycenters of Measures", Journal of Mathematical Imaging and Vision,
        2015.
        Peyre and Cuturi, "Computational Optimal Transport", Foundations and
        Trends in Machine Learning, 2019, remark 2.30 (1-D quantile
        functions).

    Args:
        x: `(n, d)` array.
        y: `(m, d)` array with the same `d`; `m` may differ from `n`.
        num_projections: Number of random directions.
        p: Order, `>= 1`.
        seed: Int seed of the directions.

    Returns:
        The distance, a Python float.

    Example:

    ```python
    rng = np.random.default_rng(0)
    sliced_wasserstein(rng.normal(size=(500, 2)), rng.normal(size=(300, 2)) + 1.0)
    ```
    """
    x = np.asarray(x, dtype="float64")
    y = np.asarray(y, dtype="float64")
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            "`x` and `y` must be 2-D arrays with the same number of columns. "
            f"Received: x.shape={x.shape}, y.shape={y.shape}"
        )
    if len(x) == 0 or len(y) == 0:
        raise ValueError(
            "`x` and `y` must each hold at least one point. Received: "
            f"{len(x)} and {len(y)} points"
        )
    if not np.all(np.isfinite(x)) or not np.all(np.isfinite(y)):
        raise ValueError("`x` and `y` must be finite. Received: NaN or inf values")
    if int(num_projections) < 1:
        raise ValueError(
            f"`num_projections` must be positive. Received: num_projections={num_projections}"
        )
    if p < 1:
        raise ValueError(f"`p` must be at least 1. Received: p={p}")
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((x.shape[1], int(num_projections)))
    directions /= np.linalg.norm(directions, axis=0, keepdims=True)
    x_proj = np.sort(x @ directions, axis=0)
    y_proj = np.sort(y @ directions, axis=0)
    if len(x) == len(y):
        return float(np.mean(np.abs(x_proj - y_proj) ** p) ** (1.0 / p))
    weights, x_index, y_index = quantile_grid(len(x), len(y))
    powers = np.abs(x_proj[x_index] - y_proj[y_index]) ** p  # (steps, projections)
    return float(np.mean(weights @ powers) ** (1.0 / p))


def quantile_grid(n, m):
    """The common steps of the quantile functions of `n` and `m` equal atoms.

    The quantile function of `n` sorted atoms `x_(0) <= ... <= x_(n-1)` is
    `x_(ceil(u n) - 1)` on `(0, 1]`; it changes value at `u = i / n`. The
    union of the breakpoints `i / n` and `j / m`, counted exactly as the
    integers `i m` and `j n` in units of `1 / (n m)`, cuts `(0, 1]` into
    intervals on which both quantile functions are constant.

    Args:
        n: Number of atoms of the first measure (positive int).
        m: Number of atoms of the second measure (positive int).

    Returns:
        `(weights, x_index, y_index)`: the interval lengths (float64, summing
        to 1) and, for each interval, the rank of the atom each quantile
        function takes there (int arrays into the sorted atoms).
    """
    n, m = int(n), int(m)
    if n < 1 or m < 1:
        raise ValueError(f"`n` and `m` must be positive. Received: n={n}, m={m}")
    ends = np.union1d(np.arange(1, n + 1, dtype="int64") * m,
                      np.arange(1, m + 1, dtype="int64") * n)
    starts = np.concatenate([[0], ends[:-1]])
    weights = (ends - starts) / float(n * m)
    x_index = -(-ends // m) - 1  # ceil(end / m) - 1
    y_index = -(-ends // n) - 1
    return weights, x_index, y_index
