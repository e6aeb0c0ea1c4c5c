"""Compressing a text with a language model and an arithmetic coder.

`compress` codes every byte of a text with the probabilities a byte-level
language model gives it (the windows of
`keras_genmodels.autoregressive.frames`), optionally learning from each segment
after coding it, as `dynamic_evaluation.dynamic_nll` scores it;
`decompress` repeats the same predictions and updates on the bytes it has
decoded so far and recovers the text. The compressed size is then a
measured number of bytes, comparable with the bytes `xz` writes, rather than
a sum of log-probabilities.

Format: a 4-byte big-endian byte count, then the arithmetic code. The
decoder needs the same model weights, `learning_rate` and `stride`, as
`xz`'s conditional rate assumes the decoder holds the train text.

The decoder predicts each byte from a window whose later positions are not
decoded yet (zeros there), while the encoder's window holds the whole
segment. The model is causal and its attention gives masked positions a
weight of exactly 0, so both compute the same logits bit for bit; the round
trips in the tests and in `benchmarks/ar_pydoc_compress.py` check it. As
with any coder driven by floating-point predictions, decode with the same
model on the same TensorFlow build and kind of machine that encoded.
"""

import struct

import numpy as np
import tensorflow as tf

from keras_genmodels.autoregressive import (
    arithmetic_coding,
    dynamic_evaluation,
    frames,
    tokenizer,
)

_HEADER = struct.Struct(">I")


def _logits_function(model):
    """`tf.function(frame (size,)) -> (size - 1, vocab)` float32 logits."""
    return tf.function(
        lambda frame: tf.cast(model(frame[None, :-1], training=False), "float32")[0]
    )


def _cumulative(logits):
    """Integer frequencies of `softmax(logits)`, computed the same on both sides."""
    z = logits.astype("float64")
    p = np.exp(z - z.max())
    return arithmetic_coding.cumulative_frequencies(p)


def compress(model, tokens, learning_rate=0.0, stride=None):
    """Compresses a text with a language model (and dynamic evaluation).

    Args:
        model: A causal language model with `context_length` whose call maps
            `(batch, length)` ids to `(batch, length, vocab)` logits, e.g. a
            `TransformerLM`.
        tokens: 1-D int array of byte ids, or a `str` (encoded as UTF-8).
        learning_rate: SGD step after each segment; 0 codes with the fixed
            weights (the static `bits_per_char`).
        stride: Bytes per segment; default `context_length // 2`.

    Returns:
        `bytes`: a 4-byte length header and the arithmetic code, about
        `len(tokens) * bits_per_char / 8 + 4` bytes.

    Example:

    ```python
    data = compress(lm, text, learning_rate=0.03)
    assert tokenizer.decode(decompress(lm, data, learning_rate=0.03)) == text
    ```
    """
    tokens = tokenizer.text_ids(tokens, "compress")
    if len(tokens) >= 1 << 32:
        raise ValueError(f"Texts up to 2**32 - 1 bytes. Received {len(tokens)} bytes.")
    size = int(model.context_length)
    stride = dynamic_evaluation.check_arguments(learning_rate, stride, size)
    windows, scored, valid = frames.numpy_frames(tokens, size, stride)
    logits_of = _logits_function(model)
    learn = dynamic_evaluation.score_and_learn_function(model, learning_rate)
    encoder = arithmetic_coding.ArithmeticEncoder()
    with dynamic_evaluation.weights_restored(model):
        for i, frame in enumerate(windows):
            logits = logits_of(tf.constant(frame)).numpy()
            for column in np.flatnonzero(scored[i]):
                encoder.encode(_cumulative(logits[column]), frame[column + 1])
            if learning_rate > 0:
                learn(tf.constant(frame), tf.constant(valid[i], "float32"))
    return _HEADER.pack(len(tokens)) + encoder.finish()


def decompress(model, data, learning_rate=0.0, stride=None):
    """Recovers the byte ids that `compress` coded with the same settings.

    Args:
        model: The same model, with the same weights, as `compress` had.
        data: Output of `compress`.
        learning_rate: The `learning_rate` given to `compress`.
        stride: The `stride` given to `compress`.

    Returns:
        1-D int32 numpy array of byte ids (`tokenizer.decode` makes a `str`).
    """
    data = bytes(data)
    if len(data) < _HEADER.size:
        raise ValueError(
            f"Compressed data starts with a {_HEADER.size}-byte length. "
            f"Received {len(data)} bytes."
        )
    (num_tokens,) = _HEADER.unpack(data[: _HEADER.size])
    if num_tokens == 0:
        raise ValueError("The header says 0 bytes; `compress` never writes that.")
    size = int(model.context_length)
    stride = dynamic_evaluation.check_arguments(learning_rate, stride, size)
    starts, scored, valid = frames.numpy_layout(num_tokens, size, stride)
    sequence = np.zeros([starts[-1] + size], "int32")
    sequence[0] = tokenizer.START_TOKEN
    logits_of = _logits_function(model)
    learn = dynamic_evaluation.score_and_learn_function(model, learning_rate)
    decoder = arithmetic_coding.ArithmeticDecoder(data[_HEADER.size :])
    with dynamic_evaluation.weights_restored(model):
        for i, start in enumerate(starts):
            for column in np.flatnonzero(scored[i]):
                frame = tf.constant(sequence[start : start + size])
                logits = logits_of(frame).numpy()[column]
                sequence[start + column + 1] = decoder.decode(_cumulative(logits))
            if learning_rate > 0:
                learn(
                    tf.constant(sequence[start : start + size]),
                    tf.constant(valid[i], "float32"),
                )
    return sequence[1 : num_tokens + 1].copy()
