"""Mode coverage of samples from a 2-D Gaussian mixture.

The standard protocol of VEEGAN (Srivastava et al., 2017) and PacGAN (Lin et
al., 2018): draw 2,500 samples; a sample is *high quality* when it lies within
3 standard deviations of its nearest centre; a mode is *covered* when it is
the nearest centre of at least one high-quality sample. The balance of the
covered modes is the KL divergence from the histogram of high-quality samples
over the modes, `p`, to the uniform histogram:
`KL(p || U) = sum_k p_k log(K p_k)` (0 when every mode gets the same share,
`log K` when one mode gets everything).

References:
    Srivastava et al., "VEEGAN: Reducing Mode Collapse in GANs using Implicit
    Variational Learning", NeurIPS 2017.
    Lin et al., "PacGAN: The power of two samples in generative adversarial
    networks", NeurIPS 2018.
"""

import numpy as np

NUM_SAMPLES = 2_500
NUM_STDS = 3.0


def mode_coverage(samples, centers, sigma, num_stds=NUM_STDS):
    """Counts covered modes and high-quality samples.

    Args:
        samples: `(N, 2)` array of generated points.
        centers: `(K, 2)` array of mode centres.
        sigma: Standard deviation of each mode.
        num_stds: A sample is high quality within `num_stds * sigma` of its
            nearest centre.

    Returns:
        A dict: `modes_covered` (int), `num_modes` (K),
        `high_quality_fraction` (float in [0, 1]), `kl_to_uniform` (float, or
        `None` when no sample is high quality) and `num_samples`.

    Example:

    ```python
    centers = np.array([[0.0, 0.0], [2.0, 0.0]])
    mode_coverage(np.array([[0.01, 0.0], [5.0, 5.0]]), centers, sigma=0.05)
    # {'modes_covered': 1, 'num_modes': 2, 'high_quality_fraction': 0.5, ...}
    ```
    """
    samples = np.asarray(samples, dtype="float64")
    centers = np.asarray(centers, dtype="float64")
    if centers.ndim != 2 or centers.shape[0] == 0:
        raise ValueError(
            f"`centers` must have shape (K, D) with K > 0. Received: shape {centers.shape}"
        )
    if samples.ndim != 2 or samples.shape[0] == 0 or samples.shape[1] != centers.shape[-1]:
        raise ValueError(
            f"`samples` must have shape (N, {centers.shape[-1]}) with N > 0. "
            f"Received: shape {samples.shape}"
        )
    if not sigma > 0:
        raise ValueError(f"`sigma` must be positive. Received: sigma={sigma}")
    if not np.all(np.isfinite(samples)):
        raise ValueError("`samples` contains NaN or infinite values.")
    num_modes = len(centers)
    distances = np.sqrt(((samples[:, None, :] - centers[None]) ** 2).sum(-1))
    nearest = distances.argmin(1)
    high_quality = distances.min(1) <= num_stds * sigma
    counts = np.bincount(nearest[high_quality], minlength=num_modes)
    kl = None
    if counts.sum():
        p = counts[counts > 0] / counts.sum()
        kl = float(np.sum(p * np.log(num_modes * p)))
    return {
        "modes_covered": int(np.count_nonzero(counts)),
        "num_modes": int(num_modes),
        "high_quality_fraction": float(high_quality.mean()),
        "kl_to_uniform": kl,
        "num_samples": int(len(samples)),
    }


def evaluate_toy2d(samples, dataset_name, test_points=None):
    """Mode coverage and true log-density of samples of a named 2-D toy set.

    Args:
        samples: `(N, 2)` generated points.
        dataset_name: `grid25`, `ring8` or `moons`, with optional parameters
            (e.g. `ring8:sigma=0.1`).
        test_points: Optional `(M, 2)` test data, `M >= 1` (any size: it
            need not match `N`); adds its mean true log-density as a
            reference.

    Returns:
        A dict with `sample_log_likelihood` (mean true log-density of the
        samples, nats), `data_log_likelihood` when `test_points` is given,
        and for the mixtures the `mode_coverage` figures. Empty when
        `dataset_name` is not a 2-D toy set.
    """
    from keras_genmodels.data import toy2d
    from keras_genmodels.data.errors import DataError

    try:
        toy, _ = toy2d.parse(dataset_name)
    except DataError:
        return {}
    samples = _check_points(samples, "samples")
    metrics = {"sample_log_likelihood": float(np.mean(toy.log_prob(samples)))}
    if test_points is not None:
        test_points = _check_points(test_points, "test_points")
        metrics["data_log_likelihood"] = float(np.mean(toy.log_prob(test_points)))
    if toy.centers is not None:
        metrics.update(mode_coverage(samples, toy.centers, toy.sigma))
    return metrics


def _check_points(points, name):
    points = np.asarray(points, dtype="float64")
    if points.ndim != 2 or points.shape[0] == 0 or points.shape[1] != 2:
        raise ValueError(
            f"`{name}` must have shape (N, 2) with N > 0. Received: shape {points.shape}"
        )
    return points
