"""The titled progress bars of long evaluation and sampling loops."""

import numpy as np
import pytest
import tensorflow as tf

from keras_genmodels import progress


@pytest.fixture
def one_line(monkeypatch):
    monkeypatch.setenv(progress.ENV_VARIABLE, "2")


@pytest.mark.parametrize("setting, verbosity", [("0", 0), ("1", 1), ("2", 2), ("", 2)])
def test_verbosity_follows_the_environment(monkeypatch, setting, verbosity):
    monkeypatch.setenv(progress.ENV_VARIABLE, setting)
    # Under pytest standard output is not a terminal.
    assert progress.progress_verbosity() == verbosity


def test_one_line_mode_prints_the_title_then_one_line(one_line, capsys):
    items = list(progress.track(range(5), 5, "IWAE bound (k=3) on 5 test images", "batch"))
    assert items == [0, 1, 2, 3, 4]
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "IWAE bound (k=3) on 5 test images"
    assert len(lines) == 2 and lines[1].startswith("5/5 - ") and "/batch" in lines[1]


def test_advancing_past_the_end_prints_once(one_line, capsys):
    bar = progress.Progress(3, "sampling 3 images", "image")
    bar.advance(2)
    bar.advance(5)
    bar.advance(1)
    assert bar.done == 3
    assert capsys.readouterr().err.count("3/3") == 1


def test_silent_mode(monkeypatch, capsys):
    monkeypatch.setenv(progress.ENV_VARIABLE, "0")
    assert list(progress.track("ab", 2, "quiet")) == ["a", "b"]
    assert capsys.readouterr().err == ""


def test_total_must_be_positive():
    with pytest.raises(ValueError, match="total=0"):
        progress.Progress(0, "nothing")


def test_dataset_size_known_and_counted():
    values = tf.data.Dataset.from_tensor_slices(np.arange(10))
    assert progress.dataset_size(values) == 10
    assert progress.dataset_size(values.batch(4)) == 3
    even = values.filter(lambda x: x % 2 == 0)  # Unknown cardinality: counted.
    assert int(even.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    assert progress.dataset_size(even) == 5
    assert progress.dataset_size(even.batch(2)) == 3
    pairs = tf.data.Dataset.from_tensor_slices((np.arange(6), np.arange(6))).filter(
        lambda x, y: x < 4
    )
    assert progress.dataset_size(pairs) == 4
    assert progress.dataset_size([1, 2]) == 2
    with pytest.raises(ValueError, match="infinite"):
        progress.dataset_size(values.repeat())


def test_known_size_and_count_phrase():
    values = tf.data.Dataset.from_tensor_slices(np.arange(1200))
    assert progress.known_size(values) == 1200
    assert progress.known_size(values.filter(lambda x: x > 3)) is None
    assert progress.count_phrase(1200, "test images") == "1,200 test images"
    assert progress.count_phrase(None, "test images") == "the test images"
