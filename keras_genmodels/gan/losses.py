"""The adversarial losses and gradient penalties of the GAN, from scores.

Every function takes the discriminator's scores (logits) or the squared norms
of its input gradients and returns a scalar float32 tensor; the GAN model
(`keras_genmodels.gan.model`) computes those and combines the terms.

References:
    Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014.
    Lim and Ye, "Geometric GAN", 2017 (the hinge loss).
    Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017.
    Mescheder et al., "Which Training Methods for GANs do actually
    Converge?", ICML 2018 (R1).
"""

import keras
import tensorflow as tf

#: The adversarial losses `GAN.compile` accepts.
LOSSES = ("non_saturating", "hinge", "wgan_gp")
_EPS = 1e-7


def discriminator_losses(real_logits, fake_logits, loss, label_smoothing=0.0):
    """The adversarial part of the discriminator loss, from logits.

    - `non_saturating`: `E[softplus(-D(x))] + E[softplus(D(G(z)))]`, the
      binary cross-entropy; with one-sided label smoothing `s` the real
      target is `1 - s`.
    - `hinge`: `E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]`.
    - `wgan_gp`: `E[D(G(z))] - E[D(x)]` (the penalty is added apart).

    Args:
        real_logits: `(batch, 1)` scores of real data.
        fake_logits: `(batch, 1)` scores of generated data.
        loss: One of `LOSSES`.
        label_smoothing: One-sided label smoothing of the real target.

    Returns:
        A scalar float32 tensor.
    """
    # Losses in float32 under a mixed policy: softplus of large logits and
    # the batch means lose precision in bfloat16/float16.
    real = tf.cast(real_logits, "float32")
    fake = tf.cast(fake_logits, "float32")
    if loss == "non_saturating":
        target = 1.0 - label_smoothing
        real_term = target * tf.nn.softplus(-real) + (1.0 - target) * tf.nn.softplus(real)
        return tf.reduce_mean(real_term) + tf.reduce_mean(tf.nn.softplus(fake))
    if loss == "hinge":
        return tf.reduce_mean(tf.nn.relu(1.0 - real)) + tf.reduce_mean(tf.nn.relu(1.0 + fake))
    return tf.reduce_mean(fake) - tf.reduce_mean(real)


def generator_loss(fake_logits, loss):
    """The generator loss: `E[softplus(-D(G(z)))]` (non-saturating), else `-E[D(G(z))]`.

    Args:
        fake_logits: `(batch, 1)` scores of generated data.
        loss: One of `LOSSES`.

    Returns:
        A scalar float32 tensor.
    """
    fake = tf.cast(fake_logits, "float32")
    if loss == "non_saturating":
        return tf.reduce_mean(tf.nn.softplus(-fake))
    return -tf.reduce_mean(fake)


def gradient_penalty(squared_norms):
    """The WGAN-GP penalty `E[(||grad D(x_hat)|| - 1)^2]`.

    Args:
        squared_norms: `(batch,)` squared norms `||grad D(x_hat)||^2` at the
            interpolates `x_hat`.

    Returns:
        A scalar float32 tensor.
    """
    return tf.reduce_mean(tf.square(tf.sqrt(squared_norms + 1e-12) - 1.0))


def probabilities_to_logits(p):
    """`log(p) - log(1 - p)`, with `p` clipped to `[1e-7, 1 - 1e-7]`."""
    p = tf.clip_by_value(tf.cast(p, "float32"), _EPS, 1.0 - _EPS)
    return tf.math.log(p) - tf.math.log1p(-p)


def default_optimizer(loss):
    """The default optimizer of each player: `Adam(2e-4, beta_1=0.5)`, or
    `Adam(1e-4, beta_1=0.5, beta_2=0.9)` for `wgan_gp` (Gulrajani et al.)."""
    if loss == "wgan_gp":
        return keras.optimizers.Adam(1e-4, beta_1=0.5, beta_2=0.9)
    return keras.optimizers.Adam(2e-4, beta_1=0.5)


def check_compile_arguments(
    loss, from_logits, gradient_penalty_weight, r1_weight, label_smoothing
):
    """Validates the loss arguments of `GAN.compile`; raises `ValueError`.

    Args:
        loss: The adversarial loss, one of `LOSSES`.
        from_logits: Whether the discriminator outputs logits.
        gradient_penalty_weight: `lambda` of the WGAN-GP penalty, >= 0.
        r1_weight: `gamma` of the R1 penalty, >= 0.
        label_smoothing: In `[0, 1)`, `non_saturating` only when non-zero.
    """
    if loss not in LOSSES:
        raise ValueError(f"`loss` must be one of {LOSSES}. Received: loss={loss!r}")
    if loss != "non_saturating" and not from_logits:
        raise ValueError(
            f"The {loss!r} loss needs a discriminator that outputs logits "
            "(from_logits=True). Received: from_logits=False"
        )
    if gradient_penalty_weight < 0 or r1_weight < 0:
        raise ValueError(
            "Penalty weights must be non-negative. Received: "
            f"gradient_penalty_weight={gradient_penalty_weight}, r1_weight={r1_weight}"
        )
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(
            f"`label_smoothing` must be in [0, 1). Received: label_smoothing={label_smoothing}"
        )
    if label_smoothing and loss != "non_saturating":
        raise ValueError(
            "`label_smoothing` applies to the non_saturating loss only. Received: "
            f"loss={loss!r}, label_smoothing={label_smoothing}"
        )
