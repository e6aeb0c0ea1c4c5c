"""The overlapping windows that score every byte of a text exactly once.

A causal language model with a window of `size` tokens scores a text longer
than its window in windows that overlap: the text is prefixed with the start
token, window `i` covers positions `[i * stride, i * stride + size)`, window 0
scores all its targets and later windows only their last `stride`, so every
byte is scored once and each byte after the first window sees at least
`size - 1 - stride` bytes of context.

`TransformerLM.bits_per_char` and its `score` signature (TensorFlow, on a
string tensor), dynamic evaluation and the arithmetic coder (numpy) all use
this one layout.
"""

import tensorflow as tf

from keras_genmodels.autoregressive import tokenizer


def frame_layout(num_tokens, size, stride):
    """Where the windows of a text of `num_tokens` bytes start, and what they score.

    Args:
        num_tokens: Bytes in the text (at least 1), a Python int or an int32
            scalar tensor.
        size: Window length, the model's `context_length`.
        stride: Bytes per segment, between 1 and `size - 1`.

    Returns:
        `(starts (K,) int32, scored (K, size - 1) bool, valid (K, size - 1)
        bool)` tensors: column `c` of window `i` is the target at position
        `starts[i] + c + 1`, i.e. byte `starts[i] + c` of the text; `valid`
        marks targets inside the text. `K = max(1, ceil((num_tokens + 1 -
        size) / stride) + 1)`.

    Example:

    ```python
    starts, scored, valid = frame_layout(40, size=16, stride=8)
    int(tf.reduce_sum(tf.cast(scored, "int32")))  # 40: every byte once
    ```
    """
    total = tf.convert_to_tensor(num_tokens, tf.int32) + 1
    count = tf.maximum(1, -tf.math.floordiv(size - total, stride) + 1)
    starts = tf.range(count) * stride
    columns = tf.range(1, size)[None, :]
    valid = starts[:, None] + columns < total
    fresh = columns >= size - stride
    scored = valid & (tf.equal(starts, 0)[:, None] | fresh)
    return starts, scored, valid


def frame_tokens(tokens, size, stride):
    """The windows of `frame_layout`, filled with the text (zeros past its end).

    Args:
        tokens: 1-D int tensor or array of byte ids, at least one.
        size: Window length.
        stride: Bytes per segment.

    Returns:
        `(frames (K, size) int32, scored, valid)` tensors, `scored` and
        `valid` as in `frame_layout`.
    """
    tokens = tf.cast(tokens, tf.int32)
    starts, scored, valid = frame_layout(tf.size(tokens), size, stride)
    sequence = tf.concat([[tokenizer.START_TOKEN], tokens], 0)
    padded = tf.pad(sequence, [[0, starts[-1] + size - tf.size(sequence)]])
    frames = tf.gather(padded, starts[:, None] + tf.range(size)[None, :])
    return frames, scored, valid


def numpy_layout(num_tokens, size, stride):
    """`frame_layout` as numpy arrays (for loops in Python)."""
    return tuple(t.numpy() for t in frame_layout(num_tokens, size, stride))


def numpy_frames(tokens, size, stride):
    """`frame_tokens` as numpy arrays (for loops in Python)."""
    return tuple(t.numpy() for t in frame_tokens(tokens, size, stride))
