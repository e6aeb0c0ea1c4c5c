"""Tests of the GAN exports: signature names, `labels` inputs, limits, bad requests.

The checks every preset gets (SavedModel in a fresh process equals `sample`,
TF Lite parity, `.keras` round trip) are in tests/test_contract.py; these
cover what only the GAN has: the `labels` input of class-conditional models.
"""

import time

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


def test_signatures_inputs_and_output_names(points_gan, image_gan):
    for model, extra, output in ((points_gan, [], "samples"), (image_gan, ["labels"], "images")):
        endpoints = model.serving_endpoints()
        assert sorted(endpoints) == ["generate", "sample"]
        sample_inputs = [spec.name for spec in endpoints["sample"].input_signature]
        assert sample_inputs == ["num_samples", "seed", *extra]
        generate_inputs = [spec.name for spec in endpoints["generate"].input_signature]
        assert generate_inputs == ["latents", *extra]
        examples = model.signature_examples(batch_size=2)
        assert sorted(examples["sample"]) == sorted(sample_inputs)
        assert sorted(examples["generate"]) == sorted(generate_inputs)
        sample = endpoints["sample"](**examples["sample"])
        assert list(sample) == ["samples"]
        assert sample["samples"].shape == (3, *model.data_shape)
        generate = endpoints["generate"](**examples["generate"])
        assert list(generate) == [output]
        lite = model.tflite_endpoints(batch_size=2)
        assert list(lite) == ["generate"]
        static = [spec.shape.as_list() for spec in lite["generate"].input_signature]
        assert static == [[2, model.latent_dim]] + [[2]] * len(extra)
    np.testing.assert_array_equal(image_gan.sample_signature_example()["labels"], [0, 1, 2])


def test_conditional_tflite_generate_takes_labels(image_gan, tmp_path):
    path = export.export_tflite(image_gan, str(tmp_path / "cgan.tflite"), batch_size=2)
    assert export.tflite_signatures(path) == ["generate"]
    latents = np.random.default_rng(1).standard_normal((2, 4)).astype("float32")
    labels = np.array([2, 0], np.int32)
    lite = export.run_tflite(path, "generate", {"latents": latents, "labels": labels})
    np.testing.assert_allclose(
        lite["images"], image_gan.generate(latents, labels), atol=image_gan.tflite_tolerance
    )


@pytest.fixture(scope="module")
def served_cgan(image_gan, tmp_path_factory):
    """The conditional GAN exported under its default name and loaded once."""
    path = export.export_savedmodel(image_gan, str(tmp_path_factory.mktemp("served")))
    return path, tf.saved_model.load(path)


def _call(loaded, signature, **inputs):
    return loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})


def test_served_sample_takes_the_labels_of_python_sample(image_gan, served_cgan):
    _, loaded = served_cgan
    labels = np.array([2, 0, 1, 2], np.int32)
    out = _call(loaded, "sample", num_samples=np.int32(4), seed=np.array([9, 9], np.int32),
                labels=labels)
    np.testing.assert_allclose(
        out["samples"].numpy(), image_gan.sample(4, seed=[9, 9], labels=labels), atol=1e-6
    )
    other = _call(loaded, "sample", num_samples=np.int32(4), seed=np.array([9, 9], np.int32),
                  labels=np.zeros(4, np.int32))
    assert not np.allclose(other["samples"].numpy(), out["samples"].numpy())
    body = export.rest_request_body("sample", {"num_samples": 2, "seed": [1, 2], "labels": [0, 1]})
    assert '"signature_name": "sample"' in body


def test_default_export_names(points_gan, image_gan, served_cgan):
    assert served_cgan[0].endswith("gan-cond/1")
    assert points_gan.default_export_name == "gan-points"


def test_oversized_sample_is_refused_fast_then_a_normal_one_answered(served_cgan):
    _, loaded = served_cgan
    seed = np.array([1, 2], np.int32)
    start = time.perf_counter()
    with pytest.raises(tf.errors.InvalidArgumentError, match=(
        r"num_samples must be in \[1, 1024\]. Received: num_samples=1000000000"
    )):
        _call(loaded, "sample", num_samples=np.int32(1_000_000_000), seed=seed,
              labels=np.zeros(3, np.int32))
    assert time.perf_counter() - start < 1.0
    out = _call(loaded, "sample", num_samples=np.int32(3), seed=seed,
                labels=np.array([0, 1, 2], np.int32))
    assert out["samples"].shape == (3, 8, 8, 1)


@pytest.mark.parametrize(
    "signature, inputs, message",
    [
        ("sample", {"num_samples": 3, "labels": [0, 1, 3]},
         r"labels must be in \[0, 2\]. Received: labels with values in \[0, 3\]"),
        ("sample", {"num_samples": 3, "labels": [0, 1]},
         r"labels must have one entry per sample. Received: 2 labels for 3 samples"),
        ("sample", {"num_samples": 0, "labels": []}, r"Received: num_samples=0"),
        ("generate", {"latents": np.zeros((2, 4)), "labels": [0, -1]},
         r"labels with values in \[-1, 0\]"),
        ("generate", {"latents": np.zeros((2, 5)), "labels": [0, 1]},
         r"latents \[2,5\] is not compatible"),
        ("generate", {"latents": np.full((1, 4), np.nan), "labels": [0]},
         r"latents must be finite"),
        ("generate", {"latents": np.zeros((1025, 4)), "labels": np.zeros(1025)},
         r"latents must have shape \[N, 4\] with 1 <= N <= 1024"),
    ],
)
def test_bad_requests_are_refused_naming_the_input(served_cgan, signature, inputs, message):
    _, loaded = served_cgan
    inputs = dict(inputs)
    inputs["labels"] = np.asarray(inputs["labels"], np.int32)
    if signature == "sample":
        inputs.update(num_samples=np.int32(inputs["num_samples"]), seed=np.array([1, 2], np.int32))
    else:
        inputs["latents"] = np.asarray(inputs["latents"], np.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        _call(loaded, signature, **inputs)


def test_conditional_gan_keeps_its_classes_through_keras(image_gan, tmp_path):
    path = str(tmp_path / "cgan.keras")
    image_gan.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.uses_labels and loaded.num_classes == 3
    np.testing.assert_array_equal(
        loaded.sample(3, seed=1, labels=2), image_gan.sample(3, seed=1, labels=2)
    )
