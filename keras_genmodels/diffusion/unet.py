"""A U-Net noise predictor for images (Ho et al., 2020; Nichol and Dhariwal, 2021).

Residual blocks with GroupNorm and an added timestep embedding, self-attention
at the lowest resolutions, strided-convolution down-sampling and
nearest-neighbour up-sampling, with skip connections from every block of the
down path to the up path. Conditioning: a class label embedding added to the
time embedding, or text token states read by cross-attention (Rombach et al.,
2022) at the low resolutions.
"""

import keras
from keras import layers

from keras_genmodels.base import check_positive_int
from keras_genmodels.diffusion.layers import (
    AttentionPooling,
    CrossAttention,
    FastGroupNormalization,
    SinusoidalEmbedding,
)

#: The ways a text-conditional U-Net pools the prompt into its time embedding.
CONTEXT_POOLINGS = ("attention", "mean", None)
#: Pooled vectors of the `"attention"` pooling.
POOLING_HEADS = 4


def _residual_block(x, emb, filters, groups, dropout, name):
    """`GN -> SiLU -> Conv -> + Dense(emb) -> GN -> SiLU -> Dropout -> Conv` + skip."""
    h = FastGroupNormalization(groups, name=f"{name}_norm_1")(x)
    h = layers.Activation("silu", name=f"{name}_silu_1")(h)
    h = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv_1")(h)
    e = layers.Activation("silu", name=f"{name}_emb_silu")(emb)
    e = layers.Dense(filters, name=f"{name}_emb_dense")(e)
    e = layers.Reshape((1, 1, filters), name=f"{name}_emb_reshape")(e)
    h = layers.Add(name=f"{name}_add_emb")([h, e])
    h = FastGroupNormalization(groups, name=f"{name}_norm_2")(h)
    h = layers.Activation("silu", name=f"{name}_silu_2")(h)
    if dropout:
        h = layers.Dropout(dropout, name=f"{name}_dropout")(h)
    h = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv_2")(h)
    if x.shape[-1] != filters:
        x = layers.Conv2D(filters, 1, name=f"{name}_skip")(x)
    return layers.Add(name=f"{name}_out")([x, h])


def _attention_block(x, groups, num_heads, name):
    """Self-attention over the `H * W` positions, with a residual connection."""
    height, width, channels = x.shape[1:]
    h = FastGroupNormalization(groups, name=f"{name}_norm")(x)
    h = layers.Reshape((height * width, channels), name=f"{name}_flatten")(h)
    h = layers.MultiHeadAttention(
        num_heads, channels // num_heads, name=f"{name}_attention"
    )(h, h)
    h = layers.Reshape((height, width, channels), name=f"{name}_unflatten")(h)
    return layers.Add(name=f"{name}_out")([x, h])


