"""`ByteLanguageModel`: what every byte-level language model shares.

A byte language model predicts the next UTF-8 byte from the bytes before it.
`RNNLanguageModel` and `TransformerLM` differ only in their network; this
base class gives both the next-byte cross entropy (with bits per character
and accuracy), the training windows, text generation through
`keras_genmodels.autoregressive.decoding`, `sample` (a `list[str]`), the
string-in, string-out serving signatures (`generate`, `score`, `sample`)
and the held-out bits per character.

A subclass supplies:

- `call(tokens)`: `(batch, length)` ids to `(batch, length, vocab_size)`
  float32 logits (causal);
- `window_length` and `window_name`: the training window and the argument
  it comes from;
- `_prefill(prompt) -> (logits, state)` and
  `_decode_step(token, state) -> (logits, state)`: the cached decoding of
  `decoding.cached` (an RNN state, a key/value cache);
- `_bits_per_char(text)`: bits per byte of a string scalar, in TensorFlow
  (the `score` signature), and `bits_per_char(tokens, batch_size)`.
"""

import functools
import math

import keras
import numpy as np
import tensorflow as tf

from keras_genmodels.autoregressive import decoding, sampling, tokenizer, windows
from keras_genmodels.autoregressive.text_serving import TextSignatures
from keras_genmodels.base import GenerativeModel, check_positive_int

LN2 = math.log(2.0)

#: The input signature of the compiled generation functions.
_GENERATE_SPECS = [
    tf.TensorSpec([None, None], tf.int32),
    tf.TensorSpec([], tf.int32),
    tf.TensorSpec([], tf.float32),
    tf.TensorSpec([], tf.int32),
    tf.TensorSpec([], tf.float32),
    tf.TensorSpec([2], tf.int32),
]


def byte_losses(logits, targets):
    """Next-byte cross entropy, bits per character and accuracy.

    Args:
        logits: `(batch, length, vocab)` float32 logits.
        targets: `(batch, length)` int next-byte ids.

    Returns:
        `{"loss": nats per byte, "bits_per_char": loss / ln 2, "accuracy":
        fraction of argmax hits}`, float32 scalars.
    """
    targets = tf.cast(targets, "int32")
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits))
    predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
    accuracy = tf.reduce_mean(tf.cast(tf.equal(predicted, targets), "float32"))
    return {"loss": loss, "bits_per_char": loss / LN2, "accuracy": accuracy}


def check_vocab_size(vocab_size):
    """A positive int of at most 256 (the byte tokens)."""
    vocab_size = check_positive_int(vocab_size, "vocab_size")
    if vocab_size > tokenizer.VOCAB_SIZE:
        raise ValueError(
            f"`vocab_size` is at most 256 (byte tokens). Received: vocab_size={vocab_size}"
        )
    return vocab_size


