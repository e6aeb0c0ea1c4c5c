"""2-D toy distributions with known densities: `grid25`, `ring8`, `moons`.

The mixtures follow the mode-coverage protocol of VEEGAN (Srivastava et al.,
2017) and PacGAN (Lin et al., 2018): `grid25` has 25 isotropic Gaussians
centred on `{-4, -2, 0, 2, 4}^2` with `sigma = 0.05`; `ring8` has 8 on the
circle of radius 2 with `sigma = 0.02`. `moons` is two interleaved half circles
(as scikit-learn's `make_moons`) with Gaussian noise of standard deviation
0.05. Parameters are passed in the name: `ring8:sigma=0.1,num=5000`.

Splits are drawn with fixed seeds (train 0, test 1), so they are the same on
every machine.
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf

from keras_genmodels.data.errors import DataError, parse_parameters, tag

# The bounds keep densities computable (`moons` integrates its arcs at a
# spacing of sigma / 4) and a split in memory (10 million points is 80 MB).
MIN_SIGMA, MAX_SIGMA = 0.001, 10.0
MAX_NUM = 10_000_000
PARAMETERS = {
    "sigma": (float, MIN_SIGMA, MAX_SIGMA),
    "noise": (float, MIN_SIGMA, MAX_SIGMA),
    "num": (int, 1, MAX_NUM),
}
DEFAULT_NUM = {"train": 20_000, "test": 5_000}


@dataclasses.dataclass(frozen=True)
class Toy2D:
    """A parsed 2-D toy distribution.

    Args:
        name: `grid25`, `ring8` or `moons`.
        sigma: Standard deviation of the Gaussian noise around each centre
            (or around the arcs for `moons`).
    """

    name: str
    sigma: float

    @property
    def centers(self):
        """The mode centres, `(K, 2)` float64; `moons` has none."""
        if self.name == "grid25":
            axis = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
            return np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
        if self.name == "ring8":
            angles = 2 * np.pi * np.arange(8) / 8
            return 2.0 * np.stack([np.cos(angles), np.sin(angles)], -1)
        return None

    def _moon_arcs(self, t):
        upper = np.stack([np.cos(np.pi * t), np.sin(np.pi * t)], -1)
        lower = np.stack([1 - np.cos(np.pi * t), 0.5 - np.sin(np.pi * t)], -1)
        return upper, lower

    def sample(self, num, seed):
        """Draws `(points float32 (num, 2), labels int32 (num,))`.

        Labels are mode indices (for `moons`: 0 upper, 1 lower arc).
        """
        rng = np.random.default_rng(seed)
        if self.name == "moons":
            labels = rng.integers(0, 2, num)
            upper, lower = self._moon_arcs(rng.uniform(0, 1, num))
            points = np.where(labels[:, None] == 0, upper, lower)
        else:
            centers = self.centers
            labels = rng.integers(0, len(centers), num)
            points = centers[labels]
        points = points + self.sigma * rng.standard_normal((num, 2))
        return points.astype("float32"), labels.astype("int32")

    def log_prob(self, points):
        """The true log-density at `points` (`(N, 2)`), float64 numpy.

        For `moons` the uniform position along each arc is integrated with the
        midpoint rule at a spacing of at most `sigma / 4`; a Gaussian summed
        at that spacing matches its integral to far below 1e-6 relative.
        """
        points = np.asarray(points, dtype="float64")
        if self.name == "moons":
            num = max(64, math.ceil(4 * math.pi / self.sigma))
            t = (np.arange(num) + 0.5) / num
            centers = np.concatenate(self._moon_arcs(t))
        else:
            centers = self.centers
        # Log of an equal-weight mixture of isotropic Gaussians, in chunks.
        out = np.empty(len(points))
        for start in range(0, len(points), 512):
            chunk = points[start : start + 512]
            sq = np.sum((chunk[:, None, :] - centers[None]) ** 2, -1)
            log_terms = -sq / (2 * self.sigma**2)
            peak = log_terms.max(1)
            out[start : start + 512] = peak + np.log(
                np.mean(np.exp(log_terms - peak[:, None]), 1)
            )
        return out - np.log(2 * np.pi * self.sigma**2)


_DEFAULT_SIGMA = {"grid25": 0.05, "ring8": 0.02, "moons": 0.05}


def parse(name):
    """Parses a toy-set name such as `ring8:sigma=0.1` into `(Toy2D, num)`.

    Args:
        name: `grid25`, `ring8` or `moons`, optionally with `:sigma=`
            (or its alias `noise=`; in [0.001, 10]) and `:num=` (examples
            per split; in [1, 10,000,000]).

    Returns:
        `(Toy2D, num or None)`.
    """
    base, params = parse_parameters(name, PARAMETERS)
    if base not in _DEFAULT_SIGMA:
        raise DataError(
            f"Unknown 2-D set {base!r}. Expected one of: {', '.join(_DEFAULT_SIGMA)}."
        )
    if "sigma" in params and "noise" in params:
        raise DataError(
            f"Give `sigma` or its alias `noise`, not both. Received: {name!r}"
        )
    sigma = params.get("sigma", params.get("noise", _DEFAULT_SIGMA[base]))
    return Toy2D(base, sigma), params.get("num")


def true_log_prob(name, points):
    """The true log-density of the named toy set at `points` (`(N, 2)`)."""
    return parse(name)[0].log_prob(points)


def centers(name):
    """The mode centres of the named toy set (`None` for `moons`)."""
    return parse(name)[0].centers


def load(name, split, with_labels):
    """Loads a toy set as a dataset of float32 points.

    Args:
        name: The set with optional parameters (see `parse`).
        split: `"train"` (seed 0) or `"test"` (seed 1).
        with_labels: Whether elements are `(point, mode index)` pairs.

    Returns:
        A dataset of `(2,)` points tagged `"points"`.
    """
    toy, num = parse(name)
    num = num or DEFAULT_NUM[split]
    points, labels = toy.sample(num, seed=0 if split == "train" else 1)
    if with_labels:
        dataset = tf.data.Dataset.from_tensor_slices((points, labels))
    else:
        dataset = tf.data.Dataset.from_tensor_slices(points)
    return tag(dataset, name, "points")
