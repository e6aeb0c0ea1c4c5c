"""Image files: one file's pixels in [0, 1], and folders of them.

Every Pillow mode is read at its own depth and scaled to float32 in [0, 1]:

- `1`, `L` (8-bit grey): one channel, divided by 255;
- `I;16`, `I;16B`, `I;16L`, `I` (16-bit grey, e.g. 16-bit PNGs): one
  channel, divided by 65535 (values outside [0, 65535] are refused);
- `F` (32-bit float grey): one channel, values must lie in [0, 1];
- `LA`, `RGBA`, `PA` and palette images with transparency: alpha is
  composited onto black (a transparent pixel reads 0);
- `P` (palette): grey if every palette entry is grey, else colour;
- `RGB`, `CMYK`, `YCbCr`, `HSV`: converted to RGB.

A folder loads as greyscale (1 channel) when every image is greyscale, else
as RGB (3 channels), greyscale images repeated across the channels. When grey
and colour files are mixed, a colour file whose pixels are all grey counts as
greyscale, so one RGB copy of a grey image does not turn a grey set into RGB.
"""

import os

import numpy as np
import tensorflow as tf

from keras_genmodels.data.errors import DataError, tag

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")
# ITU-R 601 luma, Pillow's own weights for RGB -> L.
_LUMA = np.array([0.299, 0.587, 0.114])


def _open_errors():
    from PIL import Image

    return (OSError, ValueError, Image.DecompressionBombError)


def _grey_palette(image):
    palette = image.getpalette()
    if not palette:
        return False
    rgb = np.asarray(palette).reshape(-1, 3)
    return bool(np.all(rgb == rgb[:, :1]))


def is_grey_mode(image):
    """Whether a Pillow image's mode (or grey palette) holds greyscale pixels."""
    if image.mode in GREY_MODES:
        return True
    return image.mode in ("P", "PA") and _grey_palette(image)


def pixels(image, source="image"):
    """Returns a Pillow image's pixels as float32 in [0, 1].

    Args:
        image: A `PIL.Image.Image` of any mode (see the module doc).
        source: The file name, for error messages.

    Returns:
        `(H, W)` for greyscale modes, `(H, W, 3)` for colour ones.
    """
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype("float64")
        low, high, scale = 0, 65535, 65535.0
    elif mode == "F":
        values = np.asarray(image).astype("float64")
        low, high, scale = 0, 1, 1.0
    else:
        try:
            if is_grey_mode(image):
                grey_alpha = np.asarray(image.convert("LA"), dtype="float32") / 255
                return grey_alpha[..., 0] * grey_alpha[..., 1]
            rgba = np.asarray(image.convert("RGBA"), dtype="float32") / 255
        except ValueError as error:  # A conversion Pillow does not have.
            raise DataError(
                f"Cannot read image {source} (mode {mode}): {error}; expected a "
                "greyscale or colour image."
            ) from None
        return rgba[..., :3] * rgba[..., 3:]
    if not (np.all(np.isfinite(values)) and values.min() >= low and values.max() <= high):
        raise DataError(
            f"{source}: mode {mode} pixels must lie in [{low}, {high}]. Received "
            f"range [{values.min():.6g}, {values.max():.6g}]."
        )
    return (values / scale).astype("float32")


def read_image(path, channels=None):
    """Reads one image file as float32 in [0, 1].

    Args:
        path: The image file.
        channels: `1` or `3` to convert to that many channels (a colour image
            becomes grey by ITU-R 601 luma); `None` keeps the image's own.

    Returns:
        A float32 array `(H, W, C)`.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            values = pixels(image, path)
    except _open_errors() as error:
        raise DataError(f"Cannot read image {path}: {error}.") from None
    if values.ndim == 2:
        values = values[..., None]
    if channels == 3 and values.shape[-1] == 1:
        values = np.repeat(values, 3, axis=-1)
    elif channels == 1 and values.shape[-1] == 3:
        values = (values @ _LUMA.astype("float32"))[..., None]
    return values


def _header(path):
    """Returns `(size, mode, grey)` from a file's header (no pixel decoding)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size, image.mode, is_grey_mode(image)
    except _open_errors() as error:
        raise DataError(f"Cannot read image {path}: {error}.") from None


def _is_grey_content(path):
    values = read_image(path)
    return values.shape[-1] == 1 or bool(
        np.all(values[..., :1] == values[..., 1:])
    )


def folder_channels(paths):
    """The channel count a folder of images loads with (see the module doc).

    Args:
        paths: The image files, sorted; all must share one size.

    Returns:
        `1` or `3`.
    """
    headers = [_header(p) for p in paths]
    for path, (size, mode, _) in zip(paths, headers):
        if size != headers[0][0]:
            first = headers[0]
            raise DataError(
                f"Images must share one size: {paths[0]} is {first[0][0]}x"
                f"{first[0][1]} (mode {first[1]}), {path} is {size[0]}x{size[1]} "
                f"(mode {mode})."
            )
    colour = [p for p, (_, _, grey) in zip(paths, headers) if not grey]
    if not colour:
        return 1
    if len(colour) == len(paths):
        return 3
    return 1 if all(_is_grey_content(p) for p in colour) else 3


def load_directory(name, split, with_labels):
    """Loads a folder of images; each sub-folder is a class.

    Files are sorted by path; the test split is every tenth file, the train
    split the rest. All images must share one size; channels follow the
    module doc (greyscale if every image is grey, else RGB).

    Args:
        name: The folder.
        split: `"train"` or `"test"`.
        with_labels: If `True`, elements are `(image, class index)`, classes
            being the sorted sub-folder paths.

    Returns:
        A `tf.data.Dataset` of float32 images `(H, W, C)` in [0, 1].
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
    channels = folder_channels(paths)
    images = np.stack([read_image(p, channels) for p in selected])
    classes = sorted({os.path.relpath(os.path.dirname(p), name) for p in paths})
    if with_labels:
        labels = [
            classes.index(os.path.relpath(os.path.dirname(p), name)) for p in selected
        ]
        dataset = tf.data.Dataset.from_tensor_slices(
            (images, np.asarray(labels, dtype="int32"))
        )
    else:
        dataset = tf.data.Dataset.from_tensor_slices(images)
    return tag(dataset, name, "image")
