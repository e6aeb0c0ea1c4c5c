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
