"""Next-token samplers on logits: greedy, temperature, top-k and top-p.

All functions are pure TensorFlow on `(batch, vocab)` float logits, so the
same code runs in `generate`, in exported signatures and in tests on fixed
logits. Sampling uses the Gumbel-max trick with caller-provided uniform
noise: `argmax(logits / T + g)`, `g = -log(-log(u))`, draws from
`softmax(logits / T)`; with noise from `tf.random.stateless_uniform` a seed
fixes the whole generation.

References:
    Fan et al., "Hierarchical Neural Story Generation", ACL 2018 (top-k).
    Holtzman et al., "The Curious Case of Neural Text Degeneration",
    ICLR 2020 (top-p, nucleus sampling).
"""

import tensorflow as tf

_NEG_INF = -1e9


def greedy(logits):
    """The highest-scoring token of each row.

    Args:
        logits: `(batch, vocab)`.

    Returns:
        `(batch,)` int32 token ids.
    """
    return tf.argmax(logits, axis=-1, output_type=tf.int32)


def top_k_filter(logits, k):
    """Keeps the `k` largest logits of each row and sets the rest to -1e9.

    Ties at the k-th value are all kept. `k <= 0` or `k >= vocab` keeps all.

    Args:
        logits: `(batch, vocab)` float.
        k: int scalar (Python or tensor).

    Returns:
        Filtered logits, same shape.
    """
    logits = tf.convert_to_tensor(logits)
    vocab = tf.shape(logits)[-1]
    k = tf.cast(k, tf.int32)
    k = tf.where((k <= 0) | (k > vocab), vocab, k)
    # A sort and a gather rather than `tf.math.top_k`, whose `k` XLA needs
    # as a compile-time constant.
    sorted_logits = tf.sort(logits, axis=-1, direction="DESCENDING")
    kth = tf.gather(sorted_logits, k - 1, axis=-1)[..., None]
    return tf.where(logits < kth, tf.cast(_NEG_INF, logits.dtype), logits)


def top_p_filter(logits, p):
    """Keeps the smallest set of top tokens whose probability reaches `p`.

    A token is kept when the probability mass of the tokens ranked above it
    is below `p`, so the top token is always kept. `p >= 1` keeps all.

    Args:
        logits: `(batch, vocab)` float.
        p: float scalar in `(0, 1]`.

    Returns:
        Filtered logits, same shape.
    """
    logits = tf.convert_to_tensor(logits)
    p = tf.cast(p, logits.dtype)
    sorted_logits = tf.sort(logits, axis=-1, direction="DESCENDING")
    probs = tf.nn.softmax(sorted_logits, axis=-1)
    mass_above = tf.cumsum(probs, axis=-1, exclusive=True)
    keep = mass_above < p
    # The smallest kept logit is the threshold.
    threshold = tf.reduce_min(
        tf.where(keep, sorted_logits, tf.reduce_max(logits, -1, keepdims=True)),
        axis=-1,
        keepdims=True,
    )
    filtered = tf.where(logits < threshold, tf.cast(_NEG_INF, logits.dtype), logits)
    return tf.where(p >= 1.0, logits, filtered)


def gumbel_noise(uniform):
    """`-log(-log(u))` for `u` in (0, 1), clipped away from 0 and 1."""
    u = tf.clip_by_value(uniform, 1e-20, 1.0 - 1e-7)
    return -tf.math.log(-tf.math.log(u))


def sample_next(logits, uniform, temperature=1.0, top_k=0, top_p=1.0):
    """Draws one token per row.

    `temperature <= 0` is greedy decoding (the noise is ignored). Otherwise
    logits are divided by `temperature`, filtered by `top_k` (0: off) and
    `top_p` (1.0: off), and a token is drawn by Gumbel-max with `uniform`.

    Args:
        logits: `(batch, vocab)` float logits.
        uniform: `(batch, vocab)` float noise in (0, 1), e.g. from
            `tf.random.stateless_uniform`.
        temperature: float scalar.
        top_k: int scalar; 0 disables.
        top_p: float scalar; 1.0 disables.

    Returns:
        `(batch,)` int32 token ids.

    Example:

    ```python
    u = tf.random.stateless_uniform([1, 256], seed=[1, 2])
    token = sample_next(logits, u, temperature=0.8, top_k=40)
    ```
    """
    logits = tf.cast(logits, tf.float32)
    temperature = tf.cast(temperature, tf.float32)
    top_k = tf.cast(top_k, tf.int32)
    top_p = tf.cast(top_p, tf.float32)

    def draw():
        # The filters run only when enabled: sorting every step is costly.
        scaled = logits / tf.maximum(temperature, 1e-6)
        scaled = tf.cond(top_k > 0, lambda: top_k_filter(scaled, top_k), lambda: scaled)
        scaled = tf.cond(top_p < 1.0, lambda: top_p_filter(scaled, top_p), lambda: scaled)
        return greedy(scaled + gumbel_noise(tf.cast(uniform, tf.float32)))

    return tf.cond(temperature > 0.0, draw, lambda: greedy(logits))


def check_sampling_arguments(temperature, top_k, top_p):
    """Validates Python sampling arguments; raises `ValueError`.

    Returns:
        `(temperature, top_k, top_p)` as (float, int, float) with `None`
        mapped to the "off" values (0 and 1.0).
    """
    temperature = float(temperature)
    if temperature < 0:
        raise ValueError(
            f"`temperature` must be >= 0 (0 is greedy). Received: temperature={temperature}"
        )
    top_k = 0 if top_k is None else top_k
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise ValueError(
            f"`top_k` must be None or a non-negative int. Received: top_k={top_k!r}"
        )
    top_p = 1.0 if top_p is None else float(top_p)
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"`top_p` must be in (0, 1]. Received: top_p={top_p}")
    return temperature, top_k, top_p
