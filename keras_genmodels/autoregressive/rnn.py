"""A recurrent autoregressive model for real-valued sequences and for bytes."""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers as keras_layers

from keras_genmodels.autoregressive import sampling, tokenizer, windows
from keras_genmodels.autoregressive.text_serving import (
    text_endpoints,
    text_signature_examples,
)
from keras_genmodels.base import GenerativeModel, check_positive_int
from keras_genmodels.serving_limits import InputChecks, ServingLimits

_LN2 = math.log(2.0)
_CELLS = {
    "simple_rnn": keras_layers.SimpleRNN,
    "gru": keras_layers.GRU,
    "lstm": keras_layers.LSTM,
}
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
class RNNAutoregressive(GenerativeModel):
    """Next-step prediction with a SimpleRNN, GRU or LSTM.

    Two modes share the class:

    - Continuous (`vocab_size=None`): inputs `(batch, T, 1)`, a recurrent
      layer with `return_sequences=True` and `Dense(1)` predict `x_{t+1}`
      from `x_{<=t}` at every step, with the mean squared error. The model is
      read as the Gaussian autoregression
      `x_{t+1} ~ N(f(x_{t-L+1..t}), sigma^2)`, `L = sequence_length`, where
      `sigma^2` is a running mean of the training MSE of the last step of
      each window (full context); `sample` draws from it
      and `forecast` rolls the mean forward. `data_kind` is `"sequence"`.
    - Bytes (`vocab_size=256`): `Embedding -> RNN -> Dense(vocab_size)` with
      the next-byte cross entropy; `generate` samples text with the samplers
      of `keras_genmodels.autoregressive.sampling`. `data_kind` is `"text"`.

    References:
        Elman, "Finding Structure in Time", Cognitive Science 1990.
        Hochreiter and Schmidhuber, "Long Short-Term Memory", 1997.
        Cho et al., "Learning Phrase Representations using RNN
        Encoder-Decoder", EMNLP 2014 (GRU).

    Args:
        cell: `"simple_rnn"`, `"gru"` or `"lstm"`.
        units: Width of the recurrent state.
        sequence_length: Training window length (inputs per window); in
            continuous mode also the window `forecast` and `sample` look at.
        vocab_size: `None` for real values, else the number of token ids
            (256 for bytes).
        embedding_dim: Byte embedding width (default `units`).
        sample_length: Length of each `sample` sequence (continuous) or number
            of bytes per `sample` text.
        seed: Optional int seed of unseeded sampling.
        **kwargs: Passed to `keras.Model`.

    Call arguments:
        inputs: Continuous: `(batch, T, 1)` or `(batch, T)` floats. Bytes:
            `(batch, T)` int ids.
        training: Unused (no dropout).

    Returns (of `call`):
        Continuous: `(batch, T, 1)` next-value predictions. Bytes:
        `(batch, T, vocab_size)` float32 logits.

    Example:

    ```python
    rnn = RNNAutoregressive("simple_rnn", units=50, sequence_length=10)
    rnn.count_params()  # 2651
    rnn.compile(optimizer="adam")
    rnn.fit(rnn.prepare_dataset(keras_genmodels.data.load("sine"), 32), epochs=5)
    rnn.forecast(history, steps=20)
    ```
    """

    tflite_tolerance = 1e-4

    def __init__(
        self,
        cell="simple_rnn",
        units=50,
        sequence_length=10,
        vocab_size=None,
        embedding_dim=None,
        sample_length=50,
        seed=None,
        **kwargs,
    ):
        kwargs.setdefault("name", "rnn_autoregressive")
        super().__init__(seed=seed, **kwargs)
        if cell not in _CELLS:
            raise ValueError(
                f"`cell` must be one of {', '.join(_CELLS)}. Received: cell={cell!r}"
            )
        self.cell_type = cell
        self.units = check_positive_int(units, "units")
        self.sequence_length = check_positive_int(sequence_length, "sequence_length")
        if vocab_size is not None:
            vocab_size = check_positive_int(vocab_size, "vocab_size")
            if vocab_size > tokenizer.VOCAB_SIZE:
                raise ValueError(
                    f"`vocab_size` is at most 256 (bytes). Received: vocab_size={vocab_size}"
                )
        self.vocab_size = vocab_size
        self.embedding_dim = (
            None if embedding_dim is None else check_positive_int(embedding_dim, "embedding_dim")
        )
        self.sample_length = check_positive_int(sample_length, "sample_length")

        policy = self.dtype_policy
        self.rnn = _CELLS[cell](self.units, return_sequences=True, name=cell, dtype=policy)
        if self.is_bytes:
            self.embedding = keras_layers.Embedding(
                self.vocab_size, self.embedding_dim or self.units, name="embedding",
                dtype=policy,
            )
            self.head = keras_layers.Dense(self.vocab_size, name="head", dtype=policy)
            self.add_loss_trackers("loss", "bits_per_char", "accuracy")
        else:
            self.embedding = None
            self.head = keras_layers.Dense(1, name="head", dtype=policy)
            self.add_loss_trackers("loss")
        # Statistics of the training data for `sample` (continuous mode):
        # running means of the values, their variance and the squared error
        # of the last step of each window.
        # They are not parameters of the network (so `count_params` is the
        # seed's 2,651); `save_own_variables` stores them in `.keras` files.
        self.value_mean = _statistic(0.0, "value_mean")
        self.value_variance = _statistic(1.0, "value_variance")
        self.residual_variance = _statistic(1.0, "residual_variance")
        self._compiled_fns = {}
        self.build((None, self.sequence_length))

    @property
    def is_bytes(self):
        """Whether the model predicts byte ids (else real values)."""
        return self.vocab_size is not None

    @property
    def data_kind(self):
        return "text" if self.is_bytes else "sequence"

    @property
    def state_size(self):
        """Width of the packed recurrent state (`2 * units` for an LSTM)."""
        return 2 * self.units if self.cell_type == "lstm" else self.units

    def build(self, input_shape=None):
        if self.is_bytes:
            self.embedding.build((None, None))
            features = self.embedding_dim or self.units
        else:
            features = 1
        self.rnn.build((None, None, features))
        self.head.build((None, None, self.units))
        self.built = True

    # ------------------------------------------------------------------
    # Forward passes.
    # ------------------------------------------------------------------
    def _features(self, inputs):
        if self.is_bytes:
            return self.embedding(tf.cast(inputs, "int32"))
        inputs = tf.cast(inputs, self.compute_dtype)
        if inputs.shape.rank == 2:
            inputs = inputs[..., None]
        return inputs

    def call(self, inputs, training=False):
        outputs = self.head(self.rnn(self._features(inputs)))
        return tf.cast(outputs, "float32")

    def _unpack_state(self, state):
        state = tf.cast(state, self.compute_dtype)
        if self.cell_type == "lstm":
            return [state[:, : self.units], state[:, self.units :]]
        return [state]

    def _pack_state(self, states):
        return tf.cast(tf.concat(states, axis=-1), "float32")

    def _cell_step(self, x, state):
        """One step: `x` is `(batch,)` ids or `(batch, 1)` values."""
        if self.is_bytes:
            features = self.embedding(tf.cast(x, "int32"))
        else:
            features = tf.cast(x, self.compute_dtype)
        output, states = self.rnn.cell(features, self._unpack_state(state))
        return tf.cast(self.head(output), "float32"), self._pack_state(states)

    def initial_state(self, batch_size):
        """The zero state `(batch_size, state_size)` that `call` starts from."""
        return tf.zeros(tf.stack([batch_size, self.state_size]), "float32")

    # ------------------------------------------------------------------
    # Training.
    # ------------------------------------------------------------------
    def compute_losses(self, data, training=False):
        inputs, targets, _ = keras.utils.unpack_x_y_sample_weight(data)
        outputs = self(inputs, training=training)
        if self.is_bytes:
            targets = tf.cast(targets, "int32")
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(targets, outputs)
            )
            predicted = tf.argmax(outputs, axis=-1, output_type=tf.int32)
            accuracy = tf.reduce_mean(tf.cast(tf.equal(predicted, targets), "float32"))
            return {"loss": loss, "bits_per_char": loss / _LN2, "accuracy": accuracy}
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
        for variable, value in (
            (self.value_mean, mean),
            (self.value_variance, variance),
            (self.residual_variance, residual),
        ):
            variable.assign(_EMA * variable + (1.0 - _EMA) * value)

    def prepare_dataset(self, dataset, batch_size, shuffle=True, drop_remainder=False):
        """Cuts a stream into `(inputs, next-step targets)` windows and batches.

        Args:
            dataset: Unbatched dataset of scalars (float values, or byte ids
                in byte mode), in order, or a 1-D array.
            batch_size: Positive int.
            shuffle: Random window offsets each epoch (training); otherwise a
                fixed grid (evaluation).
            drop_remainder: Whether to drop the last partial batch.

        Returns:
            Batched `(inputs, targets)`: continuous
            `(batch, sequence_length, 1)` float32 each; bytes
            `(batch, sequence_length)` int32 each. Continuous windows start
            at every position (stride 1); byte windows every
            `sequence_length` bytes.
        """
        batch_size = check_positive_int(batch_size, "batch_size")
        dtype = "int32" if self.is_bytes else "float32"
        values = windows.stream_array(dataset, dtype)
        length = self.sequence_length + 1
        if len(values) < length:
            raise ValueError(
                f"The stream has {len(values)} elements; windows need "
                f"sequence_length + 1 = {length}."
            )
        stride = self.sequence_length if self.is_bytes else 1
        pairs = windows.next_step_pairs(
            windows.window_dataset(values, length, stride, shuffle, seed=self.seed)
        )
        if not self.is_bytes:
            pairs = pairs.map(lambda x, y: (x[:, None], y[:, None]))
        return windows.batch_windows(pairs, batch_size, drop_remainder)

    # ------------------------------------------------------------------
    # Continuous mode: forecasting and sampling.
    # ------------------------------------------------------------------
    def _check_mode(self, continuous, method):
        if continuous == self.is_bytes:
            mode = "byte" if self.is_bytes else "continuous"
            raise ValueError(
                f"`{method}` is not available for a {mode} model "
                f"(vocab_size={self.vocab_size})."
            )

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

    def _sample_from_seed(self, num_samples, seed):
        shape = tf.stack([num_samples, self.sample_length])
        normal = tf.random.stateless_normal(shape, seed=seed)
        first = self.value_mean + tf.sqrt(self.value_variance) * normal[:, :1]
        noise = tf.sqrt(self.residual_variance) * normal[:, 1:]
        return tf.concat([first, self._roll(first, noise)], axis=1)

    def _function(self, key, fn, signature):
        if key not in self._compiled_fns:
            self._compiled_fns[key] = tf.function(fn, input_signature=signature)
        return self._compiled_fns[key]

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
        self._check_mode(True, "forecast")
        history = np.asarray(history, "float32")
        if history.ndim == 3 and history.shape[-1] == 1:
            history = history[..., 0]
        if history.ndim != 2 or history.shape[1] < 1:
            raise ValueError(
                "`history` must have shape (batch, T) or (batch, T, 1) with T >= 1. "
                f"Received: shape {history.shape}"
            )
        steps = check_positive_int(steps, "steps")
        fn = self._function(
            "forecast",
            self._forecast,
            [tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([], tf.int32)],
        )
        return fn(tf.constant(history), tf.constant(steps, tf.int32)).numpy()

    def sample(self, num_samples, seed=None, **kwargs):
        """Draws sequences (continuous) or texts (bytes).

        Continuous: the first value is drawn from `N(mean, variance)` of the
        training values, then each next value from
        `N(prediction, residual variance)`, both running means kept during
        training. Bytes: `generate` from an empty prompt.

        Args:
            num_samples: Positive int.
            seed: `None`, an int or a pair of ints.
            **kwargs: Byte mode only: `max_new_tokens` (default
                `sample_length`), `temperature`, `top_k`, `top_p`.

        Returns:
            Continuous: `(num_samples, sample_length)` float32 numpy array.
            Bytes: a list of `num_samples` strings.
        """
        num_samples = check_positive_int(num_samples, "num_samples")
        if self.is_bytes:
            kwargs.setdefault("max_new_tokens", self.sample_length)
            prompts = np.full((num_samples, 1), tokenizer.START_TOKEN, "int32")
            tokens = self.generate_tokens(prompts, seed=seed, **kwargs)
            return [tokenizer.decode(row) for row in tokens]
        if kwargs:
            raise ValueError(f"Unexpected arguments for a continuous model: {sorted(kwargs)}")
        fn = self._function(
            "sample",
            self._sample_from_seed,
            [tf.TensorSpec([], tf.int32), tf.TensorSpec([2], tf.int32)],
        )
        return fn(tf.constant(num_samples, tf.int32), self.resolve_seed(seed)).numpy()

    # ------------------------------------------------------------------
    # Byte mode: generation and scoring.
    # ------------------------------------------------------------------
    def _generate_tokens(self, prompt, max_new_tokens, temperature, top_k, top_p, seed):
        batch = tf.shape(prompt)[0]
        state = self.initial_state(batch)

        def feed(i, logits, state):
            logits, state = self._cell_step(prompt[:, i], state)
            return i + 1, logits, state

        logits = tf.zeros(tf.stack([batch, self.vocab_size]), "float32")
        _, logits, state = tf.while_loop(
            lambda i, *_: i < tf.shape(prompt)[1], feed, (tf.constant(0), logits, state)
        )
        uniform = tf.random.stateless_uniform(
            tf.stack([max_new_tokens, batch, self.vocab_size]), seed=seed
        )

        def body(i, logits, state, output):
            token = sampling.sample_next(logits, uniform[i], temperature, top_k, top_p)
            logits, state = self._cell_step(token, state)
            return i + 1, logits, state, output.write(i, token)

        output = tf.TensorArray(tf.int32, size=max_new_tokens)
        *_, output = tf.while_loop(
            lambda i, *_: i < max_new_tokens, body, (tf.constant(0), logits, state, output)
        )
        return tf.transpose(output.stack(), [1, 0])

    def generate_tokens(
        self, prompt_tokens, max_new_tokens=None, temperature=1.0, top_k=None, top_p=None,
        seed=None,
    ):
        """Generates byte ids after equal-length prompts (byte mode).

        Args:
            prompt_tokens: `(batch, length)` int array, `length >= 1`.
            max_new_tokens: Positive int (default `sample_length`).
            temperature: 0 for greedy decoding, else the softmax temperature.
            top_k: Optional top-k filter.
            top_p: Optional nucleus filter.
            seed: `None`, an int or a pair of ints.

        Returns:
            `(batch, max_new_tokens)` int32 numpy array.
        """
        self._check_mode(False, "generate")
        prompt_tokens = np.asarray(prompt_tokens)
        if prompt_tokens.ndim != 2 or prompt_tokens.shape[1] < 1:
            raise ValueError(
                "`prompt_tokens` must have shape (batch, length >= 1). "
                f"Received: shape {prompt_tokens.shape}"
            )
        max_new_tokens = check_positive_int(
            self.sample_length if max_new_tokens is None else max_new_tokens,
            "max_new_tokens",
        )
        temperature, top_k, top_p = sampling.check_sampling_arguments(
            temperature, top_k, top_p
        )
        fn = self._function(
            "generate",
            self._generate_tokens,
            [
                tf.TensorSpec([None, None], tf.int32),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([], tf.float32),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([], tf.float32),
                tf.TensorSpec([2], tf.int32),
            ],
        )
        return fn(
            tf.constant(prompt_tokens, tf.int32),
            tf.constant(max_new_tokens, tf.int32),
            tf.constant(temperature, tf.float32),
            tf.constant(top_k, tf.int32),
            tf.constant(top_p, tf.float32),
            self.resolve_seed(seed),
        ).numpy()

    def generate(
        self, prompt, max_new_tokens=None, temperature=1.0, top_k=None, top_p=None, seed=None
    ):
        """Continues a text prompt (byte mode); an empty prompt starts from a newline.

        Args:
            prompt: `str`.
            max_new_tokens: Bytes to generate (default `sample_length`).
            temperature: 0 for greedy decoding, else the softmax temperature.
            top_k: Optional top-k filter.
            top_p: Optional nucleus filter.
            seed: `None`, an int or a pair of ints.

        Returns:
            The continuation, a `str`.
        """
        if not isinstance(prompt, str):
            raise ValueError(f"`prompt` must be a str. Received: prompt={prompt!r}")
        tokens = tokenizer.encode(prompt)
        if len(tokens) == 0:
            tokens = np.array([tokenizer.START_TOKEN], "int32")
        new = self.generate_tokens(tokens[None], max_new_tokens, temperature, top_k, top_p, seed)
        return tokenizer.decode(new[0])

    def _sequence_nll(self, tokens):
        sequence = tf.concat([[tokenizer.START_TOKEN], tf.cast(tokens, tf.int32)], 0)[None]
        logits = self(sequence[:, :-1])
        return tf.reduce_sum(
            tf.nn.sparse_softmax_cross_entropy_with_logits(sequence[:, 1:], logits)
        )

    def _bits_per_char(self, text):
        tokens = tokenizer.tf_encode(text)
        count = tf.cast(tf.maximum(tf.size(tokens), 1), "float32")
        return self._sequence_nll(tokens) / count / _LN2

    # ------------------------------------------------------------------
    # Evaluation.
    # ------------------------------------------------------------------
    def evaluation_metrics(self, dataset, batch_size=256, **kwargs):
        """Held-out figures on a test stream.

        Continuous: `mse` of the next value after a full window of
        `sequence_length` values (the forecasting error), `mse_all_positions`
        (every step of every window, the training loss) and
        `residual_variance` (the running training MSE of the last step, used
        by `sample`).
        Bytes: `bits_per_char` of the whole test text, read in one pass.

        Args:
            dataset: Unbatched test-split stream: at least one byte, or
                (continuous) at least `sequence_length + 1` values.
            batch_size: Windows per batch (continuous mode).
            **kwargs: Ignored (e.g. `dataset_name`).

        Returns:
            A dict of floats.
        """
        del kwargs
        from keras_genmodels import progress

        if self.is_bytes:
            tokens = windows.stream_array(dataset, "int32")
            if len(tokens) == 0:
                raise ValueError("The test text is empty: no bytes to score.")
            nll = float(self._sequence_nll(tf.constant(tokens)))
            return {"bits_per_char": nll / len(tokens) / _LN2, "num_chars": len(tokens)}
        values = windows.stream_array(dataset, "float32")
        length = self.sequence_length + 1
        if len(values) < length:
            raise ValueError(
                f"The test split has {len(values)} values; the forecasting "
                f"metrics need at least sequence_length + 1 = {length} (a full "
                "window and the value after it). Use a longer test split or a "
                "model with a shorter `sequence_length`."
            )
        batch_size = check_positive_int(batch_size, "batch_size")
        num_windows = len(values) - length + 1
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
    def default_export_name(self):
        """Default model name of an export: `ar-rnn` for values,
        `ar-rnn-text` for bytes (the two modes export different signatures;
        the transformer's is `ar-transformer`)."""
        return "ar-rnn-text" if self.is_bytes else "ar-rnn"

    @property
    def serving_limits(self):
        """The limits the serving signatures enforce (`ServingLimits`)."""
        if self.is_bytes:
            signatures = {
                "step": ("batch_size",),
                "generate": ("prompt", "max_new_tokens"),
                "score": ("text",),
            }
        else:
            signatures = {
                "step": ("batch_size",),
                "forecast": ("batch_size", "history", "steps"),
                "sample": ("num_samples",),
            }
        return ServingLimits(signatures)

    def _step_endpoint(self, batch_size, limit=None):
        """`step`; with a row `limit` (serving) its inputs are checked."""
        x_shape = [batch_size] if self.is_bytes else [batch_size, 1]
        x_dtype = tf.int32 if self.is_bytes else tf.float32
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
                if self.is_bytes:
                    x = checks.batch("x", x, x_shape, limit, low=0, high=self.vocab_size - 1)
                else:
                    x = checks.batch("x", x, x_shape, limit, finite=True)
                state = checks.batch("state", state, state_shape, limit, finite=True)
                checks.same_rows(x=x, state=state)
                x, state = checks.gate(x, state)
            y, state = self._cell_step(x, state)
            return {"y": y, "state": state}

        return step

    def serving_endpoints(self, limits=None):
        """`step`, plus `forecast` and `sample` (values) or `generate` and
        `score` (bytes), every input checked in the graph.

        Args:
            limits: Optional `{limit name: int}` replacing the defaults of
                `serving_limits`.
        """
        limits = self.serving_limits.resolve(limits)
        endpoints = {"step": self._step_endpoint(None, limits["batch_size"])}
        if self.is_bytes:
            endpoints.update(
                text_endpoints(
                    self._generate_tokens, self._bits_per_char, limits, self.vocab_size
                )
            )
        else:

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

            @tf.function(
                input_signature=[
                    tf.TensorSpec([], tf.int32, name="num_samples"),
                    tf.TensorSpec([2], tf.int32, name="seed"),
                ]
            )
            def sample(num_samples, seed):
                checks = InputChecks()
                num_samples = checks.count("num_samples", num_samples, limits["num_samples"])
                seed = checks.seed(seed)
                return {"samples": self._sample_from_seed(*checks.gate(num_samples, seed))}

            endpoints.update(forecast=forecast, sample=sample)
        return endpoints

    def tflite_endpoints(self, batch_size=1):
        return {"step": self._step_endpoint(batch_size)}

    def signature_examples(self, batch_size=1):
        rng = np.random.default_rng(0)
        state = rng.standard_normal((batch_size, self.state_size)).astype("float32") * 0.5
        if self.is_bytes:
            return {
                "step": {
                    "x": rng.integers(0, self.vocab_size, batch_size).astype("int32"),
                    "state": state,
                },
                **text_signature_examples(),
            }
        t = np.arange(2 * self.sequence_length, dtype="float32")
        return {
            "step": {
                "x": rng.standard_normal((batch_size, 1)).astype("float32"),
                "state": state,
            },
            "forecast": {
                "history": np.stack([np.sin(t / 3.0), np.cos(t / 3.0)]).astype("float32"),
                "steps": np.int32(5),
            },
            "sample": {"num_samples": np.int32(3), "seed": np.array([1, 2], np.int32)},
        }

    # ------------------------------------------------------------------
    # Serialization.
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

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "cell": self.cell_type,
                "units": self.units,
                "sequence_length": self.sequence_length,
                "vocab_size": self.vocab_size,
                "embedding_dim": self.embedding_dim,
                "sample_length": self.sample_length,
            }
        )
        return config
