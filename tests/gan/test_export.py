"""Tests of the GAN exports: SavedModel in a fresh process, TF Lite, TF Serving requests."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_genmodels import export
from keras_genmodels.gan import GAN, networks


@pytest.fixture(scope="module")
def points_gan():
    """An unconditional 2-D GAN with a generator EMA, one epoch trained."""
    generator = networks.mlp_generator(3, (2,), (16,), output_activation=None)
    discriminator = networks.mlp_discriminator((2,), (16,), output_activation=None)
    model = GAN(generator, discriminator, 3, ema_decay=0.5, seed=0)
    model.compile()
    points = np.random.default_rng(0).standard_normal((256, 2)).astype("float32")
    model.fit(tf.data.Dataset.from_tensor_slices(points).batch(64), epochs=1, verbose=0)
    return model


@pytest.fixture(scope="module")
def image_gan():
    """A tiny class-conditional DCGAN on 8x8 images."""
    generator = networks.dcgan_generator(4, (8, 8, 1), filters=(8, 4), num_classes=3)
    discriminator = networks.dcgan_discriminator((8, 8, 1), filters=(4, 8), num_classes=3)
    model = GAN(generator, discriminator, 4, num_classes=3, ema_decay=0.9, seed=0)
    model.compile()
    return model


def test_points_gan_export(points_gan, tmp_path):
    report = export.export_and_verify(points_gan, str(tmp_path), name="gan2d")
    assert report["signatures"] == ["generate", "sample"]
    assert report["savedmodel"].endswith("gan2d/1")
    assert report["tflite_max_abs_diff"]["generate"] <= points_gan.tflite_tolerance
    assert export.tflite_signatures(report["tflite"]) == ["generate"]
    # Same seed, same samples: in Python and in the SavedModel (through a
    # TF Serving PredictRequest).
    request = export.predict_request("gan2d", "sample", {
        "num_samples": np.int32(5), "seed": np.array([4, 2], np.int32)})
    served = export.run_predict_request(report["savedmodel"], request)
    np.testing.assert_allclose(served["samples"], points_gan.sample(5, seed=[4, 2]), atol=1e-6)
    latents = np.random.default_rng(1).standard_normal((1, 3)).astype("float32")
    lite = export.run_tflite(report["tflite"], "generate", {"latents": latents})
    np.testing.assert_allclose(lite["samples"], points_gan.generate(latents), atol=1e-5)


def test_conditional_image_gan_export(image_gan, tmp_path):
    report = export.export_and_verify(image_gan, str(tmp_path), name="cgan")
    assert report["signatures"] == ["generate", "sample"]
    loaded = tf.saved_model.load(report["savedmodel"])
    labels = np.array([2, 0, 1, 2], np.int32)
    out = loaded.signatures["sample"](
        num_samples=tf.constant(4), seed=tf.constant([9, 9]), labels=tf.constant(labels)
    )
    np.testing.assert_allclose(
        out["samples"].numpy(), image_gan.sample(4, seed=[9, 9], labels=labels), atol=1e-6
    )
    latents = np.zeros((1, 4), "float32")
    lite = export.run_tflite(
        report["tflite"], "generate", {"latents": latents, "labels": np.array([1], np.int32)}
    )
    assert lite["images"].shape == (1, 8, 8, 1)
    body = export.rest_request_body("sample", {"num_samples": 2, "seed": [1, 2], "labels": [0, 1]})
    assert '"signature_name": "sample"' in body


def test_image_gan_keras_round_trip(image_gan, tmp_path):
    path = str(tmp_path / "cgan.keras")
    image_gan.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.uses_labels and loaded.num_classes == 3
    np.testing.assert_array_equal(
        loaded.sample(6, seed=1), image_gan.sample(6, seed=1)
    )
