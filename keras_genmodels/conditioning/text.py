"""The prompt tokenizer and the byte-level text encoder of text-conditional models.

A prompt is its UTF-8 bytes. Token ids are `byte + BYTE_OFFSET`, after a
`BOS_ID` that starts every prompt, padded with `PAD_ID` to a fixed length
`L = max_prompt_bytes + 1`; so the empty prompt `""` encodes to
`[BOS, PAD, ..., PAD]`, the unconditional input of classifier-free guidance.
`prompt_token_ids` (numpy) and `tf_prompt_token_ids` (TensorFlow ops only,
for exported signatures that take strings) give the same ids.

`text_encoder` builds the encoder: the autoregressive family's transformer
blocks (`keras_genmodels.autoregressive.layers.TransformerBlock`) made
bidirectional (`causal=False`) and masked at the padding, turning ids
`[N, L]` into token states `[N, L, width]` and a 0/1 mask `[N, L]`, the two
inputs of the U-Net's `CrossAttention`.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from keras_genmodels.autoregressive import tokenizer
from keras_genmodels.autoregressive.layers import TransformerBlock
from keras_genmodels.base import check_positive_int

#: Id of the padding after a prompt's last byte.
PAD_ID = 0
#: Id that starts every prompt (alone, it is the empty prompt).
BOS_ID = 1
#: Byte `b` has id `b + BYTE_OFFSET`.
BYTE_OFFSET = 2
#: Number of token ids: PAD, BOS and the 256 bytes.
VOCAB_SIZE = tokenizer.VOCAB_SIZE + BYTE_OFFSET
#: Longest prompt of the default encoder, in UTF-8 bytes.
DEFAULT_MAX_PROMPT_BYTES = 32


def _check_max_bytes(max_prompt_bytes):
    return check_positive_int(max_prompt_bytes, "max_prompt_bytes")


def prompt_token_ids(prompts, max_prompt_bytes=DEFAULT_MAX_PROMPT_BYTES):
    """Token ids of prompts, in numpy: `[BOS, byte + BYTE_OFFSET..., PAD...]`.

    Args:
        prompts: A `str` (or `bytes`), or a sequence of them; `""` is the
            empty (unconditional) prompt.
        max_prompt_bytes: Longest accepted prompt, in UTF-8 bytes.

    Returns:
        int32 array `[N, max_prompt_bytes + 1]` (`N = 1` for one string).

    Raises:
        ValueError: If a prompt is not a string or has more than
            `max_prompt_bytes` bytes.

    Example:

    ```python
    prompt_token_ids(["a 7", ""], max_prompt_bytes=4)
    # array([[ 1, 99, 34, 57,  0],
    #        [ 1,  0,  0,  0,  0]], dtype=int32)
    ```
    """
    max_prompt_bytes = _check_max_bytes(max_prompt_bytes)
    if isinstance(prompts, (str, bytes)):
        prompts = [prompts]
    prompts = list(prompts)
    ids = np.full((len(prompts), max_prompt_bytes + 1), PAD_ID, "int32")
    ids[:, 0] = BOS_ID
    for row, prompt in enumerate(prompts):
        if not isinstance(prompt, (str, bytes)):
            raise ValueError(
                f"A prompt must be a string. Received: prompt={prompt!r}"
            )
        data = tokenizer.encode(prompt)
        if len(data) > max_prompt_bytes:
            raise ValueError(
                f"A prompt may have at most {max_prompt_bytes} UTF-8 bytes. "
                f"Received {len(data)} bytes: prompt={prompt!r}"
            )
        ids[row, 1 : 1 + len(data)] = data + BYTE_OFFSET
    return ids


def tf_prompt_byte_lengths(prompts):
    """UTF-8 byte lengths of a string tensor, in TensorFlow.

    Args:
        prompts: `tf.string` tensor of any shape.

    Returns:
        int32 tensor of the same shape.
    """
    return tf.strings.length(prompts, unit="BYTE")


def tf_prompt_token_ids(prompts, max_prompt_bytes=DEFAULT_MAX_PROMPT_BYTES):
    """Token ids of a `tf.string [N]` batch, with TensorFlow ops only.

    The same ids as `prompt_token_ids` for every prompt of at most
    `max_prompt_bytes` bytes; longer prompts are cut to their first
    `max_prompt_bytes` bytes, so a served signature checks the lengths
    first (`check_served_prompts`). Works in a `tf.function` with an unknown
    `N` and needs nothing of this package at load time.

    Args:
        prompts: `tf.string` tensor `[N]`.
        max_prompt_bytes: Longest prompt, in UTF-8 bytes.

    Returns:
        int32 tensor `[N, max_prompt_bytes + 1]`.

    Example:

    ```python
    tf_prompt_token_ids(tf.constant(["a 7", ""]), 4)  # as `prompt_token_ids`
    ```
    """
    max_prompt_bytes = _check_max_bytes(max_prompt_bytes)
    prompts = tf.convert_to_tensor(prompts, tf.string)
    raw = tf.io.decode_raw(prompts, tf.uint8, fixed_length=max_prompt_bytes)
    lengths = tf_prompt_byte_lengths(prompts)
    real = tf.range(max_prompt_bytes)[None, :] < lengths[:, None]
    ids = tf.where(real, tf.cast(raw, tf.int32) + BYTE_OFFSET, PAD_ID)
    bos = tf.fill([tf.shape(prompts)[0], 1], BOS_ID)
    return tf.concat([bos, ids], axis=1)


def check_served_prompts(checks, prompt, rows_limit, max_prompt_bytes, low=1):
    """In-graph checks of a served `prompt: string [N]` input.

    Args:
        checks: The signature's `serving_limits.InputChecks`.
        prompt: The `tf.string` input.
        rows_limit: Most prompts (rows) accepted, e.g. the `num_samples`
            limit.
        max_prompt_bytes: Longest prompt, in UTF-8 bytes.
        low: Shortest prompt; 1 refuses the empty prompt, as `sample` does.

    Returns:
        The shape-checked prompts (gate them with the other inputs).
    """
    prompt = checks.batch("prompt", prompt, [None], rows_limit)
    lengths = tf_prompt_byte_lengths(prompt)
    checks.check(
        tf.reduce_all((lengths >= low) & (lengths <= max_prompt_bytes)),
        f"every prompt must have {low} to {max_prompt_bytes} UTF-8 bytes. "
        "Received: prompts of {} bytes",
        lengths,
    )
    return prompt


@keras.saving.register_keras_serializable(package="keras_genmodels")
class PromptEmbedding(layers.Layer):
    """Token plus learned position embeddings of prompt ids, and their mask.

    `x_t = E_tok[id_t] + E_pos[t]`, `mask_t = 1[id_t != PAD_ID]`.

    The token embeddings start at N(0, 1) and the position embeddings at
    N(0, 0.5^2), not at Keras' uniform +-0.05: in the encoder's pre-norm
    blocks the residual stream keeps only what the embedding puts there,
    and from tiny embeddings the block outputs, which nearly average over
    the prompt, swamp each token's identity. Trained that way the encoder
    drifted to states that hardly depend on the prompt (the ten digits'
    states differed by about 1% of their norm after 8 epochs of
    `unet-mnist-text`, against 14% at initialisation).

    Args:
        max_prompt_bytes: Longest prompt; positions `0..max_prompt_bytes`.
        width: Embedding size.
        **kwargs: Passed to `keras.layers.Layer`.

    Call arguments:
        token_ids: int `[N, T]`, `T <= max_prompt_bytes + 1`.

    Returns:
        `(embeddings [N, T, width], mask float32 [N, T])`.

    Example:

    ```python
    x, mask = PromptEmbedding(32, 64)(prompt_token_ids(["seven"], 32))
    ```
    """

    def __init__(self, max_prompt_bytes, width, **kwargs):
        super().__init__(**kwargs)
        self.max_prompt_bytes = _check_max_bytes(max_prompt_bytes)
        self.width = check_positive_int(width, "width")
        self.token_embedding = layers.Embedding(
            VOCAB_SIZE,
            self.width,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0),
            name="token_embedding",
            dtype=self.dtype_policy,
        )
        self.position_embedding = layers.Embedding(
            self.max_prompt_bytes + 1,
            self.width,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.5),
            name="position_embedding",
            dtype=self.dtype_policy,
        )

    def build(self, input_shape=None):
        self.token_embedding.build((None, None))
        self.position_embedding.build((None,))
        self.built = True

    def call(self, token_ids):
        positions = tf.range(tf.shape(token_ids)[1])
        x = self.token_embedding(token_ids) + self.position_embedding(positions)[None]
        mask = tf.cast(tf.not_equal(token_ids, PAD_ID), "float32")
        return x, mask

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.width), tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"max_prompt_bytes": self.max_prompt_bytes, "width": self.width})
        return config


def text_encoder(
    max_prompt_bytes=DEFAULT_MAX_PROMPT_BYTES,
    width=64,
    num_layers=2,
    num_heads=2,
    mlp_ratio=4,
    dropout=0.0,
    layer_norm_epsilon=1e-5,
    name="text_encoder",
):
    """A bidirectional byte-level transformer encoder of prompts.

    `states = LN(Block_L(...Block_1(E_tok[ids] + E_pos))) * mask`, where each
    pre-norm block (the autoregressive family's `TransformerBlock`, with
    `causal=False`) attends over the real tokens only (`mask_t = 1[id_t !=
    PAD_ID]`), so the states of a prompt's tokens do not depend on how much
    padding follows, and padded states are zero.

    Args:
        max_prompt_bytes: Longest prompt, in UTF-8 bytes; inputs have at
            most `L = max_prompt_bytes + 1` ids.
        width: Width of the token states.
        num_layers: Transformer blocks.
        num_heads: Attention heads; must divide `width`.
        mlp_ratio: MLP hidden width as a multiple of `width`.
        dropout: Dropout rate of the blocks.
        layer_norm_epsilon: Epsilon of the layer normalisations.
        name: Model name.

    Returns:
        A functional `keras.Model` `token_ids int32 [N, T] -> [states float
        [N, T, width], mask float32 [N, T]]` (`T <= L`; give it
        `prompt_token_ids(...)`, `T = L`). `states` and `mask` are what
        `keras_genmodels.diffusion.layers.CrossAttention` takes as `context`
        and `context_mask`. It lowers to TF Lite built-in ops with a static
        batch.

    Example:

    ```python
    encoder = text_encoder(max_prompt_bytes=32, width=64)
    states, mask = encoder(prompt_token_ids(["a handwritten 7", ""], 32))
    states.shape, mask.shape  # (2, 33, 64), (2, 33)
    ```
    """
    max_prompt_bytes = _check_max_bytes(max_prompt_bytes)
    width = check_positive_int(width, "width")
    num_layers = check_positive_int(num_layers, "num_layers")
    num_heads = check_positive_int(num_heads, "num_heads")
    if width % num_heads:
        raise ValueError(
            "`width` must be divisible by `num_heads`. Received: "
            f"width={width}, num_heads={num_heads}"
        )
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    x, mask = PromptEmbedding(max_prompt_bytes, width, name="embedding")(token_ids)
    for i in range(num_layers):
        x = TransformerBlock(
            num_heads,
            mlp_ratio=mlp_ratio,
            dropout=dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            causal=False,
            name=f"block_{i}",
        )(x, padding_mask=mask)
    x = layers.LayerNormalization(epsilon=layer_norm_epsilon, name="final_norm")(x)
    states = layers.Multiply(name="states")([x, layers.Reshape((-1, 1), name="mask_column")(mask)])
    return keras.Model(token_ids, [states, mask], name=name)

