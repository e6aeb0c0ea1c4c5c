"""Decoding loops of the byte language models: cached, prefix and full-window.

Every strategy draws token `i` of row `b` with
`sampling.sample_next(logits, uniform[i], temperature, top_k, top_p)` from
the same noise `uniform = noise(seed, max_new_tokens, batch, vocab_size)`,
so for the same seed they give the same tokens as long as the logits agree.
They differ in how the next logits are computed:

- `cached`: the prompt fills a state once (`prefill`) and each new token
  costs one `step` on that state: an RNN's recurrent state, or a
  transformer's key/value cache (which the model refills when its window is
  full). The fast path, run by `generate` and the exported signatures.
- `prefix`: every new token re-runs the model over all tokens so far. It
  needs nothing but the model's call, so it is the reference the cached
  loop is tested against.
- `full_window`: every new token re-runs the model over one window of a
  fixed length (padded; when the window is full it slides by one token), as
  a runtime with static shapes (the TF Lite `next_token_logits` signature)
  does.

Each function returns the new tokens as `(batch, max_new_tokens)` int32 and
runs inside a `tf.function` (or eagerly); `decode_loop` is the part of
`cached` that can be XLA-compiled on its own (`bucketed_noise` pads the
noise so one compilation serves many lengths).
"""

import math

import tensorflow as tf

from keras_genmodels.autoregressive import sampling

STRATEGIES = ("cached", "prefix", "full_window")


def noise(seed, max_new_tokens, batch, vocab_size):
    """The uniform noise of one generation: `(max_new_tokens, batch, vocab)`."""
    return tf.random.stateless_uniform(
        tf.stack([max_new_tokens, batch, vocab_size]), seed=seed
    )


def bucket_steps(max_new_tokens):
    """The noise steps `bucketed_noise` pads `max_new_tokens` (an int) to."""
    return max(1 << (int(max_new_tokens) - 1).bit_length(), 64)


def bucketed_noise(uniform, max_new_tokens):
    """Pads the noise to a power-of-two number of steps (at least 64).

    An XLA-compiled `decode_loop` is compiled once per shape of its inputs;
    with the noise padded, one compilation serves every `max_new_tokens` of
    a bucket (the loop still stops after `max_new_tokens`).
    """
    exponent = tf.math.ceil(
        tf.math.log(tf.cast(max_new_tokens, tf.float32)) / math.log(2.0) - 1e-4
    )
    slots = tf.maximum(tf.maximum(tf.cast(2.0**exponent, tf.int32), max_new_tokens), 64)
    return tf.pad(
        uniform, [[0, slots - max_new_tokens], [0, 0], [0, 0]], constant_values=0.5
    )


def _tokens(output, max_new_tokens):
    """`(steps, batch)` TensorArray rows to `(batch, max_new_tokens)`."""
    return tf.transpose(output.stack()[:max_new_tokens], [1, 0])


def decode_loop(step, logits, state, uniform, max_new_tokens, temperature, top_k, top_p):
    """The cached sampling loop after the prefill.

    Args:
        step: Callable `(token (batch,), state) -> (logits, state)`.
        logits: `(batch, vocab)` logits after the prompt.
        state: The state after the prompt (any nest of tensors).
        uniform: `(steps, batch, vocab)` noise, `steps >= max_new_tokens`.
        max_new_tokens: int32 scalar.
        temperature: float32 scalar (0: greedy).
        top_k: int32 scalar (0: off).
        top_p: float32 scalar (1: off).

    Returns:
        `(steps, batch)` int32 tokens; only the first `max_new_tokens` rows
        are written.
    """

    def body(i, logits, state, output):
        token = sampling.sample_next(logits, uniform[i], temperature, top_k, top_p)
        logits, state = step(token, state)
        return i + 1, logits, state, output.write(i, token)

    output = tf.TensorArray(tf.int32, size=tf.shape(uniform)[0])
    *_, output = tf.while_loop(
        lambda i, *_: i < max_new_tokens, body, (tf.constant(0), logits, state, output)
    )
    return output.stack()


