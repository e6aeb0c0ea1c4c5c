"""RealNVP presets: `reference`, `mlp2d` and `mnist` (the default).

Every builder takes the data's element shape as `data_shape`; image shapes
(rank 3) turn on dequantisation and the logit transform (`alpha = 0.05`,
256 levels), vectors are modelled as they are.
"""

import keras

from keras_genmodels.flow.realnvp import RealNVP
from keras_genmodels.presets import Preset

LOGIT_ALPHA = 0.05
NUM_LEVELS = 256
REFERENCE_STEPS = 3_000
MLP2D_STEPS = 8_000
MNIST_STEPS = 3_000


def _build(data_shape, learning_rate, clipnorm, decay_steps, jit_compile="auto", **kwargs):
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
    model = RealNVP(data_shape, **kwargs)
    # Keras' "auto" (XLA with a GPU, not on a CPU nor under a strategy). On
    # the quiet 2-core CPU `benchmarks.jit_compile` measured XLA at 1.27x and
    # 2.04x for `mnist` but 0.85x for `mlp2d` (0.53x and 0.95x for `mnist`
    # beside other jobs): docs/flow.md recommends `--jit-compile on` there.
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, global_clipnorm=clipnorm),
        jit_compile=jit_compile,
    )
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
}
DEFAULT_PRESET = "mnist"
