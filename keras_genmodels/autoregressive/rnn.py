"""A recurrent autoregressive forecaster of real-valued sequences."""

import keras
import numpy as np
import tensorflow as tf
from keras import layers as keras_layers

from keras_genmodels.autoregressive import windows
from keras_genmodels.autoregressive.recurrent import RecurrentStep, recurrent_layer
from keras_genmodels.base import GenerativeModel, check_positive_int
from keras_genmodels.serving_limits import InputChecks, ServingLimits

_EMA = 0.99
_STATISTICS_KEY = "statistics"


def _statistic(value, name):
    return tf.Variable(
        value,
        dtype=tf.float32,
        trainable=False,
        name=name,
        synchronization=tf.VariableSynchronization.ON_WRITE,
        aggregation=tf.VariableAggregation.MEAN,
    )


@keras.saving.register_keras_serializable(package="keras_genmodels")
class RNNAutoregressive(RecurrentStep, GenerativeModel):
    """Next-value prediction of a real-valued sequence with a SimpleRNN, GRU or LSTM.

    Inputs `(batch, T, 1)`; a recurrent layer with `return_sequences=True`
    and `Dense(1)` predict `x_{t+1}` from `x_{<=t}` at every step, with the
    mean squared error. The model is read as the Gaussian autoregression
    `x_{t+1} ~ N(f(x_{t-L+1..t}), sigma^2)`, `L = sequence_length`, where
    `sigma^2` is a running mean of the training MSE of the last step of each
    window (full context); `sample` draws from it and `forecast` rolls the
    mean forward. `data_kind` is `"sequence"`. The byte-level recurrent
    model is `RNNLanguageModel`.

    References:
        Elman, "Finding Structure in Time", Cognitive Science 1990.
        Hochreiter and Schmidhuber, "Long Short-Term Memory", 1997.
        Cho et al., "Learning Phrase Representations using RNN
        Encoder-Decoder", EMNLP 2014 (GRU).

    Args:
        cell: `"simple_rnn"`, `"gru"` or `"lstm"`.
        units: Width of the recurrent state.
        sequence_length: Training window length (inputs per window), also
            the window `forecast` and `sample` look at.
        sample_length: Length of each `sample` sequence.
        seed: Optional int seed of unseeded sampling.
        **kwargs: Passed to `keras.Model`.

    Call arguments:
        inputs: `(batch, T, 1)` or `(batch, T)` floats.
        training: Unused (no dropout).

    Returns (of `call`):
        `(batch, T, 1)` next-value predictions.

    Example:

    ```python
    rnn = RNNAutoregressive("simple_rnn", units=50, sequence_length=10)
    rnn.count_params()  # 2651
    rnn.compile(optimizer="adam")
    rnn.fit(rnn.prepare_dataset(keras_genmodels.data.load("sine"), 32), epochs=5)
    rnn.forecast(history, steps=20)
    ```
    """

    data_kind = "sequence"
    config_arguments = ("cell", "units", "sequence_length", "sample_length")
    #: Default model name of an export; the byte model's is `ar-rnn-text`.
    default_export_name = "ar-rnn"

    def __init__(
        self,
        cell="simple_rnn",
        units=50,
        sequence_length=10,
        sample_length=50,
        seed=None,
        **kwargs,
    ):
        vocab_size = kwargs.pop("vocab_size", None)
        embedding_dim = kwargs.pop("embedding_dim", None)
        if vocab_size is not None or embedding_dim is not None:
            raise ValueError(
                "`RNNAutoregressive` forecasts real values; the byte-level RNN is "
                "`keras_genmodels.autoregressive.RNNLanguageModel(cell, units, "
                "sequence_length, vocab_size, embedding_dim, sample_length)`. Received: "
                f"vocab_size={vocab_size}, embedding_dim={embedding_dim}"
            )
        kwargs.setdefault("name", "rnn_autoregressive")
        super().__init__(seed=seed, **kwargs)
        self.units = check_positive_int(units, "units")
        self.rnn = recurrent_layer(cell, self.units, self.dtype_policy)
        self.cell = cell
        self.sequence_length = check_positive_int(sequence_length, "sequence_length")
        self.sample_length = check_positive_int(sample_length, "sample_length")
        self.head = keras_layers.Dense(1, name="head", dtype=self.dtype_policy)
        self.add_loss_trackers("loss")
        # Statistics of the training data for `sample`: running means of the
        # values, their variance and the squared error of the last step of
        # each window. They are not parameters of the network (so
        # `count_params` is the seed's 2,651); `save_own_variables` stores
        # them in `.keras` files.
        self.value_mean = _statistic(0.0, "value_mean")
        self.value_variance = _statistic(1.0, "value_variance")
        self.residual_variance = _statistic(1.0, "residual_variance")
        self.build((None, self.sequence_length))

    def build(self, input_shape=None):
        self.rnn.build((None, None, 1))
        self.head.build((None, None, self.units))
        self.built = True

    def call(self, inputs, training=False):
        inputs = tf.cast(inputs, self.compute_dtype)
        if inputs.shape.rank == 2:
            inputs = inputs[..., None]
        return tf.cast(self.head(self.rnn(inputs)), "float32")

    def _step_features(self, x):
        return tf.cast(x, self.compute_dtype)

    # ------------------------------------------------------------------
    # Training.
    # ------------------------------------------------------------------
    def compute_losses(self, data, training=False):
        inputs, targets, _ = keras.utils.unpack_x_y_sample_weight(data)
        outputs = self(inputs, training=training)
        targets = tf.reshape(tf.cast(targets, "float32"), tf.shape(outputs))
        loss = tf.reduce_mean(tf.square(outputs - targets))
        if training:
            self._update_statistics(outputs, targets)
        return {"loss": loss}

    def _update_statistics(self, outputs, targets):
        # Means over the global batch (`replica_mean`), so every replica
        # assigns the value one device would.
        mean = self.replica_mean(tf.reduce_mean(targets))
        variance = self.replica_mean(tf.reduce_mean(tf.square(targets - mean)))
        # The error of the last step, which sees a full window as `sample` does.
        residual = self.replica_mean(
            tf.reduce_mean(tf.square(tf.stop_gradient(outputs[:, -1]) - targets[:, -1]))
        )
        for variable, value in zip(self._statistics(), (mean, variance, residual)):
            variable.assign(_EMA * variable + (1.0 - _EMA) * value)

    def prepare_dataset(self, dataset, batch_size, shuffle=True, drop_remainder=False):
        """Cuts a stream into `(inputs, next-step targets)` windows and batches.

        Args:
            dataset: Unbatched dataset of float scalars, in order, or a 1-D
                array.
            batch_size: Positive int.
            shuffle: Random window offsets each epoch (training); otherwise a
                fixed grid (evaluation).
            drop_remainder: Whether to drop the last partial batch.

        Returns:
            Batched `(inputs, targets)`, `(batch, sequence_length, 1)`
            float32 each; windows start at every position (stride 1).
        """
        batch_size = check_positive_int(batch_size, "batch_size")
        values = windows.stream_array(dataset, "float32")
        pairs = windows.training_pairs(
            values, self.sequence_length, "sequence_length", 1, shuffle, seed=self.seed
        )
        pairs = pairs.map(lambda x, y: (x[:, None], y[:, None]))
        return windows.batch_windows(pairs, batch_size, drop_remainder)

    # ------------------------------------------------------------------
    # Forecasting and sampling.
    # ------------------------------------------------------------------
    def _roll(self, sequence, noise):
        """Extends `(batch, n)` values by `noise.shape[1]` predicted steps.

        Each step runs the network over the last `sequence_length` values
        (the training window) and adds `noise[:, i]` to its prediction.
        """
        steps = tf.shape(noise)[1]
        sequence = tf.cast(sequence, "float32")

        def body(i, sequence):
            window = sequence[:, -self.sequence_length :]
            prediction = self(window)[:, -1, 0] + noise[:, i]
            return i + 1, tf.concat([sequence, prediction[:, None]], axis=1)

        _, sequence = tf.while_loop(
            lambda i, _: i < steps,
            body,
            (tf.constant(0), sequence),
            shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, None])),
        )
        return sequence[:, -steps:] if noise.shape[1] != 0 else sequence[:, :0]

    def _forecast(self, history, steps):
        batch = tf.shape(history)[0]
        noise = tf.zeros(tf.stack([batch, steps]), "float32")
        return self._roll(history, noise)

    def sample_from_seed(self, num_samples, seed):
        """`(num_samples, sample_length)` float32 sequences.

        The first value is drawn from `N(mean, variance)` of the training
        values, then each next value from `N(prediction, residual
        variance)`, both running means kept during training.
        `sample(num_samples, seed=None)` returns them as numpy; the exported
        `sample` signature gives the same for the same seed pair.
        """
        shape = tf.stack([num_samples, self.sample_length])
        normal = tf.random.stateless_normal(shape, seed=seed)
        first = self.value_mean + tf.sqrt(self.value_variance) * normal[:, :1]
        noise = tf.sqrt(self.residual_variance) * normal[:, 1:]
        return tf.concat([first, self._roll(first, noise)], axis=1)

    def forecast(self, history, steps):
        """Rolls the mean prediction forward from `history`.

        Each new value is predicted from the last `sequence_length` values
        (observed or predicted), as in training.

        Args:
            history: `(batch, T)` or `(batch, T, 1)` observed values, `T >= 1`.
            steps: Positive int, the number of values to predict.

        Returns:
            `(batch, steps)` float32 numpy array.
        """
        history = np.asarray(history, "float32")
        if history.ndim == 3 and history.shape[-1] == 1:
            history = history[..., 0]
        if history.ndim != 2 or history.shape[1] < 1:
            raise ValueError(
                "`history` must have shape (batch, T) or (batch, T, 1) with T >= 1. "
                f"Received: shape {history.shape}"
            )
        steps = check_positive_int(steps, "steps")
        fn = self.traced_function(
            ("forecast",),
            self._forecast,
            input_signature=[
                tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([], tf.int32)
            ],
        )
        return fn(tf.constant(history), tf.constant(steps, tf.int32)).numpy()

    # ------------------------------------------------------------------
    # Evaluation.
    # ------------------------------------------------------------------
    def evaluation_metrics(self, dataset, batch_size=256, **kwargs):
        """Held-out forecasting figures on a test stream.

        `mse` of the next value after a full window of `sequence_length`
        values (the forecasting error), `mse_all_positions` (every step of
        every window, the training loss) and `residual_variance` (the
        running training MSE of the last step, used by `sample`).

        Args:
            dataset: Unbatched test-split stream of at least
                `sequence_length + 1` values.
            batch_size: Windows per batch.
            **kwargs: Ignored (e.g. `dataset_name`).

        Returns:
            A dict of floats.
        """
        del kwargs
        from keras_genmodels import progress

        values = windows.stream_array(dataset, "float32")
        windows.check_length(
            len(values), self.sequence_length, "sequence_length",
            subject="The test split", unit="values",
            needs="the forecasting metrics need at least",
            advice=" (a full window and the value after it). Use a longer test "
            "split or a model with a shorter `sequence_length`",
        )
        batch_size = check_positive_int(batch_size, "batch_size")
        num_windows = len(values) - self.sequence_length
        description = f"Forecasting MSE on {num_windows:,} test windows"
        batches = self.prepare_dataset(values, batch_size, shuffle=False)
        num_batches = progress.dataset_size(batches)
        squared_last, squared_all, count = 0.0, 0.0, 0
        for inputs, targets in progress.track(batches, num_batches, description, "batch"):
            error = np.square(self(inputs).numpy() - targets.numpy())
            squared_last += float(error[:, -1].sum())
            squared_all += float(error.mean(axis=(1, 2)).sum())
            count += len(error)
        return {
            "mse": squared_last / count,
            "mse_all_positions": squared_all / count,
            "residual_variance": float(self.residual_variance.numpy()),
            "num_windows": count,
        }

    # ------------------------------------------------------------------
    # Export.
    # ------------------------------------------------------------------
    @property
    def serving_limits(self):
        """The limits the serving signatures enforce (`ServingLimits`)."""
        return ServingLimits(
            {
                "step": ("batch_size",),
                "forecast": ("batch_size", "history", "steps"),
                "sample": ("num_samples",),
            }
        )

    def _step_input(self, batch_size):
        return [batch_size, 1], tf.float32

    def _check_step_input(self, checks, x, shape, limit):
        return checks.batch("x", x, shape, limit, finite=True)

    def _random_step_input(self, rng, batch_size):
        return rng.standard_normal((batch_size, 1)).astype("float32")

    def serving_endpoints(self, limits=None):
        """`step`, `forecast` and `sample`, every input checked in the graph.

        Args:
            limits: Optional `{limit name: int}` replacing the defaults of
                `serving_limits`.
        """
        limits = self.serving_limits.resolve(limits)

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, None], tf.float32, name="history"),
                tf.TensorSpec([], tf.int32, name="steps"),
            ]
        )
        def forecast(history, steps):
            checks = InputChecks()
            history = checks.batch(
                "history", history, [None, None], limits["batch_size"], finite=True
            )
            length = tf.shape(history)[1]
            checks.check(
                (length >= 1) & (length <= limits["history"]),
                f"history must have 1 to {limits['history']} values per row. "
                "Received: history with {} values per row",
                length,
            )
            steps = checks.count("steps", steps, limits["steps"])
            return {"forecast": self._forecast(*checks.gate(history, steps))}

        return {
            "step": self._step_endpoint(None, limits["batch_size"]),
            "forecast": forecast,
            "sample": self.sample_endpoint(limits),
        }

    def tflite_endpoints(self, batch_size=1):
        return {"step": self._step_endpoint(batch_size)}

    def signature_examples(self, batch_size=1):
        t = np.arange(2 * self.sequence_length, dtype="float32")
        return {
            "step": self._step_example(batch_size),
            "forecast": {
                "history": np.stack([np.sin(t / 3.0), np.cos(t / 3.0)]).astype("float32"),
                "steps": np.int32(5),
            },
            "sample": self.sample_signature_example(),
        }

    # ------------------------------------------------------------------
    # Serialization: the statistics travel beside the weights.
    # ------------------------------------------------------------------
    def _statistics(self):
        return (self.value_mean, self.value_variance, self.residual_variance)

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[_STATISTICS_KEY] = np.array([v.numpy() for v in self._statistics()])

    def load_own_variables(self, store):
        keys = [k for k in store.keys() if k != _STATISTICS_KEY]
        super().load_own_variables({k: store[k] for k in keys})
        if _STATISTICS_KEY in store.keys():
            values = np.asarray(store[_STATISTICS_KEY])
            for variable, value in zip(self._statistics(), values):
                variable.assign(value)
