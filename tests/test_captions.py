"""Caption templates for labelled image sets and the tf.data captioning map."""

import numpy as np
import pytest
import tensorflow as tf

from keras_genmodels.conditioning.text import DEFAULT_MAX_PROMPT_BYTES
from keras_genmodels.data import captions
from keras_genmodels.data.captions import DIGITS, CaptionBuilder


def _labelled(labels):
    images = np.arange(len(labels), dtype="float32").reshape(-1, 1, 1, 1)
    return tf.data.Dataset.from_tensor_slices((images, np.asarray(labels, "uint8")))


def _captions(dataset):
    return [caption.decode() for _, caption, *_ in dataset.as_numpy_iterator()]


def test_digit_templates_and_captions():
    train, test = captions.caption_templates("train"), captions.caption_templates("test")
    assert len(train) + len(test) >= 8 and len(test) >= 2
    assert not set(train) & set(test)
    # The held-out templates use both the class word and the numeral.
    assert any("{name}" in t for t in test) and any("{digit}" in t for t in test)
    assert captions.digit_caption(7, "a handwritten {digit}") == "a handwritten 7"
    assert captions.digit_caption(7, "the digit {name}") == "the digit seven"
    assert captions.digit_caption(np.int64(0), "{name}") == "zero"
    rows = DIGITS.captions("train")
    assert len(rows) == 10 and all(len(row) == len(train) == len(set(row)) for row in rows)
    # Every caption names its own class and no other.
    for label, row in enumerate(rows):
        for caption in row:
            words = set(caption.split())
            assert words & {str(label), captions.DIGIT_NAMES[label]}
            others = set(captions.DIGIT_NAMES) | {str(d) for d in range(10)}
            assert not words & (others - {str(label), captions.DIGIT_NAMES[label]})
    assert DIGITS.longest_caption_bytes() <= DEFAULT_MAX_PROMPT_BYTES


def test_bad_labels_templates_and_builders_raise():
    with pytest.raises(ValueError, match=r"in \[0, 10\). Received: label=10"):
        captions.digit_caption(10, "{digit}")
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['word'\]"):
        captions.digit_caption(3, "the {word}")
    with pytest.raises(ValueError, match="one of"):
        captions.caption_templates("validation")
    with pytest.raises(ValueError, match=r"Received \['{name}'\] in both"):
        CaptionBuilder(["cat", "dog"], ["{name}", "a {name}"], ["{name}"])
    with pytest.raises(ValueError, match="same keys"):
        CaptionBuilder([{"name": "a"}, {"digit": "1"}], ["{name}"], ["x {name}"])
    with pytest.raises(ValueError, match="with_labels=True"):
        captions.captioned(tf.data.Dataset.from_tensor_slices(np.zeros((2, 1, 1, 1))))


def test_train_map_never_uses_a_held_out_template():
    labels = np.arange(200) % 10
    pairs = captions.captioned(_labelled(labels), "train", seed=0)
    drawn = _captions(pairs)
    for label, caption in zip(labels, drawn):
        assert caption in DIGITS.captions("train")[label]
    held_out = {c for row in DIGITS.captions("test") for c in row}
    assert not held_out & set(drawn)
    # 200 draws over 9 templates use every one of them.
    templates = {DIGITS.captions("train")[y].index(c) for y, c in zip(labels, drawn)}
    assert templates == set(range(len(DIGITS.templates("train"))))

    test = _captions(captions.captioned(_labelled(labels), "test", seed=0))
    assert all(c in DIGITS.captions("test")[y] for y, c in zip(labels, test))


def test_captions_are_deterministic_given_a_seed():
    dataset = _labelled(np.arange(40) % 10)
    first = captions.captioned(dataset, seed=3)
    assert _captions(first) == _captions(captions.captioned(dataset, seed=3))
    assert _captions(first) != _captions(captions.captioned(dataset, seed=4))
    # Training draws new templates on each pass (epoch); the test split keeps them.
    assert _captions(first) != _captions(first)
    test = captions.captioned(dataset, "test", seed=3)
    assert _captions(test) == _captions(test)
    # Images stay with their labels' captions; labels can be kept.
    with_labels = list(captions.captioned(dataset, seed=3, keep_labels=True))
    for (image, caption, label), original in zip(with_labels, np.arange(40) % 10):
        assert int(label) == original and label.dtype == tf.int32
        assert caption.dtype == tf.string and caption.shape == ()
        assert int(image.numpy().item()) % 10 == original


def test_another_data_set_can_be_captioned():
    fashion = CaptionBuilder(
        ["T-shirt", "trouser", "ankle boot"],
        templates=["{name}", "a photo of the {name}"],
        held_out=["a picture of the {name}"],
    )
    assert fashion.caption(2, "a photo of the {name}") == "a photo of the ankle boot"
    pairs = captions.captioned(_labelled([0, 1, 2]), "test", seed=0, builder=fashion)
    assert _captions(pairs) == [
        "a picture of the T-shirt",
        "a picture of the trouser",
        "a picture of the ankle boot",
    ]
