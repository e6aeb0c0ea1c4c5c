"""Classifier-FID, precision and recall on the bundled digits."""

import numpy as np
import pytest

from keras_genmodels.data.images import mnist_5k_arrays
from keras_genmodels.evaluation import classifier_fid


@pytest.fixture(scope="module")
def digits():
    # Both splits are sorted by class: shuffle them.
    test, labels = mnist_5k_arrays("test")
    order = np.random.default_rng(0).permutation(len(test))
    train, _ = mnist_5k_arrays("train")
    subset = np.random.default_rng(1).choice(len(train), 1000, replace=False)
    return (test[order] / 255.0)[..., None], labels[order], (train[subset] / 255.0)[..., None]


def test_shipped_classifier_recognises_test_digits(digits):
    test, labels, _ = digits
    classifier = classifier_fid.build_classifier()
    classifier.load_weights(classifier_fid.weights_path())
    predicted = classifier.predict(test.astype("float32"), verbose=0).argmax(1)
    assert np.mean(predicted == labels) >= 0.98


def test_fid_of_a_set_against_itself_is_zero(digits):
    features = classifier_fid.digit_features(digits[0])
    assert features.shape == (1000, 128)
    assert classifier_fid.frechet_distance(features, features) == pytest.approx(0.0, abs=1e-6)


def test_noise_scores_worse_on_fid_and_precision(digits):
    test, _, train = digits
    noisy = np.clip(train + np.random.default_rng(0).normal(0, 0.5, train.shape), 0, 1)
    clean = classifier_fid.digit_scores(train, test)
    corrupted = classifier_fid.digit_scores(noisy, test)
    assert corrupted["fid"] > clean["fid"] * 2
    assert corrupted["precision"] < clean["precision"]
    assert 0.0 <= clean["recall"] <= 1.0


def test_mode_dropping_shows_in_recall_not_precision(digits):
    test, labels, _ = digits
    real = classifier_fid.digit_features(test[:500])
    ones_only = classifier_fid.digit_features(test[500:][labels[500:] == 1])
    precision, recall = classifier_fid.precision_recall(real, ones_only)
    assert precision > 0.8 and recall < 0.3


def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20_000, 2))
    b = rng.standard_normal((20_000, 2)) * 2.0 + [3.0, 0.0]
    # |mu|^2 + tr(I + 4I - 2 * 2I) = 9 + 2.
    assert classifier_fid.frechet_distance(a, b) == pytest.approx(11.0, rel=0.03)


def test_bad_images_are_refused():
    with pytest.raises(ValueError, match=r"\(N, 28, 28, 1\)"):
        classifier_fid.digit_features(np.zeros((4, 32, 32, 3)))
    with pytest.raises(ValueError, match="NaN"):
        classifier_fid.digit_features(np.full((4, 28, 28, 1), np.nan))
