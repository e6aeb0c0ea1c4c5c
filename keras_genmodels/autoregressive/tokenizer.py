"""Byte-level tokenizer: UTF-8 bytes are the tokens, so there is no vocabulary
file to ship and every string round-trips.

The Python functions (`encode`, `decode`) and the TensorFlow ones
(`tf_encode`, `tf_decode`) agree, so exported signatures take and return
strings in pure TensorFlow.
"""

import numpy as np
import tensorflow as tf

VOCAB_SIZE = 256
#: Token that starts generation when the prompt is empty (`"\n"`).
START_TOKEN = 10


def encode(text):
    """Returns the UTF-8 bytes of `text` as an int32 numpy array.

    Args:
        text: `str` or `bytes`.

    Returns:
        `(len,)` int32 array of byte ids in `[0, 256)`.

    Example:

    ```python
    encode("hé")  # array([104, 195, 169], dtype=int32)
    ```
    """
    if isinstance(text, str):
        text = text.encode("utf-8")
    if not isinstance(text, bytes):
        raise ValueError(f"`text` must be str or bytes. Received: text={text!r}")
    return np.frombuffer(text, dtype=np.uint8).astype("int32")


def text_ids(text_or_ids, action="score"):
    """Byte ids of a text given as a `str` or as ids, refusing an empty one.

    Args:
        text_or_ids: `str` (encoded as UTF-8) or a sequence of byte ids.
        action: Verb for the error message, e.g. `"score"`.

    Returns:
        `(len,)` int32 numpy array, `len >= 1`.
    """
    if isinstance(text_or_ids, str):
        text_or_ids = encode(text_or_ids)
    ids = np.asarray(text_or_ids, "int32").reshape(-1)
    if len(ids) == 0:
        raise ValueError(f"Cannot {action} an empty text.")
    return ids


def decode(tokens):
    """Returns the text of byte ids; invalid UTF-8 becomes U+FFFD.

    Args:
        tokens: 1-D sequence of ints in `[0, 256)`.

    Returns:
        `str`.
    """
    tokens = np.asarray(tokens).reshape(-1)
    return bytes(tokens.astype(np.uint8).tolist()).decode("utf-8", errors="replace")


def tf_encode(text):
    """Byte ids of a scalar string tensor, in TensorFlow.

    Args:
        text: Scalar `tf.string`.

    Returns:
        `(len,)` int32 tensor.
    """
    return tf.cast(tf.io.decode_raw(text, tf.uint8), tf.int32)


def tf_decode(tokens):
    """Strings of byte-id rows, in TensorFlow; invalid UTF-8 becomes U+FFFD.

    Args:
        tokens: `(batch, len)` int tensor.

    Returns:
        `(batch,)` `tf.string`.
    """
    table = tf.constant([bytes([i]) for i in range(VOCAB_SIZE)])
    joined = tf.strings.reduce_join(tf.gather(table, tokens), axis=-1)
    return tf.strings.unicode_transcode(
        joined, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
    )
