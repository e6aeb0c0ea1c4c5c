"""Coupling networks for the RealNVP flow.

A coupling network reads the masked (unchanged) part `x_a` of a vector and
returns the shift `t(x_a)` and the log-scale `s(x_a)` of the affine map
applied to the other part, `y_b = x_b * exp(s(x_a)) + t(x_a)`.
"""

import keras
from keras import layers


def check_hidden_units(hidden_units):
    """Validates `hidden_units`: a positive int or a non-empty sequence of them."""
    if isinstance(hidden_units, int):
        hidden_units = (hidden_units,)
    hidden_units = tuple(hidden_units)
    if not hidden_units or any(
        isinstance(u, bool) or not isinstance(u, int) or u < 1 for u in hidden_units
    ):
        raise ValueError(
            "`hidden_units` must be a positive int or a non-empty sequence of "
            f"positive ints. Received: hidden_units={hidden_units}"
        )
    return hidden_units


@keras.saving.register_keras_serializable(package="keras_genmodels")
class CouplingNetwork(keras.layers.Layer):
    """MLP giving the shift and bounded log-scale of an affine coupling.

    The last Dense layer starts at zero, so a fresh coupling is the identity.
    The log-scale is bounded with a learned per-unit factor,

    `s(x_a) = scale * tanh(h(x_a))`,

    as in the RealNVP paper, so `exp(s)` cannot overflow early in training.

    References:
        Dinh, Sohl-Dickstein and Bengio, "Density estimation using Real NVP",
        ICLR 2017.

    Args:
        output_units: Size of the transformed part `x_b` (the number of
            shifts and of log-scales).
        hidden_units: Int or sequence of ints, the widths of the hidden
            Dense layers.
        activation: Activation of the hidden layers.
        **kwargs: Passed to `keras.layers.Layer`.

    Call arguments:
        inputs: `(batch, masked_units)` float tensor, the masked part `x_a`.
        output_units: Optional int; when given (as TFP's `RealNVP` does) it
            must equal the layer's `output_units`. Pass it as a keyword.

    Returns:
        A `(shift, log_scale)` pair of `(batch, output_units)` tensors.

    Example:

    ```python
    net = CouplingNetwork(output_units=1, hidden_units=(32, 32))
    shift, log_scale = net(keras.ops.ones((4, 1)))
    ```
    """

    def __init__(self, output_units, hidden_units=(64, 64), activation="relu", **kwargs):
        super().__init__(**kwargs)
        if isinstance(output_units, bool) or not isinstance(output_units, int) or (
            output_units < 1
        ):
            raise ValueError(
                "`output_units` must be a positive integer. Received: "
                f"output_units={output_units}"
            )
        self.output_units = output_units
        self.hidden_units = check_hidden_units(hidden_units)
        self.activation = keras.activations.get(activation)
        self._activation_name = keras.activations.serialize(self.activation)
        self.hidden_layers = [
            layers.Dense(units, activation=self.activation, name=f"hidden_{i}")
            for i, units in enumerate(self.hidden_units)
        ]
        self.output_layer = layers.Dense(
            2 * output_units, kernel_initializer="zeros", name="shift_and_log_scale"
        )

    def build(self, input_shape):
        build_stack(self.hidden_layers, self.output_layer, input_shape)
        self.log_scale_factor = self.add_weight(
            shape=(self.output_units,), initializer="ones", name="log_scale_factor"
        )
        self.built = True

    def call(self, inputs, output_units=None):
        if output_units is not None and int(output_units) != self.output_units:
            raise ValueError(
                f"This coupling network transforms {self.output_units} units. "
                f"Received: output_units={output_units}"
            )
        return shift_and_bounded_log_scale(self, inputs, self.output_units)

    def compute_output_spec(self, inputs, output_units=None):
        shape = (*inputs.shape[:-1], self.output_units)
        spec = keras.KerasTensor(shape, dtype=self.compute_dtype)
        return spec, keras.KerasTensor(shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "output_units": self.output_units,
                "hidden_units": list(self.hidden_units),
                "activation": self._activation_name,
            }
        )
        return config


def coupling_networks(data_size, num_coupling_layers, num_masked, hidden_units=(64, 64),
                      activation="relu"):
    """Builds one `CouplingNetwork` per coupling layer.

    Args:
        data_size: Size `D` of one flattened example.
        num_coupling_layers: Number of couplings.
        num_masked: Size of the masked part `x_a`, in `[1, D - 1]`.
        hidden_units: Widths of each network's hidden layers.
        activation: Hidden activation.

    Returns:
        A list of built `CouplingNetwork`s, each from `num_masked` to
        `data_size - num_masked` shifts and log-scales.
    """
    if not 1 <= num_masked < data_size:
        raise ValueError(
            f"`num_masked` must be in [1, {data_size - 1}] for examples of size "
            f"{data_size}. Received: num_masked={num_masked}"
        )
    networks = []
    for i in range(num_coupling_layers):
        net = CouplingNetwork(
            data_size - num_masked, hidden_units, activation, name=f"coupling_{i}"
        )
        net.build((None, num_masked))
        networks.append(net)
    return networks


def build_stack(hidden_layers, output_layer, input_shape):
    """Builds `hidden_layers` in turn, then `output_layer`, from `input_shape`.

    The layers must have `units` (e.g. `Dense`, `MaskedDense`).
    """
    shape = tuple(input_shape)
    for layer in hidden_layers:
        layer.build(shape)
        shape = (*shape[:-1], layer.units)
    output_layer.build(shape)


def shift_and_bounded_log_scale(network, inputs, size):
    """The `(shift, log_scale)` of an affine flow layer's network.

    Runs `network.hidden_layers` and `network.output_layer` and splits the
    output's last axis at `size`: `shift = h[:size]` and
    `log_scale = s * tanh(h[size:])` with the learned per-unit bound
    `s = network.log_scale_factor`, which keeps early scales from
    exploding (as the RealNVP paper's tanh scale does).

    Args:
        network: A layer with `hidden_layers`, `output_layer` (`2 * size`
            units) and a `log_scale_factor` weight of `size`.
        inputs: `(..., features)` tensor.
        size: Units of the shift and of the log-scale.

    Returns:
        `(shift, log_scale)`, each `(..., size)`.
    """
    h = inputs
    for layer in network.hidden_layers:
        h = layer(h)
    h = network.output_layer(h)
    return h[..., :size], network.log_scale_factor * keras.ops.tanh(h[..., size:])
