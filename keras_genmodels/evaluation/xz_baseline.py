"""The `xz -9e` conditional compression rate of a test text given its train text.

`rate = 8 * (|xz(train + test)| - |xz(train)|) / |test|` bits per byte: the
extra bits a strong general-purpose compressor (LZMA2, preset 9 with the
extreme flag, a 64 MiB dictionary that holds the whole train text) needs for
the test text once it has seen the training text. A language model trained on
the train split should beat it on the test split.
"""

import lzma

_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]


def compressed_bits(data):
    """Bits of a raw LZMA2 stream (no container header) coding `data` (bytes)."""
    return 8 * len(lzma.compress(data, format=lzma.FORMAT_RAW, filters=_FILTERS))


def conditional_rate(train, test):
    """Bits per byte `xz -9e` needs to code `test` after `train`.

    Args:
        train: `bytes` seen first.
        test: `bytes` to code.

    Returns:
        A float, bits per byte of `test`.

    Example:

    ```python
    conditional_rate(b"abc" * 1000, b"abc" * 10)  # close to 0
    ```
    """
    if not test:
        raise ValueError("`test` must not be empty.")
    return (compressed_bits(train + test) - compressed_bits(train)) / len(test)


def dataset_rate(name):
    """The conditional rate of a text data set's test split after its train split.

    Args:
        name: A text data set name of `keras_genmodels.data` (`pydoc` or a
            `.txt` path).

    Returns:
        A float, bits per byte; about 1.41 for `pydoc`.
    """
    from keras_genmodels.data import text

    data = text.read_bytes(name)
    return conditional_rate(text.split_bytes(data, "train"), text.split_bytes(data, "test"))
