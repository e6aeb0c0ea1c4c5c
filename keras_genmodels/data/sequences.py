"""Real-valued sequences as streams of float32 values.

`load(name, split, with_labels)` accepts:

- `sine`: a noisy sine wave `x_t = sin(2 pi t / period) + noise * e_t`,
  `e_t ~ N(0, 1)`, generated with fixed seeds (train 0, test 1). Parameters go
  in the name: `sine:period=20,noise=0.1,num=10000` (defaults shown; `num` is
  the length of the train split, the test split is a fifth of it). Ranges:
  `period` in [2, 1e6], `noise` in [0, 100], `num` in [20, 10,000,000].
- `csv:PATH:COLUMN`: one numeric column of a CSV file with a header row
  (blank lines are skipped; every value must be a finite number). The last
  10% of the rows is the test split. Values are standardised with the mean
  and standard deviation of the train split, so models see z-scores; a
  column that is constant in the train split is refused.

The dataset yields one float32 scalar per element, in time order; the
autoregressive models' `prepare_dataset` cuts the stream into windows.
"""

import csv
import math

import numpy as np
import tensorflow as tf

from keras_genmodels.data.errors import (
    DataError,
    as_float32,
    check_array,
    parse_parameters,
    tag,
)

# A period under 2 steps aliases to a longer one; the bounds on `noise` and
# `num` keep squared errors finite in float32 and a split in memory.
SINE_PARAMETERS = {
    "period": (float, 2.0, 1_000_000.0),
    "noise": (float, 0.0, 100.0),
    "num": (int, 20, 10_000_000),
}
SINE_DEFAULTS = {"period": 20.0, "noise": 0.1, "num": 10_000}
TEST_FRACTION = 0.1
# A train split whose spread is below this fraction of its largest magnitude
# is constant up to float64 rounding.
CONSTANT_TOLERANCE = 1e-12


def sine_parameters(name):
    """Parses `sine[:period=..,noise=..,num=..]` into a dict of all three.

    Args:
        name: `sine` with optional parameters: `period` in [2, 1e6] steps,
            `noise` in [0, 100], `num` (train length) in [20, 10,000,000].

    Returns:
        `{"period": float, "noise": float, "num": int}`.
    """
    base, params = parse_parameters(name, SINE_PARAMETERS)
    if base != "sine":
        raise DataError(f"Unknown sequence set {base!r}. Expected: sine.")
    return {**SINE_DEFAULTS, **params}


def sine_values(name, split):
    """Returns one split of a `sine` set as a float32 numpy array."""
    params = sine_parameters(name)
    num = params["num"] if split == "train" else max(params["num"] // 5, 20)
    rng = np.random.default_rng(0 if split == "train" else 1)
    # Each split starts at a random phase so test windows are not train windows.
    t = np.arange(num) + rng.uniform(0, params["period"])
    clean = np.sin(2 * np.pi * t / params["period"])
    return as_float32(clean + params["noise"] * rng.standard_normal(num), name)


def csv_column(path, column):
    """Reads one numeric column of a CSV file with a header row.

    Args:
        path: The CSV file.
        column: Column name (or a 0-based index given as digits).

    Returns:
        float64 numpy array of the column's values.
    """
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise DataError(f"Cannot read CSV file {path!r}: {e.strerror}.") from None
    if len(rows) < 2:
        raise DataError(f"{path}: expected a header row and data rows.")
    header = [h.strip() for h in rows[0]]
    if column in header:
        index = header.index(column)
    elif column.isdigit() and int(column) < len(header):
        index = int(column)
    else:
        raise DataError(
            f"{path}: no column {column!r}. Columns: {', '.join(header)}."
        )
    values = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # Blank lines, e.g. at the end of the file.
        cell = row[index] if index < len(row) else ""
        try:
            value = float(cell)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value):
            expected = "is not a number" if value is None else "is not finite"
            raise DataError(
                f"{path}: line {line}, column {column!r} {expected}: {cell!r}."
            )
        values.append(value)
    if not values:
        raise DataError(f"{path}: expected data rows after the header; found none.")
    return check_array(np.asarray(values, dtype="float64"), f"{path}:{column}")


def standardise(train, values, source):
    """Returns `(values - mean) / std` of the train split, as float32.

    The statistics are computed in float64 on values divided by the train
    split's largest magnitude, so values up to 1.8e308 do not overflow.

    Args:
        train: float64 train values, which define the mean and spread.
        values: float64 values to standardise.
        source: What the values came from, for error messages.

    Returns:
        A float32 array of z-scores.
    """
    scale = float(np.max(np.abs(train)))
    scaled_train = train / scale if scale > 0 else train
    std = float(np.std(scaled_train))
    if not std > CONSTANT_TOLERANCE:
        raise DataError(
            f"{source}: the column is constant in the train split (every value "
            f"is {train[0]:.6g}); expected values that vary."
        )
    mean = float(np.mean(scaled_train))
    with np.errstate(over="ignore"):
        z = (values / (scale if scale > 0 else 1.0) - mean) / std
    return as_float32(z, f"{source} standardised with the train mean and spread")


def csv_values(name, split):
    """Returns one split of `csv:PATH:COLUMN`, standardised, as float32."""
    parts = name.split(":")
    if len(parts) < 3 or not parts[-1] or not ":".join(parts[1:-1]):
        raise DataError(f"Expected csv:PATH:COLUMN. Received: {name!r}")
    path, column = ":".join(parts[1:-1]), parts[-1]
    values = csv_column(path, column)
    cut = int(len(values) * (1.0 - TEST_FRACTION))
    train, test = values[:cut], values[cut:]
    if len(train) < 2 or len(test) < 2:
        raise DataError(
            f"{path}: {len(values)} rows are too few to split 90/10 into train and test."
        )
    part = train if split == "train" else test
    return standardise(train, part, f"{path}:{column}")


def load(name, split, with_labels):
    """Loads a sequence set as an unbatched dataset of float32 scalars.

    Args:
        name: `sine[:...]` or `csv:PATH:COLUMN`.
        split: `"train"` or `"test"`.
        with_labels: Ignored (sequences have no labels).

    Returns:
        A `tf.data.Dataset` of float32 scalars in time order.
    """
    del with_labels
    if name.startswith("csv:"):
        values = csv_values(name, split)
    else:
        values = sine_values(name, split)
    return tag(tf.data.Dataset.from_tensor_slices(values), name, "sequence")
