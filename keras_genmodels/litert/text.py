"""Text generation from an exported `TransformerLM` `.tflite` file, numpy only.

The reference loop for app developers: it imports `ai_edge_litert` and
numpy, never TensorFlow or Keras, and runs the file's key/value-cache
signatures (`keras_genmodels.autoregressive.kv_cache`):

- `prefill(tokens [1, context_length] int32, length [1] int32) -> {"logits" [1, 256], "cache"}`:
  the prompt, left-aligned in a zero-padded window, fills the cache;
- `decode(token [1] int32, position [1] int32, cache) -> {"logits", "cache"}`:
  one new byte at `position`, attending to the cache slots before it.

The cache is float32 `[1, num_layers, 2, num_heads, context_length, head_dim]`
(keys at index 0 of the third axis, values at 1); the app only passes it
from one call to the next. Each new byte costs one `decode` call. When the
window is full (`position == context_length`) the loop refills the cache
with `prefill` from the last `context_length // 2` bytes and goes on at
position `context_length // 2`, as `TransformerLM.generate` does, so greedy
generation gives the model's own bytes at any length.

Sampling (`temperature > 0`) follows `keras_genmodels.autoregressive.sampling`
(logits divided by the temperature, the top-k filter, Gumbel-max), with
noise from numpy's generator: the same distribution as the model's
`generate`, not the same draws. Greedy decoding (`temperature=0`, or
`top_k=1`) gives exactly the model's bytes.

Example:

```python
from keras_genmodels.litert import text

text.generate_text("savedmodels/ar-transformer/ar-transformer-v1.tflite",
                   "def ", max_new_tokens=200, temperature=0.0)
```
"""

import numbers

import numpy as np
from ai_edge_litert.interpreter import Interpreter

#: The token that starts generation when the prompt is empty (`"\\n"`).
START_TOKEN = 10
_NEG_INF = -1e9


