"""Diffusion presets: `mlp2d`, `unet-mnist` (the default), `unet-mnist-cond`,
`unet-mnist-text` and `unet-32`."""

import keras

from keras_genmodels.conditioning.text import text_encoder as build_text_encoder
from keras_genmodels.diffusion.ddpm import DDPM
from keras_genmodels.diffusion.mlp import mlp_denoiser
from keras_genmodels.diffusion.unet import unet
from keras_genmodels.presets import Preset


def _shape(data_shape):
    """A data shape (tuple, list or `tf.TensorShape`) as a tuple of ints."""
    return tuple(int(d) for d in data_shape)


def _compiled(model, learning_rate):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model


def build_mlp2d(
    data_shape=(2,),
    hidden_units=256,
    num_layers=3,
    timesteps=1000,
    schedule="linear",
    ema_decay=0.999,
    learning_rate=1e-3,
    **kwargs,
):
    """An MLP DDPM for 2-D points (281,090 trained parameters).

    Args:
        data_shape: `(d,)`, the shape of one point.
        hidden_units: Width of the MLP.
        num_layers: Hidden layers.
        timesteps: T.
        schedule: `"linear"` or `"cosine"`.
        ema_decay: EMA decay.
        learning_rate: Adam learning rate.
        **kwargs: Passed to `DDPM` (`sampling_steps`, `sampling_method`, `seed`).

    Returns:
        A compiled `DDPM`.
    """
    network = mlp_denoiser(_shape(data_shape), hidden_units, num_layers)
    model = DDPM(network, timesteps=timesteps, schedule=schedule, ema_decay=ema_decay, **kwargs)
    return _compiled(model, learning_rate)


def build_unet_mnist(
    data_shape=(28, 28, 1),
    base_filters=16,
    channel_multipliers=(1, 2, 4),
    attention_resolutions=(7,),
    timesteps=1000,
    schedule="linear",
    ema_decay=0.998,
    sampling_steps=50,
    sampling_method="ddpm",
    learning_rate=1e-3,
    num_classes=None,
    text_encoder=None,
    cross_attention_resolutions=None,
    pooled_context="attention",
    **kwargs,
):
    """A small U-Net DDPM for 28x28 digits, sampled in 50 steps with DDIM eta=1.

    `sampling_method="ddpm"` with 50 steps is the respaced ancestral sampler,
    i.e. DDIM with `eta=1` on 50 evenly spaced timesteps. After 5,000 steps
    of 32 on `mnist-5k` it gave mostly recognisable digits, while DDIM with
    `eta=0` (deterministic) from the same model gave strokes and squiggles,
    at 50 and at 250 steps alike (`eta=0.5` was in between): the
    deterministic sampler cannot correct the errors of a briefly trained
    noise predictor, the stochastic one can.

    Args:
        data_shape: `(H, W, C)` of the images (multiples of 4).
        base_filters: Filters of the first U-Net level.
        channel_multipliers: Filter multipliers per level.
        attention_resolutions: Feature-map sides with self-attention.
        timesteps: T.
        schedule: `"linear"` or `"cosine"`.
        ema_decay: EMA decay. 0.998 (an average over about 500 steps, a
            tenth of the preset's 5,000 steps of 32) suits the few thousand
            steps a CPU run affords: with 0.999 the average still held
            visibly worse early weights after 1,500 steps.
        sampling_steps: Default steps of `sample`.
        sampling_method: Default sampler of `sample` (see above).
        learning_rate: Adam learning rate (1e-3 reached the loss of 3,000
            steps at 2e-4, 0.036, in about 1,500 steps).
        num_classes: `None`, or the number of classes of a class-conditional
            model with classifier-free guidance (`unet-mnist-cond`).
        text_encoder: `None`, or the text encoder of a text-conditional
            model (`unet-mnist-text`); the U-Net then cross-attends to its
            token states.
        cross_attention_resolutions: Text models: feature-map sides with
            cross-attention besides the middle (`None`: the attention
            resolutions).
        pooled_context: Text models: how the prompt's token states also
            enter the time embedding (`"attention"`, `"mean"` or `None`;
            see `unet`).
        **kwargs: Passed to `DDPM` (`seed`, `clip_denoised`, and for a
            conditional model `p_uncond` and `guidance_scale`).

    Returns:
        A compiled `DDPM`.
    """
    network = unet(
        _shape(data_shape),
        base_filters=base_filters,
        channel_multipliers=channel_multipliers,
        attention_resolutions=attention_resolutions,
        num_classes=num_classes,
        context_width=None if text_encoder is None else text_encoder.outputs[0].shape[-1],
        cross_attention_resolutions=cross_attention_resolutions,
        pooled_context=pooled_context,
    )
    if text_encoder is not None:
        kwargs["text_encoder"] = text_encoder
    model = DDPM(
        network,
        timesteps=timesteps,
        schedule=schedule,
        ema_decay=ema_decay,
        sampling_steps=sampling_steps,
        sampling_method=sampling_method,
        num_classes=num_classes,
        **kwargs,
    )
    return _compiled(model, learning_rate)


