"""Text and sequence data sets, the byte tokenizer and the xz baseline."""

import numpy as np
import pytest
import tensorflow as tf

from keras_genmodels import data
from keras_genmodels.autoregressive import tokenizer
from keras_genmodels.data import text
from keras_genmodels.evaluation import xz_baseline


def _array(dataset):
    return np.concatenate([b.numpy() for b in dataset.batch(1 << 20)])


def test_pydoc_splits_the_last_tenth_for_test():
    full = text.pydoc_text().encode("utf-8")
    dataset = data.load("pydoc", "train")
    assert (dataset.source_name, dataset.data_kind) == ("pydoc", "text")
    train, test = _array(dataset), _array(data.load("pydoc", "test"))
    assert train.dtype == np.int32 and train.max() < 256 and train.min() >= 0
    assert len(train) + len(test) == len(full)
    assert len(test) == len(full) - int(len(full) * 0.9)
    assert bytes(test.astype(np.uint8).tolist()) == full[-len(test):]
    assert len(full) > 400_000


def test_txt_files(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("héllo wörld " * 10, encoding="utf-8")
    assert data.load(str(path)).data_kind == "text"
    ids = np.concatenate([_array(data.load(str(path), s)) for s in ("train", "test")])
    assert tokenizer.decode(ids) == "héllo wörld " * 10


def test_text_errors(tmp_path):
    with pytest.raises(data.DataError, match="not found"):
        data.load(str(tmp_path / "missing.txt"))
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"abc\xff\xfe")
    with pytest.raises(data.DataError, match="not UTF-8"):
        data.load(str(bad))
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("abc")
    with pytest.raises(data.DataError, match="test split has 1 bytes"):
        data.load(str(tiny), "test")


def test_sine_is_generated_deterministically():
    dataset = data.load("sine")
    assert (dataset.source_name, dataset.data_kind) == ("sine", "sequence")
    train = _array(dataset)
    assert train.shape == (10_000,) and train.dtype == np.float32
    np.testing.assert_array_equal(train, _array(data.load("sine")))
    test = _array(data.load("sine:noise=0,num=1000", "test"))
    assert test.shape == (200,)
    # Noise-free: a pure sine of period 20.
    t = np.arange(200)
    np.testing.assert_allclose(test[t + 20 < 200], test[20:], atol=1e-5)
    assert np.abs(test).max() <= 1.0


@pytest.mark.parametrize(
    "name, message",
    [
        ("sine:period=1", "period"),
        ("sine:noise=-1", "noise"),
        ("sine:foo=1", "foo"),
        ("sine:noise=inf", r"'noise' of 'sine' must be a finite number in \[0, 100\]\. "
         r"Received: noise=inf$"),
        ("sine:noise=nan", "Received: noise=nan$"),
        ("sine:noise=1e30", "Received: noise=1e30$"),
        ("sine:period=inf", r"in \[2, 1e\+06\]\. Received: period=inf$"),
        ("sine:period=1.5", "Received: period=1.5$"),
        ("sine:num=5", r"'num' of 'sine' must be an integer in \[20, 10,000,000\]"),
        ("sine:num=1000000000000", "Received: num=1000000000000$"),
        ("sine:num=1e4", "Received: num=1e4$"),
    ],
)
def test_sine_errors(name, message):
    with pytest.raises(data.DataError, match=message) as info:
        data.load(name)
    assert "\n" not in str(info.value)


def test_csv_column_is_standardised(tmp_path):
    path = tmp_path / "s.csv"
    values = np.arange(100, dtype=float) * 2.0 + 5.0
    path.write_text("a,b\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    dataset = data.load(f"csv:{path}:b")
    assert (dataset.source_name, dataset.data_kind) == (f"csv:{path}:b", "sequence")
    train = _array(dataset)
    test = _array(data.load(f"csv:{path}:b", "test"))
    assert len(train) == 90 and len(test) == 10
    np.testing.assert_allclose(train.mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(train.std(), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.diff(test), np.diff(train)[0], rtol=1e-4)


def test_csv_errors(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("a,b\n1,2\n3,x\n")
    with pytest.raises(data.DataError, match="no column 'c'"):
        data.load(f"csv:{path}:c")
    with pytest.raises(data.DataError, match="line 3.*'x'"):
        data.load(f"csv:{path}:b")
    with pytest.raises(data.DataError, match="Cannot read"):
        data.load(f"csv:{tmp_path / 'none.csv'}:b")


def _write_csv(path, values, trailer=""):
    path.write_text("t,v\n" + "".join(f"{i},{v!r}\n" for i, v in enumerate(values)) + trailer)
    return f"csv:{path}:v"


def test_csv_standardisation_does_not_overflow(tmp_path):
    values = [float(i % 7) for i in range(100)]
    values[40] = 1e300
    name = _write_csv(tmp_path / "big.csv", values, trailer="\n\n")
    train = _array(data.load(name))
    assert len(train) == 90 and np.all(np.isfinite(train))
    np.testing.assert_allclose([train.mean(), train.std()], [0.0, 1.0], atol=1e-4)
    assert train[40] == train.max() > 9.0  # The outlier, about sqrt(89) sigmas out.
    assert np.all(np.isfinite(_array(data.load(name, "test"))))


@pytest.mark.parametrize(
    "values, message",
    [
        ([5.0] * 30, r"constant in the train split \(every value is 5\)"),
        ([1e300] * 30, r"constant in the train split \(every value is 1e\+300\)"),
        ([0.0, 1.0] * 14 + [1e300, 0.0], "standardised with the train mean"),
    ],
)
def test_csv_constant_column_or_overflowing_test_split(tmp_path, values, message):
    with pytest.raises(data.DataError, match=message) as info:
        data.load(_write_csv(tmp_path / "c.csv", values), "test")
    assert "\n" not in str(info.value)


def test_csv_non_finite_cell_names_its_line(tmp_path):
    path = tmp_path / "inf.csv"
    path.write_text("t,v\n0,1\n1,1e400\n2,nan\n")
    with pytest.raises(data.DataError, match="line 3, column 'v' is not finite: '1e400'"):
        data.load(f"csv:{path}:v")


def test_tokenizer_round_trips_in_python_and_tensorflow():
    s = "naïve café — 日本 \n\t"
    ids = tokenizer.encode(s)
    assert ids.dtype == np.int32 and len(ids) == len(s.encode("utf-8"))
    assert tokenizer.decode(ids) == s
    np.testing.assert_array_equal(tokenizer.tf_encode(tf.constant(s)).numpy(), ids)
    assert tokenizer.tf_decode(ids[None])[0].numpy().decode() == s
    # A cut multi-byte character becomes U+FFFD in both.
    cut = ids[:-6]
    assert tokenizer.tf_decode(cut[None])[0].numpy().decode() == tokenizer.decode(cut)
    with pytest.raises(ValueError, match="str or bytes"):
        tokenizer.encode(3)


def test_xz_conditional_rate_of_pydoc():
    rate = xz_baseline.dataset_rate("pydoc")
    assert 1.35 < rate < 1.47  # 1.4087 bits/char with LZMA2 preset 9e.
    assert xz_baseline.conditional_rate(b"abcdefgh" * 5000, b"abcdefgh" * 50) < 0.1
