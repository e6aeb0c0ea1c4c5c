"""RNNAutoregressive (the seed forecaster on sine) and RNNLanguageModel (bytes).

The contract checks (seeded samples, `.keras` round trips, served == Python
samples, TF Lite parity) of the presets are in tests/test_contract.py; the
byte RNN has no preset, so its round trip and served sample are here.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_genmodels import build, data, export
from keras_genmodels.autoregressive import tokenizer
from keras_genmodels.autoregressive.rnn import RNNAutoregressive
from keras_genmodels.autoregressive.rnn_lm import RNNLanguageModel

# Its module-scoped models are built once: one worker runs the module.
pytestmark = pytest.mark.xdist_group("test_rnn")

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
    model = RNNLanguageModel("gru", units=32, sequence_length=8, seed=0)
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
    assert model.data_kind == "sequence" and model.cell == "simple_rnn"
    assert model.get_config()["cell"] == "simple_rnn"


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


def test_samples_follow_the_training_statistics(reference):
    model = reference[0]
    samples = model.sample(64, seed=1)
    assert samples.shape == (64, model.sample_length) and samples.dtype == np.float32
    assert np.abs(samples).max() < 3.0
    # A noisy sine of amplitude 1: values spread like it.
    assert 0.4 < samples.std() < 1.0


@pytest.mark.parametrize("make", [
    lambda: RNNAutoregressive("lstm", units=6, sequence_length=5),
    lambda: RNNLanguageModel("gru", units=6, sequence_length=5, embedding_dim=3),
])
def test_step_matches_call(make):
    model = make()
    rng = np.random.default_rng(0)
    if isinstance(model, RNNLanguageModel):
        x = rng.integers(0, 256, (3, 5)).astype("int32")
    else:
        x = rng.standard_normal((3, 5, 1)).astype("float32")
    full = model(x).numpy()
    state = model.initial_state(3)
    for t in range(5):
        y, state = model._cell_step(x[:, t], state)
        np.testing.assert_allclose(y.numpy(), full[:, t], atol=1e-6)
    assert state.shape == (3, model.state_size)


def test_served_forecast_matches_python(reference, tmp_path):
    model = reference[0]
    # The fresh-process check and TF Lite parity are tests/test_contract.py's.
    loaded = tf.saved_model.load(export.export_savedmodel(model, str(tmp_path), name="sine"))
    assert sorted(set(loaded.signatures) - {"serving_default"}) == [
        "forecast", "sample", "sample_batch", "step",
    ]
    history = np.sin(np.arange(12, dtype="float32") / 3)[None]
    out = loaded.signatures["forecast"](history=tf.constant(history), steps=tf.constant(7))
    np.testing.assert_allclose(out["forecast"].numpy(), model.forecast(history, 7), atol=1e-6)


def test_byte_rnn_learns_and_generates(bytes_model):
    model, losses = bytes_model
    assert model.data_kind == "text"
    assert losses[-1] < 0.2 * losses[0]
    assert model.generate("abc", 8, temperature=0.0) == "defghabc"
    # The state carries past the training window of 8 bytes.
    assert model.generate("a", 20, temperature=0.0) == "bcdefghabcdefghabcde"
    samples = model.sample(2, seed=1, max_new_tokens=8)
    assert len(samples) == 2 and all(isinstance(s, str) for s in samples)
    assert model.evaluation_metrics(
        tf.data.Dataset.from_tensor_slices(tokenizer.encode("abcdefgh" * 20))
    )["bits_per_char"] < 1.5


def test_byte_rnn_decoding_strategies_agree(bytes_model):
    model = bytes_model[0]
    prompt = np.stack([tokenizer.encode("abc"), tokenizer.encode("fgh")])
    for kwargs in ({"temperature": 0.0}, {"seed": 5}, {"seed": 2, "top_k": 3}):
        cached = model.generate_tokens(prompt, 12, **kwargs)
        np.testing.assert_array_equal(
            cached, model.generate_tokens(prompt, 12, strategy="prefix", **kwargs)
        )
        np.testing.assert_array_equal(
            cached, model.generate_tokens(prompt, 12, jit_compile=True, **kwargs)
        )
    # Within its window, the full-window loop reads what the state holds.
    np.testing.assert_array_equal(
        model.generate_tokens(prompt, 5, seed=3),
        model.generate_tokens(prompt, 5, seed=3, strategy="full_window"),
    )


def test_byte_rnn_round_trip_and_served_sample(bytes_model, tmp_path):
    model = bytes_model[0]
    path = str(tmp_path / "rnn.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, RNNLanguageModel)
    assert loaded.get_config() == model.get_config()
    assert loaded.generate("ab", 12, seed=2) == model.generate("ab", 12, seed=2)
    path = export.export_savedmodel(model, str(tmp_path / "sm"))
    assert path.split("/")[-2] == "ar-rnn-text"
    signatures = tf.saved_model.load(path).signatures
    assert sorted(set(signatures) - {"serving_default"}) == [
        "generate", "sample", "sample_batch", "score", "step",
    ]
    served = signatures["sample"](
        num_samples=tf.constant(3), seed=tf.constant([4, 2]), max_new_tokens=tf.constant(9)
    )["text"]
    texts = [t.decode("utf-8") for t in served.numpy()]
    assert texts == model.sample(3, seed=[4, 2], max_new_tokens=9)


@pytest.mark.parametrize(
    "make, kwargs, message",
    [
        (RNNAutoregressive, {"cell": "transformer"}, "simple_rnn, gru, lstm"),
        (RNNAutoregressive, {"units": 0}, "units"),
        (RNNAutoregressive, {"vocab_size": 256}, "RNNLanguageModel"),
        (RNNLanguageModel, {"cell": "transformer"}, "simple_rnn, gru, lstm"),
        (RNNLanguageModel, {"vocab_size": 1000}, "at most 256"),
    ],
)
def test_bad_arguments(make, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(**kwargs)


def test_bad_input(reference, bytes_model):
    with pytest.raises(ValueError, match="history"):
        reference[0].forecast(np.zeros((2, 3, 2)), 2)
    with pytest.raises(ValueError, match="has 5 elements.*sequence_length \\+ 1 = 11"):
        reference[0].prepare_dataset(np.zeros(5, "float32"), 4)
    with pytest.raises(ValueError, match="text has 3 bytes.*sequence_length \\+ 1 = 9"):
        bytes_model[0].prepare_dataset(tokenizer.encode("abc"), 4)
    with pytest.raises(TypeError, match="no keyword options"):
        reference[0].sample(2, max_new_tokens=3)
