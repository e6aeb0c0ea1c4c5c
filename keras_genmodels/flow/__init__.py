"""Normalizing flows: RealNVP over TensorFlow Probability bijectors."""

from keras_genmodels.flow.model import FlowModel
from keras_genmodels.flow.networks import CouplingNetwork
from keras_genmodels.flow.realnvp import RealNVP

__all__ = ["CouplingNetwork", "FlowModel", "RealNVP"]
