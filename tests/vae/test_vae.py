"""VAE family: architecture, training, sampling, evaluation, exports."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_genmodels
from keras_genmodels import data
from keras_genmodels.vae import networks
from keras_genmodels.vae.model import VAE


@pytest.fixture(scope="module")
def digits():
    images = np.stack(list(data.load("mnist-5k").take(512).as_numpy_iterator()))
    return images


@pytest.fixture(scope="module")
def trained_reference(digits):
    keras.utils.set_random_seed(0)
    model = keras_genmodels.build("vae", "reference", seed=0)
    history = model.fit(digits, batch_size=64, epochs=4, verbose=0)
    return model, history


def test_reference_is_the_seed_architecture():
    model = keras_genmodels.build("vae", "reference")
    assert model.count_params() == 404_244
    assert model.encoder.count_params() == 201_988
    assert model.decoder.count_params() == 202_256
    assert model.latent_dim == 2


def test_conv_preset_adapts_to_the_image_shape():
    model = keras_genmodels.build("vae", "conv", data_shape=(32, 32, 3))
    assert model.latent_dim == 16
    assert model.sample(2, seed=0).shape == (2, 32, 32, 3)
    with pytest.raises(ValueError, match="multiples of 4"):
        keras_genmodels.build("vae", "conv", data_shape=(30, 30, 1))


def test_training_lowers_the_loss(trained_reference):
    _, history = trained_reference
    losses = history.history["loss"]
    assert losses[-1] < 0.8 * losses[0]
    assert set(history.history) == {"loss", "reconstruction_loss", "kl_loss"}


def test_kl_warmup_ramps_the_weight():
    model = keras_genmodels.build("vae", "reference", kl_warmup_steps=10, beta=2.0)
    assert float(model.kl_weight()) == 0.0
    model.optimizer.iterations.assign(5)
    assert float(model.kl_weight()) == pytest.approx(1.0)
    model.optimizer.iterations.assign(50)
    assert float(model.kl_weight()) == pytest.approx(2.0)


def test_bad_networks_are_refused():
    encoder = networks.mlp_encoder(latent_dim=2)
    with pytest.raises(ValueError, match="latent size"):
        VAE(encoder, networks.mlp_decoder(latent_dim=3))
    with pytest.raises(ValueError, match="output shape"):
        VAE(encoder, networks.mlp_decoder(data_shape=(14, 14, 1), latent_dim=2))
    with pytest.raises(ValueError, match="beta"):
        VAE(encoder, networks.mlp_decoder(latent_dim=2), beta=-1.0)


def test_sample_draws_pixel_probabilities_and_checks_its_arguments(trained_reference):
    # Seeded repeats, the .keras round trip and the served samples are checked
    # for every preset by tests/test_contract.py.
    model, _ = trained_reference
    a = model.sample(5, seed=3)
    assert a.shape == (5, 28, 28, 1)
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert not np.array_equal(model.sample(5), model.sample(5))
    with pytest.raises(ValueError, match="num_samples"):
        model.sample(0)
    with pytest.raises(ValueError, match="seed"):
        model.sample(2, seed=-1)
    with pytest.raises(ValueError, match=r"not conditioned on `labels`.*Received: labels=\[1, 2\]"):
        model.sample(2, labels=[1, 2])


def test_decode_checks_the_latent_shape(trained_reference):
    model, _ = trained_reference
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        model.decode(np.zeros((3, 5)))


def test_iwae_bound_is_tighter_than_the_elbo(trained_reference, digits):
    model, _ = trained_reference
    elbo, iwae = model.likelihood_bounds(digits[:32], num_importance_samples=50)
    assert elbo.shape == iwae.shape == (32,)
    assert np.all(iwae >= elbo - 1e-6)
    figures = model.evaluation_metrics(
        data.load("mnist-5k", "test").take(100), num_importance_samples=20
    )
    assert figures["num_images"] == 100
    assert 0 < figures["iwae_nll"] <= figures["negative_elbo"]


def test_call_builds_symbolically():
    model = keras_genmodels.build("vae", "reference")
    symbolic = keras.Input((28, 28, 1))
    assert tuple(model(symbolic).shape) == (None, 28, 28, 1)
    assert isinstance(model(tf.zeros((1, 28, 28, 1))), tf.Tensor)
