"""Real-valued sequences as streams of float32 values.

`load(name, split, with_labels)` accepts:

- `sine`: a noisy sine wave `x_t = sin(2 pi t / period) + noise * e_t`,
  `e_t ~ N(0, 1)`, generated with fixed seeds (train 0, test 1). Parameters go
  in the name: `sine:period=20,noise=0.1,num=10000` (defaults shown; `num` is
  the length of the train split, the test split is a fifth of it).
- `csv:PATH:COLUMN`: one numeric column of a CSV file with a header row. The
  last 10% of the rows is the test split. Values are standardised with the
  mean and standard deviation of the train split, so models see z-scores.

The dataset yields one float32 scalar per element, in time order; the
autoregressive models' `prepare_dataset` cuts the stream into windows.
"""

import csv

import numpy as np
import tensorflow as tf

from keras_genmodels.data.errors import DataError, check_array, parse_parameters

SINE_PARAMETERS = {"period": float, "noise": float, "num": int}
SINE_DEFAULTS = {"period": 20.0, "noise": 0.1, "num": 10_000}
TEST_FRACTION = 0.1


def sine_parameters(name):
    """Parses `sine[:period=..,noise=..,num=..]` into a dict of all three."""
    base, params = parse_parameters(name, SINE_PARAMETERS)
    if base != "sine":
        raise DataError(f"Unknown sequence set {base!r}. Expected: sine.")
    params = {**SINE_DEFAULTS, **params}
    if params["period"] <= 1:
        raise DataError(f"`period` must be > 1 in {name!r}. Received: {params['period']}")
    if params["noise"] < 0:
        raise DataError(f"`noise` must be >= 0 in {name!r}. Received: {params['noise']}")
    if params["num"] < 20:
        raise DataError(f"`num` must be >= 20 in {name!r}. Received: {params['num']}")
    return params


def sine_values(name, split):
    """Returns one split of a `sine` set as a float32 numpy array."""
    params = sine_parameters(name)
    num = params["num"] if split == "train" else max(params["num"] // 5, 20)
    rng = np.random.default_rng(0 if split == "train" else 1)
    # Each split starts at a random phase so test windows are not train windows.
    t = np.arange(num) + rng.uniform(0, params["period"])
    clean = np.sin(2 * np.pi * t / params["period"])
    return (clean + params["noise"] * rng.standard_normal(num)).astype("float32")


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
        try:
            values.append(float(row[index]))
        except (ValueError, IndexError):
            cell = row[index] if index < len(row) else ""
            raise DataError(
                f"{path}: line {line}, column {column!r} is not a number: {cell!r}."
            ) from None
    return check_array(np.asarray(values, dtype="float64"), f"{path}:{column}")


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
    std = train.std()
    if std == 0:
        raise DataError(f"{path}:{column}: the column is constant in the train split.")
    part = train if split == "train" else test
    return ((part - train.mean()) / std).astype("float32")


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
    return tf.data.Dataset.from_tensor_slices(values)