def unet(
    data_shape=(28, 28, 1),
    base_filters=32,
    channel_multipliers=(1, 2, 2),
    num_res_blocks=1,
    attention_resolutions=(7,),
    num_heads=1,
    groups=8,
    dropout=0.0,
    num_classes=None,
    context_width=None,
    cross_attention_resolutions=None,
    pooled_context="attention",
):
    """A U-Net `(x_t, t[, labels | context, context_mask]) -> noise` for images.

    Level `i` of the down path has `base_filters * channel_multipliers[i]`
    filters and `num_res_blocks` residual blocks, followed by a stride-2
    convolution (except at the last level); the up path mirrors it with one
    more block per level, each taking the matching down-path activation
    through a concatenated skip. With `num_classes` the network is
    class-conditional: an embedding of the label (`num_classes + 1` entries,
    the last one "no label", the unconditional case of classifier-free
    guidance) is added to the time embedding. Self-attention follows every block whose
    feature map side is in `attention_resolutions`, and the middle has
    `block -> attention -> block`. With `context_width` the network is
    text-conditional: a `CrossAttention` from the image features to the
    token states `context` (padded tokens hidden by `context_mask`) follows
    every block (and its self-attention) whose side is in
    `cross_attention_resolutions`, and the middle's self-attention; with
    `pooled_context`, a pooling of the real tokens' states also enters the
    time embedding through a `Dense` layer (as GLIDE and Imagen add a pooled
    text embedding), a global path of the prompt into every block, like the
    class model's label embedding.

    References:
        Ronneberger, Fischer and Brox, "U-Net", MICCAI 2015.
        Ho, Jain and Abbeel, "Denoising Diffusion Probabilistic Models",
        NeurIPS 2020.
        Rombach et al., "High-Resolution Image Synthesis with Latent
        Diffusion Models", CVPR 2022 (cross-attention to text).
        Nichol et al., "GLIDE", ICML 2022; Saharia et al., "Imagen",
        NeurIPS 2022 (a pooled text embedding added to the time embedding).

    Args:
        data_shape: `(height, width, channels)`; height and width must be
            multiples of `2 ** (len(channel_multipliers) - 1)`.
        base_filters: Filters of the first level; a multiple of `groups`.
        channel_multipliers: Filter multiplier of each resolution level.
        num_res_blocks: Residual blocks per level on the down path.
        attention_resolutions: Feature-map heights at which to attend.
        num_heads: Attention heads (must divide the filters there).
        groups: GroupNorm groups.
        dropout: Dropout rate inside the residual blocks.
        num_classes: `None` (unconditional) or the number of classes of a
            class-conditional network.
        context_width: `None`, or the width of the token states of a
            text-conditional network (e.g. the text encoder's `width`).
        cross_attention_resolutions: Feature-map sides with cross-attention
            to the context (besides the middle); `None` means
            `attention_resolutions`.
        pooled_context: Text-conditional networks: how the context enters
            the time embedding: `"attention"` (`AttentionPooling`, learned
            token weights in `POOLING_HEADS` heads), `"mean"` (the masked
            mean over tokens, which dilutes the one token that tells two
            prompts apart), or `None` (cross-attention only).

    Returns:
        A functional `keras.Model` with inputs `[x_t (batch, H, W, C), t
        (batch,) int32]`, plus `labels (batch,) int32` in `[0, num_classes]`
        when class-conditional, or `context (batch, L, context_width)` and
        `context_mask (batch, L)` (1 at real tokens) when text-conditional;
        output `(batch, H, W, C)`.

    Example:

    ```python
    network = unet((28, 28, 1), base_filters=32)
    text_network = unet((28, 28, 1), context_width=64)
    ```
    """
    data_shape = tuple(data_shape)
    if len(data_shape) != 3 or any(
        not isinstance(d, int) or isinstance(d, bool) or d < 1 for d in data_shape
    ):
        raise ValueError(
            "`data_shape` must be (height, width, channels) of positive ints. "
            f"Received: data_shape={data_shape}"
        )
    base_filters = check_positive_int(base_filters, "base_filters")
    num_res_blocks = check_positive_int(num_res_blocks, "num_res_blocks")
    channel_multipliers = tuple(channel_multipliers)
    if not channel_multipliers:
        raise ValueError("`channel_multipliers` must not be empty. Received: ()")
    factor = 2 ** (len(channel_multipliers) - 1)
    if data_shape[0] % factor or data_shape[1] % factor:
        raise ValueError(
            f"Height and width must be multiples of {factor} for "
            f"{len(channel_multipliers)} levels. Received: data_shape={data_shape}"
        )
    for m in channel_multipliers:
        if (base_filters * m) % groups:
            raise ValueError(
                "Every level's filters must be a multiple of `groups`. Received: "
                f"base_filters={base_filters}, channel_multipliers="
                f"{channel_multipliers}, groups={groups}"
            )
    if not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
    if num_classes is not None:
        num_classes = check_positive_int(num_classes, "num_classes")
    if context_width is not None:
        context_width = check_positive_int(context_width, "context_width")
        if num_classes is not None:
            raise ValueError(
                "A U-Net is conditioned on labels or on a text context, not both. "
                f"Received: num_classes={num_classes}, context_width={context_width}"
            )
        if pooled_context not in CONTEXT_POOLINGS:
            raise ValueError(
                f"`pooled_context` must be one of {CONTEXT_POOLINGS}. "
                f"Received: pooled_context={pooled_context!r}"
            )
    if cross_attention_resolutions is None:
        cross_attention_resolutions = attention_resolutions
    cross_attention_resolutions = tuple(cross_attention_resolutions)

    x_t = keras.Input(data_shape, name="x_t")
    t = keras.Input((), dtype="int32", name="t")
    emb_dim = 4 * base_filters
    emb = SinusoidalEmbedding(base_filters, name="time_embedding")(t)
    emb = layers.Dense(emb_dim, activation="silu", name="time_dense_1")(emb)
    emb = layers.Dense(emb_dim, name="time_dense_2")(emb)
    inputs = [x_t, t]
    if num_classes is not None:
        labels = keras.Input((), dtype="int32", name="labels")
        # N(0, 1) rows, on the scale of the time embedding they are added to:
        # Keras' default (uniform in +-0.05) left the labels too faint to
        # steer early training (65% conditional accuracy at w = 2 after the
        # preset's 5,000 steps).
        label_emb = layers.Embedding(
            num_classes + 1,
            emb_dim,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0),
            name="label_embedding",
        )(labels)
        emb = layers.Add(name="time_label_embedding")([emb, label_emb])
        inputs.append(labels)
    context = None
    if context_width is not None:
        context = keras.Input((None, context_width), name="context")
        context_mask = keras.Input((None,), name="context_mask")
        inputs += [context, context_mask]
        if pooled_context == "attention":
            pooled = AttentionPooling(POOLING_HEADS, name="context_pool")(context, context_mask)
        elif pooled_context == "mean":
            pooled = layers.GlobalAveragePooling1D(name="context_pool")(context, mask=context_mask)
        if pooled_context is not None:
            text_emb = layers.Dense(emb_dim, name="context_embedding")(pooled)
            emb = layers.Add(name="time_context_embedding")([emb, text_emb])

    def attend(h, name, middle=False):
        """Self-attention and cross-attention after a block, where they go."""
        if middle or h.shape[1] in attention_resolutions:
            h = _attention_block(h, groups, num_heads, f"{name}_attn")
        if context is not None and (middle or h.shape[1] in cross_attention_resolutions):
            h = CrossAttention(num_heads, groups, name=f"{name}_cross_attn")(
                h, context, context_mask
            )
        return h

    h = layers.Conv2D(base_filters, 3, padding="same", name="input_conv")(x_t)
    skips = [h]
    for level, mult in enumerate(channel_multipliers):
        for block in range(num_res_blocks):
            name = f"down_{level}_{block}"
            h = _residual_block(h, emb, base_filters * mult, groups, dropout, name)
            h = attend(h, name)
            skips.append(h)
        if level != len(channel_multipliers) - 1:
            h = layers.Conv2D(
                h.shape[-1], 3, strides=2, padding="same", name=f"down_{level}_sample"
            )(h)
            skips.append(h)

    filters = h.shape[-1]
    h = _residual_block(h, emb, filters, groups, dropout, "middle_1")
    h = attend(h, "middle", middle=True)
    h = _residual_block(h, emb, filters, groups, dropout, "middle_2")

    for level in reversed(range(len(channel_multipliers))):
        mult = channel_multipliers[level]
        for block in range(num_res_blocks + 1):
            name = f"up_{level}_{block}"
            h = layers.Concatenate(name=f"{name}_skip_concat")([h, skips.pop()])
            h = _residual_block(h, emb, base_filters * mult, groups, dropout, name)
            h = attend(h, name)
        if level != 0:
            h = layers.UpSampling2D(2, interpolation="nearest", name=f"up_{level}_resize")(h)
            h = layers.Conv2D(h.shape[-1], 3, padding="same", name=f"up_{level}_conv")(h)

    h = FastGroupNormalization(groups, name="output_norm")(h)
    h = layers.Activation("silu", name="output_silu")(h)
    outputs = layers.Conv2D(
        data_shape[-1], 3, padding="same", name="noise", dtype="float32"
    )(h)
    return keras.Model(inputs, outputs, name="unet")
