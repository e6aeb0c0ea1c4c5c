"""A byte-level recurrent language model."""

import keras
import tensorflow as tf
from keras import layers as keras_layers

from keras_genmodels.autoregressive import tokenizer
from keras_genmodels.autoregressive.language_model import LN2, ByteLanguageModel
from keras_genmodels.autoregressive.recurrent import RecurrentStep, recurrent_layer
from keras_genmodels.base import check_positive_int


@keras.saving.register_keras_serializable(package="keras_genmodels")
class RNNLanguageModel(RecurrentStep, ByteLanguageModel):
    """Next-byte prediction with a SimpleRNN, GRU or LSTM.

    `Embedding -> RNN -> Dense(vocab_size)` over UTF-8 bytes, trained with
    the next-byte cross entropy on windows of `sequence_length` bytes, each
    read from the zero state. `generate` carries the recurrent state from
    the prompt through every new byte (one cell step per byte), so it runs
    past `sequence_length`. Exports `generate`, `score`, `sample` and the
    TF Lite `step` (one byte in, the next logits and state out).

    References:
        Elman, "Finding Structure in Time", Cognitive Science 1990.
        Hochreiter and Schmidhuber, "Long Short-Term Memory", 1997.
        Cho et al., "Learning Phrase Representations using RNN
        Encoder-Decoder", EMNLP 2014 (GRU).

    Args:
        cell: `"simple_rnn"`, `"gru"` or `"lstm"`.
        units: Width of the recurrent state.
        sequence_length: Training window length (bytes per window).
        vocab_size: Number of token ids, at most 256 (bytes).
        embedding_dim: Byte embedding width (default `units`).
        sample_length: Bytes `generate` and `sample` add by default.
        seed: Optional int seed of unseeded sampling.
        **kwargs: Passed to `keras.Model`.

    Call arguments:
        tokens: `(batch, T)` int byte ids.
        training: Unused (no dropout).

    Returns (of `call`):
        `(batch, T, vocab_size)` float32 next-byte logits.

    Example:

    ```python
    lm = RNNLanguageModel("gru", units=128, sequence_length=64)
    lm.compile(optimizer="adam")
    lm.fit(lm.prepare_dataset(keras_genmodels.data.load("pydoc"), 32), epochs=1)
    lm.generate("def ", max_new_tokens=40, seed=0)
    ```
    """

    config_arguments = (
        "cell", "units", "sequence_length", "vocab_size", "embedding_dim", "sample_length",
    )
    window_name = "sequence_length"
    default_export_name = "ar-rnn-text"

    def __init__(
        self,
        cell="simple_rnn",
        units=50,
        sequence_length=10,
        vocab_size=tokenizer.VOCAB_SIZE,
        embedding_dim=None,
        sample_length=50,
        seed=None,
        **kwargs,
    ):
        kwargs.setdefault("name", "rnn_language_model")
        super().__init__(vocab_size=vocab_size, seed=seed, **kwargs)
        self.units = check_positive_int(units, "units")
        self.rnn = recurrent_layer(cell, self.units, self.dtype_policy)
        self.cell = cell
        self.sequence_length = check_positive_int(sequence_length, "sequence_length")
        self.embedding_dim = (
            None if embedding_dim is None else check_positive_int(embedding_dim, "embedding_dim")
        )
        self.sample_length = check_positive_int(sample_length, "sample_length")
        policy = self.dtype_policy
        self.embedding = keras_layers.Embedding(
            self.vocab_size, self.embedding_dim or self.units, name="embedding", dtype=policy
        )
        self.head = keras_layers.Dense(self.vocab_size, name="head", dtype=policy)
        self.build((None, self.sequence_length))

    def build(self, input_shape=None):
        self.embedding.build((None, None))
        self.rnn.build((None, None, self.embedding_dim or self.units))
        self.head.build((None, None, self.units))
        self.built = True

    @property
    def window_length(self):
        return self.sequence_length

    @property
    def default_max_new_tokens(self):
        return self.sample_length

    def call(self, tokens, training=False):
        features = self.embedding(tf.cast(tokens, "int32"))
        return tf.cast(self.head(self.rnn(features)), "float32")

    # ------------------------------------------------------------------
    # Decoding: the recurrent state carries the whole prefix.
    # ------------------------------------------------------------------
    def _step_features(self, x):
        return self.embedding(tf.cast(x, "int32"))

    def _prefill(self, prompt):
        batch = tf.shape(prompt)[0]

        def feed(i, logits, state):
            logits, state = self._cell_step(prompt[:, i], state)
            return i + 1, logits, state

        logits = tf.zeros(tf.stack([batch, self.vocab_size]), "float32")
        _, logits, state = tf.while_loop(
            lambda i, *_: i < tf.shape(prompt)[1],
            feed,
            (tf.constant(0), logits, self.initial_state(batch)),
        )
        return logits, state

    def _decode_step(self, token, state):
        return self._cell_step(token, state)

    # ------------------------------------------------------------------
    # Scoring: the whole text in one pass from the zero state.
    # ------------------------------------------------------------------
    def _sequence_nll(self, tokens):
        sequence = tf.concat([[tokenizer.START_TOKEN], tf.cast(tokens, tf.int32)], 0)[None]
        logits = self(sequence[:, :-1])
        return tf.reduce_sum(
            tf.nn.sparse_softmax_cross_entropy_with_logits(sequence[:, 1:], logits)
        )

    def _bits_per_char(self, text):
        tokens = tokenizer.tf_encode(text)
        count = tf.cast(tf.maximum(tf.size(tokens), 1), "float32")
        return self._sequence_nll(tokens) / count / LN2

    def bits_per_char(self, tokens, batch_size=None):
        """Bits per byte of a text read in one pass from the start token.

        Args:
            tokens: 1-D int array of byte ids (or a `str`).
            batch_size: Unused (the text is one sequence).

        Returns:
            A float: `-sum log2 p(x_t | x_<t) / len(tokens)`.
        """
        del batch_size
        tokens = tokenizer.text_ids(tokens, "score")
        return float(self._sequence_nll(tf.constant(tokens))) / len(tokens) / LN2

    # ------------------------------------------------------------------
    # Export.
    # ------------------------------------------------------------------
    @property
    def serving_limits(self):
        """The limits the serving signatures enforce (`ServingLimits`)."""
        return self.text_serving_limits({"step": ("batch_size",)})

    def _step_input(self, batch_size):
        return [batch_size], tf.int32

    def _check_step_input(self, checks, x, shape, limit):
        return checks.batch("x", x, shape, limit, low=0, high=self.vocab_size - 1)

    def _random_step_input(self, rng, batch_size):
        return rng.integers(0, self.vocab_size, batch_size).astype("int32")

    def serving_endpoints(self, limits=None):
        """`generate`, `score`, `sample` and `step`, every input checked.

        Args:
            limits: Optional `{limit name: int}` replacing the defaults of
                `serving_limits`.
        """
        endpoints = super().serving_endpoints(limits)
        limits = self.serving_limits.resolve(limits)
        return {"step": self._step_endpoint(None, limits["batch_size"]), **endpoints}

    def tflite_endpoints(self, batch_size=1):
        return {"step": self._step_endpoint(batch_size)}

    def signature_examples(self, batch_size=1):
        return {"step": self._step_example(batch_size), **super().signature_examples()}

