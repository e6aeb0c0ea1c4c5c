"""Invertible Keras 3 layers of the image flows: actnorm, 1x1 convolution,
affine couplings, and the convolutional residual network of a coupling.

Each invertible layer works on `(N, H, W, C)` tensors in the data-to-latent
direction and offers `forward_and_log_det(x) -> (y, log|det dy/dx|)` (the
log-determinant per example, `(N,)`) and `inverse(y) -> x`.
`keras_genmodels.flow.image_bijectors.LayerBijector` wraps one as a TFP
bijector.
"""

import contextlib
import threading

import keras
import numpy as np
import tensorflow as tf

_INIT = threading.local()


@contextlib.contextmanager
def data_dependent_init():
    """Traces `ActNorm` layers with their data-dependent initialisation.

    Inside this scope an `ActNorm` that is not yet initialised sets its
    offset and log-scale from the batch it sees (zero mean, unit variance
    per channel) before transforming it. The models enter it when tracing
    the training loss only, so serving graphs never assign variables.
    """
    previous = getattr(_INIT, "active", False)
    _INIT.active = True
    try:
        yield
    finally:
        _INIT.active = previous


def _pixels(x):
    shape = x.shape
    return float(shape[1] * shape[2])


@keras.saving.register_keras_serializable(package="keras_genmodels")
class ActNorm(keras.layers.Layer):
    """Per-channel affine map with data-dependent initialisation (Glow).

    `y = (x + bias) * exp(log_scale)`; `log|det| = H W sum(log_scale)`.
    On the first training batch (inside `data_dependent_init`) `bias` and
    `log_scale` are set so that `y` has zero mean and unit variance per
    channel over that batch; a non-trainable `initialized` flag records it.

    References:
        Kingma and Dhariwal, "Glow: Generative Flow with Invertible 1x1
        Convolutions", NeurIPS 2018.

    Args:
        **kwargs: Passed to `keras.layers.Layer`.

    Example:

    ```python
    norm = ActNorm()
    with data_dependent_init():
        y, log_det = norm.forward_and_log_det(images)
    ```
    """

    def build(self, input_shape):
        channels = input_shape[-1]
        self.bias = self.add_weight(shape=(channels,), initializer="zeros", name="bias",
                                    aggregation="mean")
        self.log_scale = self.add_weight(
            shape=(channels,), initializer="zeros", name="log_scale", aggregation="mean"
        )
        self.initialized = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="initialized",
            aggregation="mean",
        )
        self.built = True

    def _maybe_initialize(self, x):
        if not getattr(_INIT, "active", False):
            return x

        def initialize():
            mean, variance = tf.nn.moments(x, axes=[0, 1, 2])
            self.bias.assign(-mean)
            self.log_scale.assign(-0.5 * tf.math.log(variance + 1e-6))
            self.initialized.assign(1.0)
            return tf.constant(0.0)

        done = tf.cond(self.initialized > 0.5, lambda: tf.constant(0.0), initialize)
        with tf.control_dependencies([done]):
            return tf.identity(x)

    def forward_and_log_det(self, x):
        x = self._maybe_initialize(x)
        y = (x + self.bias) * tf.exp(self.log_scale)
        log_det = _pixels(x) * tf.reduce_sum(self.log_scale)
        return y, tf.fill(tf.shape(x)[:1], log_det)

    def inverse(self, y):
        return y * tf.exp(-self.log_scale) - self.bias

    def call(self, x):
        return self.forward_and_log_det(x)[0]


def lu_decompose(matrix):
    """`P, L, U` with `matrix = P @ L @ U` (partial pivoting), in numpy.

    Args:
        matrix: `(C, C)` invertible float array.

    Returns:
        The permutation matrix `P`, unit lower-triangular `L` and
        upper-triangular `U`.
    """
    size = len(matrix)
    u = np.array(matrix, dtype="float64")
    lower = np.eye(size)
    rows = np.arange(size)
    for k in range(size - 1):
        pivot = k + int(np.argmax(np.abs(u[k:, k])))
        if pivot != k:
            u[[k, pivot]] = u[[pivot, k]]
            lower[[k, pivot], :k] = lower[[pivot, k], :k]
            rows[[k, pivot]] = rows[[pivot, k]]
        factors = u[k + 1:, k] / u[k, k]
        lower[k + 1:, k] = factors
        u[k + 1:] -= factors[:, None] * u[k]
    permutation = np.zeros((size, size))
    permutation[rows, np.arange(size)] = 1.0
    return permutation, lower, np.triu(u)