def build_unet_mnist_cond(num_classes=10, p_uncond=0.1, guidance_scale=2.0, **kwargs):
    """`unet-mnist` conditioned on the digit's class, with classifier-free guidance.

    A label embedding (10 classes plus "no label") is added to the U-Net's
    time embedding; training drops the label with probability `p_uncond`
    and sampling mixes the two predictions with `guidance_scale`
    (`keras_genmodels.diffusion.guidance`).

    Args:
        num_classes: Number of classes.
        p_uncond: Probability of training without the label.
        guidance_scale: Default guidance weight `w` of `sample` and the
            exports (0: unconditional, 1: conditional, above 1: guided).
        **kwargs: Passed to `build_unet_mnist`.

    Returns:
        A compiled class-conditional `DDPM`.
    """
    return build_unet_mnist(
        num_classes=num_classes, p_uncond=p_uncond, guidance_scale=guidance_scale, **kwargs
    )


def build_unet_mnist_text(
    max_prompt_bytes=32,
    text_width=64,
    text_layers=2,
    text_heads=2,
    cross_attention_resolutions=None,
    p_uncond=0.1,
    guidance_scale=2.0,
    **kwargs,
):
    """`unet-mnist` conditioned on a text prompt, with classifier-free guidance.

    A byte-level transformer encoder (`conditioning.text.text_encoder`)
    turns the prompt into token states that the U-Net reads by
    cross-attention at 7x7 (the down, middle and two up blocks there) and,
    attention-pooled over the prompt's tokens, through its time embedding
    (the mean over tokens left the classes too faint: 22% accuracy on the
    training captions after 28 epochs); the empty
    prompt is the unconditional case. On `mnist`/`mnist-5k` the labels are
    captioned by `data.captions.DIGITS` (training templates while training,
    held-out ones for the test loss).

    Args:
        max_prompt_bytes: Longest prompt, in UTF-8 bytes.
        text_width: Width of the encoder's token states.
        text_layers: Transformer blocks of the encoder.
        text_heads: Attention heads of the encoder.
        cross_attention_resolutions: Feature-map sides with cross-attention
            besides the middle (`None`: the self-attention resolutions,
            7). Cross-attention at 14x14 too cost a further 9% of CPU time
            per training step.
        p_uncond: Probability of training with the empty prompt.
        guidance_scale: Default guidance weight `w` of `sample` and the
            exports.
        **kwargs: Passed to `build_unet_mnist` (and `DDPM`:
            `default_prompts`, `seed`).

    Returns:
        A compiled text-conditional `DDPM`.
    """
    encoder = build_text_encoder(
        max_prompt_bytes=max_prompt_bytes, width=text_width, num_layers=text_layers,
        num_heads=text_heads,
    )
    return build_unet_mnist(
        text_encoder=encoder, cross_attention_resolutions=cross_attention_resolutions,
        p_uncond=p_uncond, guidance_scale=guidance_scale, **kwargs,
    )


