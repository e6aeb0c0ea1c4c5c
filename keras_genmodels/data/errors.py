"""The error raised for bad data, and the checks every loader shares."""

import numpy as np


class DataError(ValueError):
    """Bad data or data-set name; the message is one line naming the problem."""


def parse_parameters(name, allowed):
    """Splits `"base:key=value,key=value"` into the base and typed parameters.

    Args:
        name: The data set name with optional parameters.
        allowed: `{key: type}` of the accepted parameters.

    Returns:
        `(base, {key: value})`.
    """
    base, _, rest = name.partition(":")
    params = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or key not in allowed:
            raise DataError(
                f"Bad parameter {item!r} in {name!r}. Expected key=value with "
                f"key one of: {', '.join(allowed)}."
            )
        try:
            params[key] = allowed[key](value)
        except ValueError:
            raise DataError(
                f"Parameter {key!r} in {name!r} must be "
                f"{allowed[key].__name__}. Received: {value!r}"
            ) from None
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
