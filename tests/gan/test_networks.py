"""Tests of the GAN networks and presets: shapes, exact parameter counts, errors."""

import numpy as np
import pytest

from keras_genmodels import presets
from keras_genmodels.gan import networks
from keras_genmodels.gan.presets import PRESETS, build_reference


def test_reference_parameter_counts_are_the_seed():
    model = build_reference()
    assert model.generator.count_params() == 1_486_352
    assert model.discriminator.count_params() == 533_505
    assert [layer.units for layer in model.generator.layers if hasattr(layer, "units")] == [
        256, 512, 1024, 784
    ]
    assert [layer.units for layer in model.discriminator.layers if hasattr(layer, "units")] == [
        512, 256, 1
    ]
    assert model.discriminator.layers[-1].activation.__name__ == "sigmoid"
    assert model.latent_dim == 100
    assert model.from_logits is False
    assert model.loss == "non_saturating"


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 1), (32, 32, 3)])
def test_dcgan_shapes(shape):
    generator = networks.dcgan_generator(8, shape, filters=(16, 8))
    discriminator = networks.dcgan_discriminator(shape, filters=(8, 16))
    images = generator.predict(np.zeros((2, 8), "float32"), verbose=0)
    assert images.shape == (2, *shape)
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert discriminator.predict(images, verbose=0).shape == (2, 1)


def test_conditional_networks_take_labels():
    generator = networks.mlp_generator(4, (2,), (8,), output_activation=None, num_classes=3)
    discriminator = networks.mlp_discriminator(
        (2,), (8,), output_activation=None, num_classes=3
    )
    latents = np.zeros((3, 4), "float32")
    labels = np.array([0, 1, 2], "int32")
    points = generator.predict([latents, labels], verbose=0)
    assert points.shape == (3, 2)
    # Same latent, different labels: different points.
    assert not np.allclose(points[0], points[1])
    assert discriminator.predict([points, labels], verbose=0).shape == (3, 1)


def test_network_errors():
    with pytest.raises(ValueError, match="multiples of 4"):
        networks.dcgan_generator(8, (30, 30, 1))
    with pytest.raises(ValueError, match="hidden_units"):
        networks.mlp_generator(4, (2,), hidden_units=(8, 0))
    with pytest.raises(ValueError, match="num_classes"):
        networks.mlp_discriminator((2,), num_classes=1)
    with pytest.raises(ValueError, match=r"data_shape=\(28, 28\)"):
        networks.dcgan_discriminator((28, 28))
    with pytest.raises(ValueError, match="data_shape"):
        networks.mlp_generator(4, data_shape=(2, 0))


def test_presets_registered():
    assert set(PRESETS) == {"reference", "dcgan", "mlp2d"}
    assert presets.default_preset("gan") == "dcgan"
    name, preset = presets.get_preset("gan")
    assert name == "dcgan"
    assert all(p.adapts_to_data_shape for p in PRESETS.values())
    model = presets.build("gan", "dcgan", data_shape=(32, 32, 3))
    assert model.data_shape == (32, 32, 3) and model.data_kind == "image"
    assert model.ema_generator is not None
    points = presets.build("gan", "mlp2d", data_shape=(2,))
    assert points.data_kind == "points" and points.compiled


def test_packed_discriminator():
    discriminator = networks.mlp_discriminator((2,), (8,), output_activation=None, pack=2)
    points = np.arange(12, dtype="float32").reshape(6, 2)
    assert discriminator.predict(points, verbose=0).shape == (3, 1)
    layer = networks.PackExamples(3)
    np.testing.assert_array_equal(layer(points), points.reshape(2, 6))
    assert networks.PackExamples.from_config(layer.get_config()).pack == 3
    with pytest.raises(ValueError, match="pack"):
        networks.PackExamples(0)
    with pytest.raises(ValueError, match="unconditional"):
        networks.mlp_discriminator((2,), num_classes=3, pack=2)


def test_packed_gan_batches():
    import tensorflow as tf

    model = presets.build("gan", "mlp2d", hidden_units=(8,), pack=2)
    assert model.pack == 2
    points = tf.data.Dataset.from_tensor_slices(np.zeros((9, 2), "float32"))
    batches = list(model.prepare_dataset(points, 4, shuffle=False))
    assert [int(b.shape[0]) for b in batches] == [4, 4]
    with pytest.raises(ValueError, match="multiple of the discriminator's pack=2"):
        model.prepare_dataset(points, 3)
    history = model.fit(model.prepare_dataset(points, 4), epochs=1, verbose=0)
    assert np.isfinite(history.history["d_loss"][0])
