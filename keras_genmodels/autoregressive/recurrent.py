"""What the two recurrent models share: the cell, its packed state and `step`.

`RNNAutoregressive` (real values) and `RNNLanguageModel` (bytes) both run
`input features -> SimpleRNN | GRU | LSTM -> Dense head` and export a `step`
signature that advances the recurrent state by one input, the loop an app
runs on TF Lite. An LSTM's two states are packed side by side into one
`(batch, 2 * units)` tensor, so every cell has one state input and output.
"""

import numpy as np
import tensorflow as tf
from keras import layers as keras_layers

from keras_genmodels.serving_limits import InputChecks

CELLS = {
    "simple_rnn": keras_layers.SimpleRNN,
    "gru": keras_layers.GRU,
    "lstm": keras_layers.LSTM,
}


def recurrent_layer(cell, units, dtype):
    """The `return_sequences=True` recurrent layer named after its cell.

    Args:
        cell: `"simple_rnn"`, `"gru"` or `"lstm"`.
        units: Width of the state.
        dtype: The model's dtype policy.
    """
    if cell not in CELLS:
        raise ValueError(
            f"`cell` must be one of {', '.join(CELLS)}. Received: cell={cell!r}"
        )
    return CELLS[cell](units, return_sequences=True, name=cell, dtype=dtype)


class RecurrentStep:
    """Mixin of the recurrent models: packed state, one-step pass and `step`.

    The model defines `cell`, `units`, the layers `rnn` and `head`, and
    `_step_features(x)` (the features of one input) and
    `_step_input(batch_size)` (`(shape, dtype)` of one input),
    `_check_step_input(checks, x, shape, limit)` and
    `_random_step_input(rng, batch_size)` for the `step` signature.
    """

    @property
    def state_size(self):
        """Width of the packed recurrent state (`2 * units` for an LSTM)."""
        return 2 * self.units if self.cell == "lstm" else self.units

    def initial_state(self, batch_size):
        """The zero state `(batch_size, state_size)` that `call` starts from."""
        return tf.zeros(tf.stack([batch_size, self.state_size]), "float32")

    def _unpack_state(self, state):
        state = tf.cast(state, self.compute_dtype)
        if self.cell == "lstm":
            return [state[:, : self.units], state[:, self.units :]]
        return [state]

    def _cell_step(self, x, state):
        """One step: returns the head's float32 output and the packed state."""
        output, states = self.rnn.cell(self._step_features(x), self._unpack_state(state))
        packed = tf.cast(tf.concat(states, axis=-1), "float32")
        return tf.cast(self.head(output), "float32"), packed

    def _step_endpoint(self, batch_size, limit=None):
        """`step(x, state) -> {y, state}`; with a row `limit` (serving) its
        inputs are checked."""
        x_shape, x_dtype = self._step_input(batch_size)
        state_shape = [batch_size, self.state_size]

        @tf.function(
            input_signature=[
                tf.TensorSpec(x_shape, x_dtype, name="x"),
                tf.TensorSpec(state_shape, tf.float32, name="state"),
            ]
        )
        def step(x, state):
            if limit is not None:
                checks = InputChecks()
                x = self._check_step_input(checks, x, x_shape, limit)
                state = checks.batch("state", state, state_shape, limit, finite=True)
                checks.same_rows(x=x, state=state)
                x, state = checks.gate(x, state)
            y, state = self._cell_step(x, state)
            return {"y": y, "state": state}

        return step

    def _step_example(self, batch_size):
        """Example inputs of `step`: a random state and `_random_step_input`."""
        rng = np.random.default_rng(0)
        state = rng.standard_normal((batch_size, self.state_size)).astype("float32") * 0.5
        return {"x": self._random_step_input(rng, batch_size), "state": state}
