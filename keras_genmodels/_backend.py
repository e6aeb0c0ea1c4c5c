"""Refuses to run on a Keras backend other than TensorFlow.

Every family writes its own `train_step` with `tf.GradientTape`, exports
`tf.function`s and converts them to TF Lite, so the TensorFlow backend is not
optional. This check runs before Keras is imported so the error names the
setting that is wrong instead of failing deep inside a layer.
"""

import os


class BackendError(ImportError):
    """Raised when Keras is configured with a backend other than TensorFlow."""


def check_backend():
    """Raises `BackendError` unless Keras runs on the TensorFlow backend.

    Returns:
        The name of the backend, `"tensorflow"`.
    """
    requested = os.environ.get("KERAS_BACKEND")
    if requested is not None and requested != "tensorflow":
        raise BackendError(
            "keras_genmodels needs the TensorFlow backend of Keras. "
            f"Received: KERAS_BACKEND={requested!r}; unset it or set "
            "KERAS_BACKEND=tensorflow."
        )
    import keras

    backend = keras.config.backend()
    if backend != "tensorflow":
        raise BackendError(
            "keras_genmodels needs the TensorFlow backend of Keras. "
            f"Received: backend {backend!r} from ~/.keras/keras.json; set "
            '"backend": "tensorflow" there or KERAS_BACKEND=tensorflow.'
        )
    return backend
