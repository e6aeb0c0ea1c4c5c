"""The evaluation registry: which figures a model gets for a data set."""

import numpy as np
import pytest
import tensorflow as tf

from keras_genmodels.data import toy2d
from keras_genmodels.evaluation import mode_coverage, registry


class _PointModel:
    """A stand-in model whose samples are the points it was given."""

    data_kind = "points"
    uses_labels = False

    def __init__(self, points):
        self.points = points
        self.calls = []

    def sample(self, num_samples, seed=None):
        self.calls.append((num_samples, seed))
        return self.points[:num_samples]

    def evaluation_metrics(self, dataset, dataset_name=None):
        return {"own": float(len(list(dataset))), "name": dataset_name}


@pytest.mark.parametrize("name, kind", [
    ("ring8", "ring8"), ("ring8:sigma=0.1", "ring8"), ("grid25:num=50", "grid25"),
    ("moons", "moons"),
])
def test_toy_set_recognises_every_spelling_of_a_toy_set(name, kind):
    toy = registry.toy_set(name)
    assert toy is not None and toy.name == kind


@pytest.mark.parametrize("name", ["mnist", "mnist-5k", "ring9", "ring8:sigma=-1", None, 3])
def test_toy_set_is_none_for_anything_else(name):
    assert registry.toy_set(name) is None


def test_point_models_on_a_toy_set_get_mode_coverage_once():
    toy = toy2d.parse("ring8")[0]
    samples, _ = toy.sample(registry.TOY_SAMPLES, seed=5)
    test, _ = toy.sample(40, seed=6)
    model = _PointModel(samples.astype("float32"))
    figures = registry.evaluate(
        model, tf.data.Dataset.from_tensor_slices(test.astype("float32")), "ring8"
    )
    expected = mode_coverage.evaluate_toy2d(samples.astype("float32"), "ring8", test)
    assert figures == {"own": 40.0, "name": "ring8", **expected}
    assert model.calls == [(registry.TOY_SAMPLES, 0)]
    assert figures["modes_covered"] == 8


def test_other_data_sets_and_kinds_get_only_the_family_figures():
    model = _PointModel(np.zeros((10, 2), "float32"))
    test = tf.data.Dataset.from_tensor_slices(np.zeros((3, 2), "float32"))
    figures = registry.evaluate(model, test, "csv:points.csv")
    assert figures == {"own": 3.0, "name": "csv:points.csv"}
    model.data_kind = "image"
    assert [e.name for e in registry.evaluators_for(model, "mnist")] == ["classifier-FID"]
    assert registry.evaluators_for(model, "ring8") == []
    assert model.calls == []
