"""A `TransformerLM`'s key/value cache as one static tensor: `prefill` and `decode`.

These are the exported `prefill` and `decode` signatures (SavedModel and TF
Lite): an app fills the cache once from the prompt and then pays one
position per new byte, instead of re-running the whole window
(`next_token_logits`) for every byte.

The cache is one float32 tensor of shape
`[batch, num_layers, 2, num_heads, context_length, head_dim]`:
`cache[b, l, 0]` holds layer `l`'s keys and `cache[b, l, 1]` its values,
slot `t` being the token at position `t`. Slots at and after a row's next
position hold zeros (after `prefill`) or stale values; `decode` never
attends to them. The cache is float32 whatever the model's compute dtype.

Both functions run the model's own layers (embeddings, each block's
`step`, the final norm and head), so their logits are those of the
model's forward pass. Every op is a TF Lite built-in: the cache is written
with a one-hot blend (`CausalSelfAttention.step`), not a scatter, and
hidden slots are masked with a select.

Positions must stay below `context_length` (the position embedding has no
row for more). When a row's window is full, the caller refills the cache
from its last `context_length // 2` tokens with `prefill` and goes on
decoding at position `context_length // 2`, as `TransformerLM.generate`
does; `keras_genmodels.litert.text.generate_text` runs that loop.

Example:

```python
lm = TransformerLM(context_length=64, d_model=64, num_heads=2, num_layers=2)
window = np.zeros((1, 64), "int32"); window[0, :3] = [100, 101, 102]
logits, cache = kv_cache.prefill(lm, window, [3])
token = tf.argmax(logits, -1, output_type=tf.int32)
logits, cache = kv_cache.decode(lm, token, [3], cache)
```
"""

import numpy as np
import tensorflow as tf

from keras_genmodels.serving_limits import InputChecks


def cache_shape(model, batch_size=None):
    """`[batch_size, num_layers, 2, num_heads, context_length, head_dim]`."""
    return [
        batch_size,
        model.num_layers,
        2,
        model.num_heads,
        model.context_length,
        model.d_model // model.num_heads,
    ]


def prefill(model, tokens, length):
    """Runs a padded window, returning the logits after `length` tokens and the cache.

    Args:
        model: A `TransformerLM`.
        tokens: `(batch, context_length)` int32, each row's tokens
            left-aligned (what follows them is ignored).
        length: `(batch,)` int32 in `[1, context_length]`, the real tokens
            of each row.

    Returns:
        `(logits (batch, vocab_size) float32, cache)`: the next-token logits
        after token `length - 1` and the cache of positions
        `0 .. length - 1` (zeros after them).
    """
    tokens = tf.convert_to_tensor(tokens, tf.int32)
    length = tf.convert_to_tensor(length, tf.int32)
    size = model.context_length
    x = model._embed(tokens)
    layers = []
    for block in model.blocks:
        x, (keys, values) = block(x, return_cache=True)
        layers.append(tf.stack([keys, values], axis=1))  # (batch, 2, heads, size, d)
    cache = tf.cast(tf.stack(layers, axis=1), tf.float32)
    filled = tf.sequence_mask(length, size, dtype=tf.float32)  # (batch, size)
    cache = cache * tf.reshape(filled, [-1, 1, 1, 1, size, 1])
    last = tf.one_hot(length - 1, size, dtype=x.dtype)[:, :, None]  # (batch, size, 1)
    hidden = tf.reduce_sum(x * last, axis=1, keepdims=True)
    return model._head(hidden)[:, 0], cache


def decode(model, token, position, cache):
    """Feeds one token per row at its position, through the cache.

    Args:
        model: A `TransformerLM`.
        token: `(batch,)` int32, the token at `position`.
        position: `(batch,)` int32 in `[0, context_length)`; the token
            attends to the cache slots `< position` and to itself.
        cache: float32 `cache_shape(model, batch)`, filled up to
            `position - 1` (by `prefill` and earlier `decode` calls).

    Returns:
        `(logits (batch, vocab_size) float32, cache)` with the token's keys
        and values written at `position`.
    """
    token = tf.convert_to_tensor(token, tf.int32)
    position = tf.convert_to_tensor(position, tf.int32)
    x = model.token_embedding(token[:, None]) + model.position_embedding(position[:, None])
    dtype = model.compute_dtype
    layers = []
    for block, layer in zip(model.blocks, tf.unstack(cache, axis=1)):
        keys, values = tf.unstack(tf.cast(layer, dtype), axis=1)
        x, keys, values = block.step(x, keys, values, position)
        layers.append(tf.stack([keys, values], axis=1))
    cache = tf.cast(tf.stack(layers, axis=1), tf.float32)
    return model._head(x)[:, 0], cache