def _check_int(value, name, low, high=None):
    """An int in `[low, high]` (`high` None: no bound), else `ValueError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"`{name}` must be an int. Received: {name}={value!r}")
    if value < low or (high is not None and value > high):
        bound = f"be in [{low}, {high}]" if high is not None else f"be >= {low}"
        raise ValueError(f"`{name}` must {bound}. Received: {name}={value}")
    return int(value)


class CachedTextModel:
    """The `prefill` and `decode` signatures of one `.tflite` file, inputs checked.

    The interpreter fails on a bad input with an opaque message (an
    out-of-range position is a failed `GATHER`), so both methods check
    their inputs first and raise `ValueError`s that name them.

    Args:
        path: A `.tflite` file exported from a `TransformerLM` with batch
            size 1 (`keras_genmodels.export.export_tflite`).
        num_threads: Optional interpreter threads.

    Attributes:
        context_length: The window (positions `0 .. context_length - 1`).
        vocab_size: Number of token ids.
        cache_shape: The cache's shape, a tuple.
        calls: Interpreter calls so far.

    Example:

    ```python
    lm = CachedTextModel("lm.tflite")
    logits, cache = lm.prefill([100, 101, 102])
    logits, cache = lm.decode(int(np.argmax(logits)), 3, cache)
    ```
    """

    def __init__(self, path, num_threads=None):
        self.path = str(path)
        self._interpreter = Interpreter(model_path=self.path, num_threads=num_threads)
        signatures = self._interpreter.get_signature_list()
        missing = sorted({"prefill", "decode"} - set(signatures))
        if missing:
            raise ValueError(
                f"{self.path} has no {missing} signature(s); it must be a "
                "TransformerLM export with the key/value-cache signatures "
                f"prefill and decode. Received signatures: {sorted(signatures)}"
            )
        self._prefill = self._interpreter.get_signature_runner("prefill")
        self._decode = self._interpreter.get_signature_runner("decode")
        window = tuple(self._prefill.get_input_details()["tokens"]["shape"])
        if window[0] != 1:
            raise ValueError(
                f"{self.path} was exported with batch size {window[0]}; "
                "CachedTextModel runs batch-size-1 files."
            )
        self.context_length = int(window[1])
        self.cache_shape = tuple(
            int(d) for d in self._decode.get_input_details()["cache"]["shape"]
        )
        self.vocab_size = int(self._decode.get_output_details()["logits"]["shape"][-1])
        self.calls = 0

    def _check_tokens(self, tokens, name):
        ids = np.asarray(tokens)
        if ids.ndim != 1 or ids.dtype.kind not in "iu":
            raise ValueError(
                f"`{name}` must be a 1-D sequence of ints. Received: array of "
                f"shape {ids.shape} and dtype {ids.dtype}"
            )
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(
                f"`{name}` must hold token ids in [0, {self.vocab_size - 1}]. "
                f"Received: values in [{ids.min()}, {ids.max()}]"
            )
        return ids.astype(np.int32)

    def prefill(self, tokens):
        """Fills the cache from 1 to `context_length` tokens.

        Args:
            tokens: 1-D sequence of token ids.

        Returns:
            `(logits (vocab_size,) float32, cache)`: the next-token logits
            after the last token and the cache of positions
            `0 .. len(tokens) - 1`.
        """
        ids = self._check_tokens(tokens, "tokens")
        if not 1 <= ids.size <= self.context_length:
            raise ValueError(
                f"`tokens` must hold 1 to {self.context_length} ids "
                f"(context_length). Received: {ids.size} ids"
            )
        window = np.zeros((1, self.context_length), np.int32)
        window[0, : ids.size] = ids
        out = self._prefill(tokens=window, length=np.array([ids.size], np.int32))
        self.calls += 1
        return out["logits"][0], out["cache"]

    def decode(self, token, position, cache):
        """Feeds one token at `position`, attending to the slots before it.

        Args:
            token: int token id.
            position: int in `[0, context_length - 1]`; the cache must hold
                positions `0 .. position - 1`.
            cache: The cache from the previous `prefill` or `decode`.

        Returns:
            `(logits (vocab_size,) float32, cache)` with the token written
            at `position`.
        """
        token = _check_int(token, "token", 0, self.vocab_size - 1)
        position = _check_int(position, "position", 0, self.context_length - 1)
        cache = np.asarray(cache)
        if cache.shape != self.cache_shape or cache.dtype != np.float32:
            raise ValueError(
                f"`cache` must be a float32 array of shape {self.cache_shape}, as "
                f"`prefill` and `decode` return it. Received: {cache.dtype} array "
                f"of shape {cache.shape}"
            )
        out = self._decode(
            token=np.array([token], np.int32),
            position=np.array([position], np.int32),
            cache=cache,
        )
        self.calls += 1
        return out["logits"][0], out["cache"]


def next_token(logits, temperature=1.0, top_k=0, rng=None):
    """Picks a token from `(vocab,)` logits as `sampling.sample_next` does.

    Args:
        logits: `(vocab,)` float logits.
        temperature: 0 is greedy (argmax); else logits are divided by it.
        top_k: Keep the `top_k` largest logits (ties kept); 0 keeps all.
        rng: `numpy.random.Generator` of the Gumbel noise (unused when
            greedy).

    Returns:
        An int token id.
    """
    logits = np.asarray(logits, np.float32)
    if temperature <= 0:
        return int(np.argmax(logits))
    scaled = logits / max(float(temperature), 1e-6)
    if 0 < top_k < scaled.size:
        kth = np.sort(scaled)[::-1][top_k - 1]
        scaled = np.where(scaled < kth, np.float32(_NEG_INF), scaled)
    uniform = np.clip(rng.random(scaled.size, dtype=np.float32), 1e-20, 1.0 - 1e-7)
    return int(np.argmax(scaled - np.log(-np.log(uniform))))


def generate_tokens(
    model, prompt_tokens, max_new_tokens, temperature=1.0, top_k=None, seed=None
):
    """Generates token ids after a prompt with the file's cached loop.

    Args:
        model: A `CachedTextModel` or the path of a `.tflite` file.
        prompt_tokens: 1-D sequence of at least one token id; only the last
            `context_length` are read.
        max_new_tokens: Positive int.
        temperature: 0 for greedy decoding, else the softmax temperature.
        top_k: Keep only the k most likely tokens (`None` or 0: all).
        seed: Optional int seed of numpy's generator (sampling only).

    Returns:
        `(max_new_tokens,)` int32 numpy array. It costs one `prefill`, one
        `decode` per new token after the first, and one more `prefill`
        each time the window fills.
    """
    if not isinstance(model, CachedTextModel):
        model = CachedTextModel(model)
    max_new_tokens = _check_int(max_new_tokens, "max_new_tokens", 1)
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise ValueError(f"`temperature` must be a number. Received: {temperature!r}")
    if not temperature >= 0:
        raise ValueError(
            f"`temperature` must be >= 0 (0 is greedy). Received: temperature={temperature}"
        )
    top_k = 0 if top_k is None else _check_int(top_k, "top_k", 0)
    rng = np.random.default_rng(seed)
    prompt = model._check_tokens(prompt_tokens, "prompt_tokens")
    if prompt.size == 0:
        raise ValueError("`prompt_tokens` must hold at least one token id. Received: none")
    size = model.context_length
    half = max(size // 2, 1)
    window = [int(t) for t in prompt[-size:]]
    logits, cache = model.prefill(window)
    new = []
    while True:
        token = next_token(logits, temperature, top_k, rng)
        new.append(token)
        if len(new) == max_new_tokens:
            return np.array(new, np.int32)
        if len(window) == size:  # Full: refill from the last half, as `generate` does.
            window = window[-half:]
            _, cache = model.prefill(window)
        logits, cache = model.decode(token, len(window), cache)
        window.append(token)


def generate_text(path, prompt, max_new_tokens, temperature=1.0, top_k=None, seed=None):
    """Continues a text prompt with an exported `TransformerLM` `.tflite` file.

    Args:
        path: The `.tflite` file (or a `CachedTextModel`).
        prompt: `str`; its UTF-8 bytes are the tokens, and an empty prompt
            starts from a newline (as `TransformerLM.generate`).
        max_new_tokens: Positive int, bytes to generate.
        temperature: 0 for greedy decoding (the model's own bytes), else the
            softmax temperature.
        top_k: Keep only the k most likely bytes (`None`: all).
        seed: Optional int seed of the sampling noise (numpy's generator).

    Returns:
        The continuation, a `str` (invalid UTF-8 becomes U+FFFD).

    Example:

    ```python
    generate_text("lm.tflite", "def ", 64, temperature=0.0)
    ```
    """
    if not isinstance(prompt, str):
        raise ValueError(f"`prompt` must be a str. Received: prompt={prompt!r}")
    ids = np.frombuffer(prompt.encode("utf-8"), np.uint8).astype(np.int32)
    if ids.size == 0:
        ids = np.array([START_TOKEN], np.int32)
    new = generate_tokens(path, ids, max_new_tokens, temperature, top_k, seed)
    return bytes(new.astype(np.uint8).tolist()).decode("utf-8", errors="replace")
