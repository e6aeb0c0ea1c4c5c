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


def latents_endpoint(name, fn, latent_size, output_name, batch_size=None, limit=None):
    """A signature from latents `[batch_size, latent_size]` to one output.

    The VAE's and the flow's `decode`. With a row `limit` (TF Serving) the
    latents are checked first (rows in `[1, limit]`, finite values); the TF
    Lite twin (a static `batch_size`, no `limit`) has no checks.

    Args:
        name: The function's name (`"decode"`).
        fn: Callable from float32 latents to a tensor.
        latent_size: Width of one latent vector.
        output_name: Key of the output.
        batch_size: Static batch dimension, or `None` for any.
        limit: Largest number of rows a request may send, or `None`.

    Returns:
        A `tf.function` with an input signature `latents`.
    """
    from keras_genmodels.serving_limits import InputChecks

    shape = [batch_size, latent_size]

    def endpoint(latents):
        if limit is not None:
            checks = InputChecks()
            latents = checks.batch("latents", latents, shape, limit, finite=True)
            latents = checks.gate(latents)
        return {output_name: fn(latents)}

    endpoint.__name__ = name
    spec = tf.TensorSpec(shape, tf.float32, name="latents")
    return tf.function(endpoint, input_signature=[spec])
