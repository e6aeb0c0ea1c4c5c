"""The error raised for bad data, and the checks and tags every loader shares."""

import math

import numpy as np

# What a loaded data set holds; matches the model families' `data_kind`.
DATA_KINDS = ("image", "points", "text", "sequence")
FLOAT32_MAX = float(np.finfo(np.float32).max)


class DataError(ValueError):
    """Bad data or data-set name; the message is one line naming the problem."""


def _format(value):
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def parse_parameters(name, allowed):
    """Splits `"base:key=value,key=value"` into the base and checked parameters.

    Every value must parse as its type, be finite and lie in its closed range.

    Args:
        name: The data set name with optional parameters.
        allowed: `{key: (type, minimum, maximum)}` of the accepted parameters;
            `type` is `int` or `float`.

    Returns:
        `(base, {key: value})`.
    """
    base, _, rest = name.partition(":")
    params = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or key not in allowed:
            raise DataError(
                f"Bad parameter {item!r} in {name!r}. Expected key=value with "
                f"key one of: {', '.join(allowed)}."
            )
        if key in params:
            raise DataError(f"Parameter {key!r} is given twice in {name!r}.")
        kind, low, high = allowed[key]
        expected = (
            f"{'an integer' if kind is int else 'a finite number'} in "
            f"[{_format(low)}, {_format(high)}]"
        )
        try:
            number = kind(value)
        except ValueError:
            number = None
        if number is None or not math.isfinite(number) or not low <= number <= high:
            raise DataError(
                f"Parameter {key!r} of {base!r} must be {expected}. "
                f"Received: {key}={value}"
            )
        params[key] = number
    return base, params


def check_array(array, source, min_rank=1):
    """Checks an array of examples: numeric, finite, not empty.

    Args:
        array: The array, one example per row.
        source: What the array came from, for the error message.
        min_rank: Smallest accepted rank.

    Returns:
        The array, unchanged.
    """
    if not isinstance(array, np.ndarray):
        raise DataError(
            f"{source}: expected a numeric array. Received {type(array).__name__}."
        )
    if array.dtype.kind not in "biuf":
        raise DataError(
            f"{source}: expected numbers. Received dtype {array.dtype}."
        )
    if array.ndim < min_rank:
        raise DataError(
            f"{source}: expected at least {min_rank} dimensions. Received "
            f"shape {array.shape}."
        )
    if array.shape[0] == 0:
        raise DataError(f"{source}: the data set is empty.")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        bad = int(np.sum(~np.isfinite(array)))
        raise DataError(f"{source}: contains {bad} NaN or infinite values.")
    return array


def as_float32(array, source):
    """Casts to float32 and checks that every value is still finite.

    A float64 value beyond +-3.4e38 passes a float64 finiteness check but
    becomes infinite in float32, which is what the models train on.

    Args:
        array: A numeric array.
        source: What the array came from, for the error message.

    Returns:
        The float32 array.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        result = np.asarray(array).astype("float32")
    if not np.all(np.isfinite(result)):
        bad = int(np.sum(~np.isfinite(result)))
        raise DataError(
            f"{source}: {bad} values are NaN or infinite in float32 (the largest "
            f"float32 is {FLOAT32_MAX:.3g}); expected finite float32 values."
        )
    return result


def tag(dataset, source_name, data_kind):
    """Records what a loader loaded on its `tf.data.Dataset`.

    Args:
        dataset: The dataset a loader built.
        source_name: The name of what was actually loaded.
        data_kind: One of `DATA_KINDS`.

    Returns:
        The same dataset, with `source_name` and `data_kind` attributes.
    """
    if data_kind not in DATA_KINDS:
        raise ValueError(f"data_kind must be one of {DATA_KINDS}. Received: {data_kind!r}")
    dataset.source_name = source_name
    dataset.data_kind = data_kind
    return dataset
