"""A decoder-only byte-level transformer language model."""

import keras
import numpy as np
import tensorflow as tf
from keras import layers as keras_layers

from keras_genmodels.autoregressive import (
    decoding,
    dynamic_evaluation,
    frames,
    kv_cache,
    tokenizer,
)
from keras_genmodels.autoregressive.language_model import LN2, ByteLanguageModel
from keras_genmodels.autoregressive.layers import TransformerBlock
from keras_genmodels.base import check_positive_int
from keras_genmodels.serving_limits import InputChecks


@keras.saving.register_keras_serializable(package="keras_genmodels")
class TransformerLM(ByteLanguageModel):
    """Decoder-only transformer over UTF-8 bytes with cached generation.

    Tokens are bytes (`vocab_size=256`, no tokenizer file). The model is
    `logits = Dense(LN(Block_L(...Block_1(E_tok[x] + E_pos[t]))))` with
    pre-norm blocks of causal self-attention and a GELU MLP, trained with the
    next-byte cross entropy `-mean_t log p(x_{t+1} | x_{<=t})`. Trackers:
    `loss` (nats per byte), `bits_per_char` (`loss / ln 2`, per UTF-8 byte)
    and `accuracy`.

    `generate` fills a key/value cache from the prompt and runs the whole
    sampling loop in one `tf.function`, built once and reused (the token
    loop inside it XLA-compiled from the second call of a batch size and
    length bucket, see `use_xla`, unless `jit_compile=False`): each new token
    costs one single-position pass instead of a pass over the window. When
    the window is full the cache is refilled from the last
    `context_length // 2` tokens, so generation can run past
    `context_length`.

    References:
        Radford et al., "Language Models are Unsupervised Multitask
        Learners", 2019.

    Args:
        vocab_size: Number of token ids; 256 for bytes.
        context_length: Longest window the model attends over.
        d_model: Width of the residual stream.
        num_heads: Attention heads; must divide `d_model`.
        num_layers: Number of transformer blocks.
        mlp_ratio: MLP hidden width as a multiple of `d_model`.
        dropout: Dropout rate (embeddings, attention, residual branches).
        layer_norm_epsilon: Epsilon of the layer normalisations.
        seed: Optional int seed of unseeded sampling.
        **kwargs: Passed to `keras.Model`.

    Call arguments:
        tokens: `(batch, length)` int token ids, `length <= context_length`.
        training: Whether dropout is active.

    Returns (of `call`):
        `(batch, length, vocab_size)` float32 next-token logits.

    Example:

    ```python
    lm = TransformerLM(context_length=64, d_model=64, num_heads=2, num_layers=2)
    lm.compile(optimizer="adam")
    lm.fit(lm.prepare_dataset(keras_genmodels.data.load("pydoc"), 32), epochs=1)
    lm.generate("The ", max_new_tokens=40, temperature=0.8, seed=0)
    ```
    """

    config_arguments = (
        "vocab_size", "context_length", "d_model", "num_heads", "num_layers",
        "mlp_ratio", "dropout", "layer_norm_epsilon",
    )
    tflite_tolerance = 1e-3
    jit_generation = True
    window_name = "context_length"
    #: Default model name of an export (`BASE/NAME/VERSION`); the byte RNN's
    #: is `ar-rnn-text`, so the two never share a servable.
    default_export_name = "ar-transformer"

    def __init__(
        self,
        vocab_size=tokenizer.VOCAB_SIZE,
        context_length=256,
        d_model=256,
        num_heads=4,
        num_layers=4,
        mlp_ratio=4,
        dropout=0.0,
        layer_norm_epsilon=1e-5,
        seed=None,
        **kwargs,
    ):
        kwargs.setdefault("name", "transformer_lm")
        super().__init__(vocab_size=vocab_size, seed=seed, **kwargs)
        self.context_length = check_positive_int(context_length, "context_length")
        if self.context_length < 2:
            raise ValueError(
                f"`context_length` must be at least 2. Received: context_length={context_length}"
            )
        self.d_model = check_positive_int(d_model, "d_model")
        self.num_heads = check_positive_int(num_heads, "num_heads")
        if self.d_model % self.num_heads:
            raise ValueError(
                "`d_model` must be divisible by `num_heads`. Received: "
                f"d_model={d_model}, num_heads={num_heads}"
            )
        self.num_layers = check_positive_int(num_layers, "num_layers")
        self.mlp_ratio = check_positive_int(mlp_ratio, "mlp_ratio")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        self.dropout = float(dropout)
        self.layer_norm_epsilon = float(layer_norm_epsilon)

        policy = self.dtype_policy
        self.token_embedding = keras_layers.Embedding(
            self.vocab_size, self.d_model, name="token_embedding", dtype=policy
        )
        self.position_embedding = keras_layers.Embedding(
            self.context_length, self.d_model, name="position_embedding", dtype=policy
        )
        self.embedding_dropout = keras_layers.Dropout(self.dropout)
        self.blocks = [
            TransformerBlock(
                self.num_heads,
                mlp_ratio=self.mlp_ratio,
                dropout=self.dropout,
                layer_norm_epsilon=self.layer_norm_epsilon,
                name=f"block_{i}",
                dtype=policy,
            )
            for i in range(self.num_layers)
        ]
        self.final_norm = keras_layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="final_norm", dtype=policy
        )
        self.lm_head = keras_layers.Dense(self.vocab_size, name="lm_head", dtype=policy)
        self.build((None, self.context_length))

    def build(self, input_shape=None):
        shape = (None, None, self.d_model)
        self.token_embedding.build((None, None))
        self.position_embedding.build((None,))
        for block in self.blocks:
            block.build(shape)
        self.final_norm.build(shape)
        self.lm_head.build(shape)
        self.built = True

    @property
    def window_length(self):
        return self.context_length

    @property
    def max_sequence_length(self):
        return self.context_length

    # ------------------------------------------------------------------
    # Forward passes.
    # ------------------------------------------------------------------
    def _embed(self, tokens, offset=0, training=False):
        length = tf.shape(tokens)[1]
        positions = tf.range(length) + offset
        x = self.token_embedding(tokens) + self.position_embedding(positions)[None]
        return self.embedding_dropout(x, training=training)

    def _head(self, x):
        return tf.cast(self.lm_head(self.final_norm(x)), "float32")

    def call(self, tokens, training=False):
        x = self._embed(tokens, training=training)
        for block in self.blocks:
            x = block(x, training=training)
        return self._head(x)

    def _fill_cache(self, tokens):
        """Runs a window and returns its last logits and padded caches."""
        x = self._embed(tokens)
        pad = self.context_length - tf.shape(tokens)[1]
        caches = []
        for block in self.blocks:
            x, (k, v) = block(x, return_cache=True)
            paddings = [[0, 0], [0, 0], [0, pad], [0, 0]]
            caches.append((tf.pad(k, paddings), tf.pad(v, paddings)))
        return self._head(x[:, -1:])[:, 0], caches

    def _shared_fill_cache(self, tokens):
        """`_fill_cache` traced once for any window and every generation loop."""
        fn = self.traced_function(
            ("fill_cache",),
            self._fill_cache,
            input_signature=[tf.TensorSpec([None, None], tf.int32)],
            autograph=False,
        )
        logits, caches = fn(tf.cast(tokens, tf.int32))
        batch = tokens.shape[0]  # Static shapes the function's outputs lost.
        logits.set_shape([batch, None])
        for tensor in tf.nest.flatten(caches):
            tensor.set_shape([batch, None, self.context_length, None])
        return logits, caches

    def _cache_step(self, token, caches, position):
        """Feeds `token` `(batch,)` at `position`; returns logits and caches."""
        x = self._embed(token[:, None], offset=position)
        new_caches = []
        for block, (k, v) in zip(self.blocks, caches):
            x, k, v = block.step(x, k, v, position)
            new_caches.append((k, v))
        return self._head(x)[:, 0], new_caches

    # ------------------------------------------------------------------
    # Cached decoding: state = (caches, the window's tokens, next position).
    # ------------------------------------------------------------------
    def _prefill(self, prompt):
        """Fills the cache from the last `context_length` prompt tokens."""
        size = self.context_length
        prompt_length = tf.shape(prompt)[1]
        keep = tf.minimum(prompt_length, size)
        window = prompt[:, prompt_length - keep :]
        logits, caches = self._shared_fill_cache(window)
        history = tf.pad(window, [[0, 0], [0, size - keep]])
        return logits, (caches, history, keep)

    def _decode_step(self, token, state):
        """One cached step; a full window is first refilled from its last half."""
        caches, history, position = state
        size = self.context_length
        half = max(size // 2, 1)

        def refill():
            recent = history[:, size - half :]
            _, new_caches = self._shared_fill_cache(recent)
            return new_caches, tf.pad(recent, [[0, 0], [0, size - half]]), half

        caches, history, position = tf.cond(
            position >= size, refill, lambda: (caches, history, position)
        )
        slot = tf.one_hot(position, size, dtype=tf.int32)[None]
        history = history * (1 - slot) + token[:, None] * slot
        logits, caches = self._cache_step(token, caches, position)
        return logits, (caches, history, position + 1)

    # ------------------------------------------------------------------
    # Scoring and evaluation.
    # ------------------------------------------------------------------
    def _frames(self, tokens):
        """The windows of `frames.frame_tokens` with stride `context_length // 2`.

        Returns:
            `(frames (K, context_length) int32, mask (K, context_length - 1)
            float32)`, the mask marking the targets each window scores.
        """
        stride = max(self.context_length // 2, 1)
        windows, scored, _ = frames.frame_tokens(tokens, self.context_length, stride)
        return windows, tf.cast(scored, "float32")

    def _frame_nll(self, windows, mask):
        logits = self(windows[:, :-1])
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(windows[:, 1:], logits)
        return tf.reduce_sum(nll * mask), tf.reduce_sum(mask)

    def _bits_per_char(self, text):
        tokens = tokenizer.tf_encode(text)
        nll, count = self._frame_nll(*self._frames(tokens))
        return nll / tf.maximum(count, 1.0) / LN2

    def bits_per_char(self, tokens, batch_size=64):
        """Bits per byte of a token stream, every byte scored once.

        Args:
            tokens: 1-D int array of byte ids (or a `str`).
            batch_size: Windows per forward pass.

        Returns:
            A float: `-sum log2 p(x_t | context) / len(tokens)`, the context
            being at least `context_length // 2` previous bytes after the
            first window (`keras_genmodels.autoregressive.frames`).
        """
        from keras_genmodels import progress

        tokens = tokenizer.text_ids(tokens, "score")
        batch_size = check_positive_int(batch_size, "batch_size")
        windows, mask = self._frames(tf.constant(tokens))
        nll_fn = self.traced_function(("frame_nll",), self._frame_nll)
        total, count = 0.0, 0.0
        starts = range(0, int(windows.shape[0]), batch_size)
        description = (
            f"Bits per character on {len(tokens):,} bytes "
            f"({int(windows.shape[0]):,} windows of {self.context_length})"
        )
        for start in progress.track(starts, len(starts), description, "batch"):
            nll, n = nll_fn(
                windows[start : start + batch_size], mask[start : start + batch_size]
            )
            total += float(nll)
            count += float(n)
        return total / count / LN2

    def dynamic_bits_per_char(
        self,
        tokens,
        learning_rate=dynamic_evaluation.DEFAULT_LEARNING_RATE,
        stride=None,
    ):
        """Bits per byte while the model keeps learning from the text it scores.

        Dynamic evaluation (Krause et al., 2018; see
        `keras_genmodels.autoregressive.dynamic_evaluation`): the text is
        read in segments of `stride` bytes, each scored with the current
        weights and then learned from with one SGD step on its window. Like
        `xz` coding a text, every byte is predicted from the bytes before it
        only, so the result is a code length. The model's weights are
        restored afterwards.

        Args:
            tokens: 1-D int array of byte ids (or a `str`).
            learning_rate: SGD step size after each segment; 0 gives
                `bits_per_char`.
            stride: Bytes per segment; default `context_length // 2`.

        Returns:
            A float, bits per UTF-8 byte.
        """
        return dynamic_evaluation.dynamic_bits_per_char(
            self, tokens, learning_rate, stride
        )

    def evaluation_metrics(
        self,
        dataset,
        batch_size=64,
        dataset_name=None,
        dynamic_learning_rate=dynamic_evaluation.DEFAULT_LEARNING_RATE,
        **kwargs,
    ):
        """Test bits per character (UTF-8 byte), static and dynamic, and `xz -9`.

        Args:
            dataset: Unbatched test-split dataset of byte ids.
            batch_size: Windows per forward pass.
            dataset_name: The data set's name; when given (as the command
                does), the conditional `xz -9e` rate of the test split after
                the train split is computed too.
            dynamic_learning_rate: Step size of `dynamic_bits_per_char`;
                `None` leaves that figure out.
            **kwargs: Ignored.

        Returns:
            `{"bits_per_char", "num_chars", "context_length"}`, plus
            `"dynamic_bits_per_char"` and `"dynamic_learning_rate"` unless
            `dynamic_learning_rate` is `None`, and `"xz_bits_per_char"` when
            `dataset_name` is given.
        """
        tokens = self.test_tokens(dataset)
        metrics = super().evaluation_metrics(tokens, batch_size)
        metrics["context_length"] = self.context_length
        if dynamic_learning_rate is not None:
            metrics["dynamic_bits_per_char"] = self.dynamic_bits_per_char(
                tokens, dynamic_learning_rate
            )
            metrics["dynamic_learning_rate"] = dynamic_learning_rate
        if dataset_name is not None:
            from keras_genmodels.evaluation import xz_baseline

            metrics["xz_bits_per_char"] = xz_baseline.dataset_rate(dataset_name)
        return metrics

    # ------------------------------------------------------------------
    # Export.
    # ------------------------------------------------------------------
    @property
    def serving_limits(self):
        """The limits the serving signatures enforce (`ServingLimits`).

        `next_token_logits`, `prefill` and `decode` run full windows or
        carry a whole cache per row, so they take at most 64 rows by
        default.
        """
        return self.text_serving_limits(
            {
                "next_token_logits": ("batch_size",),
                "prefill": ("batch_size",),
                "decode": ("batch_size",),
            },
            defaults={"batch_size": 64},
        )

    def serving_endpoints(self, limits=None):
        """`generate`, `score`, `sample`, `next_token_logits`, `prefill` and
        `decode`, every input checked in the graph.

        `prefill` and `decode` are the key/value-cache steps of
        `keras_genmodels.autoregressive.kv_cache`.

        Args:
            limits: Optional `{limit name: int}` replacing the defaults of
                `serving_limits`.
        """
        batch_limit = self.serving_limits.resolve(limits)["batch_size"]
        return {
            **super().serving_endpoints(limits),
            **self._network_endpoints(None, batch_limit),
        }

    def _network_endpoints(self, batch_size, limit=None):
        """`next_token_logits` (the whole window per byte) and the cached
        `prefill` and `decode` (one position per byte); with a row `limit`
        (serving) their inputs are checked in the graph."""
        return {
            "next_token_logits": self._next_token_endpoint(batch_size, limit),
            "prefill": kv_cache.prefill_endpoint(self, batch_size, limit),
            "decode": kv_cache.decode_endpoint(self, batch_size, limit),
        }

    def _next_token_endpoint(self, batch_size, limit=None):
        """`next_token_logits`; with a row `limit` (serving) its inputs are
        checked: token ids in `[0, vocab_size)`, `length` in
        `[1, context_length]`."""
        tokens_shape = [batch_size, self.context_length]

        @tf.function(
            input_signature=[
                tf.TensorSpec(tokens_shape, tf.int32, name="tokens"),
                tf.TensorSpec([batch_size], tf.int32, name="length"),
            ]
        )
        def next_token_logits(tokens, length):
            if limit is not None:
                checks = InputChecks()
                tokens = checks.batch(
                    "tokens", tokens, tokens_shape, limit, low=0, high=self.vocab_size - 1
                )
                length = checks.shape("length", length, [None])
                checks.same_rows(tokens=tokens, length=length)
                checks.values("length", length, 1, self.context_length)
                tokens, length = checks.gate(tokens, length)
            return {"logits": decoding.last_logits(self(tokens), length)}

        return next_token_logits

    def tflite_endpoints(self, batch_size=1):
        """The network's three signatures with static shapes, unchecked."""
        return self._network_endpoints(batch_size)

    def signature_examples(self, batch_size=1):
        rng = np.random.default_rng(0)
        tokens = rng.integers(32, 127, (batch_size, self.context_length)).astype("int32")
        length = rng.integers(1, self.context_length + 1, batch_size).astype("int32")
        return {
            **super().signature_examples(),
            "next_token_logits": {"tokens": tokens, "length": length},
            **kv_cache.signature_examples(self, batch_size),
        }
