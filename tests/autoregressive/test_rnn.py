"""RNNAutoregressive: the seed reference on sine, byte mode, saving, exports."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_genmodels import build, data, export
from keras_genmodels.autoregressive import tokenizer
from keras_genmodels.autoregressive.rnn import RNNAutoregressive

NOISE = 0.1


@pytest.fixture(scope="module")
def reference():
    keras.utils.set_random_seed(0)
    model = build("ar", "reference", seed=0)
    dataset = model.prepare_dataset(data.load("sine"), 32)
    before = model.evaluate(dataset, verbose=0, return_dict=True)["loss"]
    history = model.fit(dataset, epochs=3, verbose=0)
    return model, before, history.history["loss"]


@pytest.fixture(scope="module")
def bytes_model():
    keras.utils.set_random_seed(0)
    model = RNNAutoregressive("gru", units=32, sequence_length=8, vocab_size=256, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    text = tokenizer.encode("abcdefgh" * 150)
    history = model.fit(model.prepare_dataset(text, 8), epochs=10, verbose=0)
    return model, history.history["loss"]


def test_reference_is_the_seed_network():
    model = build("ar", "reference")
    assert model.count_params() == 2_651
    assert isinstance(model.rnn, keras.layers.SimpleRNN) and model.rnn.units == 50
    assert model.rnn.return_sequences and model.head.units == 1
    assert model(np.zeros((2, 10, 1), "float32")).shape == (2, 10, 1)
    assert model.data_kind == "sequence"


def test_reference_learns_sine(reference):
    model, before, losses = reference
    assert losses[-1] < 0.5 * before
    metrics = model.evaluation_metrics(data.load("sine", "test"))
    # The best possible next-value MSE is the noise variance, 0.01.
    assert metrics["mse"] < 1.5 * NOISE**2
    assert metrics["mse_all_positions"] > metrics["mse"]
    assert 0.5 * NOISE**2 < model.residual_variance.numpy() < 0.1


def test_forecast_follows_the_sine(reference):
    model = reference[0]
    t = np.arange(40)
    history = np.sin(2 * np.pi * t / 20)[None]
    forecast = model.forecast(history, 10)
    assert forecast.shape == (1, 10)
    truth = np.sin(2 * np.pi * np.arange(40, 50) / 20)
    assert np.abs(forecast[0] - truth).mean() < 0.15


def test_sample_is_seeded(reference):
    model = reference[0]
    a = model.sample(4, seed=1)
    assert a.shape == (4, model.sample_length) and a.dtype == np.float32
    np.testing.assert_array_equal(a, model.sample(4, seed=1))
    assert not np.array_equal(a, model.sample(4, seed=2))
    assert np.abs(a).max() < 3.0


def test_step_matches_call():
    model = RNNAutoregressive("lstm", units=6, sequence_length=5)
    x = np.random.default_rng(0).standard_normal((3, 5, 1)).astype("float32")
    full = model(x).numpy()
    state = model.initial_state(3)
    for t in range(5):
        y, state = model._cell_step(x[:, t], state)
        np.testing.assert_allclose(y.numpy(), full[:, t], atol=1e-6)
    assert state.shape == (3, 12)


def test_byte_mode_learns_and_generates(bytes_model):
    model, losses = bytes_model
    assert model.data_kind == "text"
    assert losses[-1] < 0.2 * losses[0]
    assert model.generate("abc", 8, temperature=0.0) == "defghabc"
    assert model.generate("ab", 10, seed=3) == model.generate("ab", 10, seed=3)
    samples = model.sample(2, seed=1, max_new_tokens=8)
    assert len(samples) == 2 and all(isinstance(s, str) for s in samples)
    assert model.evaluation_metrics(
        tf.data.Dataset.from_tensor_slices(tokenizer.encode("abcdefgh" * 20))
    )["bits_per_char"] < 1.5


@pytest.mark.parametrize("fixture", ["reference", "bytes_model"])
def test_keras_round_trip(fixture, request, tmp_path):
    model = request.getfixturevalue(fixture)[0]
    path = str(tmp_path / "rnn.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = (np.arange(20, dtype="int32") % 7 + 97)[None]
    if not model.is_bytes:
        x = (x / 100.0).astype("float32")
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    assert loaded.get_config() == model.get_config()
    if model.is_bytes:
        assert loaded.generate("ab", 12, seed=2) == model.generate("ab", 12, seed=2)
    else:
        assert loaded.residual_variance.numpy() == model.residual_variance.numpy()
        np.testing.assert_array_equal(loaded.sample(3, seed=5), model.sample(3, seed=5))


def test_export_reference(reference, tmp_path):
    model = reference[0]
    report = export.export_and_verify(model, str(tmp_path), name="sine")
    assert report["signatures"] == ["forecast", "sample", "step"]
    assert report["tflite_max_abs_diff"]["step"] < 1e-4
    loaded = tf.saved_model.load(report["savedmodel"])
    history = np.sin(np.arange(12, dtype="float32") / 3)[None]
    out = loaded.signatures["forecast"](history=tf.constant(history), steps=tf.constant(7))
    np.testing.assert_allclose(out["forecast"].numpy(), model.forecast(history, 7), atol=1e-6)
    out = loaded.signatures["sample"](
        num_samples=tf.constant(2), seed=tf.constant([0, 9], tf.int32)
    )
    np.testing.assert_allclose(out["samples"].numpy(), model.sample(2, seed=[0, 9]), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cell": "transformer"}, "simple_rnn, gru, lstm"),
        ({"units": 0}, "units"),
        ({"vocab_size": 1000}, "at most 256"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RNNAutoregressive(**kwargs)


def test_wrong_mode_and_bad_input(reference, bytes_model):
    with pytest.raises(ValueError, match="not available for a continuous model"):
        reference[0].generate("a")
    with pytest.raises(ValueError, match="not available for a byte model"):
        bytes_model[0].forecast(np.zeros((1, 3)), 2)
    with pytest.raises(ValueError, match="history"):
        reference[0].forecast(np.zeros((2, 3, 2)), 2)
    with pytest.raises(ValueError, match="sequence_length \\+ 1 = 11"):
        reference[0].prepare_dataset(np.zeros(5, "float32"), 4)
