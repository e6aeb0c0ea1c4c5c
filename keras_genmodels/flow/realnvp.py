"""RealNVP: a TensorFlow Probability bijector chain with Keras 3 couplings."""

import numbers

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_genmodels.base import check_positive_int
from keras_genmodels.flow import networks as flow_networks
from keras_genmodels.flow.model import FlowModel

tfb = tfp.bijectors

PERMUTATIONS = ("reverse", "random")


def permutation_indices(kind, size, index):
    """The fixed permutation before layer `index`: `"reverse"` or a seeded
    `"random"` one of `size` units (int32)."""
    if kind == "reverse":
        return np.arange(size - 1, -1, -1, dtype="int32")
    return np.random.default_rng([20170, index]).permutation(size).astype("int32")


@keras.saving.register_keras_serializable(package="keras_genmodels")
class RealNVP(FlowModel):
    """RealNVP normalizing flow with exact log-likelihoods.

    A `tfp.bijectors.Chain` of `tfp.bijectors.RealNVP` affine couplings
    alternating with fixed `tfp.bijectors.Permute`s maps a standard normal
    latent `z` (a `tfp.distributions.MultivariateNormalDiag`) to the data.
    Each coupling keeps the first `num_masked` units `x_a` and transforms
    the rest, `y_b = x_b * exp(s(x_a)) + t(x_a)`, with `(t, s)` from a Keras
    `CouplingNetwork` owned by this model (so its variables are in
    `trainable_variables`). The log-likelihood is exact:

    `log p(x) = log N(f^{-1}(x); 0, I) + log |det d f^{-1}(x) / dx|`.

    Images (`logit_alpha` set) are dequantised and logit-transformed as in
    the RealNVP paper (see `keras_genmodels.flow.model.FlowModel`), and
    `bits/dim` is the figure published papers report.

    References:
        Dinh, Sohl-Dickstein and Bengio, "Density estimation using Real NVP",
        ICLR 2017.

    Args:
        data_shape: Shape of one example, e.g. `(2,)` or `(28, 28, 1)`;
            examples are flattened to `D` units.
        num_coupling_layers: Number of affine couplings.
        hidden_units: Int or tuple, hidden widths of each coupling network.
        num_masked: Units each coupling leaves unchanged (default `D // 2`).
        permutation: `"reverse"` or `"random"` (fixed, seeded) permutation
            between couplings.
        activation: Hidden activation of the coupling networks.
        logit_alpha: `alpha` of the logit transform in (0, 0.5), or `None`
            for real-valued data (no preprocessing).
        num_levels: Quantisation levels of the data (256 for 8-bit images);
            required with `logit_alpha`.
        coupling_networks: Optional list of `num_coupling_layers` built
            `CouplingNetwork`s (used by `from_config`); built from
            `hidden_units` when `None`.
        seed: Optional int seed of the dequantisation noise and of unseeded
            `sample` calls.
        **kwargs: Passed to `keras.Model`.

    Call arguments:
        x: `(batch, *data_shape)` float data.

    Returns (of `call`):
        `(batch,)` float32 `log_prob(x)`.

    Example:

    ```python
    flow = RealNVP(data_shape=(2,), num_coupling_layers=8, hidden_units=64)
    flow.compile(optimizer="adam")
    flow.fit(points, epochs=10, batch_size=256)
    flow.sample(100, seed=0).shape  # (100, 2)
    ```
    """

    nested_networks = ("coupling_networks",)
    config_arguments = (
        "data_shape",
        "num_coupling_layers",
        "hidden_units",
        "num_masked",
        "permutation",
        "activation",
        "logit_alpha",
        "num_levels",
    )
    renamed_config_arguments = {"event_shape": "data_shape"}

    def __init__(
        self,
        data_shape,
        num_coupling_layers=8,
        hidden_units=(64, 64),
        num_masked=None,
        permutation="reverse",
        activation="relu",
        logit_alpha=None,
        num_levels=None,
        coupling_networks=None,
        seed=None,
        **kwargs,
    ):
        kwargs.setdefault("name", "realnvp")
        super().__init__(
            data_shape, logit_alpha=logit_alpha, num_levels=num_levels, seed=seed, **kwargs
        )
        self.num_coupling_layers = check_positive_int(
            num_coupling_layers, "num_coupling_layers"
        )
        self.hidden_units = flow_networks.check_hidden_units(hidden_units)
        if num_masked is None:
            num_masked = self.data_size // 2
        if isinstance(num_masked, bool) or not isinstance(num_masked, numbers.Integral) or (
            not 1 <= num_masked < self.data_size
        ):
            raise ValueError(
                f"`num_masked` must be an int in [1, {self.data_size - 1}]. "
                f"Received: num_masked={num_masked}"
            )
        self.num_masked = int(num_masked)
        if permutation not in PERMUTATIONS:
            raise ValueError(
                f"`permutation` must be one of {PERMUTATIONS}. Received: "
                f"permutation={permutation!r}"
            )
        self.permutation = permutation
        self.activation = activation
        if coupling_networks is None:
            coupling_networks = flow_networks.coupling_networks(
                self.data_size,
                self.num_coupling_layers,
                self.num_masked,
                self.hidden_units,
                activation,
            )
        elif len(coupling_networks) != self.num_coupling_layers:
            raise ValueError(
                f"Expected {self.num_coupling_layers} coupling networks. "
                f"Received: {len(coupling_networks)}"
            )
        for net in coupling_networks:
            if not net.built:
                net.build((None, self.num_masked))
        self.coupling_networks = list(coupling_networks)
        self.set_flow(self._couplings(), name="realnvp_chain")
        self.build((None, *self.data_shape))

    def _couplings(self):
        """The couplings and permutations, in latent-to-data order."""
        forward = []
        for i, net in enumerate(self.coupling_networks):
            if i:
                forward.append(
                    tfb.Permute(
                        permutation_indices(self.permutation, self.data_size, i),
                        name=f"permute_{i}",
                    )
                )
            forward.append(
                tfb.RealNVP(
                    num_masked=self.num_masked,
                    shift_and_log_scale_fn=self._coupling_fn(net),
                    name=f"real_nvp_{i}",
                )
            )
        return forward

    @staticmethod
    def _coupling_fn(net):
        def shift_and_log_scale_fn(x_masked, output_units, **condition_kwargs):
            shift, log_scale = net(x_masked, output_units=output_units)
            # The coupling networks may compute in bfloat16/float16 under a
            # mixed policy; the bijector chain, its log-determinants and the
            # log-likelihood stay in float32: a sum of D log-scales loses
            # whole nats in bfloat16's 8-bit mantissa.
            return tf.cast(shift, "float32"), tf.cast(log_scale, "float32")

        return shift_and_log_scale_fn
