"""User files as data: `.npy` that is something else, and image modes in folders."""

import pickle

import numpy as np
import pytest
from PIL import Image

from keras_genmodels import data
from keras_genmodels.data import image_files


def _arrays(dataset):
    return np.stack(list(dataset.as_numpy_iterator()))


def _load_error(path):
    with pytest.raises(data.DataError) as info:
        data.load(str(path))
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_npy_float64_beyond_float32_is_refused(tmp_path):
    path = tmp_path / "big.npy"
    array = np.ones((20, 2))
    array[3, 0] = 1e300  # Finite in float64, infinite in float32.
    np.save(path, array)
    message = _load_error(path)
    assert "1 values are NaN or infinite in float32" in message


def test_npz_renamed_npy_names_its_arrays(tmp_path):
    path = tmp_path / "archive.npy"
    with open(path, "wb") as f:
        np.savez(f, images=np.zeros((4, 3, 3)), labels=np.arange(4))
    message = _load_error(path)
    assert ".npz archive (arrays: images, labels)" in message


def test_pickles_and_other_files_renamed_npy_are_never_loaded(tmp_path):
    ran = tmp_path / "ran"
    pickled = tmp_path / "pickled.npy"
    # Unpickling this would create a file: loading must not unpickle it.
    pickled.write_bytes(pickle.dumps(_Exploit(str(ran)), protocol=2))
    assert "is a Python pickle" in _load_error(pickled) and not ran.exists()
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([[1, "a"], [2, None]], dtype=object))
    assert "holds Python objects" in _load_error(objects)
    text = tmp_path / "text.npy"
    text.write_text("1,2\n3,4\n")
    assert "is not a NumPy .npy file" in _load_error(text)
    truncated = tmp_path / "truncated.npy"
    np.save(truncated, np.zeros((100, 4)))
    truncated.write_bytes(truncated.read_bytes()[:200])
    assert "Cannot read" in _load_error(truncated)


class _Exploit:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _grey_palette_image(values):
    image = Image.new("P", values.shape[::-1])
    image.putpalette([v for level in range(256) for v in (level, level, level)])
    image.putdata(values.ravel().tolist())
    return image


def _save(image, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def test_sixteen_bit_pngs_load_as_one_channel_scaled_by_65535(tmp_path):
    values = (np.arange(16).reshape(4, 4) * 4000).astype(np.uint16)
    for i in range(10):
        _save(Image.fromarray(values), tmp_path / f"{i}.png")
    assert Image.open(tmp_path / "0.png").mode == "I;16"
    images = _arrays(data.load(str(tmp_path)))
    assert images.shape == (9, 4, 4, 1)
    np.testing.assert_allclose(images[0, ..., 0], values / 65535, rtol=1e-6)


def test_grey_modes_load_as_one_channel(tmp_path):
    grey = np.arange(16, dtype=np.uint8).reshape(4, 4) * 16
    alpha = np.full((4, 4), 255, np.uint8)
    alpha[0] = 0  # Transparent row: composited onto black.
    files = {
        "a_l.png": Image.fromarray(grey),
        "b_one_bit.png": Image.fromarray(grey > 100),
        "c_la.png": Image.fromarray(np.stack([grey, alpha], -1)),
        "d_palette.png": _grey_palette_image(grey),
        "e_grey.gif": Image.fromarray(grey),  # GIF stores grey as a palette.
    }
    for file_name, image in files.items():
        _save(image, tmp_path / file_name)
    modes = [Image.open(tmp_path / f).mode for f in sorted(files)]
    assert modes == ["L", "1", "LA", "P", "P"]
    images = _arrays(data.load(str(tmp_path)))
    assert images.shape == (5, 4, 4, 1)
    expected_la = grey / 255.0
    expected_la[0] = 0.0
    for index, expected in enumerate(
        [grey / 255.0, (grey > 100) * 1.0, expected_la, grey / 255.0, grey / 255.0]
    ):
        np.testing.assert_allclose(images[index, ..., 0], expected, atol=1e-6)


def test_colour_modes_load_as_rgb(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    rgba[0, :, 3] = 0
    _save(Image.fromarray(rgba), tmp_path / "a_rgba.png")
    _save(Image.fromarray(rgba[..., :3]).convert("P"), tmp_path / "b_palette.png")
    images = _arrays(data.load(str(tmp_path)))
    assert images.shape == (2, 4, 4, 3)
    np.testing.assert_allclose(images[0, 1:, :, 0], 200 / 255, atol=1e-6)
    np.testing.assert_array_equal(images[0, 0], 0.0)  # Transparent: black.
    assert images[1, ..., 0].max() > 0.7 and images[1, ..., 1:].max() < 0.1


def test_one_colour_image_among_grey_ones_makes_the_set_rgb(tmp_path):
    for i in range(10):
        _save(Image.fromarray(np.full((4, 4), 10 * i, np.uint8)), tmp_path / f"{i}.png")
    _save(Image.new("RGB", (4, 4), (255, 0, 0)), tmp_path / "3.png")
    train = _arrays(data.load(str(tmp_path)))
    test = _arrays(data.load(str(tmp_path), "test"))
    assert train.shape == (9, 4, 4, 3) and test.shape == (1, 4, 4, 3)
    np.testing.assert_allclose(train[3, 0, 0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(train[2, 0, 0], [20 / 255] * 3, rtol=1e-6)  # Grey repeated.
    np.testing.assert_allclose(test[0, 0, 0], [90 / 255] * 3, rtol=1e-6)


def test_an_rgb_file_of_grey_pixels_keeps_a_grey_set_grey(tmp_path):
    for i in range(10):
        _save(Image.fromarray(np.full((4, 4), 10 * i, np.uint8)), tmp_path / f"{i}.png")
    _save(Image.new("RGB", (4, 4), (30, 30, 30)), tmp_path / "3.png")
    train = _arrays(data.load(str(tmp_path)))
    assert train.shape == (9, 4, 4, 1)
    np.testing.assert_allclose(train[3], 30 / 255, rtol=1e-6)


def test_pixels_of_float_and_wide_integer_modes():
    inside = Image.fromarray(np.full((2, 2), 0.25, np.float32))
    assert inside.mode == "F"
    np.testing.assert_allclose(image_files.pixels(inside), 0.25)
    with pytest.raises(data.DataError, match=r"x.tif: mode F pixels must lie in \[0, 1\]"):
        image_files.pixels(Image.fromarray(np.full((2, 2), 2.0, np.float32)), "x.tif")
    wide = Image.fromarray(np.full((2, 2), 70_000, np.int32))
    assert wide.mode == "I"
    with pytest.raises(data.DataError, match=r"mode I pixels must lie in \[0, 65535\]"):
        image_files.pixels(wide)
    cmyk = image_files.pixels(Image.new("CMYK", (2, 2), (0, 255, 255, 0)))
    np.testing.assert_allclose(cmyk[0, 0], [1.0, 0.0, 0.0])


def test_unreadable_image_names_the_file(tmp_path):
    for i in range(3):
        _save(Image.new("L", (4, 4)), tmp_path / f"{i}.png")
    (tmp_path / "1.png").write_bytes(b"not a png")
    with pytest.raises(data.DataError, match="Cannot read image .*1.png"):
        data.load(str(tmp_path))
