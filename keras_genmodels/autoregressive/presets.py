"""Autoregressive presets: `reference` (the seed SimpleRNN), `transformer-small`
(the default, a 2-core CPU model) and `transformer-base` (for a GPU)."""

import keras

from keras_genmodels.autoregressive.rnn import RNNAutoregressive
from keras_genmodels.autoregressive.transformer import TransformerLM
from keras_genmodels.presets import Preset

SMALL_TRAIN_STEPS = 6_680
BASE_TRAIN_STEPS = 20_000


def _schedule(learning_rate, warmup_steps, decay_steps, alpha=0.1):
    """Linear warm-up to `learning_rate`, then cosine decay to `alpha` of it."""
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=max(decay_steps - warmup_steps, 1),
        alpha=alpha,
        warmup_target=learning_rate,
        warmup_steps=warmup_steps,
    )


def build_reference(learning_rate=1e-3, **kwargs):
    """The seed: `Input (10, 1) -> SimpleRNN(50) -> Dense(1)`, 2,651 parameters.

    Trains on windows of a real-valued sequence (`sine` by default) to
    predict the next value at every step, with the mean squared error.

    Args:
        learning_rate: Adam learning rate.
        **kwargs: Passed to `RNNAutoregressive` (e.g. `units`, `cell`,
            `sequence_length`, `seed`).

    Returns:
        A compiled `RNNAutoregressive`.
    """
    config = {"cell": "simple_rnn", "units": 50, "sequence_length": 10, **kwargs}
    model = RNNAutoregressive(**config)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model


def _build_transformer(defaults, overrides, train_steps):
    overrides = dict(overrides)
    learning_rate = overrides.pop("learning_rate", defaults.pop("learning_rate"))
    warmup_steps = overrides.pop("warmup_steps", defaults.pop("warmup_steps"))
    decay_steps = overrides.pop("decay_steps", train_steps)
    weight_decay = overrides.pop("weight_decay", defaults.pop("weight_decay"))
    final_fraction = overrides.pop("final_fraction", defaults.pop("final_fraction"))
    model = TransformerLM(**{**defaults, **overrides})
    model.compile(
        optimizer=keras.optimizers.AdamW(
            _schedule(learning_rate, warmup_steps, decay_steps, final_fraction),
            weight_decay=weight_decay,
            global_clipnorm=1.0,
        )
    )
    return model


def build_transformer_small(**overrides):
    """A 4-layer, 128-wide byte transformer with a 128-byte context (875,520
    parameters), sized to train on `pydoc` in about 15 minutes on 2 CPU cores
    (6,680 steps of 16 windows under `mixed_bfloat16` on a CPU with
    AVX512_BF16; about twice as long in float32).

    Args:
        **overrides: `TransformerLM` arguments (dropout 0.1 here), and
            `learning_rate` (peak, 2e-3), `warmup_steps` (200),
            `decay_steps` (the preset's `train_steps`), `final_fraction`
            (the learning rate at the end of the cosine, as a fraction of
            the peak: 0.02) and `weight_decay` (0.1) of the AdamW schedule.

    Returns:
        A compiled `TransformerLM`.
    """
    defaults = {
        "context_length": 128,
        "d_model": 128,
        "num_heads": 4,
        "num_layers": 4,
        "dropout": 0.1,
        "learning_rate": 2e-3,
        "warmup_steps": 200,
        "weight_decay": 0.1,
        "final_fraction": 0.02,
    }
    return _build_transformer(defaults, overrides, SMALL_TRAIN_STEPS)


def build_transformer_base(**overrides):
    """An 8-layer, 512-wide byte transformer with a 512-byte context (25,744,640
    parameters), for a GPU.

    Args:
        **overrides: As for `build_transformer_small` (peak learning rate
            6e-4, 1,000 warm-up steps).

    Returns:
        A compiled `TransformerLM`.
    """
    defaults = {
        "context_length": 512,
        "d_model": 512,
        "num_heads": 8,
        "num_layers": 8,
        "dropout": 0.1,
        "learning_rate": 6e-4,
        "warmup_steps": 1_000,
        "weight_decay": 0.1,
        "final_fraction": 0.1,
    }
    return _build_transformer(defaults, overrides, BASE_TRAIN_STEPS)


PRESETS = {
    "reference": Preset(
        description="The seed SimpleRNN(50) next-value model on windows of 10 (2,651 params).",
        builder=build_reference,
        dataset="sine",
        train_steps=3_000,
        batch_size=32,
    ),
    "transformer-small": Preset(
        description=(
            "Byte transformer, 4x128, context 128 (875,520 params); "
            "~15 min on 2 CPUs in mixed_bfloat16."
        ),
        builder=build_transformer_small,
        dataset="pydoc",
        train_steps=SMALL_TRAIN_STEPS,
        batch_size=16,
    ),
    "transformer-base": Preset(
        description="Byte transformer, 8x512, context 512 (25,744,640 params); for a GPU.",
        builder=build_transformer_base,
        dataset="pydoc",
        train_steps=BASE_TRAIN_STEPS,
        batch_size=64,
    ),
}
DEFAULT_PRESET = "transformer-small"