def _specs(model, batch_size, kind):
    size = model.context_length
    if kind == "prefill":
        return [
            tf.TensorSpec([batch_size, size], tf.int32, name="tokens"),
            tf.TensorSpec([batch_size], tf.int32, name="length"),
        ]
    return [
        tf.TensorSpec([batch_size], tf.int32, name="token"),
        tf.TensorSpec([batch_size], tf.int32, name="position"),
        tf.TensorSpec(cache_shape(model, batch_size), tf.float32, name="cache"),
    ]


def prefill_endpoint(model, batch_size=None, limit=None):
    """The `prefill` signature: `(tokens, length) -> {"logits", "cache"}`.

    Args:
        model: A `TransformerLM`.
        batch_size: Static rows (TF Lite), or `None` (serving).
        limit: With a row limit (serving) the inputs are checked in the
            graph: rows in `[1, limit]`, token ids in `[0, vocab_size)`,
            `length` in `[1, context_length]`, one `length` per row.
    """
    specs = _specs(model, batch_size, "prefill")

    @tf.function(input_signature=specs, autograph=False)
    def prefill_signature(tokens, length):
        if limit is not None:
            checks = InputChecks()
            tokens = checks.batch(
                "tokens", tokens, specs[0].shape.as_list(), limit,
                low=0, high=model.vocab_size - 1,
            )
            length = checks.shape("length", length, [None])
            checks.same_rows(tokens=tokens, length=length)
            checks.values("length", length, 1, model.context_length)
            tokens, length = checks.gate(tokens, length)
        logits, cache = prefill(model, tokens, length)
        return {"logits": logits, "cache": cache}

    return prefill_signature


def decode_endpoint(model, batch_size=None, limit=None):
    """The `decode` signature: `(token, position, cache) -> {"logits", "cache"}`.

    Args:
        model: A `TransformerLM`.
        batch_size: Static rows (TF Lite), or `None` (serving).
        limit: With a row limit (serving) the inputs are checked in the
            graph: the cache's shape, rows in `[1, limit]`, token ids in
            `[0, vocab_size)`, `position` in `[0, context_length - 1]`, the
            same rows in all three.
    """
    specs = _specs(model, batch_size, "decode")

    @tf.function(input_signature=specs, autograph=False)
    def decode_signature(token, position, cache):
        if limit is not None:
            checks = InputChecks()
            cache = checks.batch("cache", cache, specs[2].shape.as_list(), limit)
            token = checks.shape("token", token, [None])
            position = checks.shape("position", position, [None])
            checks.same_rows(token=token, position=position, cache=cache)
            checks.values("token", token, 0, model.vocab_size - 1)
            checks.values("position", position, 0, model.context_length - 1)
            token, position, cache = checks.gate(token, position, cache)
        logits, cache = decode(model, token, position, cache)
        return {"logits": logits, "cache": cache}

    return decode_signature


def signature_examples(model, batch_size=1):
    """Example inputs of `prefill` and `decode` with `batch_size` rows.

    The `decode` cache is random (any float32 cache is a valid input), the
    positions those after the `prefill` lengths.
    """
    rng = np.random.default_rng(1)
    size = model.context_length
    tokens = rng.integers(32, 127, (batch_size, size)).astype("int32")
    length = rng.integers(1, size, batch_size).astype("int32")
    cache = rng.standard_normal(cache_shape(model, batch_size)).astype("float32")
    return {
        "prefill": {"tokens": tokens, "length": length},
        "decode": {
            "token": tokens[:, 0].copy(),
            "position": length,
            "cache": cache,
        },
    }
