"""Normalizing flows over TensorFlow Probability bijectors: RealNVP, MAF, IAF,
multi-scale RealNVP and Glow."""

from keras_genmodels.flow.autoregressive import AutoregressiveFlow
from keras_genmodels.flow.made import MADE, MaskedDense
from keras_genmodels.flow.model import FlowModel
from keras_genmodels.flow.multiscale import MultiScaleFlow
from keras_genmodels.flow.networks import CouplingNetwork
from keras_genmodels.flow.realnvp import RealNVP

__all__ = [
    "MADE",
    "AutoregressiveFlow",
    "CouplingNetwork",
    "FlowModel",
    "MaskedDense",
    "MultiScaleFlow",
    "RealNVP",
]
