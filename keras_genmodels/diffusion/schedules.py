"""Noise schedules `beta_t` of the forward diffusion process.

Schedules are computed in float64 numpy and cast once by the process that uses
them, so `alpha_bar_t = prod_{s <= t} (1 - beta_s)` keeps its precision over a
thousand steps.
"""

import math

import numpy as np

from keras_genmodels.base import check_positive_int


def linear(timesteps=1000, beta_start=1e-4, beta_end=0.02):
    """The linear schedule of Ho et al. (2020).

    `beta_t` runs linearly from `beta_start` to `beta_end`. The defaults are
    the paper's for `T = 1000`; for other `T` they are rescaled by `1000 / T`
    so that the total noise stays the same (as improved-diffusion does).

    References:
        Ho, Jain and Abbeel, "Denoising Diffusion Probabilistic Models",
        NeurIPS 2020.

    Args:
        timesteps: T, a positive int.
        beta_start: `beta_1` for `T = 1000`.
        beta_end: `beta_T` for `T = 1000`.

    Returns:
        `(T,)` float64 numpy array of betas.

    Example:

    ```python
    betas = linear(1000)
    betas[0], betas[-1]  # (1e-4, 0.02)
    ```
    """
    timesteps = check_positive_int(timesteps, "timesteps")
    if not 0 < beta_start <= beta_end < 1:
        raise ValueError(
            "Expected 0 < beta_start <= beta_end < 1. Received: "
            f"beta_start={beta_start}, beta_end={beta_end}"
        )
    scale = 1000.0 / timesteps
    return np.linspace(
        scale * beta_start, min(scale * beta_end, 0.999), timesteps, dtype="float64"
    )


def cosine(timesteps=1000, offset=0.008, max_beta=0.999):
    """The cosine schedule of Nichol and Dhariwal (2021).

    `alpha_bar(t) = f(t) / f(0)` with `f(t) = cos(((t / T + s) / (1 + s)) * pi / 2)^2`
    and `beta_t = min(1 - alpha_bar(t) / alpha_bar(t - 1), max_beta)`.

    References:
        Nichol and Dhariwal, "Improved Denoising Diffusion Probabilistic
        Models", ICML 2021.

    Args:
        timesteps: T, a positive int.
        offset: s, which keeps `beta_t` from being too small near `t = 0`.
        max_beta: Upper clip of `beta_t`, which avoids a singularity at T.

    Returns:
        `(T,)` float64 numpy array of betas.

    Example:

    ```python
    betas = cosine(1000)
    ```
    """
    timesteps = check_positive_int(timesteps, "timesteps")
    if offset < 0:
        raise ValueError(f"`offset` must be non-negative. Received: offset={offset}")
    if not 0 < max_beta < 1:
        raise ValueError(f"`max_beta` must be in (0, 1). Received: max_beta={max_beta}")

    def f(t):
        return np.cos((t / timesteps + offset) / (1 + offset) * math.pi / 2) ** 2

    steps = np.arange(timesteps + 1, dtype="float64")
    alpha_bar = f(steps) / f(0.0)
    betas = 1.0 - alpha_bar[1:] / alpha_bar[:-1]
    return np.clip(betas, 0.0, max_beta)


SCHEDULES = {"linear": linear, "cosine": cosine}


def get(name, timesteps):
    """Returns the betas of a named schedule.

    Args:
        name: `"linear"` or `"cosine"`.
        timesteps: T.

    Returns:
        `(T,)` float64 numpy array.
    """
    if name not in SCHEDULES:
        raise ValueError(
            f"Unknown schedule. Expected one of {sorted(SCHEDULES)}. "
            f"Received: schedule={name!r}"
        )
    return SCHEDULES[name](timesteps)
