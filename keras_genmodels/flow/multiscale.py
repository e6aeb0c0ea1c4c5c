"""Multi-scale convolutional image flows: RealNVP and Glow over TFP."""

import keras
import numpy as np
import tensorflow_probability as tfp

from keras_genmodels.base import check_positive_int
from keras_genmodels.flow.image_bijectors import FactorOut, LayerBijector, Squeeze
from keras_genmodels.flow.image_layers import (
    ActNorm,
    AffineCoupling,
    Invertible1x1Conv,
    data_dependent_init,
)
from keras_genmodels.flow.model import FlowModel

tfb = tfp.bijectors

ARCHITECTURES = ("realnvp", "glow")


@keras.saving.register_keras_serializable(package="keras_genmodels")
class MultiScaleFlow(FlowModel):
    """Multi-scale convolutional flow on images (RealNVP or Glow).

    The data-to-latent map is a `tfp.bijectors.Chain` of image bijectors
    (`keras_genmodels.flow.image_bijectors`) driving Keras 3 layers owned by
    this model; the flow is its `tfb.Invert`, after the dequantisation and
    logit preprocessing of `FlowModel` (whose Jacobian is counted). At each
    scale but the last, half the channels are factored out: they are
    latents from there on, and later scales work on the other half.

    - `"realnvp"` (Dinh et al., 2017): per scale, `steps_per_scale`
      checkerboard couplings, a 2x2 squeeze, `steps_per_scale`
      channel-wise couplings, factor-out; the last scale has
      `steps_per_scale + 1` checkerboard couplings. Each coupling is
      followed by an actnorm (in place of the paper's batch norm).
    - `"glow"` (Kingma and Dhariwal, 2018): per scale, a squeeze, then
      `steps_per_scale` steps of actnorm, LU 1x1 convolution and a
      channel-wise affine coupling, then factor-out.

    Actnorms initialise from the first training batch (zero mean, unit
    variance per channel). Latents are the image-shaped result flattened,
    standard normal; `log_prob`, `encode`, `decode` and `sample` are exact.

    References:
        Dinh, Sohl-Dickstein and Bengio, "Density estimation using Real NVP",
        ICLR 2017.
        Kingma and Dhariwal, "Glow: Generative Flow with Invertible 1x1
        Convolutions", NeurIPS 2018.

    Args:
        data_shape: `(H, W, C)`; `H` and `W` divisible by
            `2 ** (num_scales - 1)` (RealNVP) or `2 ** num_scales` (Glow).
        architecture: `"realnvp"` or `"glow"`.
        num_scales: Number of scales.
        steps_per_scale: Couplings per stage (RealNVP) or steps per scale
            (Glow).
        filters: Hidden channels of each coupling's `ConvResNet`.
        num_blocks: Residual blocks of each `ConvResNet`.
        logit_alpha: `alpha` of the logit transform (default 0.05).
        num_levels: Quantisation levels (default 256).
        flow_layers: Optional list of the layers (`from_config`).
        seed: Optional int seed.
        **kwargs: Passed to `keras.Model`.

    Example:

    ```python
    flow = MultiScaleFlow((28, 28, 1), architecture="glow", num_scales=2)
    flow.compile(optimizer="adam")
    flow.fit(images, epochs=10, batch_size=64)
    flow.sample(16, seed=0, temperature=0.7).shape  # (16, 28, 28, 1)
    ```
    """

    nested_networks = ("flow_layers",)
    config_arguments = (
        "data_shape",
        "architecture",
        "num_scales",
        "steps_per_scale",
        "filters",
        "num_blocks",
        "logit_alpha",
        "num_levels",
    )

    def __init__(self, data_shape, architecture="glow", num_scales=2, steps_per_scale=4,
                 filters=32, num_blocks=1, logit_alpha=0.05, num_levels=256,
                 flow_layers=None, seed=None, **kwargs):
        kwargs.setdefault("name", architecture if architecture in ARCHITECTURES else "flow")
        super().__init__(data_shape, logit_alpha=logit_alpha, num_levels=num_levels,
                         seed=seed, **kwargs)
        if architecture not in ARCHITECTURES:
            raise ValueError(
                f"`architecture` must be one of {ARCHITECTURES}. Received: "
                f"architecture={architecture!r}"
            )
        self.architecture = architecture
        self.num_scales = check_positive_int(num_scales, "num_scales")
        self.steps_per_scale = check_positive_int(steps_per_scale, "steps_per_scale")
        self.filters = check_positive_int(filters, "filters")
        if isinstance(num_blocks, bool) or not isinstance(num_blocks, int) or num_blocks < 0:
            raise ValueError(
                f"`num_blocks` must be an int >= 0. Received: num_blocks={num_blocks}"
            )
        self.num_blocks = num_blocks
        squeezes = self.num_scales - (architecture == "realnvp")
        if len(self.data_shape) != 3 or any(d % 2**squeezes for d in self.data_shape[:2]):
            raise ValueError(
                f"A {architecture} flow with {self.num_scales} scales needs images "
                f"(H, W, C) with H and W divisible by {2**squeezes}. Received: "
                f"data_shape={self.data_shape}"
            )
        self._given_layers = None if flow_layers is None else list(flow_layers)
        self.flow_layers = []
        encoder = self._level(0, self.data_shape)
        if self._given_layers is not None and len(self._given_layers) != len(self.flow_layers):
            raise ValueError(
                f"Expected {len(self.flow_layers)} flow layers. Received: "
                f"{len(self._given_layers)}"
            )
        del self._given_layers
        size = self.data_size
        encoder = tfb.Chain([
            tfb.Reshape([size], event_shape_in=list(self.data_shape)),
            encoder,
            tfb.Reshape(list(self.data_shape), event_shape_in=[size]),
        ], name="encoder")
        self.set_flow([tfb.Invert(encoder, name="decoder")], name=f"{self.name}_chain")
        self.build((None, *self.data_shape))

    # ------------------------------------------------------------------
    # The architecture, as a chain of image bijectors (data to latent).
    # ------------------------------------------------------------------
    def _layer(self, kind, make, shape):
        index = len(self.flow_layers)
        if self._given_layers is not None:
            layer = self._given_layers[index]
        else:
            layer = make(f"{kind}_{index}")
        if not layer.built:
            layer.build((None, *shape))
        self.flow_layers.append(layer)
        return LayerBijector(layer)

    def _coupling(self, mask, parity, shape):
        def make(name):
            return AffineCoupling(mask, parity, self.filters, self.num_blocks, name=name)

        return self._layer(f"{mask}_coupling", make, shape)

    def _actnorm(self, shape):
        return self._layer("actnorm", lambda name: ActNorm(name=name), shape)

    def _level(self, scale, shape):
        """The bijectors of one scale (and, nested, the later ones)."""
        steps = []  # In data-to-latent order.
        height, width, channels = shape
        squeezed = (height // 2, width // 2, 4 * channels)
        last = scale == self.num_scales - 1
        if self.architecture == "realnvp":
            couplings = self.steps_per_scale + (1 if last else 0)
            for i in range(couplings):
                steps += [self._coupling("checkerboard", i % 2, shape), self._actnorm(shape)]
            if last:
                return tfb.Chain(steps[::-1], name=f"scale_{scale}")
            steps.append(Squeeze())
            for i in range(self.steps_per_scale):
                steps += [self._coupling("channel", i % 2, squeezed),
                          self._actnorm(squeezed)]
        else:
            steps.append(Squeeze())
            for i in range(self.steps_per_scale):
                index = len(self.flow_layers)
                steps += [
                    self._actnorm(squeezed),
                    self._layer("conv1x1",
                                lambda name, i=index: Invertible1x1Conv(seed=i, name=name),
                                squeezed),
                    self._coupling("channel", i % 2, squeezed),
                ]
        if not last:
            half = squeezed[2] - squeezed[2] // 2
            inner = self._level(scale + 1, (*squeezed[:2], half))
            steps.append(FactorOut(inner, name=f"factor_out_{scale}"))
        steps.append(tfb.Invert(Squeeze()))
        return tfb.Chain(steps[::-1], name=f"scale_{scale}")

    def compute_losses(self, data, training=False):
        # Actnorms initialise from the first training batch; other traces
        # (serving, evaluation) never assign variables.
        with data_dependent_init():
            return super().compute_losses(data, training=training)

    def parameter_summary(self):
        """`{layer kind: parameter count}` of the flow's layers."""
        counts = {}
        for layer in self.flow_layers:
            kind = type(layer).__name__
            counts[kind] = counts.get(kind, 0) + int(layer.count_params())
        return counts


def check_image_shape(data_shape):
    """The shape as a tuple, refusing anything but `(H, W, C)`."""
    shape = tuple(int(d) for d in np.atleast_1d(data_shape))
    if len(shape) != 3:
        raise ValueError(
            f"Image flows need an image shape (H, W, C). Received: data_shape={shape}"
        )
    return shape
