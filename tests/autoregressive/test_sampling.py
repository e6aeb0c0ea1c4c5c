"""The samplers on fixed logits, without a model."""

import numpy as np
import pytest
import tensorflow as tf

from keras_genmodels.autoregressive import sampling

LOGITS = np.log(np.array([[0.5, 0.3, 0.15, 0.05]], "float32"))


def test_greedy_picks_the_largest_logit():
    logits = tf.constant([[0.1, 2.0, -1.0], [3.0, 0.0, 2.9]])
    assert sampling.greedy(logits).numpy().tolist() == [1, 0]


def test_top_k_keeps_exactly_k():
    filtered = sampling.top_k_filter(LOGITS, 2).numpy()
    np.testing.assert_array_equal(filtered[0, :2], LOGITS[0, :2])
    assert np.all(filtered[0, 2:] <= -1e8)
    # 0 and k >= vocab keep everything.
    np.testing.assert_array_equal(sampling.top_k_filter(LOGITS, 0).numpy(), LOGITS)
    np.testing.assert_array_equal(sampling.top_k_filter(LOGITS, 9).numpy(), LOGITS)


@pytest.mark.parametrize("p, kept", [(0.4, 1), (0.5, 1), (0.7, 2), (0.85, 3), (0.96, 4)])
def test_top_p_keeps_the_smallest_nucleus(p, kept):
    # Probabilities 0.5, 0.3, 0.15, 0.05: the mass ranked above each token
    # is 0, 0.5, 0.8, 0.95; a token is kept when that mass is below p.
    filtered = sampling.top_p_filter(LOGITS, p).numpy()[0]
    assert int(np.sum(filtered > -1e8)) == kept
    np.testing.assert_allclose(filtered[:kept], LOGITS[0, :kept])


def test_top_p_of_one_keeps_all():
    np.testing.assert_array_equal(sampling.top_p_filter(LOGITS, 1.0).numpy(), LOGITS)


def _draw(n, **kwargs):
    logits = tf.repeat(tf.constant(LOGITS), n, axis=0)
    uniform = tf.random.stateless_uniform([n, 4], seed=[3, 4])
    return sampling.sample_next(logits, uniform, **kwargs).numpy()


def test_temperature_zero_is_greedy():
    assert set(_draw(500, temperature=0.0).tolist()) == {0}


def test_sampling_matches_softmax_frequencies():
    n = 20_000
    freq = np.bincount(_draw(n, temperature=1.0), minlength=4) / n
    np.testing.assert_allclose(freq, [0.5, 0.3, 0.15, 0.05], atol=0.015)
    # Temperature 2 flattens: p_i proportional to sqrt(q_i).
    expected = np.sqrt([0.5, 0.3, 0.15, 0.05])
    freq = np.bincount(_draw(n, temperature=2.0), minlength=4) / n
    np.testing.assert_allclose(freq, expected / expected.sum(), atol=0.015)


def test_filters_renormalise_what_they_keep():
    n = 20_000
    freq = np.bincount(_draw(n, top_k=2), minlength=4) / n
    np.testing.assert_allclose(freq, [0.625, 0.375, 0, 0], atol=0.015)
    freq = np.bincount(_draw(n, top_p=0.85), minlength=4) / n
    np.testing.assert_allclose(freq, np.array([0.5, 0.3, 0.15, 0]) / 0.95, atol=0.015)


def test_same_noise_same_tokens():
    np.testing.assert_array_equal(_draw(100), _draw(100))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"temperature": -1.0}, "temperature"),
        ({"top_k": -2}, "top_k"),
        ({"top_k": 2.5}, "top_k"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    arguments = {"temperature": 1.0, "top_k": None, "top_p": None, **kwargs}
    with pytest.raises(ValueError, match=message):
        sampling.check_sampling_arguments(**arguments)


def test_off_values():
    assert sampling.check_sampling_arguments(0.7, None, None) == (0.7, 0, 1.0)
