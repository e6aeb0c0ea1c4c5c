"""Validation of the conditioning a `sample` call or a served request carries.

Every conditional model accepts the same keyword options with the same rules
(`GenerativeModel.sample(num_samples, seed=None, *, labels=None,
prompt=None, guidance_scale=None, ...)`):

- `labels`: ints in `[0, num_classes)`, one per sample or one int broadcast
  to all; `None` cycles through the classes (`0, 1, 2, ...`).
- `prompt`: a non-empty `str`, broadcast, or a list of `num_samples` of them.
- `guidance_scale`: a finite float `w >= 0` of classifier-free guidance
  (Ho and Salimans, 2022): `eps = eps_uncond + w * (eps_cond - eps_uncond)`.

A model that does not take one of them raises `ValueError` naming the option
and the value received (`GenerativeModel.check_conditioning`).
"""

import math
import numbers

import numpy as np
import tensorflow as tf

from keras_genmodels.base import (  # noqa: F401 (CONDITIONING_OPTIONS re-exported)
    CONDITIONING_OPTIONS,
    batch_pipeline,
    check_positive_int,
)


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_num_classes(num_classes, **networks):
    """Validates a model's `num_classes` and the inputs of its networks.

    Args:
        num_classes: `None` (unconditional) or an int >= 2.
        **networks: `{what: keras.Model}` networks that take one input more
            (the labels) when the model is class-conditional.

    Returns:
        `num_classes` as an int, or `None`.
    """
    if num_classes is not None and (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, numbers.Integral)
        or num_classes < 2
    ):
        raise ValueError(
            f"`num_classes` must be None or an int >= 2. Received: num_classes={num_classes!r}"
        )
    expected = 1 if num_classes is None else 2
    for what, network in networks.items():
        if len(network.inputs) != expected:
            raise ValueError(
                f"With num_classes={num_classes}, the {what} must take {expected} "
                f"input(s). Received a {what} with {len(network.inputs)} inputs."
            )
    return None if num_classes is None else int(num_classes)


def check_labels(labels, num_samples, num_classes):
    """Validates the `labels` option of a class-conditional model.

    Args:
        labels: `None` (cycle through the classes), an int, or `num_samples`
            ints in `[0, num_classes)` (list, tuple or array).
        num_samples: The number of samples the labels are for.
        num_classes: The model's number of classes.

    Returns:
        An int32 numpy array of shape `(num_samples,)`.

    Example:

    ```python
    check_labels(3, 4, 10)  # array([3, 3, 3, 3], dtype=int32)
    ```
    """
    if labels is None:
        return (np.arange(num_samples) % num_classes).astype("int32")
    array = np.asarray(labels)
    if array.dtype == bool or array.dtype.kind not in "iu" or array.ndim > 1:
        raise ValueError(
            f"`labels` must be an int or a list of {num_samples} ints in "
            f"[0, {num_classes}). Received: labels={_short(labels)}"
        )
    if array.ndim == 0:
        array = np.full(num_samples, array)
    if array.shape != (num_samples,):
        raise ValueError(
            f"`labels` must have one entry per sample ({num_samples}), or be one "
            f"int. Received {array.shape[0]} labels: labels={_short(labels)}"
        )
    bad = (array < 0) | (array >= num_classes)
    if bad.any():
        raise ValueError(
            f"`labels` must lie in [0, {num_classes}). Received: "
            f"{array[bad][0]} in labels={_short(labels)}"
        )
    return array.astype("int32")