@keras.saving.register_keras_serializable(package="keras_genmodels")
class Invertible1x1Conv(keras.layers.Layer):
    """Invertible 1x1 convolution, LU-parameterised (Glow).

    Each pixel's channels are mixed by `W = P L (U + diag(sign * exp(log_s)))`
    with `P` a fixed permutation, `L` unit lower-triangular, `U` strictly
    upper-triangular; `y = x W^T`, `log|det| = H W sum(log_s)`. `W` starts
    as a random rotation drawn from `seed`, so `P` and `sign` are
    constants rebuilt from the config, not weights.

    References:
        Kingma and Dhariwal, "Glow", NeurIPS 2018.

    Args:
        seed: Int seed of the initial rotation.
        **kwargs: Passed to `keras.layers.Layer`.
    """

    def __init__(self, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.seed = int(seed)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        rng = np.random.default_rng([self.seed, channels])
        rotation = np.linalg.qr(rng.standard_normal((channels, channels)))[0]
        permutation, lower, upper = lu_decompose(rotation)
        diagonal = np.diag(upper)
        self.permutation = permutation.astype("float32")
        self.sign = np.sign(diagonal).astype("float32")
        self.lower_mask = np.tril(np.ones((channels, channels), "float32"), -1)
        self.lower = self.add_weight(
            shape=(channels, channels), name="lower",
            initializer=keras.initializers.Constant(lower.astype("float32")),
        )
        self.upper = self.add_weight(
            shape=(channels, channels), name="upper",
            initializer=keras.initializers.Constant(np.triu(upper, 1).astype("float32")),
        )
        self.log_s = self.add_weight(
            shape=(channels,), name="log_s",
            initializer=keras.initializers.Constant(np.log(np.abs(diagonal)).astype("float32")),
        )
        self.built = True

    def weight_matrix(self):
        """The `(C, C)` matrix `W` (a tensor)."""
        eye = tf.eye(self.lower.shape[0])
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * tf.transpose(self.lower_mask) + tf.linalg.diag(
            self.sign * tf.exp(self.log_s)
        )
        return tf.matmul(self.permutation, tf.matmul(lower, upper))

    def forward_and_log_det(self, x):
        y = tf.matmul(x, self.weight_matrix(), transpose_b=True)
        log_det = _pixels(x) * tf.reduce_sum(self.log_s)
        return y, tf.fill(tf.shape(x)[:1], log_det)

    def inverse(self, y):
        return tf.matmul(y, tf.linalg.inv(self.weight_matrix()), transpose_b=True)

    def call(self, x):
        return self.forward_and_log_det(x)[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="keras_genmodels")
class ConvResNet(keras.layers.Layer):
    """Small convolutional residual network of an affine coupling.

    `3x3 conv -> ReLU -> num_blocks x (3x3 conv, ReLU, 3x3 conv, + skip,
    ReLU) -> 3x3 conv` to `output_channels`; the last convolution starts at
    zero, so a fresh coupling is the identity.

    Args:
        output_channels: Channels of the output.
        filters: Hidden channels.
        num_blocks: Residual blocks.
        **kwargs: Passed to `keras.layers.Layer`.
    """

    def __init__(self, output_channels, filters=32, num_blocks=1, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("output_channels", output_channels), ("filters", filters)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value}")
        if isinstance(num_blocks, bool) or not isinstance(num_blocks, int) or num_blocks < 0:
            raise ValueError(
                f"`num_blocks` must be an int >= 0. Received: num_blocks={num_blocks}"
            )
        self.output_channels = output_channels
        self.filters = filters
        self.num_blocks = num_blocks
        conv = keras.layers.Conv2D
        self.stem = conv(filters, 3, padding="same", activation="relu", name="stem")
        self.blocks = [
            (conv(filters, 3, padding="same", activation="relu", name=f"block_{i}_a"),
             conv(filters, 3, padding="same", name=f"block_{i}_b"))
            for i in range(num_blocks)
        ]
        self.head = conv(output_channels, 3, padding="same", kernel_initializer="zeros",
                         name="head")

    def build(self, input_shape):
        self.stem.build(input_shape)
        shape = (*input_shape[:-1], self.filters)
        for a, b in self.blocks:
            a.build(shape)
            b.build(shape)
        self.head.build(shape)
        self.built = True

    def call(self, x):
        h = self.stem(x)
        for a, b in self.blocks:
            h = tf.nn.relu(h + b(a(h)))
        return self.head(h)

    def get_config(self):
        return {**super().get_config(), "output_channels": self.output_channels,
                "filters": self.filters, "num_blocks": self.num_blocks}


MASKS = ("checkerboard", "channel")


@keras.saving.register_keras_serializable(package="keras_genmodels")
class AffineCoupling(keras.layers.Layer):
    """Checkerboard or channel-wise affine coupling (RealNVP).

    With a binary mask `b` (a checkerboard over pixels, or the first or last
    half of the channels, flipped by `parity`), the masked part conditions
    an affine map of the rest:
    `y = b x + (1 - b) (x exp(s(b x)) + t(b x))`, `log|det| = sum (1 - b) s`,
    with `s = factor * tanh(h)` bounded by a learned per-channel `factor`.

    References:
        Dinh, Sohl-Dickstein and Bengio, "Density estimation using Real NVP",
        ICLR 2017.

    Args:
        mask: `"checkerboard"` or `"channel"`.
        parity: 0 or 1, which half is transformed.
        filters: Hidden channels of the `ConvResNet`.
        num_blocks: Residual blocks of the `ConvResNet`.
        **kwargs: Passed to `keras.layers.Layer`.
    """

    def __init__(self, mask="checkerboard", parity=0, filters=32, num_blocks=1, **kwargs):
        super().__init__(**kwargs)
        if mask not in MASKS:
            raise ValueError(f"`mask` must be one of {MASKS}. Received: mask={mask!r}")
        if parity not in (0, 1):
            raise ValueError(f"`parity` must be 0 or 1. Received: parity={parity!r}")
        self.mask, self.parity = mask, parity
        self.filters, self.num_blocks = filters, num_blocks

    def build(self, input_shape):
        height, width, channels = (int(d) for d in input_shape[1:])
        if self.mask == "channel":
            if channels < 2:
                raise ValueError(
                    "A channel-wise coupling needs at least 2 channels. Received: "
                    f"input_shape={tuple(input_shape)}"
                )
            half = channels // 2
            conditioning = np.arange(channels) < half
            if self.parity:
                conditioning = ~conditioning
            self.conditioning = np.flatnonzero(conditioning).tolist()
            self.transformed = np.flatnonzero(~conditioning).tolist()
            out, inputs = len(self.transformed), len(self.conditioning)
        else:
            grid = np.add.outer(np.arange(height), np.arange(width)) + self.parity
            self.board = (grid % 2 == 0).astype("float32")[None, :, :, None]
            out, inputs = channels, channels
        self.network = ConvResNet(2 * out, self.filters, self.num_blocks, name="network")
        self.network.build((None, height, width, inputs))
        self.factor = self.add_weight(shape=(out,), initializer="ones", name="log_scale_factor")
        self.out_channels = out
        self.built = True

    def _shift_and_log_scale(self, conditioning):
        h = self.network(conditioning)
        shift = h[..., : self.out_channels]
        log_scale = self.factor * tf.tanh(h[..., self.out_channels:])
        return shift, log_scale

    def forward_and_log_det(self, x):
        if self.mask == "channel":
            x_a = tf.gather(x, self.conditioning, axis=-1)
            x_b = tf.gather(x, self.transformed, axis=-1)
            shift, log_scale = self._shift_and_log_scale(x_a)
            y_b = x_b * tf.exp(log_scale) + shift
            y = self._merge(x_a, y_b)
        else:
            free = 1.0 - self.board
            shift, log_scale = self._shift_and_log_scale(x * self.board)
            shift, log_scale = shift * free, log_scale * free
            y = x * tf.exp(log_scale) + shift
        return y, tf.reduce_sum(log_scale, axis=[1, 2, 3])

    def inverse(self, y):
        if self.mask == "channel":
            y_a = tf.gather(y, self.conditioning, axis=-1)
            y_b = tf.gather(y, self.transformed, axis=-1)
            shift, log_scale = self._shift_and_log_scale(y_a)
            return self._merge(y_a, (y_b - shift) * tf.exp(-log_scale))
        free = 1.0 - self.board
        shift, log_scale = self._shift_and_log_scale(y * self.board)
        return (y - shift * free) * tf.exp(-log_scale * free)

    def _merge(self, part_a, part_b):
        parts = (part_a, part_b) if self.parity == 0 else (part_b, part_a)
        return tf.concat(parts, axis=-1)

    def call(self, x):
        return self.forward_and_log_det(x)[0]

    def get_config(self):
        return {**super().get_config(), "mask": self.mask, "parity": self.parity,
                "filters": self.filters, "num_blocks": self.num_blocks}
