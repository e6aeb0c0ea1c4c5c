"""An MLP noise predictor for low-dimensional (e.g. 2-D) data."""

import keras
from keras import layers

from keras_genmodels.base import check_positive_int
from keras_genmodels.diffusion.layers import SinusoidalEmbedding


def mlp_denoiser(data_shape=(2,), hidden_units=256, num_layers=3, embedding_dim=64):
    """An MLP `(x_t, t) -> predicted noise` for vectors.

    The timestep's sinusoidal embedding goes through `Dense -> SiLU -> Dense`
    and is added to the input projection and to every hidden layer's input,
    so each layer sees the noise level.

    Args:
        data_shape: `(d,)`, the shape of one data vector.
        hidden_units: Width of the hidden layers.
        num_layers: Number of hidden `Dense -> SiLU` blocks.
        embedding_dim: Size of the sinusoidal time embedding (even).

    Returns:
        A functional `keras.Model` with inputs `[x_t (batch, d), t (batch,)
        int32]` and output `(batch, d)`.

    Example:

    ```python
    network = mlp_denoiser(data_shape=(2,))
    network.count_params()  # 281,090 with the defaults
    ```
    """
    data_shape = tuple(data_shape)
    if len(data_shape) != 1:
        raise ValueError(
            "`data_shape` must be `(d,)`: the MLP takes vectors. "
            f"Received: data_shape={data_shape}"
        )
    data_dim = check_positive_int(data_shape[0], "data_shape[0]")
    hidden_units = check_positive_int(hidden_units, "hidden_units")
    num_layers = check_positive_int(num_layers, "num_layers")
    x_t = keras.Input((data_dim,), name="x_t")
    t = keras.Input((), dtype="int32", name="t")
    emb = SinusoidalEmbedding(embedding_dim, name="time_embedding")(t)
    emb = layers.Dense(hidden_units, activation="silu", name="time_dense_1")(emb)
    emb = layers.Dense(hidden_units, name="time_dense_2")(emb)
    h = layers.Dense(hidden_units, name="input_projection")(x_t)
    for i in range(num_layers):
        h = layers.Add(name=f"add_time_{i}")([h, emb])
        h = layers.Dense(hidden_units, activation="silu", name=f"hidden_{i}")(h)
    outputs = layers.Dense(data_dim, name="noise", dtype="float32")(h)
    return keras.Model([x_t, t], outputs, name="mlp_denoiser")