def check_prompts(prompt, num_samples, max_bytes=None):
    """Validates the `prompt` option of a text-conditional model.

    Args:
        prompt: A non-empty `str` (used for every sample) or a list, tuple
            or 1-D numpy array of `num_samples` non-empty strings; `bytes`
            (e.g. the elements of a `tf.string` tensor's numpy value) are
            decoded as UTF-8.
        num_samples: The number of samples.
        max_bytes: Optional longest accepted prompt, in UTF-8 bytes.

    Returns:
        A list of `num_samples` strings.

    Example:

    ```python
    check_prompts(np.array([b"a 7", b"nine"]), 2)  # ["a 7", "nine"]
    ```
    """
    if isinstance(prompt, np.ndarray) and prompt.ndim == 0:
        prompt = prompt.item()
    if isinstance(prompt, (str, bytes)):
        prompts = [_decoded(prompt)] * num_samples
    elif (
        isinstance(prompt, (list, tuple))
        or isinstance(prompt, np.ndarray) and prompt.ndim == 1
    ) and all(isinstance(p, (str, bytes)) for p in prompt):
        prompts = [_decoded(p) for p in prompt]
    else:
        raise ValueError(
            "`prompt` must be a string or a list of strings. Received: "
            f"prompt={_short(prompt)}"
        )
    if len(prompts) != num_samples:
        raise ValueError(
            f"`prompt` must be one string or a list of {num_samples} (one per "
            f"sample). Received {len(prompts)} prompts: prompt={_short(prompt)}"
        )
    for text in prompts:
        if not text.strip():
            raise ValueError(
                "`prompt` must not be empty (the empty prompt is the "
                "unconditional case of guidance; use guidance_scale=0 for it). "
                f"Received: prompt={text!r}"
            )
        if max_bytes is not None and len(text.encode("utf-8")) > max_bytes:
            raise ValueError(
                f"A `prompt` may have at most {max_bytes} UTF-8 bytes. Received "
                f"{len(text.encode('utf-8'))} bytes: prompt={_short(text)}"
            )
    return prompts


def _decoded(prompt):
    """A prompt as `str`: `bytes` decoded as UTF-8 (ValueError if they are not)."""
    if isinstance(prompt, str):
        return str(prompt)
    try:
        return bytes(prompt).decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"A `prompt` given as bytes must be UTF-8 ({error.reason} at byte "
            f"{error.start}). Received: prompt={_short(prompt)}"
        ) from None


def check_guidance_scale(guidance_scale, default):
    """Validates the classifier-free guidance weight `w`.

    Args:
        guidance_scale: `None` (use `default`) or a finite real `w >= 0`;
            0 is unconditional, 1 plain conditional, above 1 guided.
        default: The model's default weight.

    Returns:
        A Python float.
    """
    if guidance_scale is None:
        return float(default)
    if (
        isinstance(guidance_scale, bool)
        or not isinstance(guidance_scale, numbers.Real)
        or not math.isfinite(guidance_scale)
        or guidance_scale < 0
    ):
        raise ValueError(
            "`guidance_scale` must be a finite number >= 0 (0: unconditional, 1: "
            f"conditional, > 1: guided). Received: guidance_scale={guidance_scale!r}"
        )
    return float(guidance_scale)


def check_served_labels(checks, labels, rows, num_classes):
    """In-graph checks of a served `labels` input: `rows` ints in range.

    Args:
        checks: The signature's `serving_limits.InputChecks`.
        labels: The int32 `labels` input.
        rows: int32 scalar, the number of rows the labels must match.
        num_classes: The model's number of classes.

    Returns:
        The shape-checked labels (gate them with the other inputs).
    """
    labels = checks.shape("labels", labels, [None])
    checks.check(
        tf.equal(tf.shape(labels)[0], rows),
        "labels must have one entry per sample. Received: {} labels for {} samples",
        tf.shape(labels)[0],
        rows,
    )
    checks.values("labels", labels, 0, num_classes - 1)
    return labels


def labelled_pipeline(dataset, batch_size, shuffle=True, drop_remainder=False, what="model"):
    """Batches `(features, label)` pairs for a class-conditional `fit`.

    Args:
        dataset: Unbatched `tf.data.Dataset` of `(features, label, ...)`.
        batch_size: Positive int.
        shuffle: Whether to shuffle each epoch.
        drop_remainder: Whether to drop the last partial batch.
        what: The model's description for the error message.

    Returns:
        A batched, prefetched dataset of `(features, int32 label)` pairs.
    """
    if not isinstance(dataset.element_spec, tuple):
        raise ValueError(
            f"A class-conditional {what} trains on (data, label) pairs: load the "
            "data set with `with_labels=True`. Received a dataset of "
            f"{dataset.element_spec}"
        )
    batch_size = check_positive_int(batch_size, "batch_size")

    def pair(x, y, *_):
        return x, tf.cast(tf.reshape(y, []), tf.int32)

    dataset = dataset.map(pair, num_parallel_calls=tf.data.AUTOTUNE)
    return batch_pipeline(dataset, batch_size, shuffle, drop_remainder)
