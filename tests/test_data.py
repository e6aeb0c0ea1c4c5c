"""Data loaders: the bundled digits, downloads with fallbacks, user files, toy sets."""

import keras
import numpy as np
import pytest
from PIL import Image

from keras_genmodels import data
from keras_genmodels.data import images as image_data
from keras_genmodels.data import toy2d


def _arrays(dataset):
    return list(dataset.as_numpy_iterator())


@pytest.fixture(autouse=True)
def _fresh_mnist_memo(monkeypatch):
    # The offline fallback is remembered per process; each test starts fresh.
    monkeypatch.setattr(image_data, "_mnist_offline_reason", None)


@pytest.fixture(scope="module")
def mnist_5k_test():
    return list(data.load("mnist-5k", "test", with_labels=True).as_numpy_iterator())


def test_mnist_5k_splits(mnist_5k_test):
    train = data.load("mnist-5k", "train")
    assert int(train.cardinality()) == 4_000
    assert len(mnist_5k_test) == 1_000
    labels = np.array([y for _, y in mnist_5k_test])
    np.testing.assert_array_equal(np.bincount(labels), [100] * 10)
    image = mnist_5k_test[0][0]
    assert image.shape == (28, 28, 1) and image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0 and image.max() > 0.5
    assert train.element_spec.shape == (28, 28, 1)


def test_mnist_5k_train_and_test_are_disjoint(mnist_5k_test):
    train = np.stack(_arrays(data.load("mnist-5k", "train")))
    test = np.stack([x for x, _ in mnist_5k_test])
    train_keys = {x.tobytes() for x in train}
    assert not any(x.tobytes() in train_keys for x in test)


def test_mnist_falls_back_offline_with_one_warning_line(monkeypatch, capsys):
    calls = []

    def offline():
        calls.append(1)
        raise Exception("URL fetch failure: [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    train = data.load("mnist", "train")
    assert (train.source_name, train.data_kind) == ("mnist-5k", "image")
    test = data.load("mnist", "test", with_labels=True)
    assert int(test.cardinality()) == 1_000
    assert (test.source_name, test.data_kind) == ("mnist-5k", "image")
    # One download attempt and one warning line for both splits.
    assert len(calls) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mnist-5k" in err[0] and "warning" in err[0]


def test_mnist_uses_the_download_when_available(monkeypatch):
    fake = np.full((6, 28, 28), 255, np.uint8)
    monkeypatch.setattr(
        keras.datasets.mnist,
        "load_data",
        lambda: ((fake, np.arange(6)), (fake[:2], np.arange(2))),
    )
    dataset = data.load("mnist", "test", with_labels=True)
    assert (dataset.source_name, dataset.data_kind) == ("mnist", "image")
    test = _arrays(dataset)
    assert len(test) == 2 and test[0][0].shape == (28, 28, 1)
    assert test[0][0].max() == 1.0


def test_fashion_mnist_offline_error_is_one_line(monkeypatch):
    def offline():
        raise Exception("URL fetch failure\nsecond line")

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline)
    with pytest.raises(data.DataError, match="Offline, use mnist-5k") as info:
        data.load("fashion_mnist")
    assert "\n" not in str(info.value)


def test_tfds_images_are_scaled(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=5):
        dataset = data.load("tfds:mnist", "train", with_labels=True)
        images = _arrays(dataset.map(lambda x, y: x))
    assert (dataset.source_name, dataset.data_kind) == ("tfds:mnist", "image")
    assert len(images) == 5 and images[0].shape == (28, 28, 1)
    assert images[0].dtype == np.float32 and images[0].max() <= 1.0


def test_tfds_unknown_name_is_a_data_error():
    with pytest.raises(data.DataError, match="could not load 'no_such_dataset_xyz'"):
        data.load("tfds:no_such_dataset_xyz")


def _write_png(path, shape, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(shape, value, np.uint8)).save(path)


def test_image_directory_with_classes(tmp_path):
    for i in range(10):
        _write_png(tmp_path / ("cats" if i < 5 else "dogs") / f"{i}.png", (8, 8, 3), 20 * i)
    dataset = data.load(str(tmp_path), "train", with_labels=True)
    assert (dataset.source_name, dataset.data_kind) == (str(tmp_path), "image")
    train = _arrays(dataset)
    test = _arrays(data.load(str(tmp_path), "test", with_labels=True))
    assert len(train) == 9 and len(test) == 1
    assert train[0][0].shape == (8, 8, 3)
    assert test[0][1] == 1  # The tenth file is a dog.
    assert test[0][0].max() == pytest.approx(180 / 255)


def test_image_directory_errors(tmp_path):
    with pytest.raises(data.DataError, match="No image files"):
        data.load(str(tmp_path))
    for i in range(10):
        _write_png(tmp_path / f"{i}.png", (8, 8) if i else (9, 9), 0)
    with pytest.raises(data.DataError, match="must share one size"):
        data.load(str(tmp_path), "test")


def test_npy_images_and_points(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (20, 6, 6), dtype=np.uint8)
    np.save(tmp_path / "images.npy", images)
    assert data.load(str(tmp_path / "images.npy")).data_kind == "image"
    loaded = _arrays(data.load(str(tmp_path / "images.npy")))
    assert len(loaded) == 18 and loaded[0].shape == (6, 6, 1)
    np.testing.assert_allclose(loaded[0][..., 0], images[0] / 255.0, rtol=1e-6)
    np.save(tmp_path / "points.npy", np.ones((10, 2), np.float64))
    dataset = data.load(str(tmp_path / "points.npy"), "test")
    assert dataset.data_kind == "points"
    points = _arrays(dataset)
    assert len(points) == 1 and points[0].dtype == np.float32


