"""Every family's `evaluation_metrics` on small and unequal test sets, with
its progress bar.

The models are tiny and untrained: these tests check what is computed and
printed, not how good the figures are.
"""

import numpy as np
import pytest
import tensorflow as tf

from keras_genmodels import presets, progress
from keras_genmodels.autoregressive import tokenizer
from keras_genmodels.autoregressive.rnn import RNNAutoregressive
from keras_genmodels.autoregressive.rnn_lm import RNNLanguageModel
from keras_genmodels.autoregressive.transformer import TransformerLM
from keras_genmodels.data import toy2d
from keras_genmodels.evaluation import classifier_fid, registry
from keras_genmodels.vae import networks
from keras_genmodels.vae.model import VAE


@pytest.fixture(autouse=True)
def one_line_progress(monkeypatch):
    """Each bar prints its title, then one line when its loop ends."""
    monkeypatch.setenv(progress.ENV_VARIABLE, "2")


def _moons(num, seed=1):
    points, _ = toy2d.parse("moons")[0].sample(num, seed=seed)
    return tf.data.Dataset.from_tensor_slices(points.astype("float32"))


def _lines(capsys):
    return capsys.readouterr().err.splitlines()


def test_vae_iwae_shows_a_bar_and_keeps_its_figures(capsys):
    model = VAE(
        networks.mlp_encoder((8, 8, 1), latent_dim=2, hidden_units=8),
        networks.mlp_decoder((8, 8, 1), latent_dim=2, hidden_units=8),
        seed=0,
    )
    images = np.random.default_rng(0).uniform(size=(10, 8, 8, 1)).astype("float32")
    metrics = model.evaluation_metrics(
        tf.data.Dataset.from_tensor_slices(images), num_importance_samples=3, batch_size=4
    )
    lines = _lines(capsys)
    assert lines[0] == "IWAE bound (k=3) on 10 test images"
    assert lines[1].startswith("3/3 - ")
    # The figures are the per-batch bounds with seeds 0, 1, 2, as before.
    bounds = [model.likelihood_bounds(images[i : i + 4], 3, seed=i // 4) for i in (0, 4, 8)]
    assert metrics["iwae_nll"] == -np.concatenate([b[1] for b in bounds]).mean()
    assert metrics["negative_elbo"] == -np.concatenate([b[0] for b in bounds]).mean()
    assert metrics["num_images"] == 10


def test_flow_bits_per_dim_shows_a_bar(capsys):
    model = presets.build("flow", "reference", seed=0)
    metrics = model.evaluation_metrics(_moons(50), dataset_name="moons", batch_size=20)
    lines = _lines(capsys)
    assert lines[0] == "Flow log-likelihood (bits/dim) on 50 test examples"
    assert lines[1].startswith("3/3 - ")
    assert metrics["num_examples"] == 50 and np.isfinite(metrics["nll_minus_entropy"])


def test_diffusion_compares_more_samples_than_test_points(capsys):
    # `train diffusion --dataset moons:num=600` evaluated 2,000 model samples
    # and reference points against a 600-point test split.
    model = presets.build("diffusion", "mlp2d", timesteps=5, hidden_units=16, seed=0)
    metrics = model.evaluation_metrics(_moons(50), dataset_name="moons", num_samples=200)
    assert metrics["num_samples"] == 200 and metrics["num_test_points"] == 50
    assert metrics["sliced_wasserstein_data"] > 0
    assert metrics["sliced_wasserstein_ratio"] == pytest.approx(
        metrics["sliced_wasserstein"] / metrics["sliced_wasserstein_data"]
    )
    lines = _lines(capsys)
    assert lines[0] == "Diffusion noise-prediction loss on 50 test examples"
    assert lines[2] == (
        "Sampling 200 points (5 reverse steps) for the sliced Wasserstein distance"
    )
    with pytest.raises(ValueError, match="at least 2 test points.*Received: 1 test point"):
        model.evaluation_metrics(_moons(1), num_samples=200)


def test_packed_gan_scores_a_test_set_smaller_than_a_batch(capsys):
    model = presets.build("gan", "mlp2d", hidden_units=(8,), pack=2, seed=0)
    metrics = registry.evaluate(model, _moons(9), "ring8")
    # One batch of 4 whole packs of 2; mode coverage of 2,500 samples.
    assert metrics["num_test_examples"] == 8 and metrics["num_samples"] == 2500
    assert np.isfinite(metrics["d_loss"]) and np.isfinite(metrics["data_log_likelihood"])
    lines = _lines(capsys)
    assert lines[0] == "GAN losses and discriminator accuracy on 9 test examples"
    assert lines[1].startswith("1/1 - ")
    with pytest.raises(ValueError, match="has 1 examples.*pack=2.*at least 2"):
        model.evaluation_metrics(_moons(1))


def test_rnn_forecasting_needs_one_full_window(capsys):
    model = RNNAutoregressive("simple_rnn", units=4, sequence_length=10, seed=0)
    values = np.sin(np.arange(30) / 3).astype("float32")
    metrics = model.evaluation_metrics(tf.data.Dataset.from_tensor_slices(values), batch_size=8)
    assert metrics["num_windows"] == 20
    lines = _lines(capsys)
    assert lines[0] == "Forecasting MSE on 20 test windows"
    assert lines[1].startswith("3/3 - ")
    short = tf.data.Dataset.from_tensor_slices(values[:8])
    with pytest.raises(ValueError, match=r"test split has 8 values.*sequence_length \+ 1 = 11"):
        model.evaluation_metrics(short)
    text_model = RNNLanguageModel("gru", units=4, sequence_length=8, seed=0)
    with pytest.raises(ValueError, match="test text is empty"):
        text_model.evaluation_metrics(tf.data.Dataset.from_tensor_slices(np.zeros([0], "int32")))


def test_transformer_scores_a_text_shorter_than_its_context(capsys):
    model = TransformerLM(context_length=16, d_model=8, num_heads=2, num_layers=1, seed=0)
    tokens = tokenizer.encode("abc")
    metrics = model.evaluation_metrics(
        tf.data.Dataset.from_tensor_slices(tokens), dynamic_learning_rate=0.01
    )
    assert metrics["num_chars"] == 3
    assert np.isfinite(metrics["bits_per_char"]) and np.isfinite(metrics["dynamic_bits_per_char"])
    lines = _lines(capsys)
    assert lines[0] == "Bits per character on 3 bytes (1 windows of 16)"
    assert lines[2] == "Dynamic evaluation (learning rate 0.01) on 3 bytes, 1 segments"
    assert lines[3].startswith("1/1 - ") and "/segment" in lines[3]
    with pytest.raises(ValueError, match="test text is empty"):
        model.evaluation_metrics(tf.data.Dataset.from_tensor_slices(np.zeros([0], "int32")))


def test_classifier_fid_features_show_a_bar(capsys):
    images = np.random.default_rng(0).uniform(size=(7, 28, 28, 1))
    features = classifier_fid.digit_features(images, batch_size=3, name="generated digits")
    assert features.shape == (7, 128)
    lines = _lines(capsys)
    assert lines[0] == "classifier-FID: features of 7 generated digits"
    assert lines[1].startswith("7/7 - ") and "/image" in lines[1]
    # The same numbers as one `predict` over the same batches.
    expected = classifier_fid.feature_extractor().predict(
        images.astype("float32"), batch_size=3, verbose=0
    )
    np.testing.assert_array_equal(features, expected.astype("float64"))


def test_precision_recall_needs_more_points_than_k():
    features = np.random.default_rng(0).uniform(size=(10, 4))
    with pytest.raises(ValueError, match="k=3 need at least k \\+ 1 = 4.*3 real and 10"):
        classifier_fid.precision_recall(features[:3], features, k=3)
    precision, recall = classifier_fid.precision_recall(features[:4], features, k=3)
    assert 0 <= precision <= 1 and 0 <= recall <= 1
