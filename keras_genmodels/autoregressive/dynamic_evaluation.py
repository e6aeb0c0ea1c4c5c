"""Dynamic evaluation: scoring a text while the model keeps learning from it.

A static language model scores every byte of a test text with the weights it
ended training with. An adaptive compressor such as `xz` does more: every
byte it has coded becomes part of what it codes the next bytes with. Dynamic
evaluation (Krause et al., 2018) gives a neural model the same privilege.
The text is read in segments `s_1, s_2, ...`; each segment is scored with the
current weights and only then learned from:

    bits(s_i) = -log2 p(s_i | s_<i; theta_{i-1})
    theta_i   = theta_{i-1} - eta * grad_theta L(window_i; theta_{i-1})

where `window_i` is the model's context window that ends with `s_i` and `L`
its mean next-byte cross entropy. Every probability depends only on the bytes
before it, so the total is a code length an arithmetic coder could reach: a
decoder that repeats the same updates on the bytes it has decoded holds the
same weights. This is plain SGD without the decay towards the trained
weights or the RMS normalisation of the paper's later variants.

The model is left as it was: its weights are restored afterwards.

References:
    Krause, Kahembwe, Murray and Renals, "Dynamic Evaluation of Neural
    Sequence Models", ICML 2018.
"""

import contextlib
import math

import numpy as np
import tensorflow as tf

from keras_genmodels.autoregressive import frames, tokenizer

DEFAULT_LEARNING_RATE = 0.03
_LN2 = math.log(2.0)


def check_arguments(learning_rate, stride, context_length):
    """Validates `learning_rate` and `stride`; returns the stride to use.

    Args:
        learning_rate: SGD step size, a finite number >= 0.
        stride: Bytes per segment, between 1 and `context_length - 1`, or
            `None` for `context_length // 2`.
        context_length: The model's window length.

    Returns:
        The stride as an int.
    """
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)):
        raise TypeError(
            f"`learning_rate` must be a number >= 0. Received: {learning_rate!r}"
        )
    if not math.isfinite(learning_rate) or learning_rate < 0:
        raise ValueError(
            f"`learning_rate` must be a finite number >= 0. Received: {learning_rate}"
        )
    if context_length < 2:
        raise ValueError(
            "Dynamic evaluation needs windows of at least 2 tokens. Received: "
            f"context_length={context_length}"
        )
    if stride is None:
        return context_length // 2
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)):
        raise TypeError(f"`stride` must be an int. Received: {stride!r}")
    if not 1 <= stride <= context_length - 1:
        raise ValueError(
            f"`stride` must be between 1 and context_length - 1 = "
            f"{context_length - 1}. Received: stride={stride}"
        )
    return int(stride)


def score_and_learn_function(model, learning_rate):
    """One window's next-byte losses, then one SGD step on their mean.

    Args:
        model: See `dynamic_nll`.
        learning_rate: SGD step size; 0 only scores.

    Returns:
        A `tf.function(frame (size,) int32, valid_targets (size - 1,)
        float32) -> nll (size - 1,)` in nats, computed with the weights
        before the step; the step minimises the mean over `valid_targets`.
    """
    variables = list(model.trainable_variables)

    @tf.function
    def score_and_learn(frame, valid_targets):
        frame = frame[None]
        with tf.GradientTape() as tape:
            logits = tf.cast(model(frame[:, :-1], training=False), "float32")
            nll = tf.nn.sparse_softmax_cross_entropy_with_logits(frame[:, 1:], logits)[0]
            loss = tf.reduce_sum(nll * valid_targets) / tf.reduce_sum(valid_targets)
        if learning_rate > 0:
            gradients = tape.gradient(loss, variables)
            for variable, gradient in zip(variables, gradients):
                if gradient is not None:  # Dense even for embedding rows.
                    variable.assign_sub(learning_rate * tf.convert_to_tensor(gradient))
        return nll

    return score_and_learn


@contextlib.contextmanager
def weights_restored(model):
    """Puts the model's trainable weights back as they were on leaving."""
    variables = list(model.trainable_variables)
    saved = [tf.identity(v) for v in variables]
    try:
        yield
    finally:
        for variable, value in zip(variables, saved):
            variable.assign(value)


def dynamic_nll(model, tokens, learning_rate=DEFAULT_LEARNING_RATE, stride=None):
    """Negative log-likelihood of every byte under dynamic evaluation.

    Args:
        model: A language model with a `context_length` attribute whose call
            maps `(batch, length)` token ids to `(batch, length, vocab)`
            next-token logits, e.g. a `TransformerLM`.
        tokens: 1-D int array of byte ids, or a `str` (encoded as UTF-8).
        learning_rate: SGD step size `eta` of the update after each segment;
            0 gives the static model's scores.
        stride: Bytes per segment (one update each), between 1 and
            `context_length - 1`; default `context_length // 2`.

    Returns:
        1-D float64 numpy array: `-log p(x_t | x_<t)` in nats for each byte.

    Example:

    ```python
    nats = dynamic_nll(lm, "def f(x):\\n    return x\\n" * 20, learning_rate=0.03)
    bits_per_char = nats.mean() / math.log(2)
    ```
    """
    from keras_genmodels import progress

    tokens = tokenizer.text_ids(tokens, "score")
    size = int(model.context_length)
    stride = check_arguments(learning_rate, stride, size)
    windows, scored, valid = frames.numpy_frames(tokens, size, stride)
    score_and_learn = score_and_learn_function(model, learning_rate)
    nats = np.full([len(tokens)], np.nan)
    description = (
        f"Dynamic evaluation (learning rate {learning_rate}) on {len(tokens):,} "
        f"bytes, {len(windows):,} segments"
    )
    with weights_restored(model):
        for i in progress.track(range(len(windows)), len(windows), description, "segment"):
            nll = score_and_learn(
                tf.constant(windows[i]), tf.constant(valid[i], "float32")
            ).numpy()
            targets = i * stride + np.flatnonzero(scored[i])  # 0-based byte index
            nats[targets] = nll[scored[i]]
    return nats


def dynamic_bits_per_char(model, tokens, learning_rate=DEFAULT_LEARNING_RATE, stride=None):
    """Bits per byte of a text under dynamic evaluation.

    Args:
        model: See `dynamic_nll`.
        tokens: 1-D int array of byte ids, or a `str`.
        learning_rate: SGD step size after each segment (0: static scores).
        stride: Bytes per segment; default `context_length // 2`.

    Returns:
        A float: `sum_t -log2 p(x_t | x_<t; theta_t) / len(tokens)`, the
        weights `theta_t` having learned from every segment before byte `t`.
    """
    return float(np.mean(dynamic_nll(model, tokens, learning_rate, stride)) / _LN2)