def build_unet_32(
    data_shape=(32, 32, 3),
    base_filters=64,
    channel_multipliers=(1, 2, 2, 2),
    attention_resolutions=(8, 4),
    num_res_blocks=2,
    timesteps=1000,
    schedule="cosine",
    ema_decay=0.9995,
    sampling_steps=100,
    sampling_method="ddim",
    learning_rate=2e-4,
    dropout=0.1,
    **kwargs,
):
    """A U-Net DDPM for 32x32 colour images (CIFAR-10 sized), for a GPU.

    Args:
        data_shape: `(H, W, C)` of the images (multiples of 8).
        base_filters: Filters of the first U-Net level.
        channel_multipliers: Filter multipliers per level.
        attention_resolutions: Feature-map sides with self-attention.
        num_res_blocks: Residual blocks per level.
        timesteps: T.
        schedule: `"linear"` or `"cosine"`.
        ema_decay: EMA decay.
        sampling_steps: Default steps of `sample`.
        sampling_method: Default sampler of `sample`.
        learning_rate: Adam learning rate.
        dropout: Dropout in the residual blocks.
        **kwargs: Passed to `DDPM` (`seed`, `clip_denoised`).

    Returns:
        A compiled `DDPM`.
    """
    network = unet(
        _shape(data_shape),
        base_filters=base_filters,
        channel_multipliers=channel_multipliers,
        num_res_blocks=num_res_blocks,
        attention_resolutions=attention_resolutions,
        dropout=dropout,
    )
    model = DDPM(
        network,
        timesteps=timesteps,
        schedule=schedule,
        ema_decay=ema_decay,
        sampling_steps=sampling_steps,
        sampling_method=sampling_method,
        **kwargs,
    )
    return _compiled(model, learning_rate)


PRESETS = {
    "mlp2d": Preset(
        description="MLP DDPM (3x256, T=1000) for 2-D sets such as moons and ring8.",
        builder=build_mlp2d,
        dataset="moons",
        train_steps=8_000,
        batch_size=256,
        adapts_to_data_shape=True,
    ),
    "unet-mnist": Preset(
        description="Small U-Net DDPM (686,769 params), 28x28 digits; 50-step DDIM eta=1 samples.",
        builder=build_unet_mnist,
        dataset="mnist",
        # Batch 32: on the 2-core CPU, compute per example is fixed, and 3,000
        # steps of 32 gave a better grid than 1,512 steps of 64 (the same
        # examples); 5,000 steps took 1,300-1,400 s there.
        train_steps=5_000,
        batch_size=32,
        adapts_to_data_shape=True,
    ),
    "unet-mnist-cond": Preset(
        description="unet-mnist conditioned on the class, classifier-free guidance (w=2).",
        builder=build_unet_mnist_cond,
        dataset="mnist",
        train_steps=5_000,
        batch_size=32,
        adapts_to_data_shape=True,
    ),
    "unet-mnist-text": Preset(
        description=(
            "unet-mnist conditioned on a prompt: byte transformer (118,720 params) + "
            "U-Net with cross-attention (758,001), classifier-free guidance (w=2)."
        ),
        builder=build_unet_mnist_text,
        dataset="mnist",
        train_steps=5_000,
        batch_size=32,
        adapts_to_data_shape=True,
    ),
    "unet-32": Preset(
        description="U-Net DDPM for 32x32x3 images (CIFAR-10 sized); needs a GPU.",
        builder=build_unet_32,
        dataset="tfds:cifar10",
        train_steps=200_000,
        batch_size=128,
        adapts_to_data_shape=True,
    ),
}
DEFAULT_PRESET = "unet-mnist"
