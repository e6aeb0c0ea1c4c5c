"""Text-in, text-out SavedModel signatures shared by the byte-level models.

Every `ByteLanguageModel` (`TransformerLM`, `RNNLanguageModel`) exports the
same two string signatures, so TF Serving answers a REST request with a
completion or a score and the client never handles token ids. (Their third
text signature, `sample`, is the contract's `sample_endpoint`.)
`TextSignatures` is the mixin that gives a `ByteLanguageModel` these
signatures, their limits and examples.
"""

import numpy as np
import tensorflow as tf

from keras_genmodels.autoregressive import tokenizer
from keras_genmodels.serving_limits import InputChecks, ServingLimits


def text_endpoints(generate_tokens, bits_per_char, limits, vocab_size=tokenizer.VOCAB_SIZE):
    """Builds the `generate` and `score` signatures of a byte-level model.

    Every input is checked in the graph before anything runs (see
    `keras_genmodels.serving_limits`): `prompt` has at most
    `limits["prompt"]` bytes, `max_new_tokens` lies in
    `[1, limits["max_new_tokens"]]`, `temperature` is finite and `>= 0`,
    `top_k` lies in `[0, vocab_size]`, the seed is two non-negative ints and
    `text` has 1 to `limits["text"]` bytes.

    Args:
        generate_tokens: Callable `(tokens, max_new_tokens, temperature,
            top_k, top_p, seed) -> new_tokens` on an int32 `[1, n]` prompt,
            returning the int32 `[1, m]` continuation; `top_k = 0` and
            `top_p = 1` switch those filters off, `temperature = 0` is greedy.
        bits_per_char: Callable from a string scalar to the model's float32
            bits per byte of that text.
        limits: `{limit name: int}` with `prompt`, `max_new_tokens` and
            `text`, e.g. `model.serving_limits.resolve()`.
        vocab_size: The model's number of token ids (the largest `top_k`).

    Returns:
        `{"generate": tf.function, "score": tf.function}` with input
        signatures `generate(prompt: string [], max_new_tokens: int32 [],
        temperature: float32 [], top_k: int32 [], seed: int32 [2]) ->
        {"text": string []}` and `score(text: string []) ->
        {"bits_per_char": float32 []}`. An empty prompt starts from the
        start token.

    Example:

    ```python
    endpoints = text_endpoints(
        model._generate_graph, model._bits_per_char, model.serving_limits.resolve()
    )
    endpoints["generate"](tf.constant("def "), 16, 0.0, 0, [1, 2])["text"]
    ```
    """

    @tf.function(
        input_signature=[
            tf.TensorSpec([], tf.string, name="prompt"),
            tf.TensorSpec([], tf.int32, name="max_new_tokens"),
            tf.TensorSpec([], tf.float32, name="temperature"),
            tf.TensorSpec([], tf.int32, name="top_k"),
            tf.TensorSpec([2], tf.int32, name="seed"),
        ]
    )
    def generate(prompt, max_new_tokens, temperature, top_k, seed):
        checks = InputChecks()
        prompt = checks.text("prompt", prompt, limits["prompt"], low=0)
        max_new_tokens = checks.count(
            "max_new_tokens", max_new_tokens, limits["max_new_tokens"]
        )
        temperature = checks.scalar("temperature", temperature, low=0.0)
        top_k = checks.count("top_k", top_k, vocab_size, low=0)
        seed = checks.seed(seed)
        prompt, max_new_tokens, temperature, top_k, seed = checks.gate(
            prompt, max_new_tokens, temperature, top_k, seed
        )
        tokens = tokenizer.tf_encode(prompt)
        tokens = tf.cond(
            tf.size(tokens) > 0,
            lambda: tokens,
            lambda: tf.constant([tokenizer.START_TOKEN], tf.int32),
        )
        new = generate_tokens(
            tokens[None], max_new_tokens, temperature, top_k, tf.constant(1.0), seed
        )
        return {"text": tokenizer.tf_decode(new)[0]}

    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="text")])
    def score(text):
        checks = InputChecks()
        text = checks.gate(checks.text("text", text, limits["text"]))
        return {"bits_per_char": bits_per_char(text)}

    return {"generate": generate, "score": score}


def text_signature_examples():
    """Example inputs of the `generate` and `score` signatures.

    Returns:
        `{"generate": {...}, "score": {...}}` of numpy values, as
        `GenerativeModel.signature_examples` returns them.
    """
    return {
        "generate": {
            "prompt": np.array(b"def "),
            "max_new_tokens": np.int32(8),
            "temperature": np.float32(1.0),
            "top_k": np.int32(0),
            "seed": np.array([1, 2], np.int32),
        },
        "score": {"text": np.array(b"Return the value.")},
    }


class TextSignatures:
    """The exported signatures every byte language model shares (a mixin of
    `ByteLanguageModel`): `generate`, `score` and `sample`, their limits and
    examples. Subclasses add the signatures of their network.
    """

    def sample_signature_inputs(self):
        return [tf.TensorSpec([], tf.int32, name="max_new_tokens")]

    def check_sample_inputs(self, checks, num_samples, limits, max_new_tokens):
        limit = limits["max_new_tokens"]
        return {"max_new_tokens": checks.count("max_new_tokens", max_new_tokens, limit)}

    def sample_signature_example(self):
        return {**super().sample_signature_example(), "max_new_tokens": np.int32(8)}

    def text_serving_limits(self, signatures, defaults=None):
        """`ServingLimits` of the text signatures plus the model's own.

        `sample` allows 64 texts by default: its noise takes
        `num_samples * max_new_tokens * vocab_size` floats.
        """
        return ServingLimits(
            {
                "generate": ("prompt", "max_new_tokens"),
                "score": ("text",),
                "sample": ("num_samples", "max_new_tokens"),
                **signatures,
            },
            defaults={"num_samples": 64, **(defaults or {})},
        )

    def serving_endpoints(self, limits=None):
        """`generate`, `score` and `sample`, every input checked in the graph.

        Subclasses add the signatures of their network.

        Args:
            limits: Optional `{limit name: int}` replacing the defaults of
                `serving_limits`.
        """
        limits = self.serving_limits.resolve(limits)
        return {
            **text_endpoints(self._generate_graph, self._bits_per_char, limits, self.vocab_size),
            "sample": self.sample_endpoint(limits),
        }

    def signature_examples(self, batch_size=1):
        return {**text_signature_examples(), "sample": self.sample_signature_example()}
