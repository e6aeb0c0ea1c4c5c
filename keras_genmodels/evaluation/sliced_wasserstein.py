"""The sliced Wasserstein distance between two point clouds."""

import numpy as np


def sliced_wasserstein(x, y, num_projections=512, p=2, seed=0):
    """Monte Carlo sliced `p`-Wasserstein distance between two samples.

    `SW_p(X, Y) = (E_theta W_p^p(theta^T X, theta^T Y))^(1/p)` with `theta`
    uniform on the unit sphere. Each 1-D distance between equally many points
    is computed exactly by sorting; the expectation uses `num_projections`
    random directions drawn from `seed`, so two calls with the same seed use
    the same directions.

    References:
        Bonneel, Rabin, Peyre and Pfister, "Sliced and Radon Wasserstein
        Barycenters of Measures", Journal of Mathematical Imaging and Vision,
        2015.

    Args:
        x: `(n, d)` array.
        y: `(n, d)` array with the same `n` and `d`.
        num_projections: Number of random directions.
        p: Order, `>= 1`.
        seed: Int seed of the directions.

    Returns:
        The distance, a Python float.

    Example:

    ```python
    rng = np.random.default_rng(0)
    sliced_wasserstein(rng.normal(size=(500, 2)), rng.normal(size=(500, 2)) + 1.0)
    ```
    """
    x = np.asarray(x, dtype="float64")
    y = np.asarray(y, dtype="float64")
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(
            "`x` and `y` must be 2-D arrays of the same shape. Received: "
            f"x.shape={x.shape}, y.shape={y.shape}"
        )
    if len(x) == 0:
        raise ValueError("`x` and `y` must not be empty. Received: 0 points")
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
    return float(np.mean(np.abs(x_proj - y_proj) ** p) ** (1.0 / p))
