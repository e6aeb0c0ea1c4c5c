"""Tests of `keras_genmodels.conditioning.checks`: one set of rules for every
conditional model's `labels`, `prompt` and `guidance_scale`."""

import numpy as np
import pytest

from keras_genmodels.conditioning import check_guidance_scale, check_labels, check_prompts


def test_labels_broadcast_default_and_pass_through():
    np.testing.assert_array_equal(check_labels(3, 4, 10), [3, 3, 3, 3])
    np.testing.assert_array_equal(check_labels(None, 12, 10), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1])
    out = check_labels(np.array([9, 0], np.int64), 2, 10)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [9, 0])


@pytest.mark.parametrize(
    "labels, message",
    [
        ([1, 2, 3], r"one entry per sample \(2\).*Received 3 labels: labels=\[1, 2, 3\]"),
        ([0, 10], r"must lie in \[0, 10\)\. Received: 10 in labels=\[0, 10\]"),
        (-1, r"must lie in \[0, 10\)\. Received: -1 in labels=-1"),
        ([0.5, 1.0], r"must be an int or a list of 2 ints.*Received: labels=\[0.5, 1.0\]"),
        ("3", r"must be an int or a list.*Received: labels='3'"),
        (True, r"Received: labels=True"),
        ([[1], [2]], r"Received: labels=\[\[1\], \[2\]\]"),
    ],
)
def test_bad_labels_name_the_value(labels, message):
    with pytest.raises(ValueError, match=message):
        check_labels(labels, 2, 10)


def test_prompts_broadcast_and_check():
    assert check_prompts("a 7", 3) == ["a 7"] * 3
    assert check_prompts(["a", "b"], 2) == ["a", "b"]
    with pytest.raises(ValueError, match=r"must not be empty.*Received: prompt=''"):
        check_prompts("", 2)
    with pytest.raises(ValueError, match=r"must not be empty.*Received: prompt='  '"):
        check_prompts(["a", "  "], 2)
    with pytest.raises(ValueError, match=r"list of 3 \(one per sample\). Received 2 prompts"):
        check_prompts(["a", "b"], 3)
    with pytest.raises(ValueError, match=r"a string or a list of strings. Received: prompt=7"):
        check_prompts(7, 1)
    with pytest.raises(ValueError, match=r"at most 4 UTF-8 bytes. Received 6 bytes"):
        check_prompts("séven", 1, max_bytes=4)


def test_guidance_scale():
    assert check_guidance_scale(None, 2.5) == 2.5
    assert check_guidance_scale(0, 2.5) == 0.0
    for bad in (-1.0, float("nan"), float("inf"), "3", True):
        with pytest.raises(ValueError, match=r"finite number >= 0.*Received: guidance_scale="):
            check_guidance_scale(bad, 1.0)
