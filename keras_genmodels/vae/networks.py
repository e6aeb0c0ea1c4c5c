"""Encoder and decoder networks for the VAE.

Encoders map images to `(z_mean, z_log_var)`; decoders map latents to
Bernoulli means (pixel probabilities) of the image's shape.
"""

import math

import keras
from keras import layers


def _check_data_shape(data_shape, multiple=1):
    data_shape = tuple(data_shape)
    if len(data_shape) != 3 or any(
        not isinstance(d, int) or d < 1 for d in data_shape
    ):
        raise ValueError(
            "`data_shape` must be (height, width, channels) of positive ints. "
            f"Received: data_shape={data_shape}"
        )
    if data_shape[0] % multiple or data_shape[1] % multiple:
        raise ValueError(
            f"Height and width must be multiples of {multiple} for this "
            f"network. Received: data_shape={data_shape}"
        )
    return data_shape


def mlp_encoder(data_shape=(28, 28, 1), latent_dim=2, hidden_units=256):
    """The reference encoder: Flatten -> Dense(relu) -> Dense z_mean, z_log_var.

    Args:
        data_shape: `(height, width, channels)`.
        latent_dim: Size of the latent code.
        hidden_units: Width of the hidden layer.

    Returns:
        A functional `keras.Model` with outputs `[z_mean, z_log_var]`.
    """
    data_shape = _check_data_shape(data_shape)
    inputs = keras.Input(data_shape, name="images")
    x = layers.Flatten()(inputs)
    x = layers.Dense(hidden_units, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    return keras.Model(inputs, [z_mean, z_log_var], name="encoder")


def mlp_decoder(data_shape=(28, 28, 1), latent_dim=2, hidden_units=256):
    """The reference decoder: Dense(relu) -> Dense(sigmoid) -> Reshape.

    Args:
        data_shape: `(height, width, channels)` of the output.
        latent_dim: Size of the latent code.
        hidden_units: Width of the hidden layer.

    Returns:
        A functional `keras.Model` from latents to pixel probabilities.
    """
    data_shape = _check_data_shape(data_shape)
    inputs = keras.Input((latent_dim,), name="latents")
    x = layers.Dense(hidden_units, activation="relu")(inputs)
    x = layers.Dense(math.prod(data_shape), activation="sigmoid")(x)
    outputs = layers.Reshape(data_shape)(x)
    return keras.Model(inputs, outputs, name="decoder")


def conv_encoder(data_shape=(28, 28, 1), latent_dim=16, filters=(32, 64), hidden_units=256):
    """A convolutional encoder: strided 3x3 convolutions, then Dense heads.

    Args:
        data_shape: `(height, width, channels)`; height and width must be
            multiples of `2 ** len(filters)`.
        latent_dim: Size of the latent code.
        filters: Filters of each stride-2 convolution.
        hidden_units: Width of the Dense layer before the heads.

    Returns:
        A functional `keras.Model` with outputs `[z_mean, z_log_var]`.
    """
    data_shape = _check_data_shape(data_shape, 2 ** len(filters))
    inputs = keras.Input(data_shape, name="images")
    x = inputs
    for f in filters:
        x = layers.Conv2D(f, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(hidden_units, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    return keras.Model(inputs, [z_mean, z_log_var], name="encoder")


def conv_decoder(data_shape=(28, 28, 1), latent_dim=16, filters=(64, 32), hidden_units=256):
    """A convolutional decoder mirroring `conv_encoder`.

    Args:
        data_shape: `(height, width, channels)` of the output; height and
            width must be multiples of `2 ** len(filters)`.
        latent_dim: Size of the latent code.
        filters: Filters of each stride-2 transposed convolution.
        hidden_units: Width of the first Dense layer.

    Returns:
        A functional `keras.Model` from latents to pixel probabilities.
    """
    data_shape = _check_data_shape(data_shape, 2 ** len(filters))
    scale = 2 ** len(filters)
    base = (data_shape[0] // scale, data_shape[1] // scale, filters[0])
    inputs = keras.Input((latent_dim,), name="latents")
    x = layers.Dense(hidden_units, activation="relu")(inputs)
    x = layers.Dense(math.prod(base), activation="relu")(x)
    x = layers.Reshape(base)(x)
    for f in filters:
        x = layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu")(x)
    outputs = layers.Conv2D(data_shape[-1], 3, padding="same", activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name="decoder")
