"""Flow presets: RealNVP `reference`, `mlp2d`, `mnist` (the default) and the
autoregressive `maf2d`, `iaf2d`, `maf-tabular`, `iaf-tabular`, and the
multi-scale convolutional image flows `realnvp-mnist` and `glow-mnist`.

Every builder takes the data's element shape as `data_shape`; image shapes
(rank 3) turn on dequantisation and the logit transform (`alpha = 0.05`,
256 levels), vectors are modelled as they are.
"""

import keras

from keras_genmodels.flow.autoregressive import AutoregressiveFlow
from keras_genmodels.flow.multiscale import MultiScaleFlow
from keras_genmodels.flow.realnvp import RealNVP
from keras_genmodels.presets import Preset

LOGIT_ALPHA = 0.05
NUM_LEVELS = 256
REFERENCE_STEPS = 3_000
MLP2D_STEPS = 8_000
MNIST_STEPS = 3_000
AUTOREGRESSIVE_2D_STEPS = 8_000
TABULAR_STEPS = 5_000
IMAGE_FLOW_STEPS = 2_000


def _build(data_shape, learning_rate, clipnorm, decay_steps, jit_compile="auto",
           model_class=RealNVP, weight_decay=None, **kwargs):
    data_shape = tuple(data_shape)
    if decay_steps:
        # Cosine decay to 2% of the rate over the preset's default length:
        # the likelihood keeps improving at the end instead of jittering.
        learning_rate = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps, alpha=0.02
        )
    if len(data_shape) == 3:
        kwargs.setdefault("logit_alpha", LOGIT_ALPHA)
        kwargs.setdefault("num_levels", NUM_LEVELS)
    model = model_class(data_shape, **kwargs)
    # Keras' "auto" (XLA with a GPU, not on a CPU nor under a strategy). On
    # the quiet 2-core CPU `benchmarks.jit_compile` measured XLA at 1.27x and
    # 2.04x for `mnist` but 0.85x for `mlp2d` (0.53x and 0.95x for `mnist`
    # beside other jobs): docs/flow.md recommends `--jit-compile on` there.
    if weight_decay:
        optimizer = keras.optimizers.AdamW(
            learning_rate, weight_decay=weight_decay, global_clipnorm=clipnorm
        )
    else:
        optimizer = keras.optimizers.Adam(learning_rate, global_clipnorm=clipnorm)
    model.compile(optimizer=optimizer, jit_compile=jit_compile)
    return model


def build_reference(data_shape=(2,), num_coupling_layers=4, hidden_units=(16, 16),
                    num_masked=1, learning_rate=1e-2, clipnorm=10.0,
                    decay_steps=REFERENCE_STEPS, **kwargs):
    """The seed flow made to work: 2-D, `num_masked=1`, tiny couplings.

    Four `RealNVP(num_masked=1)` couplings with 16-16 coupling networks over
    `MultivariateNormalDiag(loc=[0, 0])`: 1,356 parameters in 2-D.

    Args:
        data_shape: Shape of one example.
        num_coupling_layers: Number of couplings.
        hidden_units: Hidden widths of each coupling network.
        num_masked: Units each coupling leaves unchanged.
        learning_rate: Adam learning rate.
        clipnorm: Global gradient-norm clip.
        decay_steps: Steps of the cosine learning-rate decay (the preset's
            default length); `None` keeps the rate constant.
        **kwargs: Passed to `RealNVP`.

    Returns:
        A compiled `RealNVP`.
    """
    return _build(data_shape, learning_rate, clipnorm, decay_steps,
                  num_coupling_layers=num_coupling_layers,
                  hidden_units=hidden_units, num_masked=num_masked, **kwargs)


def build_mlp2d(data_shape=(2,), num_coupling_layers=16, hidden_units=(64, 64),
                learning_rate=2e-3, clipnorm=10.0, decay_steps=MLP2D_STEPS, **kwargs):
    """Sixteen couplings with 64-64 networks for the 2-D toy sets.

    Args:
        data_shape: Shape of one example.
        num_coupling_layers: Number of couplings (8 or more).
        hidden_units: Hidden widths of each coupling network.
        learning_rate: Adam learning rate.
        clipnorm: Global gradient-norm clip.
        decay_steps: Steps of the cosine learning-rate decay (the preset's
            default length); `None` keeps the rate constant.
        **kwargs: Passed to `RealNVP`.

    Returns:
        A compiled `RealNVP`.
    """
    return _build(data_shape, learning_rate, clipnorm, decay_steps,
                  num_coupling_layers=num_coupling_layers,
                  hidden_units=hidden_units, **kwargs)