class ByteLanguageModel(TextSignatures, GenerativeModel):
    """Base class of the byte-level language models (see the module).

    Trackers: `loss` (nats per byte), `bits_per_char` (`loss / ln 2`, per
    UTF-8 byte) and `accuracy`.

    Args:
        vocab_size: Number of token ids, at most 256 (bytes).
        seed: Optional int seed of unseeded sampling.
        **kwargs: Passed to `keras.Model`.
    """

    data_kind = "text"
    sample_output_name = "text"
    #: Whether `generate` XLA-compiles its cached token loop by default
    #: (`jit_compile=None`: see `use_xla`).
    jit_generation = False
    #: With `jit_generation`, a call of at least this many new tokens is
    #: XLA-compiled at once: the compilation pays back within the call.
    xla_min_new_tokens = 2048
    #: Longest sequence `call` accepts (`None`: any), which bounds the
    #: `prefix` strategy.
    max_sequence_length = None

    def __init__(self, vocab_size=tokenizer.VOCAB_SIZE, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.vocab_size = check_vocab_size(vocab_size)
        self.add_loss_trackers("loss", "bits_per_char", "accuracy")

    @property
    def default_max_new_tokens(self):
        """Bytes `generate` and `sample` add when `max_new_tokens` is `None`."""
        return 256

    # ------------------------------------------------------------------
    # Training.
    # ------------------------------------------------------------------
    def compute_losses(self, data, training=False):
        tokens, targets, _ = keras.utils.unpack_x_y_sample_weight(data)
        return byte_losses(self(tokens, training=training), targets)

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
            `(batch, window_length)` int32; one epoch is about one pass over
            the text.
        """
        batch_size = check_positive_int(batch_size, "batch_size")
        values = windows.stream_array(dataset, "int32")
        pairs = windows.training_pairs(
            values, self.window_length, self.window_name, self.window_length, shuffle,
            seed=self.seed, subject="The text", unit="bytes",
        )
        return windows.batch_windows(pairs, batch_size, drop_remainder)

    # ------------------------------------------------------------------
    # Generation.
    # ------------------------------------------------------------------
    def _generate_graph(
        self, prompt, max_new_tokens, temperature, top_k, top_p, seed,
        strategy="cached", jit_compile=False,
    ):
        """New tokens `(batch, max_new_tokens)` int32, in TensorFlow.

        Arguments as in `generate_tokens`, as tensors (`top_k = 0` and
        `top_p = 1` switch the filters off). `jit_compile` XLA-compiles the
        cached token loop after the prefill, or the window's forward pass of
        `full_window`; the exported signatures run without XLA.
        """
        args = (max_new_tokens, temperature, top_k, top_p, seed, self.vocab_size)
        if strategy == "prefix":
            return decoding.prefix(self, prompt, *args)
        if strategy == "full_window":
            forward = self
            if jit_compile:
                forward = self.traced_function(
                    ("forward_xla",), self.__call__, jit_compile=True
                )
            return decoding.full_window(forward, self.window_length, prompt, *args)
        loop = None
        if jit_compile:
            loop = self.traced_function(
                ("decode_loop_xla",),
                functools.partial(decoding.decode_loop, self._decode_step),
                jit_compile=True,
                autograph=False,
            )
        return decoding.cached(self._prefill, self._decode_step, prompt, *args, loop=loop)

    def generate_tokens(
        self, prompt_tokens, max_new_tokens=None, temperature=1.0, top_k=None,
        top_p=None, seed=None, strategy="cached", jit_compile=None,
    ):
        """Generates byte ids after a batch of equal-length prompts.

        The loop runs in one `tf.function`, traced once per strategy and
        reused. The strategies (`keras_genmodels.autoregressive.decoding`)
        give the same tokens for the same seed while the prompt and the new
        tokens fit in the model's window.

        Args:
            prompt_tokens: `(batch, length)` int array, `length >= 1`.
            max_new_tokens: Positive int (default `default_max_new_tokens`).
            temperature: 0 for greedy decoding, else the softmax temperature.
            top_k: Keep only the k most likely bytes (`None`: all).
            top_p: Keep the smallest set of bytes with this much probability
                (`None`: all).
            seed: `None`, an int or a pair of ints.
            strategy: `"cached"` (one step per token on a state filled from
                the prompt), `"prefix"` (re-runs the model over all tokens so
                far) or `"full_window"` (re-runs it over a padded window of
                `window_length`, sliding once full).
            jit_compile: Whether the cached token loop (or the full window's
                forward pass) is XLA-compiled: several times faster per token
                on a CPU for a transformer once compiled. Default `None`:
                decided by `use_xla` (a bucket's first call runs as a graph,
                its later ones compiled). The exported `generate` signature
                runs the cached loop without XLA.

        Returns:
            `(batch, max_new_tokens)` int32 numpy array.
        """
        prompt_tokens = np.asarray(prompt_tokens)
        if prompt_tokens.ndim != 2 or prompt_tokens.shape[1] < 1:
            raise ValueError(
                "`prompt_tokens` must have shape (batch, length >= 1). "
                f"Received: shape {prompt_tokens.shape}"
            )
        max_new_tokens = self._max_new_tokens(max_new_tokens)
        temperature, top_k, top_p = sampling.check_sampling_arguments(
            temperature, top_k, top_p
        )
        if strategy not in decoding.STRATEGIES:
            raise ValueError(
                f"`strategy` must be one of {decoding.STRATEGIES}. "
                f"Received: strategy={strategy!r}"
            )
        limit = self.max_sequence_length
        if strategy == "prefix" and limit and prompt_tokens.shape[1] + max_new_tokens > limit:
            raise ValueError(
                "The prefix strategy runs the model over prompt plus new tokens, "
                f"which must fit in {self.window_name}={limit}. Received: "
                f"{prompt_tokens.shape[1]} + {max_new_tokens}"
            )
        jit_compile = self.use_xla(jit_compile, prompt_tokens.shape[0], max_new_tokens)
        fn = self.traced_function(
            ("generate", strategy, jit_compile),
            functools.partial(
                self._generate_graph, strategy=strategy, jit_compile=jit_compile
            ),
            input_signature=_GENERATE_SPECS,
            # The loops use `tf.while_loop` and `tf.cond` directly: AutoGraph
            # would only add tracing time.
            autograph=False,
        )
        return fn(
            tf.constant(prompt_tokens, tf.int32),
            tf.constant(max_new_tokens, tf.int32),
            tf.constant(temperature, tf.float32),
            tf.constant(top_k, tf.int32),
            tf.constant(top_p, tf.float32),
            self.resolve_seed(seed),
        ).numpy()

    def use_xla(self, jit_compile, batch_size, max_new_tokens):
        """Whether a generation call XLA-compiles its token loop.

        An explicit `jit_compile` wins. With `None` and `jit_generation`,
        the loop is XLA-compiled when the compilation pays back: for
        a call of at least `xla_min_new_tokens` new tokens, or from the
        second call with the same batch size and power-of-two bucket of
        `max_new_tokens` (`decoding.bucket_steps`). The first call of a
        bucket runs the same loop as a graph, which gives the same tokens
        without the compilation's cost.

        Args:
            jit_compile: `None`, `True` or `False`.
            batch_size: Rows of the call.
            max_new_tokens: Positive int.

        Returns:
            A bool.
        """
        if jit_compile is not None:
            return bool(jit_compile)
        if not self.jit_generation:
            return False
        if max_new_tokens >= self.xla_min_new_tokens:
            return True
        seen = self.__dict__.setdefault("_generation_buckets", set())
        bucket = (int(batch_size), decoding.bucket_steps(max_new_tokens))
        if bucket in seen:
            return True
        seen.add(bucket)
        return False

    def generate(
        self, prompt, max_new_tokens=None, temperature=1.0, top_k=None, top_p=None,
        seed=None,
    ):
        """Continues a text prompt.

        The compiled loop is built on the first call and reused. The same
        seed gives the same text here and in the exported `generate`
        signature (which takes no `top_p`).

        Args:
            prompt: `str`; an empty prompt starts from a newline.
            max_new_tokens: Number of bytes to generate (default
                `default_max_new_tokens`).
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
        new = self.generate_tokens(tokens[None], max_new_tokens, temperature, top_k, top_p, seed)
        return tokenizer.decode(new[0])

    def _max_new_tokens(self, max_new_tokens):
        if max_new_tokens is None:
            max_new_tokens = self.default_max_new_tokens
        return check_positive_int(max_new_tokens, "max_new_tokens")

    # ------------------------------------------------------------------
    # Sampling: the contract's template with text out.
    # ------------------------------------------------------------------
    def sample(
        self, num_samples, seed=None, *, max_new_tokens=None, temperature=1.0,
        top_k=None, top_p=None, **conditioning,
    ):
        """Generates `num_samples` texts from an empty prompt (a newline).

        The exported `sample` signature takes `num_samples`, `seed` and
        `max_new_tokens` and returns the same texts (at temperature 1
        without filters) as its string output `"text"`.

        Args:
            num_samples: Positive int.
            seed: `None`, an int or a pair of ints.
            max_new_tokens: Bytes per sample (default
                `default_max_new_tokens`).
            temperature: Softmax temperature (0: greedy).
            top_k: Optional top-k filter.
            top_p: Optional nucleus filter.
            **conditioning: Refused with a `ValueError` (a language model
                takes no `labels`, `prompt` or `guidance_scale` here; a text
                prefix goes to `generate(prompt)`).

        Returns:
            A `list` of `num_samples` `str` (invalid UTF-8 becomes U+FFFD).

        Example:

        ```python
        texts = lm.sample(4, seed=0, max_new_tokens=80, temperature=0.8)
        ```
        """
        return super().sample(
            num_samples, seed, max_new_tokens=max_new_tokens, temperature=temperature,
            top_k=top_k, top_p=top_p, **conditioning,
        )

    def sample_options(
        self, num_samples, max_new_tokens=None, temperature=1.0, top_k=None, top_p=None
    ):
        temperature, top_k, top_p = sampling.check_sampling_arguments(
            temperature, top_k, top_p
        )
        tensors = {
            "max_new_tokens": tf.constant(self._max_new_tokens(max_new_tokens), tf.int32),
            "temperature": tf.constant(temperature, tf.float32),
            "top_k": tf.constant(top_k, tf.int32),
            "top_p": tf.constant(top_p, tf.float32),
        }
        jit_compile = self.use_xla(None, num_samples, self._max_new_tokens(max_new_tokens))
        return {"jit_compile": jit_compile}, tensors

    def sample_from_seed(
        self, num_samples, seed, max_new_tokens, temperature=1.0, top_k=0, top_p=1.0,
        jit_compile=False,
    ):
        """`num_samples` texts from the start token, a `[num_samples]` string tensor.

        Args:
            num_samples: int32 scalar.
            seed: int32 `[2]`.
            max_new_tokens: int32 scalar, bytes per text.
            temperature, top_k, top_p: As in `generate_tokens` (0 and 1 are
                off).
            jit_compile: XLA-compile the token loop (Python `sample` with a
                `jit_generation` model; not the exported signature).
        """
        prompt = tf.fill(tf.stack([num_samples, 1]), tokenizer.START_TOKEN)
        tokens = self._generate_graph(
            prompt, max_new_tokens, temperature, top_k, top_p, seed,
            jit_compile=jit_compile,
        )
        return tokenizer.tf_decode(tokens)

    def sample_result(self, samples):
        return [text.decode("utf-8") for text in samples.numpy()]

    # ------------------------------------------------------------------
    # Evaluation.
    # ------------------------------------------------------------------
    def test_tokens(self, dataset):
        """The byte ids of a test split, refusing an empty one."""
        tokens = windows.stream_array(dataset, "int32")
        if len(tokens) == 0:
            raise ValueError("The test text is empty: no bytes to score.")
        return tokens

    def evaluation_metrics(self, dataset, batch_size=64, **kwargs):
        """Test bits per character (UTF-8 byte).

        Args:
            dataset: Unbatched test-split dataset of byte ids.
            batch_size: Windows per forward pass (where the model scores in
                windows).
            **kwargs: Ignored (e.g. `dataset_name`).

        Returns:
            `{"bits_per_char": float, "num_chars": int}`.
        """
        del kwargs
        tokens = self.test_tokens(dataset)
        return {
            "bits_per_char": self.bits_per_char(tokens, batch_size),
            "num_chars": int(len(tokens)),
        }
