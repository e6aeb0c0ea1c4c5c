"""The prompts of a text-conditional DDPM: its training batches and default prompts.

A text-conditional `DDPM` trains on `(image, prompt token ids)` batches made
by `prompt_batches` from either

- `(image, caption)` pairs (`tf.string` captions), used as they are, or
- `(image, label)` pairs (int labels), captioned in `tf.data` by a
  `keras_genmodels.data.captions.CaptionBuilder` (the digits' `DIGITS` by
  default): training batches (`shuffle=True`) draw one of the builder's
  *training* templates per example and per epoch; evaluation batches
  (`shuffle=False`) draw from the *held-out* templates, once, so held-out
  figures (e.g. the noise-prediction test loss) measure how the model reads
  wordings it never trained on.

Captions become token ids in `tf.data`
(`keras_genmodels.conditioning.text.tf_prompt_token_ids`) after batching.
`default_prompts` are what `sample` draws when no prompt is given: one
caption per class, cycled as `labels=None` cycles the classes of a
class-conditional model.
"""

import tensorflow as tf

from keras_genmodels.base import check_positive_int
from keras_genmodels.conditioning.text import tf_prompt_byte_lengths, tf_prompt_token_ids
from keras_genmodels.data import captions

#: The template of `default_prompts` (a training template of the digits).
DEFAULT_PROMPT_TEMPLATE = "a handwritten {digit}"
#: Shuffle buffer of training batches (as `base.batch_pipeline`).
SHUFFLE_BUFFER = 10_000


def default_prompts(builder=captions.DIGITS, template=DEFAULT_PROMPT_TEMPLATE):
    """One caption per class in `template`: `("a handwritten 0", ..., "a handwritten 9")`.

    Args:
        builder: The `CaptionBuilder` of the classes.
        template: A template over the builder's class fields.

    Returns:
        A tuple of `builder.num_classes` strings.
    """
    return tuple(builder.caption(label, template) for label in range(builder.num_classes))


def _pairs(dataset, builder):
    """`(image, caption or label)` of each element; whether the second is a label."""
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) < 2:
        raise ValueError(
            "A text-conditional DDPM trains on (image, caption) or (image, label) "
            "pairs: load the data set with `with_labels=True`, or caption it. "
            f"Received a dataset of {spec}"
        )
    second = spec[1]
    if second.dtype == tf.string:
        return dataset.map(
            lambda x, c, *_: (x, tf.reshape(c, [])), num_parallel_calls=tf.data.AUTOTUNE
        ), False
    if not second.dtype.is_integer:
        raise ValueError(
            "A text-conditional DDPM's second element must be a caption (tf.string) or "
            f"an int label. Received: {second}"
        )
    num_classes = builder.num_classes

    def label_pair(x, y, *_):
        y = tf.cast(tf.reshape(y, []), tf.int32)
        tf.debugging.assert_equal(
            (y >= 0) & (y < num_classes), True,
            message=f"labels must be in [0, {num_classes}) to be captioned",
        )
        return x, y

    return dataset.map(label_pair, num_parallel_calls=tf.data.AUTOTUNE), True


def prompt_batches(
    dataset, batch_size, max_prompt_bytes, shuffle=True, drop_remainder=False, seed=None,
    builder=captions.DIGITS,
):
    """Batches `(image, caption)` or `(image, label)` pairs as `(images, token ids)`.

    The pairs are cached, shuffled (when `shuffle`), captioned when they
    carry labels (training templates when `shuffle`, held-out templates
    otherwise; see the module docstring), batched, tokenized and prefetched.
    Captioning after the cache gives new training captions every epoch.

    Args:
        dataset: Unbatched `tf.data.Dataset` of `(image, caption)` or
            `(image, label, ...)`.
        batch_size: Positive int.
        max_prompt_bytes: Longest caption, in UTF-8 bytes; a longer one
            fails the pipeline with an `InvalidArgumentError` naming it.
        shuffle: Whether to shuffle each epoch (training batches).
        drop_remainder: Whether to drop the last partial batch.
        seed: Optional int seed of the template draws; evaluation batches
            (`shuffle=False`) use 0 when it is `None`, so they are the same
            on every call.
        builder: The `CaptionBuilder` of labelled pairs.

    Returns:
        A batched, prefetched dataset of `(images, int32 ids [batch,
        max_prompt_bytes + 1])`.

    Example:

    ```python
    batches = prompt_batches(data.load("mnist-5k", with_labels=True), 32, 32, seed=0)
    images, ids = next(iter(batches))  # ids: e.g. the ids of "the digit five"
    ```
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    pairs, labelled = _pairs(dataset, builder)
    if labelled and builder.longest_caption_bytes() > max_prompt_bytes:
        raise ValueError(
            f"The captions of the labels have up to {builder.longest_caption_bytes()} "
            f"UTF-8 bytes; this model takes at most max_prompt_bytes={max_prompt_bytes}"
        )
    pairs = pairs.cache()
    if shuffle:
        pairs = pairs.shuffle(SHUFFLE_BUFFER, reshuffle_each_iteration=True)
    if labelled:
        split = "train" if shuffle else "test"
        if seed is None and not shuffle:
            seed = 0
        pairs = builder.captioned(pairs, split=split, seed=seed)

    def tokenize(images, texts):
        lengths = tf_prompt_byte_lengths(texts)
        too_long = lengths > max_prompt_bytes
        check = tf.debugging.Assert(
            tf.logical_not(tf.reduce_any(too_long)),
            [
                f"A caption may have at most {max_prompt_bytes} UTF-8 bytes. Received:",
                tf.boolean_mask(texts, too_long)[:1],
            ],
        )
        with tf.control_dependencies([check]):
            return images, tf_prompt_token_ids(texts, max_prompt_bytes)

    batches = pairs.batch(batch_size, drop_remainder=drop_remainder)
    batches = batches.map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)
    return batches.prefetch(tf.data.AUTOTUNE)
