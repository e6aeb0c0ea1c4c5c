"""Tests of the 2-D mode-coverage protocol."""

import math

import numpy as np
import pytest

from keras_genmodels.data import toy2d
from keras_genmodels.evaluation.mode_coverage import evaluate_toy2d, mode_coverage

CENTERS = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])


def test_perfect_samples_cover_every_mode_uniformly():
    samples = np.repeat(CENTERS, 10, axis=0) + 0.01
    result = mode_coverage(samples, CENTERS, sigma=0.05)
    assert result["modes_covered"] == 4
    assert result["num_modes"] == 4
    assert result["high_quality_fraction"] == 1.0
    assert result["kl_to_uniform"] == pytest.approx(0.0, abs=1e-12)
    assert result["num_samples"] == 40


def test_collapsed_and_low_quality_samples():
    samples = np.array([[2.0, 0.1], [2.0, -0.1], [1.0, 1.0], [5.0, 5.0]])
    result = mode_coverage(samples, CENTERS, sigma=0.05)
    # Within 3 sigma = 0.15 of (2, 0): the first two only.
    assert result["modes_covered"] == 1
    assert result["high_quality_fraction"] == 0.5
    assert result["kl_to_uniform"] == pytest.approx(math.log(4))
    nothing = mode_coverage(np.array([[1.0, 1.0]]), CENTERS, sigma=0.05)
    assert nothing["modes_covered"] == 0 and nothing["kl_to_uniform"] is None


def test_mode_coverage_errors():
    with pytest.raises(ValueError, match="shape"):
        mode_coverage(np.zeros((3, 3)), CENTERS, 0.05)
    with pytest.raises(ValueError, match="sigma"):
        mode_coverage(np.zeros((3, 2)), CENTERS, 0.0)
    with pytest.raises(ValueError, match="NaN"):
        mode_coverage(np.full((3, 2), np.nan), CENTERS, 0.05)


@pytest.mark.parametrize("name, modes", [("grid25", 25), ("ring8", 8)])
def test_true_data_scores_near_perfect(name, modes):
    points, _ = toy2d.parse(name)[0].sample(2500, seed=3)
    result = evaluate_toy2d(points, name, test_points=points)
    assert result["modes_covered"] == modes
    # 3 sigma in 2-D holds 1 - exp(-4.5) = 98.9% of a Gaussian's mass.
    assert result["high_quality_fraction"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    assert result["kl_to_uniform"] < 0.02
    assert result["sample_log_likelihood"] == result["data_log_likelihood"]


def test_moons_and_unknown_names():
    points, _ = toy2d.parse("moons")[0].sample(100, seed=0)
    result = evaluate_toy2d(points, "moons")
    assert set(result) == {"sample_log_likelihood"}
    assert evaluate_toy2d(points, "mnist-5k") == {}


def test_test_points_need_not_match_the_samples():
    toy = toy2d.parse("ring8")[0]
    samples, _ = toy.sample(300, seed=0)
    test_points, _ = toy.sample(7, seed=1)
    result = evaluate_toy2d(samples, "ring8", test_points=test_points)
    assert result["num_samples"] == 300
    assert result["data_log_likelihood"] == pytest.approx(toy.log_prob(test_points).mean())
    # A single sample is a valid (if poor) sample set.
    assert evaluate_toy2d(samples[:1], "ring8")["num_samples"] == 1


def test_empty_or_misshapen_points_are_refused():
    samples, _ = toy2d.parse("ring8")[0].sample(10, seed=0)
    with pytest.raises(ValueError, match=r"`test_points` must have shape \(N, 2\).*\(0, 2\)"):
        evaluate_toy2d(samples, "ring8", test_points=np.zeros((0, 2)))
    with pytest.raises(ValueError, match=r"`samples` must have shape \(N, 2\)"):
        evaluate_toy2d(np.zeros((0, 2)), "moons")
    with pytest.raises(ValueError, match=r"`centers` must have shape \(K, D\)"):
        mode_coverage(samples, np.zeros((0, 2)), sigma=0.05)
