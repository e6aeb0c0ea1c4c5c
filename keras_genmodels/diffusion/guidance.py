"""What a conditional DDPM is conditioned on, and classifier-free guidance.

A conditional noise predictor takes `[x_t, t, *condition]`. The condition
starts as a *raw* int32 tensor with one row per example — a class label
`(batch,)`, or the byte ids of a prompt `(batch, length)` — and a
`Conditioning` turns it into the network's extra inputs. Each conditioning
has a *null* raw condition (the "no label" class, the empty prompt) that
stands for "unconditional":

- training replaces the condition of each example by the null one with
  probability `p_uncond`, so one network learns both `eps(x_t, t, c)` and
  `eps(x_t, t, null)`;
- sampling with classifier-free guidance (Ho and Salimans, 2022) mixes them,

  `eps = eps(x_t, t, null) + w * (eps(x_t, t, c) - eps(x_t, t, null))`,

  where `w` is the guidance scale (0: unconditional, 1: conditional, above
  1: guided). Both predictions come from one network call on a batch of
  twice the size (`guided_noise`).

Reference:
    Ho and Salimans, "Classifier-Free Diffusion Guidance", NeurIPS 2021
    Workshop on Deep Generative Models (arXiv:2207.12598, 2022).
"""

import tensorflow as tf

from keras_genmodels.conditioning.text import prompt_token_ids


class ClassConditioning:
    """Class labels `[0, num_classes)`; the null condition is `num_classes`.

    Args:
        num_classes: The number of classes (the network's label embedding
            has `num_classes + 1` entries).
    """

    option = "labels"

    def __init__(self, num_classes):
        self.num_classes = int(num_classes)

    def null(self, batch_size):
        """The raw null condition of `batch_size` examples: int32 `(batch,)`."""
        return tf.fill(tf.reshape(batch_size, [1]), tf.constant(self.num_classes, tf.int32))

    def network_inputs(self, raw, training=False, averaged=False):
        """The network's extra inputs for raw labels: `[labels]`.

        `training` and `averaged` are accepted for the one code path of every
        conditioning and ignored (labels need no encoder).
        """
        del training, averaged
        return [tf.cast(raw, tf.int32)]

    def null_inputs(self, batch_size, averaged=False):
        """The network's extra inputs for the null condition of `batch_size` rows."""
        return self.network_inputs(self.null(batch_size), averaged=averaged)


class TextConditioning:
    """Text prompts as byte token ids; the null condition is the empty prompt.

    The raw condition is int32 token ids `(batch, L)`, `L = max_prompt_bytes
    + 1` (`keras_genmodels.conditioning.text.prompt_token_ids`); the
    network's extra inputs are the text encoder's `[states (batch, L,
    width), mask (batch, L)]`, read by the U-Net's cross-attention. Training
    encodes with the trained `encoder`, sampling with its weight average
    `average_encoder`, as the noise network and its EMA twin.

    Args:
        encoder: The trained text encoder, `token_ids -> [states, mask]`
            (`keras_genmodels.conditioning.text.text_encoder`).
        average_encoder: Its EMA twin.
        max_prompt_bytes: Longest prompt, in UTF-8 bytes.
    """

    option = "prompt"

    def __init__(self, encoder, average_encoder, max_prompt_bytes):
        self.encoder = encoder
        self.average_encoder = average_encoder
        self.max_prompt_bytes = int(max_prompt_bytes)
        #: int32 `(1, L)`: the ids of the empty prompt, `[BOS, PAD, ...]`.
        self.null_ids = prompt_token_ids([""], self.max_prompt_bytes)

    @property
    def length(self):
        """`L`, the number of token ids of a prompt (`max_prompt_bytes + 1`)."""
        return self.max_prompt_bytes + 1

    def null(self, batch_size):
        """The raw null condition of `batch_size` examples: the empty prompt's
        ids, int32 `(batch, L)`."""
        return tf.tile(tf.constant(self.null_ids), tf.stack([batch_size, 1]))

    def network_inputs(self, raw, training=False, averaged=False):
        """The network's extra inputs for token ids: `[states, mask]`, float32.

        Args:
            raw: int32 token ids `(batch, L)`.
            training: Whether the encoder runs in training mode.
            averaged: Whether to encode with the EMA encoder (sampling and
                exports) rather than the trained one.
        """
        encoder = self.average_encoder if averaged else self.encoder
        states, mask = encoder(tf.cast(raw, tf.int32), training=training)
        return [tf.cast(states, tf.float32), tf.cast(mask, tf.float32)]

    def null_inputs(self, batch_size, averaged=False):
        """The empty prompt's `[states, mask]` for `batch_size` rows: encoded
        once and tiled."""
        states, mask = self.network_inputs(self.null(1), averaged=averaged)
        return [
            tf.tile(states, tf.stack([batch_size, 1, 1])),
            tf.tile(mask, tf.stack([batch_size, 1])),
        ]


def drop_condition(conditioning, raw, keep):
    """Replaces the raw condition of the examples where `keep` is False by null.

    Args:
        conditioning: A `ClassConditioning` or `TextConditioning` (any
            object with `null`).
        raw: int32 raw conditions, one row per example.
        keep: bool `(batch,)`.

    Returns:
        The raw conditions with dropped rows set to the null condition.
    """
    null = conditioning.null(tf.shape(raw)[0])
    if raw.shape.rank > 1:
        if null.shape.rank == 1:  # One null value per row, e.g. the null class.
            null = tf.reshape(null, [-1] + [1] * (raw.shape.rank - 1))
        null = tf.broadcast_to(null, tf.shape(raw))
        keep = tf.reshape(keep, [-1] + [1] * (raw.shape.rank - 1))
    return tf.where(keep, raw, tf.cast(null, raw.dtype))


def guided_noise(network, x_t, t, condition, null_condition, guidance_scale):
    """Classifier-free guided noise prediction, both branches in one call.

    Args:
        network: The noise predictor `[x_t, t, *condition] -> eps`.
        x_t: float32 `(batch, ...)` noisy samples.
        t: int32 `(batch,)` timesteps.
        condition: The network's extra inputs for the requested condition.
        null_condition: The same for the null condition.
        guidance_scale: float32 scalar `w`, or `(batch,)` one per example.

    Returns:
        float32 `eps_null + w * (eps_cond - eps_null)`, shaped like `x_t`.
    """
    doubled = [
        tf.concat([x_t, x_t], 0),
        tf.concat([t, t], 0),
        *[tf.concat([c, u], 0) for c, u in zip(condition, null_condition)],
    ]
    eps = tf.cast(network(doubled, training=False), tf.float32)
    eps_cond, eps_null = tf.split(eps, 2, axis=0)
    w = tf.reshape(tf.cast(guidance_scale, tf.float32), [-1] + [1] * (x_t.shape.rank - 1))
    return eps_null + w * (eps_cond - eps_null)
