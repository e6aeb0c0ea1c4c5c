"""Generator and discriminator networks for the GAN.

Generators map latents `(batch, latent_dim)` (and, when class-conditional,
int labels `(batch,)`) to data: images `(batch, H, W, C)` in [0, 1] or points
`(batch, D)`. Discriminators map data (and labels) to one score per example,
`(batch, 1)`: logits, or probabilities for the seed's sigmoid discriminator.

Class-conditional generators concatenate a label embedding to the latent;
class-conditional discriminators use the projection head of Miyato and Koyama
(2018): `D(x, y) = w^T h(x) + embed(y)^T h(x)`.

References:
    Radford et al., "Unsupervised Representation Learning with Deep
    Convolutional Generative Adversarial Networks", ICLR 2016.
    Miyato and Koyama, "cGANs with Projection Discriminator", ICLR 2018.
"""

import math

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="keras_genmodels")
class PackExamples(layers.Layer):
    """Concatenates groups of `pack` consecutive examples (PacGAN).

    A packed discriminator judges `pack` examples at once, which penalises a
    generator whose samples lack diversity (Lin et al., 2018). The batch size
    must be a multiple of `pack`.

    References:
        Lin et al., "PacGAN: The power of two samples in generative
        adversarial networks", NeurIPS 2018.

    Args:
        pack: Number of examples per packed example.
        **kwargs: Passed to `keras.layers.Layer`.

    Call arguments:
        inputs: `(batch, features)`.

    Returns:
        `(batch / pack, pack * features)`.
    """

    def __init__(self, pack=2, **kwargs):
        super().__init__(**kwargs)
        if isinstance(pack, bool) or not isinstance(pack, int) or pack < 1:
            raise ValueError(f"`pack` must be a positive int. Received: pack={pack}")
        self.pack = pack

    def call(self, inputs):
        return keras.ops.reshape(inputs, (-1, self.pack * inputs.shape[-1]))

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else input_shape[0] // self.pack
        return (batch, self.pack * input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "pack": self.pack}


def _check_shape(shape, name, multiple=1, rank=None):
    shape = tuple(shape)
    if (
        not shape
        or (rank is not None and len(shape) != rank)
        or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape)
    ):
        expected = f"{rank} positive ints" if rank else "positive ints"
        raise ValueError(f"`{name}` must be a tuple of {expected}. Received: {name}={shape}")
    if multiple > 1 and (shape[0] % multiple or shape[1] % multiple):
        raise ValueError(
            f"Height and width must be multiples of {multiple} for this network. "
            f"Received: {name}={shape}"
        )
    return shape


def _check_units(units, name):
    units = tuple(units) if isinstance(units, (list, tuple)) else (units,)
    if not units or any(isinstance(u, bool) or not isinstance(u, int) or u < 1 for u in units):
        raise ValueError(f"`{name}` must be positive ints. Received: {name}={units}")
    return units


def _check_num_classes(num_classes):
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2
    ):
        raise ValueError(
            f"`num_classes` must be None or an int >= 2. Received: num_classes={num_classes}"
        )
    return num_classes


def _generator_inputs(latent_dim, num_classes, embedding_dim):
    latents = keras.Input((latent_dim,), name="latents")
    if num_classes is None:
        return [latents], latents
    labels = keras.Input((), dtype="int32", name="labels")
    embedded = layers.Embedding(num_classes, embedding_dim, name="label_embedding")(labels)
    return [latents, labels], layers.Concatenate()([latents, embedded])


def _discriminator(inputs, features, labels, num_classes, activation, name):
    score = layers.Dense(1, name="score")(features)
    if labels is not None:
        embedded = layers.Embedding(num_classes, features.shape[-1], name="label_projection")(
            labels
        )
        projection = layers.Dot(axes=1, name="projection")([features, embedded])
        score = layers.Add(name="projected_score")([score, projection])
    if activation is not None:
        score = layers.Activation(activation, name="probability")(score)
    return keras.Model(inputs, score, name=name)


def _discriminator_inputs(data_shape, num_classes):
    data = keras.Input(data_shape, name="data")
    if num_classes is None:
        return [data], data, None
    labels = keras.Input((), dtype="int32", name="labels")
    return [data, labels], data, labels


def mlp_generator(
    latent_dim=100,
    data_shape=(28, 28, 1),
    hidden_units=(256, 512, 1024),
    activation="relu",
    output_activation="sigmoid",
    num_classes=None,
    embedding_dim=16,
):
    """A multilayer-perceptron generator: Dense layers then Reshape.

    The defaults are the seed's generator: `Dense(256, relu, input 100) ->
    Dense(512, relu) -> Dense(1024, relu) -> Dense(784, sigmoid) ->
    Reshape(28, 28, 1)`, 1,486,352 parameters.

    Args:
        latent_dim: Size of the latent input.
        data_shape: Shape of one generated example, e.g. `(28, 28, 1)` or
            `(2,)`.
        hidden_units: Width of each hidden Dense layer.
        activation: Activation of the hidden layers.
        output_activation: Activation of the output layer (`"sigmoid"` for
            images in [0, 1], `None` for unbounded points).
        num_classes: If set, the generator also takes int `labels` and
            concatenates their `embedding_dim`-wide embedding to the latent.
        embedding_dim: Width of the label embedding.

    Returns:
        A functional `keras.Model` from `latents` (and `labels`) to data.

    Example:

    ```python
    generator = mlp_generator()
    generator.count_params()  # 1486352
    ```
    """
    data_shape = _check_shape(data_shape, "data_shape")
    hidden_units = _check_units(hidden_units, "hidden_units")
    num_classes = _check_num_classes(num_classes)
    inputs, x = _generator_inputs(latent_dim, num_classes, embedding_dim)
    for units in hidden_units:
        x = layers.Dense(units, activation=activation)(x)
    x = layers.Dense(math.prod(data_shape), activation=output_activation)(x)
    outputs = layers.Reshape(data_shape)(x)
    return keras.Model(inputs, outputs, name="generator")