@pytest.mark.parametrize(
    "array, message",
    [
        (np.array([[np.nan, 1.0]] * 4), "NaN"),
        (np.array([["a", "b"]] * 4), "expected numbers"),
        (np.zeros((0, 4, 4)), "empty"),
        (np.full((4, 4, 4), 2.0), r"float pixels must lie in \[0, 1\]"),
        (np.zeros((4, 4, 4, 2)), "C in \\(1, 3, 4\\)"),
        (np.zeros(4), "at least 2 dimensions"),
    ],
)
def test_npy_bad_content_is_named(tmp_path, array, message):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with pytest.raises(data.DataError, match=message):
        data.load(str(path))


def test_bad_names_and_splits():
    with pytest.raises(data.DataError, match="not found"):
        data.load("/no/such/file.npy")
    with pytest.raises(data.DataError, match="Unknown data set 'nope'"):
        data.load("nope")
    with pytest.raises(data.DataError, match="split"):
        data.load("mnist-5k", "validation")
    assert issubclass(data.DataError, ValueError)


def test_to_images_refuses_out_of_range_integers():
    with pytest.raises(data.DataError, match=r"\[0, 255\]"):
        image_data.to_images(np.full((2, 3, 3), 300, np.int32), "x")


def test_toy_sets_shapes_labels_and_parameters():
    points, labels = zip(*_arrays(data.load("grid25:num=500", "train", with_labels=True)))
    points, labels = np.stack(points), np.array(labels)
    assert points.shape == (500, 2) and points.dtype == np.float32
    centers = toy2d.centers("grid25")
    assert centers.shape == (25, 2)
    np.testing.assert_allclose(
        np.linalg.norm(points - centers[labels], axis=1).max(), 0.0, atol=0.05 * 5
    )
    ring = np.stack(_arrays(data.load("ring8:sigma=0.1,num=2000", "test")))
    assert np.std(np.linalg.norm(ring, axis=1) - 2.0) == pytest.approx(0.1, rel=0.15)
    dataset = data.load("moons", "train")
    assert (dataset.source_name, dataset.data_kind) == ("moons", "points")
    moons = np.stack(_arrays(dataset))
    assert moons.shape == (20_000, 2)
    a = np.stack(_arrays(data.load("moons:num=50", "train")))
    np.testing.assert_array_equal(a, np.stack(_arrays(data.load("moons:num=50", "train"))))


@pytest.mark.parametrize(
    "name, low, high",
    [("grid25", -4.5, 4.5), ("ring8:sigma=0.1", -2.6, 2.6), ("moons", (-1.4, -0.9), (2.4, 1.4))],
)
def test_toy_densities_integrate_to_one(name, low, high):
    step = 0.01
    xs = np.arange(np.min(low), np.max(high), step)
    grid = np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2)
    inside = np.all((grid >= low) & (grid <= high), axis=1)
    density = np.exp(toy2d.true_log_prob(name, grid[inside]))
    assert density.sum() * step**2 == pytest.approx(1.0, abs=0.01)


def test_toy_parameter_errors():
    with pytest.raises(data.DataError, match="key one of"):
        data.load("ring8:radius=3")
    with pytest.raises(data.DataError, match="must be a finite number"):
        data.load("ring8:sigma=wide")
    with pytest.raises(data.DataError, match="sigma"):
        data.load("ring8:sigma=-1")


@pytest.mark.parametrize(
    "name, message",
    [
        ("ring8:sigma=nan", r"'sigma' of 'ring8' must be a finite number in \[0.001, 10\]\. "
         r"Received: sigma=nan$"),
        ("ring8:sigma=inf", "Received: sigma=inf$"),
        ("grid25:noise=-inf", "Received: noise=-inf$"),
        ("moons:sigma=0", "Received: sigma=0$"),
        ("moons:sigma=1e-300", "Received: sigma=1e-300$"),
        ("grid25:sigma=1e30", "Received: sigma=1e30$"),
        ("moons:num=1000000000000", r"'num' of 'moons' must be an integer in "
         r"\[1, 10,000,000\]\. Received: num=1000000000000$"),
        ("moons:num=10**12", "Received: num=10\\*\\*12$"),
        ("grid25:num=0", "Received: num=0$"),
        ("ring8:num=2.5", "must be an integer"),
        ("ring8:sigma=0.1,sigma=0.2", "'sigma' is given twice"),
        ("ring8:sigma=0.1,noise=0.2", "not both"),
    ],
)
def test_every_toy_parameter_is_range_checked(name, message):
    with pytest.raises(data.DataError, match=message) as info:
        data.load(name)
    assert "\n" not in str(info.value)


def test_toy_parameter_bounds_are_accepted():
    points = np.stack(_arrays(data.load("moons:sigma=0.001,num=3")))
    assert points.shape == (3, 2) and np.all(np.isfinite(points))
    assert np.all(np.isfinite(toy2d.true_log_prob("moons:sigma=0.001", points)))
    assert len(_arrays(data.load("grid25:noise=10,num=1"))) == 1
