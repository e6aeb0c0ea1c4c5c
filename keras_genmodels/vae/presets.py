"""VAE presets: `reference` (the seed MLP) and `conv` (the default)."""

import keras

from keras_genmodels.presets import Preset
from keras_genmodels.vae import networks
from keras_genmodels.vae.model import VAE


def _compiled(model, learning_rate):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model


def build_reference(
    data_shape=(28, 28, 1), latent_dim=2, hidden_units=256, learning_rate=1e-3, **kwargs
):
    """The seed VAE: 404,244 parameters on 28x28x1 with a 2-D latent.

    Args:
        data_shape: Image shape.
        latent_dim: Latent size.
        hidden_units: Width of the hidden layers.
        learning_rate: Adam learning rate.
        **kwargs: Passed to `VAE` (`beta`, `kl_warmup_steps`, `seed`).

    Returns:
        A compiled `VAE`.
    """
    encoder = networks.mlp_encoder(data_shape, latent_dim, hidden_units)
    decoder = networks.mlp_decoder(data_shape, latent_dim, hidden_units)
    return _compiled(VAE(encoder, decoder, **kwargs), learning_rate)


def build_conv(data_shape=(28, 28, 1), latent_dim=16, learning_rate=1e-3, **kwargs):
    """A convolutional VAE with a 16-D latent (the command's default).

    Args:
        data_shape: Image shape; height and width multiples of 4.
        latent_dim: Latent size.
        learning_rate: Adam learning rate.
        **kwargs: Passed to `VAE` (`beta`, `kl_warmup_steps`, `seed`).

    Returns:
        A compiled `VAE`.
    """
    encoder = networks.conv_encoder(data_shape, latent_dim)
    decoder = networks.conv_decoder(data_shape, latent_dim)
    return _compiled(VAE(encoder, decoder, **kwargs), learning_rate)


PRESETS = {
    "reference": Preset(
        description="The seed MLP VAE: 784-256-2 encoder, 2-256-784 decoder (404,244 params).",
        builder=build_reference,
        dataset="mnist",
        train_steps=3_000,
        batch_size=128,
        adapts_to_data_shape=True,
    ),
    "conv": Preset(
        description="Convolutional VAE, 16-D latent, for 28x28 or 32x32 images.",
        builder=build_conv,
        dataset="mnist",
        train_steps=3_000,
        batch_size=128,
        adapts_to_data_shape=True,
    ),
}
DEFAULT_PRESET = "conv"
