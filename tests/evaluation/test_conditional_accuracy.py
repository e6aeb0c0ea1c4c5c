"""`keras_genmodels.evaluation.conditional`: the shipped classifier's verdict
on digits drawn for a requested class."""

import numpy as np
import pytest

from keras_genmodels.data.images import mnist_5k_arrays
from keras_genmodels.evaluation.conditional import balanced_labels, conditional_accuracy


def test_real_digits_are_read_as_their_labels_and_wrong_requests_are_not():
    images, labels = mnist_5k_arrays("test")  # Sorted by class: 100 of each.
    images, labels = images[::5, ..., None] / 255.0, labels[::5]
    right = conditional_accuracy(images, labels)
    assert right["accuracy"] > 0.95 and right["num_samples"] == 200
    assert set(right["per_class"]) == set(range(10))
    wrong = conditional_accuracy(images, (labels + 1) % 10)
    assert wrong["accuracy"] < 0.05


def test_balanced_labels_and_errors():
    np.testing.assert_array_equal(balanced_labels(12, 5), [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1])
    with pytest.raises(ValueError, match="one label per image. Received 3 labels for 2 images"):
        conditional_accuracy(np.zeros((2, 28, 28, 1)), [0, 1, 2])
