"""Encoder and decoder networks for the VAE.

Encoders map images to `(z_mean, z_log_var)`; decoders map latents to
Bernoulli means (pixel probabilities) of the image's shape.

With `num_classes` the networks are class-conditional and take int `labels`
`(batch,)` as a second input: the encoder broadcasts a learned label
embedding over the image as extra channels, the decoder concatenates one to
the latent. Without it they are the unconditional networks, with the same
layers and parameter counts.
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


def _check_num_classes(num_classes, embedding_dim):
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2
    ):
        raise ValueError(
            f"`num_classes` must be None or an int >= 2. Received: num_classes={num_classes!r}"
        )
    if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, int) or embedding_dim < 1:
        raise ValueError(
            "`embedding_dim` must be a positive int. Received: "
            f"embedding_dim={embedding_dim!r}"
        )
    return num_classes


def _encoder_inputs(data_shape, num_classes, embedding_dim):
    """`(inputs, x)`: the images, with the broadcast label embedding as channels.

    The embedding `(batch, embedding_dim)` is tiled over the image's height
    and width (`UpSampling2D` of a 1x1 map) and concatenated to its channels.
    """
    images = keras.Input(data_shape, name="images")
    if _check_num_classes(num_classes, embedding_dim) is None:
        return [images], images
    labels = keras.Input((), dtype="int32", name="labels")
    embedded = layers.Embedding(num_classes, embedding_dim, name="label_embedding")(labels)
    embedded = layers.Reshape((1, 1, embedding_dim))(embedded)
    label_map = layers.UpSampling2D(data_shape[:2], name="label_map")(embedded)
    return [images, labels], layers.Concatenate(name="images_and_labels")([images, label_map])


def _decoder_inputs(latent_dim, num_classes, embedding_dim):
    """`(inputs, x)`: the latents, with the label embedding concatenated."""
    latents = keras.Input((latent_dim,), name="latents")
    if _check_num_classes(num_classes, embedding_dim) is None:
        return [latents], latents
    labels = keras.Input((), dtype="int32", name="labels")
    embedded = layers.Embedding(num_classes, embedding_dim, name="label_embedding")(labels)
    return [latents, labels], layers.Concatenate(name="latents_and_labels")([latents, embedded])


def _model(inputs, outputs, name):
    return keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs, name=name)


def mlp_encoder(
    data_shape=(28, 28, 1), latent_dim=2, hidden_units=256, num_classes=None, embedding_dim=16
):
    """The reference encoder: Flatten -> Dense(relu) -> Dense z_mean, z_log_var.

    Args:
        data_shape: `(height, width, channels)`.
        latent_dim: Size of the latent code.
        hidden_units: Width of the hidden layer.
        num_classes: If set, the encoder also takes int `labels` `(batch,)`
            in `[0, num_classes)`, broadcast over the image as
            `embedding_dim` learned channels.
        embedding_dim: Size of the label embedding (conditional only).

    Returns:
        A functional `keras.Model` with outputs `[z_mean, z_log_var]`.
    """
    data_shape = _check_data_shape(data_shape)
    inputs, x = _encoder_inputs(data_shape, num_classes, embedding_dim)
    x = layers.Flatten()(x)
    x = layers.Dense(hidden_units, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    return _model(inputs, [z_mean, z_log_var], "encoder")


def mlp_decoder(
    data_shape=(28, 28, 1), latent_dim=2, hidden_units=256, num_classes=None, embedding_dim=16
):
    """The reference decoder: Dense(relu) -> Dense(sigmoid) -> Reshape.

    Args:
        data_shape: `(height, width, channels)` of the output.
        latent_dim: Size of the latent code.
        hidden_units: Width of the hidden layer.
        num_classes: If set, the decoder also takes int `labels` `(batch,)`
            in `[0, num_classes)`, whose learned embedding is concatenated
            to the latent.
        embedding_dim: Size of the label embedding (conditional only).

    Returns:
        A functional `keras.Model` from latents to pixel probabilities.
    """
    data_shape = _check_data_shape(data_shape)
    inputs, x = _decoder_inputs(latent_dim, num_classes, embedding_dim)
    x = layers.Dense(hidden_units, activation="relu")(x)
    x = layers.Dense(math.prod(data_shape), activation="sigmoid")(x)
    outputs = layers.Reshape(data_shape)(x)
    return _model(inputs, outputs, "decoder")


def conv_encoder(
    data_shape=(28, 28, 1),
    latent_dim=16,
    filters=(32, 64),
    hidden_units=256,
    num_classes=None,
    embedding_dim=16,
):
    """A convolutional encoder: strided 3x3 convolutions, then Dense heads.

    Args:
        data_shape: `(height, width, channels)`; height and width must be
            multiples of `2 ** len(filters)`.
        latent_dim: Size of the latent code.
        filters: Filters of each stride-2 convolution.
        hidden_units: Width of the Dense layer before the heads.
        num_classes: If set, the encoder also takes int `labels` `(batch,)`
            in `[0, num_classes)`, broadcast over the image as
            `embedding_dim` learned channels.
        embedding_dim: Size of the label embedding (conditional only).

    Returns:
        A functional `keras.Model` with outputs `[z_mean, z_log_var]`.
    """
    data_shape = _check_data_shape(data_shape, 2 ** len(filters))
    inputs, x = _encoder_inputs(data_shape, num_classes, embedding_dim)
    for f in filters:
        x = layers.Conv2D(f, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(hidden_units, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    return _model(inputs, [z_mean, z_log_var], "encoder")


def conv_decoder(
    data_shape=(28, 28, 1),
    latent_dim=16,
    filters=(64, 32),
    hidden_units=256,
    num_classes=None,
    embedding_dim=16,
):
    """A convolutional decoder mirroring `conv_encoder`.

    Args:
        data_shape: `(height, width, channels)` of the output; height and
            width must be multiples of `2 ** len(filters)`.
        latent_dim: Size of the latent code.
        filters: Filters of each stride-2 transposed convolution.
        hidden_units: Width of the first Dense layer.
        num_classes: If set, the decoder also takes int `labels` `(batch,)`
            in `[0, num_classes)`, whose learned embedding is concatenated
            to the latent.
        embedding_dim: Size of the label embedding (conditional only).

    Returns:
        A functional `keras.Model` from latents to pixel probabilities.
    """
    data_shape = _check_data_shape(data_shape, 2 ** len(filters))
    scale = 2 ** len(filters)
    base = (data_shape[0] // scale, data_shape[1] // scale, filters[0])
    inputs, x = _decoder_inputs(latent_dim, num_classes, embedding_dim)
    x = layers.Dense(hidden_units, activation="relu")(x)
    x = layers.Dense(math.prod(base), activation="relu")(x)
    x = layers.Reshape(base)(x)
    for f in filters:
        x = layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu")(x)
    outputs = layers.Conv2D(data_shape[-1], 3, padding="same", activation="sigmoid")(x)
    return _model(inputs, outputs, "decoder")
