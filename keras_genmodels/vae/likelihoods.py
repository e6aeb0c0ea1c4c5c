"""The VAE's log-densities: the Bernoulli decoder and the Gaussian posterior/prior."""

import math

import tensorflow as tf

_EPS = 1e-7
_LOG_2PI = math.log(2.0 * math.pi)


def bernoulli_log_likelihood(images, probabilities):
    """`sum_i x_i log p_i + (1 - x_i) log(1 - p_i)` over the pixels of each image.

    Args:
        images: `(..., H, W, C)` targets in [0, 1].
        probabilities: Decoder outputs of the same shape, clipped to
            `[1e-7, 1 - 1e-7]`.

    Returns:
        `(...)` float32 log-likelihoods.
    """
    images = tf.cast(images, "float32")
    p = tf.clip_by_value(tf.cast(probabilities, "float32"), _EPS, 1.0 - _EPS)
    ll = images * tf.math.log(p) + (1.0 - images) * tf.math.log1p(-p)
    return tf.reduce_sum(ll, axis=[-3, -2, -1])


def gaussian_log_density(z, mean, log_var):
    """`log N(z; mean, diag(exp(log_var)))`, summed over the last axis."""
    return -0.5 * tf.reduce_sum(
        _LOG_2PI + log_var + tf.square(z - mean) * tf.exp(-log_var), axis=-1
    )
