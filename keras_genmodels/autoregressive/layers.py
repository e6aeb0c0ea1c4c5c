"""Transformer layers with a key/value cache for incremental decoding.

`CausalSelfAttention` and `TransformerBlock` run a whole sequence in `call`
(training, scoring, filling the cache from a prompt) and one token at a time
in `step`, which writes the token's key and value into a fixed-size cache of
`context_length` slots. The cache update is a one-hot blend rather than a
scatter, so the same code runs in TensorFlow, in SavedModels and in TF Lite.

With `causal=False` the same layers attend in both directions, and `call`
takes a `padding_mask` of the keys: the prompt encoder of the
text-conditional models (`keras_genmodels.conditioning.text`) is built from
them.
"""

import math

import keras
import tensorflow as tf
from keras import layers


def _key_mask(padding_mask):
    """`(batch, 1, 1, length)` bool mask of the keys from a `(batch, length)` one."""
    return tf.cast(padding_mask, tf.bool)[:, None, None, :]


def causal_mask(query_length, key_length, offset=0):
    """`(query_length, key_length)` bool mask, True where a query may attend.

    Query `i` sits at position `offset + i` and attends to keys `<= offset + i`.
    """
    rows = tf.range(query_length)[:, None] + offset
    cols = tf.range(key_length)[None, :]
    return cols <= rows