def mlp_discriminator(
    data_shape=(28, 28, 1),
    hidden_units=(512, 256),
    activation="relu",
    output_activation="sigmoid",
    num_classes=None,
    pack=1,
):
    """A multilayer-perceptron discriminator: Flatten, Dense layers, a score.

    The defaults are the seed's discriminator: `Flatten -> Dense(512, relu)
    -> Dense(256, relu) -> Dense(1, sigmoid)`, 533,505 parameters.

    Args:
        data_shape: Shape of one example.
        hidden_units: Width of each hidden Dense layer.
        activation: Activation of the hidden layers (e.g. `"leaky_relu"`).
        output_activation: `"sigmoid"` for probabilities, `None` for logits
            (needed by the hinge and WGAN-GP losses).
        num_classes: If set, the discriminator also takes int `labels` and
            adds a projection term `embed(y)^T h(x)` to the score.
        pack: PacGAN packing degree: with `pack > 1` the discriminator
            scores groups of `pack` consecutive examples, so it returns
            `(batch / pack, 1)` and the batch size must be a multiple of
            `pack` (unconditional only).

    Returns:
        A functional `keras.Model` from `data` (and `labels`) to `(batch, 1)`.
    """
    data_shape = _check_shape(data_shape, "data_shape")
    hidden_units = _check_units(hidden_units, "hidden_units")
    num_classes = _check_num_classes(num_classes)
    if pack != 1 and num_classes is not None:
        raise ValueError(
            f"`pack` > 1 needs an unconditional discriminator. Received: pack={pack}, "
            f"num_classes={num_classes}"
        )
    inputs, x, labels = _discriminator_inputs(data_shape, num_classes)
    x = layers.Flatten()(x)
    if pack != 1:
        x = PackExamples(pack)(x)
    for units in hidden_units:
        x = layers.Dense(units, activation=activation)(x)
    return _discriminator(inputs, x, labels, num_classes, output_activation, "discriminator")


def dcgan_generator(
    latent_dim=64,
    data_shape=(28, 28, 1),
    filters=(128, 64),
    num_classes=None,
    embedding_dim=16,
):
    """A DCGAN generator: Dense, then stride-2 transposed convolutions.

    `Dense -> BatchNorm -> ReLU -> Reshape(H/2^n, W/2^n, filters[0])`, then per
    further filter count a 4x4 stride-2 `Conv2DTranspose -> BatchNorm -> ReLU`,
    and a last 4x4 stride-2 `Conv2DTranspose` to the image channels with a
    sigmoid, so images lie in [0, 1].

    Args:
        latent_dim: Size of the latent input.
        data_shape: `(height, width, channels)`; height and width must be
            multiples of `2 ** len(filters)` (28 and 32 work with 2 filters).
        filters: Channels of the feature maps, coarsest first.
        num_classes: If set, the generator also takes int `labels`.
        embedding_dim: Width of the label embedding.

    Returns:
        A functional `keras.Model` from `latents` (and `labels`) to images.

    Example:

    ```python
    generator = dcgan_generator(data_shape=(32, 32, 3))
    ```
    """
    filters = _check_units(filters, "filters")
    data_shape = _check_shape(data_shape, "data_shape", 2 ** len(filters), rank=3)
    num_classes = _check_num_classes(num_classes)
    scale = 2 ** len(filters)
    base = (data_shape[0] // scale, data_shape[1] // scale, filters[0])
    inputs, x = _generator_inputs(latent_dim, num_classes, embedding_dim)
    x = layers.Dense(math.prod(base), use_bias=False)(x)
    # Statistics of the global batch under a `tf.distribute` strategy, so a
    # mirrored step normalises as the one-device step does.
    x = layers.BatchNormalization(synchronized=True)(x)
    x = layers.ReLU()(x)
    x = layers.Reshape(base)(x)
    for f in filters[1:]:
        x = layers.Conv2DTranspose(f, 4, strides=2, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(synchronized=True)(x)
        x = layers.ReLU()(x)
    outputs = layers.Conv2DTranspose(
        data_shape[-1], 4, strides=2, padding="same", activation="sigmoid"
    )(x)
    return keras.Model(inputs, outputs, name="generator")


def dcgan_discriminator(data_shape=(28, 28, 1), filters=(64, 128), num_classes=None):
    """A DCGAN discriminator: stride-2 convolutions with LeakyReLU, a logit.

    Per filter count a 4x4 stride-2 `Conv2D -> LeakyReLU(0.2)`, then Flatten
    and a Dense score (a logit; no batch normalisation, so the gradient
    penalties are well defined per example).

    Args:
        data_shape: `(height, width, channels)`.
        filters: Channels of each convolution.
        num_classes: If set, the discriminator also takes int `labels`
            (projection head).

    Returns:
        A functional `keras.Model` from `data` (and `labels`) to logits
        `(batch, 1)`.
    """
    filters = _check_units(filters, "filters")
    data_shape = _check_shape(data_shape, "data_shape", rank=3)
    num_classes = _check_num_classes(num_classes)
    inputs, x, labels = _discriminator_inputs(data_shape, num_classes)
    for f in filters:
        x = layers.Conv2D(f, 4, strides=2, padding="same")(x)
        x = layers.LeakyReLU(0.2)(x)
    x = layers.Flatten()(x)
    return _discriminator(inputs, x, labels, num_classes, None, "discriminator")
