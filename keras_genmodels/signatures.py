"""Building exported signatures.

`named_function` gives a Python body with keyword extras a `tf.function`
whose parameters carry the names of its input specs, so the exported
signature's inputs are named as a client sends them.
"""

import inspect

import tensorflow as tf


def named_function(fn, specs, **function_kwargs):
    """A `tf.function` of `fn` whose parameters are named after `specs`.

    The exported signature's inputs take the specs' names, and `fn` is
    called with the first two inputs positionally and the rest as keywords,
    so one Python body serves signatures with different extra inputs.

    Args:
        fn: Callable `(a, b, **rest)`.
        specs: Named `tf.TensorSpec`s, at least two.
        **function_kwargs: Passed to `tf.function` (`autograph` defaults to
            `False`: the bodies use TensorFlow control flow explicitly).

    Returns:
        A `tf.function` with `input_signature=specs`.
    """
    names = [spec.name for spec in specs]

    def call(*args):
        inputs = dict(zip(names, args))
        first, second = (inputs.pop(name) for name in names[:2])
        return fn(first, second, **inputs)

    call.__name__ = fn.__name__
    call.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
    )
    function_kwargs.setdefault("autograph", False)
    return tf.function(call, input_signature=specs, **function_kwargs)


def latents_endpoint(
    name, fn, latent_size, output_name, batch_size=None, limit=None, num_classes=None
):
    """A signature from latents `[batch_size, latent_size]` to one output.

    The VAE's and the flow's `decode`. With a row `limit` (TF Serving) the
    latents are checked first (rows in `[1, limit]`, finite values); the TF
    Lite twin (a static `batch_size`, no `limit`) has no checks. With
    `num_classes` (class-conditional models) the signature also takes int32
    `labels` `[batch_size]`, one per row in `[0, num_classes)` (checked with
    the latents when there is a `limit`).

    Args:
        name: The function's name (`"decode"`).
        fn: Callable from float32 latents (and int32 labels, with
            `num_classes`) to a tensor.
        latent_size: Width of one latent vector.
        output_name: Key of the output.
        batch_size: Static batch dimension, or `None` for any.
        limit: Largest number of rows a request may send, or `None`.
        num_classes: Number of classes of a class-conditional model, or
            `None` (no `labels` input).

    Returns:
        A `tf.function` with an input signature `latents` (and `labels`).
    """
    from keras_genmodels.serving_limits import InputChecks

    shape = [batch_size, latent_size]
    specs = [tf.TensorSpec(shape, tf.float32, name="latents")]
    if num_classes is not None:
        specs.append(tf.TensorSpec([batch_size], tf.int32, name="labels"))

    def endpoint(latents, labels=None):
        if limit is not None:
            checks = InputChecks()
            latents = checks.batch("latents", latents, shape, limit, finite=True)
            if labels is not None:
                from keras_genmodels.conditioning import check_served_labels

                labels = check_served_labels(
                    checks, labels, tf.shape(latents)[0], num_classes
                )
            latents, labels = checks.gate(latents, labels)
        outputs = fn(latents) if labels is None else fn(latents, labels)
        return {output_name: outputs}

    endpoint.__name__ = name
    return tf.function(endpoint, input_signature=specs)
