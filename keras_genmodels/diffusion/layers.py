"""Layers shared by the diffusion networks."""

import math

import keras
from keras import ops

from keras_genmodels.base import check_positive_int


@keras.saving.register_keras_serializable(package="keras_genmodels")
class SinusoidalEmbedding(keras.layers.Layer):
    """Sinusoidal embedding of integer timesteps (Vaswani et al., 2017).

    `emb(t) = [sin(t w_0), ..., sin(t w_{d/2-1}), cos(t w_0), ..., cos(t w_{d/2-1})]`
    with `w_i = max_period^(-i / (d / 2))`.

    References:
        Vaswani et al., "Attention Is All You Need", NeurIPS 2017.
        Ho, Jain and Abbeel, "Denoising Diffusion Probabilistic Models",
        NeurIPS 2020 (its use as the timestep embedding).

    Args:
        dim: Even embedding size.
        max_period: The longest wavelength.
        **kwargs: Passed to `keras.layers.Layer`.

    Call arguments:
        t: `(batch,)` integer or float timesteps.

    Returns:
        `(batch, dim)` embedding.

    Example:

    ```python
    SinusoidalEmbedding(64)(keras.ops.arange(4)).shape  # (4, 64)
    ```
    """

    def __init__(self, dim, max_period=10_000.0, **kwargs):
        super().__init__(**kwargs)
        dim = check_positive_int(dim, "dim")
        if dim % 2:
            raise ValueError(f"`dim` must be even. Received: dim={dim}")
        if max_period <= 1:
            raise ValueError(
                f"`max_period` must be greater than 1. Received: max_period={max_period}"
            )
        self.dim = dim
        self.max_period = float(max_period)

    def call(self, t):
        half = self.dim // 2
        frequencies = ops.exp(
            -math.log(self.max_period) * ops.arange(half, dtype="float32") / half
        )
        angles = ops.cast(ops.reshape(t, (-1, 1)), "float32") * frequencies[None, :]
        return ops.cast(
            ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1), self.compute_dtype
        )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        config = super().get_config()
        config.update({"dim": self.dim, "max_period": self.max_period})
        return config
