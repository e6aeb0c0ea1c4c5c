"""Compressing a text with a language model and an arithmetic coder.

`compress` codes every byte of a text with the probabilities a byte-level
language model gives it (the windows of
`dynamic_evaluation.frame_layout`), optionally learning from each segment
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

from keras_genmodels.autoregressive import arithmetic_coding, dynamic_evaluation, tokenizer

_HEADER = struct.Struct(">I")


class _AdaptiveModel:
    """The model's logits for one window, and one SGD step on a window."""

    def __init__(self, model, learning_rate):
        self.model = model
        self.learning_rate = learning_rate
        self.variables = list(model.trainable_variables)
        self.trained = [tf.identity(v) for v in self.variables]
        self.logits = tf.function(self._logits)
        self.learn = tf.function(self._learn)

    def _logits(self, frame):
        return tf.cast(self.model(frame[None, :-1], training=False), "float32")[0]

    def _learn(self, frame, valid_targets):
        frame = frame[None]
        with tf.GradientTape() as tape:
            logits = tf.cast(self.model(frame[:, :-1], training=False), "float32")
            nll = tf.nn.sparse_softmax_cross_entropy_with_logits(frame[:, 1:], logits)[0]
            loss = tf.reduce_sum(nll * valid_targets) / tf.reduce_sum(valid_targets)
        gradients = tape.gradient(loss, self.variables)
        for variable, gradient in zip(self.variables, gradients):
            if gradient is not None:
                variable.assign_sub(self.learning_rate * tf.convert_to_tensor(gradient))

    def update(self, frame, valid):
        if self.learning_rate > 0:
            self.learn(tf.constant(frame), tf.constant(valid, "float32"))

    def restore(self):
        for variable, value in zip(self.variables, self.trained):
            variable.assign(value)


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
    if isinstance(tokens, str):
        tokens = tokenizer.encode(tokens)
    tokens = np.asarray(tokens, "int32").reshape(-1)
    if len(tokens) == 0:
        raise ValueError("Cannot compress an empty text.")
    if len(tokens) >= 1 << 32:
        raise ValueError(f"Texts up to 2**32 - 1 bytes. Received {len(tokens)} bytes.")
    size = int(model.context_length)
    stride = dynamic_evaluation.check_arguments(learning_rate, stride, size)
    windows, scored, valid = dynamic_evaluation.frames(tokens, size, stride)
    adaptive = _AdaptiveModel(model, learning_rate)
    encoder = arithmetic_coding.ArithmeticEncoder()
    try:
        for i, frame in enumerate(windows):
            logits = adaptive.logits(tf.constant(frame)).numpy()
            for column in np.flatnonzero(scored[i]):
                encoder.encode(_cumulative(logits[column]), frame[column + 1])
            adaptive.update(frame, valid[i])
    finally:
        adaptive.restore()
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
    starts, scored, valid = dynamic_evaluation.frame_layout(num_tokens, size, stride)
    sequence = np.zeros([starts[-1] + size], "int32")
    sequence[0] = tokenizer.START_TOKEN
    adaptive = _AdaptiveModel(model, learning_rate)
    decoder = arithmetic_coding.ArithmeticDecoder(data[_HEADER.size :])
    try:
        for i, start in enumerate(starts):
            for column in np.flatnonzero(scored[i]):
                frame = tf.constant(sequence[start : start + size])
                logits = adaptive.logits(frame).numpy()[column]
                sequence[start + column + 1] = decoder.decode(_cumulative(logits))
            adaptive.update(sequence[start : start + size], valid[i])
    finally:
        adaptive.restore()
    return sequence[1 : num_tokens + 1].copy()
