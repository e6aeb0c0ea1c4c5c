"""A decoder-only byte-level transformer language model."""

import functools
import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers as keras_layers

from keras_genmodels.autoregressive import (
    dynamic_evaluation,
    sampling,
    tokenizer,
    windows,
)
from keras_genmodels.autoregressive.layers import TransformerBlock
from keras_genmodels.autoregressive.text_serving import (
    text_endpoints,
    text_signature_examples,
)
from keras_genmodels.base import GenerativeModel, check_positive_int
from keras_genmodels.serving_limits import InputChecks, ServingLimits

_LN2 = math.log(2.0)


@keras.saving.register_keras_serializable(package="keras_genmodels")
class TransformerLM(GenerativeModel):
    """Decoder-only transformer over UTF-8 bytes with cached generation.

    Tokens are bytes (`vocab_size=256`, no tokenizer file). The model is
    `logits = Dense(LN(Block_L(...Block_1(E_tok[x] + E_pos[t]))))` with
    pre-norm blocks of causal self-attention and a GELU MLP, trained with the
    next-byte cross entropy `-mean_t log p(x_{t+1} | x_{<=t})`. Trackers:
    `loss` (nats per byte), `bits_per_char` (`loss / ln 2`, per UTF-8 byte)
    and `accuracy`.

    `generate` fills a key/value cache from the prompt and runs the whole
    sampling loop in one `tf.function`, built once and reused (the token
    loop inside it XLA-compiled unless `jit_compile=False`): each new token
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

    data_kind = "text"
    tflite_tolerance = 1e-3

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
        super().__init__(seed=seed, **kwargs)
        self.vocab_size = check_positive_int(vocab_size, "vocab_size")
        if self.vocab_size > tokenizer.VOCAB_SIZE:
            raise ValueError(
                "`vocab_size` is at most 256 (byte tokens). "
                f"Received: vocab_size={vocab_size}"
            )
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
        self.add_loss_trackers("loss", "bits_per_char", "accuracy")
        self._generate_fn = None
        self._naive_generate_fn = None
        self._decode_xla_fn = None
        self._generate_graph_fn = None
        self._nll_fn = None
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

    def _prefill(self, tokens):
        """Runs a window and returns its last logits and padded caches."""
        x = self._embed(tokens)
        pad = self.context_length - tf.shape(tokens)[1]
        caches = []
        for block in self.blocks:
            x, (k, v) = block(x, return_cache=True)
            paddings = [[0, 0], [0, 0], [0, pad], [0, 0]]
            caches.append((tf.pad(k, paddings), tf.pad(v, paddings)))
        return self._head(x[:, -1:])[:, 0], caches

    def _step(self, token, caches, position):
        """Feeds `token` `(batch,)` at `position`; returns logits and caches."""
        x = self._embed(token[:, None], offset=position)
        new_caches = []
        for block, (k, v) in zip(self.blocks, caches):
            x, k, v = block.step(x, k, v, position)
            new_caches.append((k, v))
        return self._head(x)[:, 0], new_caches

    def _last_logits(self, tokens, length):
        """Logits after `length[b]` tokens of each row of a padded window."""
        logits = self(tokens)
        pick = tf.one_hot(length - 1, tf.shape(tokens)[1], dtype=logits.dtype)
        return tf.reduce_sum(logits * pick[:, :, None], axis=1)

    # ------------------------------------------------------------------
    # Training.
    # ------------------------------------------------------------------
    def compute_losses(self, data, training=False):
        tokens, targets, _ = keras.utils.unpack_x_y_sample_weight(data)
        logits = self(tokens, training=training)
        targets = tf.cast(targets, "int32")
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits)
        )
        predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
        accuracy = tf.reduce_mean(tf.cast(tf.equal(predicted, targets), "float32"))
        return {"loss": loss, "bits_per_char": loss / _LN2, "accuracy": accuracy}

    def prepare_dataset(self, dataset, batch_size, shuffle=True, drop_remainder=False):
        """Cuts a byte stream into `(tokens, next tokens)` windows and batches.

        Args:
            dataset: Unbatched dataset of int byte ids (as from
                `keras_genmodels.data.load("pydoc")`), or a 1-D array.
            batch_size: Positive int.
            shuffle: Random window offsets each epoch (training); otherwise
                consecutive non-overlapping windows (evaluation).
            drop_remainder: Whether to drop the last partial batch.

        Returns:
            A batched dataset of `(tokens, targets)`, each
            `(batch, context_length)` int32; one epoch is about one pass over
            the text.
        """
        batch_size = check_positive_int(batch_size, "batch_size")
        values = windows.stream_array(dataset, "int32")
        length = self.context_length + 1
        if len(values) < length:
            raise ValueError(
                f"The text has {len(values)} bytes; training windows need "
                f"context_length + 1 = {length}."
            )
        pairs = windows.next_step_pairs(
            windows.window_dataset(
                values, length, self.context_length, shuffle, seed=self.seed
            )
        )
        return windows.batch_windows(pairs, batch_size, drop_remainder)

    # ------------------------------------------------------------------
    # Generation.
    # ------------------------------------------------------------------
    def _generate_tokens(
        self, prompt, max_new_tokens, temperature, top_k, top_p, seed, jit_compile=False
    ):
        """Cached generation: `(batch, max_new_tokens)` int32 new tokens.

        The prompt fills the cache in the calling graph; the token loop runs
        in `_decode`, XLA-compiled when `jit_compile`. XLA compiles once per
        batch size and power-of-two bucket of `max_new_tokens` (the noise is
        padded to the bucket; the loop still stops after `max_new_tokens`),
        whatever the prompt length.
        """
        size = self.context_length
        prompt_length = tf.shape(prompt)[1]
        keep = tf.minimum(prompt_length, size)
        window = prompt[:, prompt_length - keep :]
        logits, caches = self._prefill(window)
        history = tf.pad(window, [[0, 0], [0, size - keep]])
        batch = tf.shape(prompt)[0]
        uniform = tf.random.stateless_uniform(
            tf.stack([max_new_tokens, batch, self.vocab_size]), seed=seed
        )
        decode = self._decode
        if jit_compile:
            exponent = tf.math.ceil(
                tf.math.log(tf.cast(max_new_tokens, tf.float32)) / _LN2 - 1e-4
            )
            slots = tf.maximum(
                tf.maximum(tf.cast(2.0**exponent, tf.int32), max_new_tokens), 64
            )
            uniform = tf.pad(
                uniform, [[0, slots - max_new_tokens], [0, 0], [0, 0]], constant_values=0.5
            )
            if self._decode_xla_fn is None:
                self._decode_xla_fn = tf.function(self._decode, jit_compile=True)
            decode = self._decode_xla_fn
        tokens = decode(
            logits, caches, history, keep, uniform, max_new_tokens, temperature, top_k, top_p
        )
        return tf.transpose(tokens[:max_new_tokens], [1, 0])

    def _decode(
        self, logits, caches, history, position, uniform, max_new_tokens, temperature,
        top_k, top_p,
    ):
        """The sampling loop after the prefill: `(len(uniform), batch)` tokens.

        Each new token costs one single-position pass through the cache; when
        the window is full the cache is refilled from the last half of it.
        Only the first `max_new_tokens` rows of the result are written.
        """
        size = self.context_length
        half = max(size // 2, 1)
        output = tf.TensorArray(tf.int32, size=tf.shape(uniform)[0])

        def refill(caches, history):
            recent = history[:, size - half :]
            _, new_caches = self._prefill(recent)
            return new_caches, tf.pad(recent, [[0, 0], [0, size - half]]), half

        def body(i, logits, caches, history, position, output):
            token = sampling.sample_next(logits, uniform[i], temperature, top_k, top_p)
            output = output.write(i, token)
            caches, history, position = tf.cond(
                position >= size,
                lambda: refill(caches, history),
                lambda: (caches, history, position),
            )
            slot = tf.one_hot(position, size, dtype=tf.int32)[None]
            history = history * (1 - slot) + token[:, None] * slot
            logits, caches = self._step(token, caches, position)
            return i + 1, logits, caches, history, position + 1, output

        loop_vars = (tf.constant(0), logits, caches, history, position, output)
        *_, output = tf.while_loop(
            lambda i, *_: i < max_new_tokens, body, loop_vars
        )
        return output.stack()

    def _naive_generate_tokens(self, prompt, max_new_tokens, temperature, top_k, top_p, seed):
        """Generation without a cache: every token re-runs all tokens so far.

        Same sampling and noise as `_generate_tokens`, so the same tokens come
        out; used by the speed benchmark and the tests. Prompt plus new tokens
        must fit in `context_length`.
        """
        size = self.context_length
        prompt_length = tf.shape(prompt)[1]
        batch = tf.shape(prompt)[0]
        window = tf.pad(prompt, [[0, 0], [0, size - prompt_length]])
        uniform = tf.random.stateless_uniform(
            tf.stack([max_new_tokens, batch, self.vocab_size]), seed=seed
        )
        output = tf.TensorArray(tf.int32, size=max_new_tokens)

        def body(i, window, length, output):
            logits = self(window[:, :length])[:, -1]
            token = sampling.sample_next(logits, uniform[i], temperature, top_k, top_p)
            slot = tf.one_hot(length, size, dtype=tf.int32)[None]
            window = window * (1 - slot) + token[:, None] * slot
            return i + 1, window, length + 1, output.write(i, token)

        *_, output = tf.while_loop(
            lambda i, *_: i < max_new_tokens,
            body,
            (tf.constant(0), window, prompt_length, output),
        )
        return tf.transpose(output.stack(), [1, 0])

    def _compiled(self, attribute, fn):
        if getattr(self, attribute) is None:
            setattr(
                self,
                attribute,
                tf.function(
                    fn,
                    input_signature=[
                        tf.TensorSpec([None, None], tf.int32),
                        tf.TensorSpec([], tf.int32),
                        tf.TensorSpec([], tf.float32),
                        tf.TensorSpec([], tf.int32),
                        tf.TensorSpec([], tf.float32),
                        tf.TensorSpec([2], tf.int32),
                    ],
                ),
            )
        return getattr(self, attribute)

    def generate_tokens(
        self,
        prompt_tokens,
        max_new_tokens,
        temperature=1.0,
        top_k=None,
        top_p=None,
        seed=None,
        use_cache=True,
        jit_compile=True,
    ):
        """Generates byte ids after a batch of equal-length prompts.

        Args:
            prompt_tokens: `(batch, length)` int array, `length >= 1`.
            max_new_tokens: Positive int.
            temperature: 0 for greedy decoding, else the softmax temperature.
            top_k: Keep only the k most likely bytes (`None`: all).
            top_p: Keep the smallest set of bytes with this much probability
                (`None`: all).
            seed: `None`, an int or a pair of ints.
            use_cache: `False` re-runs the model over all tokens so far for
                every new token (for benchmarks and tests; prompt plus new
                tokens must then fit in `context_length`).
            jit_compile: Whether the cached loop runs XLA-compiled (several
                times faster per token on a CPU; the first call for a batch
                size and a power-of-two bucket of `max_new_tokens` compiles
                it). The exported `generate` signature runs the same loop
                without XLA.

        Returns:
            `(batch, max_new_tokens)` int32 numpy array.
        """
        prompt_tokens = np.asarray(prompt_tokens)
        if prompt_tokens.ndim != 2 or prompt_tokens.shape[1] < 1:
            raise ValueError(
                "`prompt_tokens` must have shape (batch, length >= 1). "
                f"Received: shape {prompt_tokens.shape}"
            )
        max_new_tokens = check_positive_int(max_new_tokens, "max_new_tokens")
        temperature, top_k, top_p = sampling.check_sampling_arguments(
            temperature, top_k, top_p
        )
        if use_cache and jit_compile:
            fn = self._compiled(
                "_generate_fn", functools.partial(self._generate_tokens, jit_compile=True)
            )
        elif use_cache:
            fn = self._compiled("_generate_graph_fn", self._generate_tokens)
        else:
            if prompt_tokens.shape[1] + max_new_tokens > self.context_length:
                raise ValueError(
                    "Without the cache, prompt plus new tokens must fit in "
                    f"context_length={self.context_length}. Received: "
                    f"{prompt_tokens.shape[1]} + {max_new_tokens}"
                )
            fn = self._compiled("_naive_generate_fn", self._naive_generate_tokens)
        tokens = fn(
            tf.constant(prompt_tokens, tf.int32),
            tf.constant(max_new_tokens, tf.int32),
            tf.constant(temperature, tf.float32),
            tf.constant(top_k, tf.int32),
            tf.constant(top_p, tf.float32),
            self.resolve_seed(seed),
        )
        return tokens.numpy()

    def generate(
        self, prompt, max_new_tokens=256, temperature=1.0, top_k=None, top_p=None, seed=None
    ):
        """Continues a text prompt.

        The compiled loop is built on the first call and reused. The same
        seed gives the same text here and in the exported `generate`
        signature (which takes no `top_p`).

        Args:
            prompt: `str`; an empty prompt starts from a newline.
            max_new_tokens: Number of bytes to generate.
            temperature: 0 for greedy decoding, else the softmax temperature.
            top_k: Keep only the k most likely bytes (`None`: all).
            top_p: Nucleus sampling threshold (`None`: off).
            seed: `None`, an int or a pair of ints.

        Returns:
            The generated continuation, a `str` (invalid UTF-8 becomes
            U+FFFD).

        Example:

        ```python
        lm.generate("def ", max_new_tokens=64, temperature=0.7, top_k=20, seed=1)
        ```
        """
        if not isinstance(prompt, str):
            raise ValueError(f"`prompt` must be a str. Received: prompt={prompt!r}")
        tokens = tokenizer.encode(prompt)
        if len(tokens) == 0:
            tokens = np.array([tokenizer.START_TOKEN], "int32")
        new = self.generate_tokens(
            tokens[None], max_new_tokens, temperature, top_k, top_p, seed
        )
        return tokenizer.decode(new[0])

    def sample(self, num_samples, seed=None, max_new_tokens=256, temperature=1.0,
               top_k=None, top_p=None):
        """Generates `num_samples` texts from an empty prompt.

        Args:
            num_samples: Positive int.
            seed: `None`, an int or a pair of ints.
            max_new_tokens: Bytes per sample.
            temperature: Softmax temperature (0: greedy).
            top_k: Optional top-k filter.
            top_p: Optional nucleus filter.

        Returns:
            A list of `num_samples` strings.
        """
        num_samples = check_positive_int(num_samples, "num_samples")
        prompts = np.full((num_samples, 1), tokenizer.START_TOKEN, "int32")
        tokens = self.generate_tokens(
            prompts, max_new_tokens, temperature, top_k, top_p, seed
        )
        return [tokenizer.decode(row) for row in tokens]

    # ------------------------------------------------------------------
    # Scoring and evaluation.
    # ------------------------------------------------------------------
    def _frames(self, tokens):
        """Overlapping windows that score every token once with long context.

        The text is prefixed with the start token. Windows of
        `context_length` start every `half = context_length // 2` tokens; the
        first window scores all its targets, later ones only their last
        `half`, so each target (after the first window) sees at least `half`
        tokens of context.

        Returns:
            `(frames (K, context_length) int32, mask (K, context_length - 1)
            float32)`.
        """
        size = self.context_length
        half = max(size // 2, 1)
        sequence = tf.concat([[tokenizer.START_TOKEN], tf.cast(tokens, tf.int32)], 0)
        total = tf.shape(sequence)[0]
        frames = tf.signal.frame(sequence, size, half, pad_end=True, pad_value=0)
        count = tf.shape(frames)[0]
        target_index = (
            tf.range(count)[:, None] * half + tf.range(1, size)[None, :]
        )  # position in `sequence` of each target
        first = tf.equal(tf.range(count), 0)[:, None]
        fresh = tf.range(1, size)[None, :] >= size - half
        mask = (target_index < total) & (first | fresh)
        return frames, tf.cast(mask, "float32")

    def _frame_nll(self, frames, mask):
        logits = self(frames[:, :-1])
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(frames[:, 1:], logits)
        return tf.reduce_sum(nll * mask), tf.reduce_sum(mask)

    def _bits_per_char(self, text):
        tokens = tokenizer.tf_encode(text)
        nll, count = self._frame_nll(*self._frames(tokens))
        return nll / tf.maximum(count, 1.0) / _LN2

    def bits_per_char(self, tokens, batch_size=64):
        """Bits per byte of a token stream, every byte scored once.

        Args:
            tokens: 1-D int array of byte ids (or a `str`).
            batch_size: Windows per forward pass.

        Returns:
            A float: `-sum log2 p(x_t | context) / len(tokens)`, the context
            being at least `context_length // 2` previous bytes after the
            first window.
        """
        from keras_genmodels import progress

        tokens = tokenizer.text_ids(tokens, "score")
        batch_size = check_positive_int(batch_size, "batch_size")
        frames, mask = self._frames(tf.constant(tokens))
        if self._nll_fn is None:
            self._nll_fn = tf.function(self._frame_nll)
        total, count = 0.0, 0.0
        starts = range(0, int(frames.shape[0]), batch_size)
        description = (
            f"Bits per character on {len(tokens):,} bytes "
            f"({int(frames.shape[0]):,} windows of {self.context_length})"
        )
        for start in progress.track(starts, len(starts), description, "batch"):
            nll, n = self._nll_fn(
                frames[start : start + batch_size], mask[start : start + batch_size]
            )
            total += float(nll)
            count += float(n)
        return total / count / _LN2

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
        del kwargs
        tokens = windows.stream_array(dataset, "int32")
        if len(tokens) == 0:
            raise ValueError("The test text is empty: no bytes to score.")
        metrics = {
            "bits_per_char": self.bits_per_char(tokens, batch_size),
            "num_chars": int(len(tokens)),
            "context_length": self.context_length,
        }
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
    #: Default model name of an export (`BASE/NAME/VERSION`); the byte RNN's
    #: is `ar-rnn-text`, so the two never share a servable.
    default_export_name = "ar-transformer"

    @property
    def serving_limits(self):
        """The limits the serving signatures enforce (`ServingLimits`).

        `next_token_logits` runs full windows, so it takes at most 64 rows
        by default.
        """
        return ServingLimits(
            {
                "generate": ("prompt", "max_new_tokens"),
                "score": ("text",),
                "next_token_logits": ("batch_size",),
            },
            defaults={"batch_size": 64},
        )

    def serving_endpoints(self, limits=None):
        """The `generate`, `score` and `next_token_logits` signatures, every
        input checked in the graph.

        Args:
            limits: Optional `{limit name: int}` replacing the defaults of
                `serving_limits`.
        """
        limits = self.serving_limits.resolve(limits)
        return {
            **text_endpoints(
                self._generate_tokens, self._bits_per_char, limits, self.vocab_size
            ),
            "next_token_logits": self._next_token_endpoint(None, limits["batch_size"]),
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
            return {"logits": self._last_logits(tokens, length)}

        return next_token_logits

    def tflite_endpoints(self, batch_size=1):
        return {"next_token_logits": self._next_token_endpoint(batch_size)}

    def signature_examples(self, batch_size=1):
        rng = np.random.default_rng(0)
        tokens = rng.integers(32, 127, (batch_size, self.context_length)).astype("int32")
        length = rng.integers(1, self.context_length + 1, batch_size).astype("int32")
        return {
            **text_signature_examples(),
            "next_token_logits": {"tokens": tokens, "length": length},
        }

    # ------------------------------------------------------------------
    # Serialization.
    # ------------------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocab_size": self.vocab_size,
                "context_length": self.context_length,
                "d_model": self.d_model,
                "num_heads": self.num_heads,
                "num_layers": self.num_layers,
                "mlp_ratio": self.mlp_ratio,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