def build_mnist(data_shape=(28, 28, 1), num_coupling_layers=8, hidden_units=(256, 256),
                permutation="random", learning_rate=1e-3, clipnorm=100.0,
                decay_steps=MNIST_STEPS, **kwargs):
    """Flattened 28x28 images: 8 couplings of 256-256 networks.

    Args:
        data_shape: Image shape `(H, W, C)`.
        num_coupling_layers: Number of couplings.
        hidden_units: Hidden widths of each coupling network.
        permutation: `"random"` (fixed) permutations between couplings.
        learning_rate: Adam learning rate.
        clipnorm: Global gradient-norm clip.
        decay_steps: Steps of the cosine learning-rate decay (the preset's
            default length); `None` keeps the rate constant.
        **kwargs: Passed to `RealNVP`.

    Returns:
        A compiled `RealNVP`.
    """
    return _build(data_shape, learning_rate, clipnorm, decay_steps,
                  num_coupling_layers=num_coupling_layers,
                  hidden_units=hidden_units, permutation=permutation, **kwargs)


def build_autoregressive(data_shape=(2,), inverse=False, num_flows=16,
                         hidden_units=(64, 64), learning_rate=2e-3, clipnorm=10.0,
                         decay_steps=AUTOREGRESSIVE_2D_STEPS, **kwargs):
    """MAF (`inverse=False`) or IAF (`inverse=True`) with MADE networks.

    The `maf2d`/`iaf2d` presets (sixteen layers of 64-64 MADEs) and, with
    `decay_steps=TABULAR_STEPS`, `maf-tabular`/`iaf-tabular` for vectors
    `(D,)` such as a `PATH.npy` of shape `(N, D)`.

    Args:
        data_shape: Shape of one example.
        inverse: `False` for a MAF (one-pass density, `D`-pass sampling),
            `True` for an IAF (one-pass sampling, `D`-pass density).
        num_flows: Number of autoregressive layers.
        hidden_units: Hidden widths of each MADE.
        learning_rate: Adam learning rate.
        clipnorm: Global gradient-norm clip.
        decay_steps: Steps of the cosine learning-rate decay; `None` keeps
            the rate constant.
        **kwargs: Passed to `AutoregressiveFlow`.

    Returns:
        A compiled `AutoregressiveFlow`.
    """
    return _build(data_shape, learning_rate, clipnorm, decay_steps,
                  model_class=AutoregressiveFlow, inverse=inverse, num_flows=num_flows,
                  hidden_units=hidden_units, **kwargs)


def build_maf2d(**kwargs):
    """`build_autoregressive` as a MAF for the 2-D sets."""
    return build_autoregressive(**{"inverse": False, **kwargs})


def build_iaf2d(**kwargs):
    """`build_autoregressive` as an IAF for the 2-D sets."""
    return build_autoregressive(**{"inverse": True, **kwargs})


def build_maf_tabular(data_shape=(8,), num_flows=5, hidden_units=(128, 128),
                      learning_rate=1e-3, decay_steps=TABULAR_STEPS, **kwargs):
    """A MAF for tabular vectors `(D,)` (5 layers of 128-128 MADEs)."""
    return build_autoregressive(
        data_shape=data_shape, inverse=kwargs.pop("inverse", False), num_flows=num_flows,
        hidden_units=hidden_units, learning_rate=learning_rate,
        decay_steps=decay_steps, **kwargs,
    )


def build_iaf_tabular(**kwargs):
    """`build_maf_tabular` as an IAF."""
    return build_maf_tabular(**{"inverse": True, **kwargs})


def build_multiscale(data_shape=(28, 28, 1), architecture="glow", num_scales=2,
                     steps_per_scale=8, filters=48, num_blocks=1, learning_rate=1e-3,
                     clipnorm=50.0, decay_steps=IMAGE_FLOW_STEPS, weight_decay=5e-5,
                     **kwargs):
    """A multi-scale convolutional image flow (`MultiScaleFlow`).

    Trained with AdamW (decoupled weight decay, against overfitting a
    4,000-image set) and a cosine decay; image shapes `(H, W, C)` with `H`
    and `W` divisible by 4 (28x28 and 32x32 both work).

    Args:
        data_shape: Image shape `(H, W, C)`.
        architecture: `"glow"` or `"realnvp"`.
        num_scales: Number of scales.
        steps_per_scale: Steps (Glow) or couplings per stage (RealNVP).
        filters: Hidden channels of each coupling network.
        num_blocks: Residual blocks of each coupling network.
        learning_rate: Peak learning rate.
        clipnorm: Global gradient-norm clip.
        decay_steps: Steps of the cosine decay; `None` keeps the rate.
        weight_decay: AdamW's decoupled weight decay; `0` or `None` for Adam.
        **kwargs: Passed to `MultiScaleFlow`.

    Returns:
        A compiled `MultiScaleFlow`.
    """
    return _build(data_shape, learning_rate, clipnorm, decay_steps,
                  model_class=MultiScaleFlow, weight_decay=weight_decay,
                  architecture=architecture, num_scales=num_scales,
                  steps_per_scale=steps_per_scale, filters=filters,
                  num_blocks=num_blocks, **kwargs)


