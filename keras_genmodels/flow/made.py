"""MADE: masked dense layers for autoregressive flows (Keras 3).

A MADE network (Germain et al., 2015) is an MLP whose weight matrices are
multiplied by fixed binary masks so that output `d` depends only on inputs
`1..d-1`. Each unit carries a degree: input `i` has degree `i` (1-based),
a hidden unit a degree in `[1, D - 1]`; a hidden connection is kept when
the receiving degree is `>=` the sending one, an output connection when it
is `>` (strict). `MADE` returns the shift and the bounded log-scale of an
affine autoregressive transform, the `shift_and_log_scale_fn` that
`tfp.bijectors.MaskedAutoregressiveFlow` expects.
"""

import keras
import numpy as np

from keras_genmodels.flow.networks import (
    build_stack,
    check_hidden_units,
    shift_and_bounded_log_scale,
)


def hidden_degrees(units, event_size):
    """Degrees of a hidden layer, cycling through `[1, D - 1]` evenly.

    Args:
        units: Width of the hidden layer.
        event_size: `D`, the number of autoregressive inputs.

    Returns:
        `(units,)` int array.
    """
    top = max(1, event_size - 1)
    return (np.arange(units) % top + min(1, event_size - 1)).astype("int64")


def _check_degrees(degrees, name):
    degrees = [int(d) for d in degrees]
    if not degrees or any(d < 0 for d in degrees):
        raise ValueError(
            f"`{name}` must be a non-empty sequence of non-negative ints. "
            f"Received: {name}={degrees}"
        )
    return degrees


@keras.saving.register_keras_serializable(package="keras_genmodels")
class MaskedDense(keras.layers.Layer):
    """Dense layer whose kernel is masked by unit degrees (MADE).

    `outputs = activation(inputs @ (kernel * mask) + bias)` with
    `mask[i, j] = out_degrees[j] >= in_degrees[i]` (or `>` when `strict`).
    The mask is a constant rebuilt from the degrees, not a weight.

    References:
        Germain, Gregor, Murray and Larochelle, "MADE: Masked Autoencoder for
        Distribution Estimation", ICML 2015.

    Args:
        in_degrees: Degree of each input unit.
        out_degrees: Degree of each output unit (their count is the width).
        strict: Whether a connection needs a strictly larger degree (the
            output layer).
        activation: Activation of the outputs.
        kernel_initializer: Initializer of the (unmasked) kernel.
        **kwargs: Passed to `keras.layers.Layer`.

    Call arguments:
        inputs: `(batch, len(in_degrees))` float tensor.

    Returns:
        `(batch, len(out_degrees))` tensor.

    Example:

    ```python
    layer = MaskedDense(in_degrees=[1, 2], out_degrees=[1, 2], strict=True)
    layer(keras.ops.ones((3, 2)))  # output 1 is the bias only
    ```
    """

    def __init__(self, in_degrees, out_degrees, strict=False, activation=None,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.in_degrees = _check_degrees(in_degrees, "in_degrees")
        self.out_degrees = _check_degrees(out_degrees, "out_degrees")
        self.strict = bool(strict)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        ins = np.asarray(self.in_degrees)[:, None]
        outs = np.asarray(self.out_degrees)[None, :]
        self.mask = (outs > ins if self.strict else outs >= ins).astype("float32")
        self.units = len(self.out_degrees)

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != len(self.in_degrees):
            raise ValueError(
                f"This layer has {len(self.in_degrees)} input degrees. Received: "
                f"input_shape={tuple(input_shape)}"
            )
        self.kernel = self.add_weight(
            shape=self.mask.shape, initializer=self.kernel_initializer, name="kernel"
        )
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")
        self.built = True

    def call(self, inputs):
        kernel = self.kernel * keras.ops.cast(self.mask, self.kernel.dtype)
        outputs = keras.ops.matmul(inputs, keras.ops.cast(kernel, inputs.dtype))
        return self.activation(outputs + keras.ops.cast(self.bias, inputs.dtype))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "in_degrees": list(self.in_degrees),
                "out_degrees": list(self.out_degrees),
                "strict": self.strict,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_genmodels")
class MADE(keras.layers.Layer):
    """Autoregressive network giving `(shift, log_scale)` for a MAF layer.

    Inputs `x` of `D` units (degrees `1..D`, natural order) go through
    masked hidden layers to `2 D` outputs, so `shift_d` and `log_scale_d`
    depend on `x_1..x_{d-1}` only. The output layer starts at zero (a fresh
    flow is the identity) and the log-scale is bounded,
    `log_scale = factor * tanh(h)` with a learned per-unit `factor`, as the
    RealNVP couplings do. Pass it as `shift_and_log_scale_fn` to
    `tfp.bijectors.MaskedAutoregressiveFlow`.

    Parameters: every kernel is stored whole (masked at call time), so
    `count_params() = sum(n_in * n_out + n_out) + D`.

    References:
        Germain, Gregor, Murray and Larochelle, "MADE: Masked Autoencoder for
        Distribution Estimation", ICML 2015.

    Args:
        event_size: `D`, at least 2.
        hidden_units: Int or sequence of ints, hidden widths.
        activation: Hidden activation.
        **kwargs: Passed to `keras.layers.Layer`.

    Call arguments:
        inputs: `(batch, D)` float tensor.

    Returns:
        A `(shift, log_scale)` pair of `(batch, D)` tensors.

    Example:

    ```python
    made = MADE(event_size=3, hidden_units=(16,))
    shift, log_scale = made(keras.ops.ones((4, 3)))
    ```
    """

    def __init__(self, event_size, hidden_units=(64, 64), activation="relu", **kwargs):
        super().__init__(**kwargs)
        if isinstance(event_size, bool) or not isinstance(event_size, int) or event_size < 2:
            raise ValueError(
                "`event_size` must be an int >= 2. Received: "
                f"event_size={event_size}"
            )
        self.event_size = event_size
        self.hidden_units = check_hidden_units(hidden_units)
        self.activation = keras.activations.get(activation)
        self._activation_name = keras.activations.serialize(self.activation)
        degrees = np.arange(1, event_size + 1)
        self.hidden_layers = []
        for i, units in enumerate(self.hidden_units):
            out = hidden_degrees(units, event_size)
            self.hidden_layers.append(
                MaskedDense(degrees, out, activation=self.activation, name=f"hidden_{i}")
            )
            degrees = out
        self.output_layer = MaskedDense(
            degrees,
            np.tile(np.arange(1, event_size + 1), 2),
            strict=True,
            kernel_initializer="zeros",
            name="shift_and_log_scale",
        )

    def build(self, input_shape):
        build_stack(self.hidden_layers, self.output_layer, input_shape)
        self.log_scale_factor = self.add_weight(
            shape=(self.event_size,), initializer="ones", name="log_scale_factor"
        )
        self.built = True

    def call(self, inputs):
        return shift_and_bounded_log_scale(self, inputs, self.event_size)

    def compute_output_spec(self, inputs):
        shape = (*inputs.shape[:-1], self.event_size)
        return (
            keras.KerasTensor(shape, dtype=self.compute_dtype),
            keras.KerasTensor(shape, dtype=self.compute_dtype),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "event_size": self.event_size,
                "hidden_units": list(self.hidden_units),
                "activation": self._activation_name,
            }
        )
        return config
