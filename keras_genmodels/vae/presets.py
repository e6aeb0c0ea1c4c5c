"""VAE presets: `reference` (the seed MLP), `conv` (the default) and `conv-cond`."""

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


def build_conv(
    data_shape=(28, 28, 1),
    latent_dim=16,
    learning_rate=1e-3,
    num_classes=None,
    embedding_dim=16,
    **kwargs,
):
    """A convolutional VAE with a 16-D latent (the command's default).

    Args:
        data_shape: Image shape; height and width multiples of 4.
        latent_dim: Latent size.
        learning_rate: Adam learning rate.
        num_classes: Set for a class-conditional VAE (e.g. 10 on MNIST).
        embedding_dim: Size of the label embedding (conditional only).
        **kwargs: Passed to `VAE` (`beta`, `kl_warmup_steps`, `seed`).

    Returns:
        A compiled `VAE`.
    """
    conditioning = {"num_classes": num_classes, "embedding_dim": embedding_dim}
    encoder = networks.conv_encoder(data_shape, latent_dim, **conditioning)
    decoder = networks.conv_decoder(data_shape, latent_dim, **conditioning)
    model = VAE(encoder, decoder, num_classes=num_classes, **kwargs)
    return _compiled(model, learning_rate)


def build_conv_cond(data_shape=(28, 28, 1), latent_dim=16, num_classes=10, **kwargs):
    """The `conv` VAE, class-conditional: 10 classes, a 16-D label embedding.

    The encoder sees the embedding broadcast over the image as 16 extra
    channels, the decoder sees it concatenated to the latent
    (`networks.conv_encoder`, `networks.conv_decoder`).

    Args:
        data_shape: Image shape; height and width multiples of 4.
        latent_dim: Latent size.
        num_classes: Number of classes.
        **kwargs: Passed to `build_conv` (`learning_rate`, `embedding_dim`)
            and `VAE` (`beta`, `kl_warmup_steps`, `seed`).

    Returns:
        A compiled class-conditional `VAE`.
    """
    return build_conv(data_shape, latent_dim, num_classes=num_classes, **kwargs)


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
    "conv-cond": Preset(
        description=(
            "The conv VAE, class-conditional (10 classes): sample(n, labels=...)."
        ),
        builder=build_conv_cond,
        dataset="mnist-5k",
        train_steps=3_000,
        batch_size=128,
        adapts_to_data_shape=True,
    ),
}
DEFAULT_PRESET = "conv"
