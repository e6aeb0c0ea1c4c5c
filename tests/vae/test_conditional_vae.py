"""The class-conditional VAE: labels into both networks, sampling, bounds, exports."""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_genmodels
from keras_genmodels import export
from keras_genmodels.vae import networks
from keras_genmodels.vae.model import VAE

SHAPE = (8, 8, 1)
NUM_CLASSES = 4
LATENT_DIM = 2


def _tiny(num_classes=NUM_CLASSES, seed=0):
    kwargs = dict(
        data_shape=SHAPE, latent_dim=LATENT_DIM, hidden_units=16, num_classes=num_classes,
        embedding_dim=3,
    )
    encoder = networks.conv_encoder(filters=(4, 8), **kwargs)
    decoder = networks.conv_decoder(filters=(8, 4), **kwargs)
    model = VAE(encoder, decoder, num_classes=num_classes, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


def _quadrant(label):
    """Class `label` lights the quadrant `label` of an 8x8 image."""
    row, col = divmod(label, 2)
    return (slice(4 * row, 4 * row + 4), slice(4 * col, 4 * col + 4))


def _quadrant_means(images):
    """`(N, 4)`: the mean pixel of each quadrant."""
    return np.stack(
        [images[(slice(None), *_quadrant(c))].mean(axis=(1, 2, 3)) for c in range(4)], 1
    )


@pytest.fixture(scope="module")
def pairs():
    """512 binary 8x8 images whose class is the quadrant that is lit."""
    rng = np.random.default_rng(0)
    labels = (np.arange(512) % NUM_CLASSES).astype("int32")
    on = np.full((512, *SHAPE), 0.05)
    for i, label in enumerate(labels):
        on[(i, *_quadrant(label))] = 0.9
    images = (rng.uniform(size=on.shape) < on).astype("float32")
    return images, labels


@pytest.fixture(scope="module")
def trained(pairs):
    keras.utils.set_random_seed(0)
    model = _tiny()
    images, labels = pairs
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    history = model.fit(model.prepare_dataset(dataset, 64), epochs=16, verbose=0)
    return model, history


@pytest.fixture(scope="module")
def unconditional():
    return _tiny(num_classes=None)


def test_parameter_count_and_flags():
    model = _tiny()
    # Encoder: embedding 4*3, conv (1+3 channels -> 4) 148, conv 296, dense 528,
    # two heads 34 each. Decoder: embedding 12, dense (2+3 -> 16) 96, dense 544,
    # transposed convs 584 and 292, output conv 37.
    assert model.encoder.count_params() == 1_052
    assert model.decoder.count_params() == 1_565
    assert model.count_params() == 2_617
    assert model.uses_labels and model.conditioning == ("labels",)
    assert model.default_export_name == "vae-cond"
    plain = _tiny(num_classes=None)
    assert not plain.uses_labels and plain.conditioning == ()
    assert plain.default_export_name == "vae"
    assert plain.count_params() == 2_617 - 2 * 12 - 9 * 3 * 4 - 3 * 16


def test_presets_keep_their_counts_and_conv_cond_is_conditional():
    assert keras_genmodels.build("vae", "reference").count_params() == 404_244
    assert keras_genmodels.build("vae", "conv").count_params() == 1_696_097
    model = keras_genmodels.build("vae", "conv-cond")
    assert model.num_classes == 10 and model.uses_labels
    assert model.count_params() == 1_705_121
    assert model.sample(3, seed=0).shape == (3, 28, 28, 1)


def test_networks_must_match_num_classes():
    with pytest.raises(ValueError, match=r"the encoder must take 2 input\(s\)"):
        VAE(networks.mlp_encoder(SHAPE), networks.mlp_decoder(SHAPE), num_classes=3)
    with pytest.raises(ValueError, match=r"`num_classes` must be None or an int >= 2"):
        VAE(networks.mlp_encoder(SHAPE), networks.mlp_decoder(SHAPE), num_classes=1)


def test_the_label_changes_the_decoder_output(trained):
    model, _ = trained
    latents = np.zeros((NUM_CLASSES, LATENT_DIM), "float32")
    images = model.decode(latents, labels=np.arange(NUM_CLASSES))
    means = _quadrant_means(images)
    # Each label lights its own quadrant: the brightest quadrant is the label's.
    np.testing.assert_array_equal(means.argmax(axis=1), np.arange(NUM_CLASSES))
    assert np.all(means.max(axis=1) > 0.5)
    # The default labels cycle through the classes, as in `sample`.
    np.testing.assert_array_equal(model.decode(latents), images)


def test_training_lowers_the_loss(trained):
    _, history = trained
    losses = history.history["loss"]
    assert losses[-1] < 0.7 * losses[0]
    assert set(history.history) == {"loss", "reconstruction_loss", "kl_loss"}


def test_sample_draws_the_requested_classes(trained):
    model, _ = trained
    labels = np.repeat(np.arange(NUM_CLASSES), 8)
    samples = model.sample(len(labels), seed=1, labels=labels)
    assert samples.shape == (32, *SHAPE)
    assert 0.0 <= samples.min() and samples.max() <= 1.0
    np.testing.assert_array_equal(_quadrant_means(samples).argmax(axis=1), labels)
    np.testing.assert_array_equal(model.sample(4, seed=1, labels=2), model.sample(
        4, seed=1, labels=[2, 2, 2, 2]))
    np.testing.assert_array_equal(model.sample(4, seed=1), model.sample(
        4, seed=1, labels=[0, 1, 2, 3]))


def _refused(call, pattern):
    """Asserts `call()` raises a one-line `ValueError` matching `pattern`."""
    with pytest.raises(ValueError, match=pattern) as info:
        call()
    assert "\n" not in str(info.value)


def test_bad_conditioning_gives_one_line_errors(trained, unconditional):
    model, _ = trained
    _refused(
        lambda: model.sample(3, labels=[0, 1]),
        r"one entry per sample \(3\), or be one int\. Received 2 labels: labels=\[0, 1\]",
    )
    _refused(
        lambda: model.sample(2, labels=[0, 4]),
        r"must lie in \[0, 4\)\. Received: 4 in labels=\[0, 4\]",
    )
    _refused(
        lambda: model.decode(np.zeros((1, LATENT_DIM)), labels=-1),
        r"must lie in \[0, 4\)\. Received: -1",
    )
    _refused(lambda: model.sample(2, labels=1.5), r"must be an int.*labels=1\.5")
    _refused(
        lambda: model.encode(np.zeros((2, *SHAPE))),
        r"encodes an image with its label.*Received: labels=None",
    )
    latents, images = np.zeros((2, LATENT_DIM)), np.zeros((2, *SHAPE))
    refused = (
        r"This VAE is not conditioned on `labels`; it takes no conditioning\. "
        r"Received: labels=\[0, 1\]"
    )
    _refused(lambda: unconditional.sample(2, labels=[0, 1]), refused)
    _refused(lambda: unconditional.decode(latents, labels=[0, 1]), refused)
    _refused(lambda: unconditional.encode(images, labels=[0, 1]), refused)
    for vae in (model, unconditional):
        _refused(
            functools.partial(vae.sample, 2, prompt="a 3"),
            r"not conditioned on `prompt`.*prompt='a 3'",
        )
        _refused(
            functools.partial(vae.sample, 2, guidance_scale=2.0),
            r"not conditioned on `guidance_scale`.*guidance_scale=2\.0",
        )
    _refused(
        lambda: model.prepare_dataset(tf.data.Dataset.from_tensor_slices(images), 2),
        r"trains on \(data, label\) pairs",
    )


def test_bounds_are_conditioned_on_the_true_label(trained, pairs):
    model, _ = trained
    images, labels = pairs[0][:64], pairs[1][:64]
    elbo, iwae = model.likelihood_bounds(images, 20, labels=labels)
    assert elbo.shape == iwae.shape == (64,)
    assert np.all(iwae >= elbo - 1e-6)
    wrong_elbo, wrong_iwae = model.likelihood_bounds(
        images, 20, labels=(labels + 1) % NUM_CLASSES
    )
    # The true label explains the image far better than a wrong one.
    assert iwae.mean() > wrong_iwae.mean() + 5.0
    figures = model.evaluation_metrics(
        tf.data.Dataset.from_tensor_slices((images, labels)), num_importance_samples=20,
        batch_size=32,
    )
    assert figures["num_images"] == 64
    assert figures["iwae_nll"] == pytest.approx(-iwae.mean(), rel=0.05)
    assert 0 < figures["iwae_nll"] <= figures["negative_elbo"]


def test_reconstruct_uses_the_label(trained, pairs):
    model, _ = trained
    images, labels = pairs[0][:8], pairs[1][:8]
    z_mean, z_log_var = model.encode(images, labels)
    assert z_mean.shape == z_log_var.shape == (8, LATENT_DIM)
    np.testing.assert_allclose(
        model.reconstruct(images, labels), model.decode(z_mean, labels), atol=1e-6
    )


def test_keras_round_trip_gives_the_same_decode(trained, tmp_path):
    model, _ = trained
    path = str(tmp_path / "cvae.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.num_classes == NUM_CLASSES and loaded.uses_labels
    latents = np.random.default_rng(0).standard_normal((5, LATENT_DIM)).astype("float32")
    labels = [3, 1, 0, 2, 3]
    np.testing.assert_array_equal(loaded.decode(latents, labels), model.decode(latents, labels))
    np.testing.assert_array_equal(
        loaded.sample(4, seed=7, labels=1), model.sample(4, seed=7, labels=1)
    )


@pytest.fixture(scope="module")
def savedmodel(trained, tmp_path_factory):
    model, _ = trained
    path = export.export_savedmodel(model, str(tmp_path_factory.mktemp("savedmodels")))
    return path, tf.saved_model.load(path)


def test_savedmodel_signatures_take_labels(trained, savedmodel):
    model, _ = trained
    path, loaded = savedmodel
    assert path.replace("\\", "/").endswith("/vae-cond/1")
    labels = np.array([3, 0, 2, 1, 1], "int32")
    served = loaded.signatures["sample"](
        num_samples=tf.constant(5), seed=tf.constant([4, 5]), labels=tf.constant(labels)
    )
    np.testing.assert_allclose(
        served["samples"].numpy(), model.sample(5, seed=[4, 5], labels=labels), atol=1e-6
    )
    latents = np.random.default_rng(1).standard_normal((5, LATENT_DIM)).astype("float32")
    decoded = loaded.signatures["decode"](latents=tf.constant(latents), labels=tf.constant(labels))
    np.testing.assert_allclose(decoded["images"].numpy(), model.decode(latents, labels), atol=1e-6)
    images = model.decode(latents, labels)
    encoded = loaded.signatures["encode"](images=tf.constant(images), labels=tf.constant(labels))
    z_mean, z_log_var = model.encode(images, labels)
    np.testing.assert_allclose(encoded["z_mean"].numpy(), z_mean, atol=1e-5)
    np.testing.assert_allclose(encoded["z_log_var"].numpy(), z_log_var, atol=1e-5)


def test_savedmodel_refuses_bad_labels(savedmodel):
    _, loaded = savedmodel
    sample = loaded.signatures["sample"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels must be in \\[0, 3\\]"):
        sample(num_samples=tf.constant(2), seed=tf.constant([0, 0]), labels=tf.constant([0, 4]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="one entry per sample"):
        sample(num_samples=tf.constant(3), seed=tf.constant([0, 0]), labels=tf.constant([0, 1]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels must be in"):
        loaded.signatures["decode"](
            latents=tf.zeros((1, LATENT_DIM)), labels=tf.constant([-1])
        )
    with pytest.raises(tf.errors.InvalidArgumentError, match="one entry per sample"):
        loaded.signatures["encode"](images=tf.zeros((2, *SHAPE)), labels=tf.constant([1]))


def test_tflite_decode_matches(trained, tmp_path):
    model, _ = trained
    path = export.export_tflite(model, str(tmp_path / "cvae.tflite"), batch_size=2)
    assert export.tflite_signatures(path) == ["decode"]
    latents = np.random.default_rng(2).standard_normal((2, LATENT_DIM)).astype("float32")
    for labels in ([0, 3], [2, 1]):
        lite = export.run_tflite(path, "decode", {"latents": latents, "labels": labels})
        np.testing.assert_allclose(
            lite["images"], model.decode(latents, labels), atol=model.tflite_tolerance
        )
