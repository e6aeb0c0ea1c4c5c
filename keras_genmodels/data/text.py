"""Text data sets as streams of UTF-8 byte ids.

`load(name, split, with_labels)` accepts `pydoc` (the Python documentation
text shipped with CPython in `pydoc_data.topics`, the topics concatenated in
sorted key order) or a path to a `.txt` file. The text is encoded as UTF-8 and
split by bytes: the last 10% is the `test` split, the rest the `train` split.

The dataset yields one int32 scalar (a byte id in `[0, 256)`) per element;
the autoregressive models' `prepare_dataset` cuts the stream into training
windows.
"""

import numpy as np
import tensorflow as tf

from keras_genmodels.data.errors import DataError, tag

TEST_FRACTION = 0.1


def pydoc_text():
    """Returns the `pydoc` corpus: `pydoc_data.topics` joined in key order.

    Returns:
        A `str` of about 465,000 characters.
    """
    try:
        from pydoc_data.topics import topics
    except ImportError:  # Some minimal Python builds drop pydoc_data.
        raise DataError(
            "The `pydoc` data set needs the `pydoc_data` module of the Python "
            "standard library, which this Python lacks."
        ) from None
    return "".join(topics[key] for key in sorted(topics))


def read_bytes(name):
    """Returns the UTF-8 bytes of a text data set.

    Args:
        name: `"pydoc"` or a path to a `.txt` file.

    Returns:
        `bytes`.
    """
    if name == "pydoc":
        return pydoc_text().encode("utf-8")
    try:
        with open(name, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DataError(f"Cannot read text file {name!r}: {e.strerror}.") from None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{name}: not UTF-8 text (bad byte at offset {e.start})."
        ) from None
    return data


def split_bytes(data, split, source="text"):
    """Splits a byte string: the last 10% is `test`, the rest `train`.

    Args:
        data: `bytes`.
        split: `"train"` or `"test"`.
        source: Name used in error messages.

    Returns:
        The split's `bytes`.
    """
    cut = int(len(data) * (1.0 - TEST_FRACTION))
    part = data[:cut] if split == "train" else data[cut:]
    if len(part) < 2:
        raise DataError(
            f"{source}: the {split} split has {len(part)} bytes; need at least 2 "
            f"(the file has {len(data)} bytes)."
        )
    return part


def load_bytes(name, split):
    """Returns one split of a text data set as an int32 numpy array of byte ids."""
    part = split_bytes(read_bytes(name), split, source=name)
    return np.frombuffer(part, dtype=np.uint8).astype("int32")


def load(name, split, with_labels):
    """Loads a text data set as an unbatched dataset of int32 byte ids.

    Args:
        name: `"pydoc"` or a `.txt` path.
        split: `"train"` or `"test"`.
        with_labels: Ignored (text has no labels).

    Returns:
        A `tf.data.Dataset` of int32 scalars.
    """
    del with_labels
    dataset = tf.data.Dataset.from_tensor_slices(load_bytes(name, split))
    return tag(dataset, name, "text")