def build_realnvp_mnist(**kwargs):
    """Multi-scale RealNVP: 3 scales of 3 checkerboard + 3 channel-wise
    couplings (4 checkerboard at the last), 32-filter residual networks."""
    return build_multiscale(**{"architecture": "realnvp", "num_scales": 3,
                               "steps_per_scale": 3, "filters": 32, **kwargs})


def build_glow_mnist(**kwargs):
    """Glow: 2 scales of 8 steps (actnorm, LU 1x1 convolution, channel-wise
    coupling), 48-filter residual networks."""
    return build_multiscale(**{"architecture": "glow", "num_scales": 2,
                               "steps_per_scale": 8, "filters": 48, **kwargs})


PRESETS = {
    "reference": Preset(
        description="The seed 2-D RealNVP(num_masked=1): 4 couplings of 16-16 MLPs.",
        builder=build_reference,
        dataset="moons",
        train_steps=REFERENCE_STEPS,
        batch_size=256,
        adapts_to_data_shape=True,
    ),
    "mlp2d": Preset(
        description="16 couplings of 64-64 MLPs for the 2-D toy sets (70,704 params).",
        builder=build_mlp2d,
        dataset="ring8:sigma=0.1",
        train_steps=MLP2D_STEPS,
        batch_size=256,
        adapts_to_data_shape=True,
    ),
    "mnist": Preset(
        description="Flattened 28x28 images, logit transform, 8 couplings of 256-256 MLPs.",
        builder=build_mnist,
        dataset="mnist",
        train_steps=MNIST_STEPS,
        batch_size=128,
        adapts_to_data_shape=True,
    ),
    "maf2d": Preset(
        description="MAF, 16 layers of 64-64 MADEs, 2-D sets: one-pass density, "
        "D-pass sampling.",
        builder=build_maf2d,
        dataset="ring8:sigma=0.1",
        train_steps=AUTOREGRESSIVE_2D_STEPS,
        batch_size=256,
        adapts_to_data_shape=True,
    ),
    "iaf2d": Preset(
        description="IAF, 16 layers of 64-64 MADEs, 2-D sets: one-pass sampling, "
        "D-pass density.",
        builder=build_iaf2d,
        dataset="ring8:sigma=0.1",
        train_steps=AUTOREGRESSIVE_2D_STEPS,
        batch_size=256,
        adapts_to_data_shape=True,
    ),
    "maf-tabular": Preset(
        description="MAF, 5 layers of 128-128 MADEs, for vectors (D,), e.g. PATH.npy "
        "of shape (N, D).",
        builder=build_maf_tabular,
        dataset="moons",
        train_steps=TABULAR_STEPS,
        batch_size=256,
        adapts_to_data_shape=True,
    ),
    "iaf-tabular": Preset(
        description="IAF, 5 layers of 128-128 MADEs, for vectors (D,), e.g. PATH.npy "
        "of shape (N, D).",
        builder=build_iaf_tabular,
        dataset="moons",
        train_steps=TABULAR_STEPS,
        batch_size=256,
        adapts_to_data_shape=True,
    ),
    "realnvp-mnist": Preset(
        description="Multi-scale convolutional RealNVP for 28x28/32x32 images "
        "(checkerboard + channel couplings, factor-out).",
        builder=build_realnvp_mnist,
        dataset="mnist",
        train_steps=IMAGE_FLOW_STEPS,
        batch_size=64,
        adapts_to_data_shape=True,
    ),
    "glow-mnist": Preset(
        description="Glow for 28x28/32x32 images: actnorm, LU 1x1 convolutions, "
        "affine couplings, 2 scales.",
        builder=build_glow_mnist,
        dataset="mnist",
        train_steps=IMAGE_FLOW_STEPS,
        batch_size=64,
        adapts_to_data_shape=True,
    ),
}
DEFAULT_PRESET = "mnist"
