"""An MLP noise predictor for low-dimensional (e.g. 2-D) data."""

import keras
from keras import layers

from keras_genmodels.base import check_positive_int
from keras_genmodels.diffusion.layers import SinusoidalEmbedding


def mlp_denoiser(data_dim=2, hidden_units=256, num_layers=3, embedding_dim=64):
    """An MLP `(x_t, t) -> predicted noise` for vectors.

    The timestep's sinusoidal embedding goes through `Dense -> SiLU -> Dense`
    and is added to the input projection and to every hidden layer's input,
    so each layer sees the noise level.

    Args:
        data_dim: Size of the data vectors.
        hidden_units: Width of the hidden layers.
        num_layers: Number of hidden `Dense -> SiLU` blocks.
        embedding_dim: Size of the sinusoidal time embedding (even).

    Returns:
        A functional `keras.Model` with inputs `[x_t (batch, data_dim), t
        (batch,) int32]` and output `(batch, data_dim)`.

    Example:

    ```python
    network = mlp_denoiser(data_dim=2)
    network.count_params()  # 281,090 with the defaults
    ```
    """
    data_dim = check_positive_int(data_dim, "data_dim")
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
