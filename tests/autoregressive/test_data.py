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
    train, test = _array(data.load("pydoc", "train")), _array(data.load("pydoc", "test"))
    assert train.dtype == np.int32 and train.max() < 256 and train.min() >= 0
    assert len(train) + len(test) == len(full)
    assert len(test) == len(full) - int(len(full) * 0.9)
    assert bytes(test.astype(np.uint8).tolist()) == full[-len(test):]
    assert len(full) > 400_000


def test_txt_files(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("héllo wörld " * 10, encoding="utf-8")
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
    train = _array(data.load("sine"))
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
    [("sine:period=1", "period"), ("sine:noise=-1", "noise"), ("sine:foo=1", "foo")],
)
def test_sine_errors(name, message):
    with pytest.raises(data.DataError, match=message):
        data.load(name)


def test_csv_column_is_standardised(tmp_path):
    path = tmp_path / "s.csv"
    values = np.arange(100, dtype=float) * 2.0 + 5.0
    path.write_text("a,b\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    train = _array(data.load(f"csv:{path}:b"))
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