@keras.saving.register_keras_serializable(package="keras_genmodels")
class CausalSelfAttention(layers.Layer):
    """Multi-head causal (or, with `causal=False`, bidirectional) self-attention.

    `attention(Q, K, V) = softmax(Q K^T / sqrt(d_head) + mask) V`, with the
    mask hiding future positions (when `causal`) and padded keys (when a
    `padding_mask` is given), for each of `num_heads` heads of size
    `d_model / num_heads`.

    References:
        Vaswani et al., "Attention Is All You Need", NeurIPS 2017.

    Args:
        num_heads: Number of heads; must divide the input width.
        dropout: Dropout rate on the attention weights.
        causal: Whether a position attends only to itself and earlier ones
            (the default); `False` attends in both directions (an encoder;
            `step` is then unavailable).
        **kwargs: Passed to `keras.layers.Layer`.

    Call arguments:
        x: `(batch, length, d_model)`.
        training: Whether dropout is active.
        return_cache: If True, also return the keys and values, each
            `(batch, num_heads, length, d_head)`.
        padding_mask: Optional `(batch, length)` bool or 0/1 tensor, true
            at the positions that may be attended to; the others are hidden
            from every query.

    Returns:
        `(batch, length, d_model)`, or `(output, (keys, values))`.

    Example:

    ```python
    attention = CausalSelfAttention(num_heads=4)
    y = attention(keras.random.normal((2, 16, 64)))
    ```
    """

    def __init__(self, num_heads, dropout=0.0, causal=True, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1:
            raise ValueError(
                f"`num_heads` must be a positive int. Received: num_heads={num_heads!r}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        if not isinstance(causal, bool):
            raise ValueError(f"`causal` must be a bool. Received: causal={causal!r}")
        self.num_heads = num_heads
        self.dropout = float(dropout)
        self.causal = causal

    def build(self, input_shape):
        d_model = int(input_shape[-1])
        if d_model % self.num_heads:
            raise ValueError(
                "The input width must be divisible by `num_heads`. Received: "
                f"d_model={d_model}, num_heads={self.num_heads}"
            )
        self.d_model = d_model
        self.d_head = d_model // self.num_heads
        self.qkv = layers.Dense(3 * d_model, name="qkv", dtype=self.dtype_policy)
        self.qkv.build(input_shape)
        self.out = layers.Dense(d_model, name="output", dtype=self.dtype_policy)
        self.out.build((*input_shape[:-1], d_model))
        self.attention_dropout = layers.Dropout(self.dropout)

    def _split_heads(self, x):
        batch, length = tf.shape(x)[0], tf.shape(x)[1]
        qkv = tf.reshape(
            self.qkv(x), [batch, length, 3, self.num_heads, self.d_head]
        )
        qkv = tf.transpose(qkv, [2, 0, 3, 1, 4])  # (3, batch, heads, length, d_head)
        return qkv[0], qkv[1], qkv[2]

    def _merge_heads(self, x):
        batch, length = tf.shape(x)[0], tf.shape(x)[2]
        x = tf.transpose(x, [0, 2, 1, 3])
        return self.out(tf.reshape(x, [batch, length, self.d_model]))

    def _attend(self, q, k, v, mask, training=False):
        scores = tf.matmul(q, k, transpose_b=True) / math.sqrt(self.d_head)
        if mask is not None:
            scores = tf.where(mask, scores, tf.cast(-1e9, scores.dtype))
        weights = tf.nn.softmax(tf.cast(scores, "float32"), axis=-1)
        weights = self.attention_dropout(tf.cast(weights, v.dtype), training=training)
        return tf.matmul(weights, v)

    def call(self, x, training=False, return_cache=False, padding_mask=None):
        q, k, v = self._split_heads(x)
        length = tf.shape(x)[1]
        mask = causal_mask(length, length) if self.causal else None
        if padding_mask is not None:
            keys = _key_mask(padding_mask)
            mask = keys if mask is None else mask & keys
        context = self._attend(q, k, v, mask, training)
        output = self._merge_heads(context)
        if return_cache:
            return output, (k, v)
        return output

    def step(self, x, keys, values, position):
        """Attends from one new token, writing its key and value to the cache.

        Args:
            x: `(batch, 1, d_model)`, the token at `position`.
            keys: `(batch, num_heads, context_length, d_head)` cache.
            values: Same shape as `keys`.
            position: int32 scalar, the slot of the new token in every row,
                or `(batch,)`, one slot per row. The token attends to the
                cache slots `<= position`.

        Returns:
            `(output (batch, 1, d_model), keys, values)` with updated caches.
        """
        if not self.causal:
            raise ValueError(
                "`step` decodes one token after the cached ones, which needs a "
                "causal layer. Received: causal=False"
            )
        q, k, v = self._split_heads(x)
        slots = tf.shape(keys)[2]
        position = tf.convert_to_tensor(position, tf.int32)
        rows = position[None] if position.shape.rank == 0 else position  # (1 or batch,)
        slot = tf.one_hot(rows, slots, dtype=keys.dtype)[:, None, :, None]
        keys = keys * (1 - slot) + tf.cast(k, keys.dtype) * slot
        values = values * (1 - slot) + tf.cast(v, values.dtype) * slot
        mask = (tf.range(slots)[None, :] <= rows[:, None])[:, None, None, :]
        context = self._attend(q, keys, values, mask)
        return self._merge_heads(context), keys, values

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {"num_heads": self.num_heads, "dropout": self.dropout, "causal": self.causal}
        )
        return config


@keras.saving.register_keras_serializable(package="keras_genmodels")
class TransformerBlock(layers.Layer):
    """Pre-norm decoder (or encoder) block: `x + Attn(LN(x))`, then `x + MLP(LN(x))`.

    The MLP is `Dense(mlp_ratio * d_model, gelu) -> Dense(d_model)` with the
    tanh approximation of GELU (a TF Lite built-in).

    References:
        Radford et al., "Language Models are Unsupervised Multitask
        Learners", 2019 (pre-norm GPT-2 blocks).

    Args:
        num_heads: Attention heads.
        mlp_ratio: Hidden width of the MLP as a multiple of `d_model`.
        dropout: Dropout rate on the attention weights and residual branches.
        layer_norm_epsilon: Epsilon of the layer normalisations.
        causal: Whether the attention is causal (a decoder, the default) or
            bidirectional (an encoder); see `CausalSelfAttention`.
        **kwargs: Passed to `keras.layers.Layer`.

    Call arguments:
        x: `(batch, length, d_model)`.
        training: Whether dropout is active.
        return_cache: If True, also return the attention keys and values.
        padding_mask: Optional `(batch, length)` mask of the positions that
            may be attended to (see `CausalSelfAttention`).

    Returns:
        `(batch, length, d_model)`, or `(output, (keys, values))`.

    Example:

    ```python
    block = TransformerBlock(num_heads=4)
    y = block(keras.random.normal((2, 16, 64)))
    ```
    """

    def __init__(
        self,
        num_heads,
        mlp_ratio=4,
        dropout=0.0,
        layer_norm_epsilon=1e-5,
        causal=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio, int) or mlp_ratio < 1:
            raise ValueError(
                f"`mlp_ratio` must be a positive int. Received: mlp_ratio={mlp_ratio!r}"
            )
        self.num_heads = num_heads
        self.mlp_ratio = mlp_ratio
        self.dropout = float(dropout)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.attention = CausalSelfAttention(
            num_heads,
            dropout=dropout,
            causal=causal,
            name="attention",
            dtype=self.dtype_policy,
        )
        self.causal = causal

    def build(self, input_shape):
        d_model = int(input_shape[-1])
        self.attention_norm = layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="attention_norm", dtype=self.dtype_policy
        )
        self.attention_norm.build(input_shape)
        self.attention.build(input_shape)
        self.mlp_norm = layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="mlp_norm", dtype=self.dtype_policy
        )
        self.mlp_norm.build(input_shape)
        hidden = self.mlp_ratio * d_model
        self.mlp_in = layers.Dense(hidden, name="mlp_in", dtype=self.dtype_policy)
        self.mlp_in.build(input_shape)
        self.mlp_out = layers.Dense(d_model, name="mlp_out", dtype=self.dtype_policy)
        self.mlp_out.build((*input_shape[:-1], hidden))
        self.residual_dropout = layers.Dropout(self.dropout)

    def _mlp(self, x, training=False):
        h = keras.activations.gelu(self.mlp_in(self.mlp_norm(x)), approximate=True)
        return self.residual_dropout(self.mlp_out(h), training=training)

    def call(self, x, training=False, return_cache=False, padding_mask=None):
        attended = self.attention(
            self.attention_norm(x),
            training=training,
            return_cache=return_cache,
            padding_mask=padding_mask,
        )
        if return_cache:
            attended, cache = attended
        x = x + self.residual_dropout(attended, training=training)
        x = x + self._mlp(x, training=training)
        if return_cache:
            return x, cache
        return x

    def step(self, x, keys, values, position):
        """One-token forward pass with the cache; see `CausalSelfAttention.step`."""
        attended, keys, values = self.attention.step(
            self.attention_norm(x), keys, values, position
        )
        x = x + attended
        return x + self._mlp(x), keys, values

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "mlp_ratio": self.mlp_ratio,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "causal": self.causal,
            }
        )
        return config
