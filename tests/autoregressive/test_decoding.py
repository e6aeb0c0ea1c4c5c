"""The decoding strategies and the frame layout, on toy models without training."""

import numpy as np
import pytest
import tensorflow as tf

from keras_genmodels.autoregressive import decoding, frames

VOCAB = 7
# A bigram model: the logits of the next token depend on the last one only,
# so every strategy sees the same logits whatever its window holds.
TABLE = tf.constant(np.random.default_rng(0).standard_normal((VOCAB, VOCAB)), tf.float32)


def _bigram_logits(tokens):
    return tf.gather(TABLE, tokens)  # (batch, length, vocab)


def _generate(strategy, prompt, steps, seed=(1, 2), temperature=1.0, top_k=0, size=4):
    args = (
        tf.constant(steps), tf.constant(temperature), tf.constant(top_k),
        tf.constant(1.0), tf.constant(seed, tf.int32), VOCAB,
    )
    prompt = tf.constant(prompt, tf.int32)
    if strategy == "cached":
        def prefill(prompt):
            return tf.gather(TABLE, prompt[:, -1]), prompt[:, -1]

        def step(token, state):
            return tf.gather(TABLE, token), token

        return decoding.cached(prefill, step, prompt, *args).numpy()
    if strategy == "cached_xla":
        loop = tf.function(
            lambda *a: decoding.decode_loop(lambda t, s: (tf.gather(TABLE, t), t), *a),
            jit_compile=True,
        )
        return decoding.cached(
            lambda p: (tf.gather(TABLE, p[:, -1]), p[:, -1]), None, prompt, *args, loop=loop
        ).numpy()
    if strategy == "prefix":
        return decoding.prefix(_bigram_logits, prompt, *args).numpy()
    return decoding.full_window(_bigram_logits, size, prompt, *args).numpy()


@pytest.mark.parametrize("kwargs", [{}, {"temperature": 0.0}, {"top_k": 2, "seed": (5, 6)}])
def test_every_strategy_gives_the_same_tokens(kwargs):
    prompt = [[1, 2, 3], [4, 5, 6]]
    cached = _generate("cached", prompt, 20, **kwargs)
    assert cached.shape == (2, 20) and cached.dtype == np.int32
    for strategy in ("cached_xla", "prefix", "full_window"):
        # The window of 4 is full after one new token: it slides 18 times.
        np.testing.assert_array_equal(cached, _generate(strategy, prompt, 20, **kwargs))
    assert not np.array_equal(cached, _generate("cached", prompt, 20, seed=(2, 1)))


def test_full_window_keeps_the_last_tokens_of_a_long_prompt():
    seen = []

    def logits_of(window):
        seen.append(window)
        return _bigram_logits(window)

    prompt = np.arange(6)[None] % VOCAB
    tokens = decoding.full_window(
        logits_of, 4, tf.constant(prompt, tf.int32), tf.constant(1), tf.constant(0.0),
        tf.constant(0), tf.constant(1.0), tf.constant([0, 0]), VOCAB,
    )
    np.testing.assert_array_equal(seen[0].numpy(), [[2, 3, 4, 5]])
    assert int(tokens[0, 0]) == int(np.argmax(TABLE.numpy()[5]))


def test_bucketed_noise_pads_to_a_power_of_two():
    uniform = tf.zeros([70, 1, VOCAB])
    assert decoding.bucketed_noise(uniform, tf.constant(70)).shape[0] == 128
    assert decoding.bucketed_noise(uniform[:5], tf.constant(5)).shape[0] == 64


@pytest.mark.parametrize("size, stride", [(16, 8), (16, 1), (16, 15), (2, 1), (5, 2)])
def test_frame_layout_scores_every_token_once(size, stride):
    for n in (1, 2, 7, 15, 16, 17, 40, 101):
        starts, scored, valid = frames.numpy_layout(n, size, stride)
        # Column c of window i scores byte starts[i] + c of the text.
        targets = (starts[:, None] + np.arange(size - 1)[None])[scored]
        np.testing.assert_array_equal(np.sort(targets), np.arange(n))
        assert valid[scored].all() and np.array_equal(starts, np.arange(len(starts)) * stride)
        # Each later window scores only its last `stride` targets.
        assert not scored[1:, : size - 1 - stride].any()


def test_frame_tokens_hold_the_text_after_the_start_token():
    tokens = np.arange(1, 30, dtype="int32")
    windows, scored, _ = frames.numpy_frames(tokens, 8, 4)
    sequence = np.concatenate([[10], tokens])
    for i, window in enumerate(windows):
        part = sequence[4 * i : 4 * i + 8]
        np.testing.assert_array_equal(window[: len(part)], part)
        assert not window[len(part):].any()
    # The target of a scored column is the byte it scores.
    rows, columns = np.nonzero(scored)
    np.testing.assert_array_equal(windows[rows, columns + 1], tokens)
