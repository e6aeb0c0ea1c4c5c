"""Cutting a stream of tokens or values into training windows.

`keras_genmodels.data` yields text and sequences as streams, one scalar per
element. Both autoregressive models train on windows `w` of `length + 1`
consecutive elements, as inputs `w[:-1]` and next-step targets `w[1:]`.
"""

import numpy as np
import tensorflow as tf


def stream_array(dataset, dtype):
    """Collects an unbatched dataset of scalars into one numpy array.

    Args:
        dataset: `tf.data.Dataset` of scalars, or a numpy array / list.
        dtype: Numpy dtype of the result.

    Returns:
        1-D numpy array.
    """
    if isinstance(dataset, tf.data.Dataset):
        if isinstance(dataset.element_spec, tuple):
            dataset = dataset.map(lambda x, *_: x)
        if dataset.element_spec.shape.rank != 0:
            raise ValueError(
                "Expected a dataset of scalars (one token or value per element). "
                f"Received element_spec={dataset.element_spec}"
            )
        chunks = [c.numpy() for c in dataset.batch(1 << 20)]
        array = np.concatenate(chunks) if chunks else np.zeros([0])
    else:
        array = np.asarray(dataset).reshape(-1)
    return array.astype(dtype)


def check_length(
    num_values, window, window_name, subject="The stream", unit="elements",
    needs="training windows need", advice="",
):
    """Refuses a stream too short for one window and the element after it.

    Args:
        num_values: Elements in the stream.
        window: The model's window (`sequence_length`, `context_length`).
        window_name: Its argument name, for the message.
        subject: What the stream is, e.g. `"The text"`.
        unit: What its elements are, e.g. `"bytes"`.
        needs: What needs `window + 1` elements.
        advice: Appended to the message (before its final period).

    Example:

    ```python
    check_length(10, 16, "context_length", "The text", "bytes")
    # ValueError: The text has 10 bytes; training windows need
    # context_length + 1 = 17.
    ```
    """
    if num_values < window + 1:
        raise ValueError(
            f"{subject} has {num_values} {unit}; {needs} {window_name} + 1 = "
            f"{window + 1}{advice}."
        )


def training_pairs(values, window, window_name, stride, shuffle, seed=None, **message):
    """`(inputs, next-step targets)` windows of `window` elements of a stream.

    Args:
        values: 1-D numpy array.
        window: Inputs per window (the windows hold `window + 1` elements).
        window_name: The model argument `window` comes from, for errors.
        stride: Spacing of the windows (see `window_dataset`).
        shuffle: Random offsets (training) or a fixed grid (evaluation).
        seed: Optional int seed of the random offsets.
        **message: `subject` and `unit` of `check_length`'s error.

    Returns:
        A dataset of `(window,)` pairs `(w[:-1], w[1:])`.
    """
    check_length(len(values), window, window_name, **message)
    return next_step_pairs(window_dataset(values, window + 1, stride, shuffle, seed=seed))


def window_starts(num_values, length, stride):
    """Start offsets of the non-overlapping (or strided) evaluation windows."""
    if num_values < length:
        raise ValueError(
            f"The stream has {num_values} elements; a window needs {length}."
        )
    return np.arange(0, num_values - length + 1, stride)


def window_dataset(values, length, stride, shuffle, seed=None):
    """A dataset of `(length,)` windows of a 1-D stream.

    With `shuffle`, each epoch draws `(N - length) // stride + 1` windows at
    uniformly random offsets (a different set every epoch); without it, the
    windows start at `0, stride, 2 * stride, ...`.

    Args:
        values: 1-D numpy array.
        length: Window length.
        stride: Spacing of the windows (and the count per epoch).
        shuffle: Random offsets (training) or a fixed grid (evaluation).
        seed: Optional int seed of the random offsets.

    Returns:
        A `tf.data.Dataset` of `(length,)` windows with a known cardinality.
    """
    starts = window_starts(len(values), length, stride)
    stream = tf.constant(values)
    if shuffle:
        span = len(values) - length + 1
        offsets = tf.data.Dataset.random(
            seed=seed, rerandomize_each_iteration=True
        ).take(len(starts))
        offsets = offsets.map(lambda r: tf.math.floormod(r, span))
    else:
        offsets = tf.data.Dataset.from_tensor_slices(starts.astype("int64"))
    return offsets.map(
        lambda start: stream[start : start + length],
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def next_step_pairs(windows):
    """Maps windows `w` to `(w[:-1], w[1:])`."""
    return windows.map(
        lambda w: (w[:-1], w[1:]), num_parallel_calls=tf.data.AUTOTUNE
    )


def batch_windows(windows, batch_size, drop_remainder=False):
    """Batches and prefetches a window dataset."""
    return windows.batch(batch_size, drop_remainder=drop_remainder).prefetch(
        tf.data.AUTOTUNE
    )