def cached(
    prefill, step, prompt, max_new_tokens, temperature, top_k, top_p, seed,
    vocab_size, loop=None,
):
    """Generates with a state filled once from the prompt.

    Args:
        prefill: Callable `prompt (batch, length) -> (logits, state)`.
        step: Callable `(token, state) -> (logits, state)`.
        prompt: `(batch, length)` int32 ids, `length >= 1`.
        max_new_tokens: int32 scalar.
        temperature, top_k, top_p: As in `sampling.sample_next`.
        seed: int32 `[2]`.
        vocab_size: Number of token ids.
        loop: Optional replacement of `decode_loop` with the same arguments
            (after `step`), e.g. an XLA-compiled one; the noise is then
            padded by `bucketed_noise`.

    Returns:
        `(batch, max_new_tokens)` int32 new tokens.
    """
    logits, state = prefill(prompt)
    uniform = noise(seed, max_new_tokens, tf.shape(prompt)[0], vocab_size)
    if loop is None:
        tokens = decode_loop(
            step, logits, state, uniform, max_new_tokens, temperature, top_k, top_p
        )
    else:
        uniform = bucketed_noise(uniform, max_new_tokens)
        tokens = loop(logits, state, uniform, max_new_tokens, temperature, top_k, top_p)
    return tf.transpose(tokens[:max_new_tokens], [1, 0])


def prefix(logits_of, prompt, max_new_tokens, temperature, top_k, top_p, seed, vocab_size):
    """Generates by re-running the model over the tokens so far.

    Args:
        logits_of: Callable `tokens (batch, length) -> (batch, length, vocab)`,
            a causal model.
        prompt, max_new_tokens, temperature, top_k, top_p, seed, vocab_size:
            As in `cached`.

    Returns:
        `(batch, max_new_tokens)` int32 new tokens.
    """
    batch, length = tf.shape(prompt)[0], tf.shape(prompt)[1]
    size = length + max_new_tokens
    window = tf.pad(prompt, [[0, 0], [0, max_new_tokens]])
    uniform = noise(seed, max_new_tokens, batch, vocab_size)

    def body(i, window, length, output):
        logits = logits_of(window[:, :length])[:, -1]
        token = sampling.sample_next(logits, uniform[i], temperature, top_k, top_p)
        slot = tf.one_hot(length, size, dtype=tf.int32)[None]
        window = window * (1 - slot) + token[:, None] * slot
        return i + 1, window, length + 1, output.write(i, token)

    output = tf.TensorArray(tf.int32, size=max_new_tokens)
    *_, output = tf.while_loop(
        lambda i, *_: i < max_new_tokens, body, (tf.constant(0), window, length, output)
    )
    return _tokens(output, max_new_tokens)


def last_logits(logits, length):
    """The logits after `length[b]` tokens of each row of a padded window.

    Args:
        logits: `(batch, size, vocab)` logits of the window.
        length: `(batch,)` or scalar int32, between 1 and `size`.

    Returns:
        `(batch, vocab)`.
    """
    pick = tf.one_hot(length - 1, tf.shape(logits)[1], dtype=logits.dtype)
    if pick.shape.rank == 1:
        pick = pick[None]
    return tf.reduce_sum(logits * pick[:, :, None], axis=1)


def full_window(
    logits_of, size, prompt, max_new_tokens, temperature, top_k, top_p, seed, vocab_size
):
    """Generates by re-running the model over one padded window of `size`.

    The window holds the last `size` tokens; while it is not full the new
    token goes into the next slot, then the window slides by one token.

    Args:
        logits_of: Callable `window (batch, size) -> (batch, size, vocab)`,
            a causal model (padding after the tokens does not change their
            logits).
        size: Static window length (the model's context).
        prompt, max_new_tokens, temperature, top_k, top_p, seed, vocab_size:
            As in `cached`.

    Returns:
        `(batch, max_new_tokens)` int32 new tokens.
    """
    batch, length = tf.shape(prompt)[0], tf.shape(prompt)[1]
    keep = tf.minimum(length, size)
    window = tf.pad(prompt[:, length - keep :], [[0, 0], [0, size - keep]])
    uniform = noise(seed, max_new_tokens, batch, vocab_size)

    def append(window, length, token):
        slot = tf.one_hot(length, size, dtype=tf.int32)[None]
        return window * (1 - slot) + token[:, None] * slot, length + 1

    def slide(window, length, token):
        return tf.concat([window[:, 1:], token[:, None]], axis=1), length

    def body(i, window, length, output):
        logits = last_logits(logits_of(window), length)
        token = sampling.sample_next(logits, uniform[i], temperature, top_k, top_p)
        window, length = tf.cond(
            length < size,
            lambda: append(window, length, token),
            lambda: slide(window, length, token),
        )
        return i + 1, window, length, output.write(i, token)

    output = tf.TensorArray(tf.int32, size=max_new_tokens)
    *_, output = tf.while_loop(
        lambda i, *_: i < max_new_tokens,
        body,
        (tf.constant(0), window, keep, output),
    )
    return _tokens(output, max_new_tokens)
