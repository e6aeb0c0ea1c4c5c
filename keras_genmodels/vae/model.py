"""The variational autoencoder (Kingma and Welling, 2014), optionally
class-conditional (Sohn et al., 2015).

`VAE` holds the networks, the loss, sampling and the likelihood bounds; its
log-densities are in `keras_genmodels.vae.likelihoods` and its exported
signatures in `keras_genmodels.vae.serving`.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_genmodels.base import GenerativeModel, check_positive_int
from keras_genmodels.conditioning import check_labels, check_num_classes, labelled_pipeline
from keras_genmodels.vae.likelihoods import bernoulli_log_likelihood, gaussian_log_density
from keras_genmodels.vae.serving import VAEServing


@keras.saving.register_keras_serializable(package="keras_genmodels")
class VAE(VAEServing, GenerativeModel):
    """Variational autoencoder with a Bernoulli decoder and Gaussian posterior.

    The encoder gives `q(z|x) = N(z_mean, exp(z_log_var))`; a latent is drawn
    with the reparameterisation `z = z_mean + exp(0.5 * z_log_var) * eps`,
    `eps ~ N(0, I)`, and the decoder gives pixel probabilities. The loss per
    image is

    `loss = -sum_pixels log Bern(x | decoder(z)) + beta * KL(q(z|x) || N(0, I))`

    with the analytic
    `KL = -0.5 * sum(1 + z_log_var - z_mean^2 - exp(z_log_var))`. With
    `kl_warmup_steps > 0`, `beta` grows linearly from 0 over that many steps.

    With `num_classes` the model is class-conditional (a CVAE): the encoder
    and the decoder take int `labels` `y` as a second input, so the posterior
    is `q(z|x, y)`, the decoder `p(x|z, y)` and the prior stays `N(0, I)`;
    training reads `(images, labels)` batches, `sample(n, labels=...)` draws
    the requested classes and the ELBO/IWAE figures bound `log p(x|y)` for
    the true label.

    References:
        Kingma and Welling, "Auto-Encoding Variational Bayes", ICLR 2014.
        Sohn, Lee and Yan, "Learning Structured Output Representation using
        Deep Conditional Generative Models", NeurIPS 2015 (the conditional
        VAE).
        Burda et al., "Importance Weighted Autoencoders", ICLR 2016 (the
        IWAE bound used by `evaluation_metrics`).

    Args:
        encoder: `keras.Model` from images (and int labels `(batch,)` when
            `num_classes` is set) to `[z_mean, z_log_var]`.
        decoder: `keras.Model` from latents (and labels) to pixel
            probabilities in [0, 1].
        beta: Weight of the KL term (1.0 is the ELBO).
        kl_warmup_steps: Optimizer steps over which the KL weight ramps up
            from 0 to `beta`; 0 disables the warm-up.
        num_classes: Number of classes of a class-conditional model, or
            `None` (unconditional).
        seed: Optional int seed of the training noise.
        **kwargs: Passed to `keras.Model`.

    Call arguments:
        inputs: `(batch, H, W, C)` float images, or `[images, labels]` when
            class-conditional.

    Returns (of `call`):
        The reconstruction from the posterior mean, `(batch, H, W, C)`.

    Example:

    ```python
    from keras_genmodels.vae import networks
    vae = VAE(networks.mlp_encoder(), networks.mlp_decoder())
    vae.compile(optimizer="adam")
    vae.fit(images, epochs=1, batch_size=128)
    vae.sample(16, seed=0).shape  # (16, 28, 28, 1)

    cvae = keras_genmodels.build("vae", "conv-cond")
    cvae.fit(cvae.prepare_dataset(labelled_digits, 128), epochs=1)
    cvae.sample(10, seed=0, labels=7)  # ten 7s
    ```
    """

    data_kind = "image"
    nested_networks = ("encoder", "decoder")
    config_arguments = ("beta", "kl_warmup_steps", "num_classes")

    def __init__(
        self,
        encoder,
        decoder,
        beta=1.0,
        kl_warmup_steps=0,
        num_classes=None,
        seed=None,
        **kwargs,
    ):
        kwargs.setdefault("name", "vae")
        super().__init__(seed=seed, **kwargs)
        num_classes = check_num_classes(num_classes, encoder=encoder, decoder=decoder)
        if len(encoder.outputs) != 2:
            raise ValueError(
                "`encoder` must output [z_mean, z_log_var]. Received an "
                f"encoder with {len(encoder.outputs)} outputs."
            )
        latent_dim = encoder.outputs[0].shape[-1]
        if decoder.inputs[0].shape[-1] != latent_dim:
            raise ValueError(
                "The decoder's input size must equal the latent size. Received: "
                f"latent_dim={latent_dim}, decoder input "
                f"{tuple(decoder.inputs[0].shape)}"
            )
        if tuple(encoder.inputs[0].shape[1:]) != tuple(decoder.outputs[0].shape[1:]):
            raise ValueError(
                "The encoder's input shape must equal the decoder's output "
                f"shape. Received: {tuple(encoder.inputs[0].shape[1:])} and "
                f"{tuple(decoder.outputs[0].shape[1:])}"
            )
        if beta < 0:
            raise ValueError(f"`beta` must be non-negative. Received: beta={beta}")
        if kl_warmup_steps < 0:
            raise ValueError(
                "`kl_warmup_steps` must be non-negative. Received: "
                f"kl_warmup_steps={kl_warmup_steps}"
            )
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = int(latent_dim)
        self.data_shape = tuple(int(d) for d in decoder.outputs[0].shape[1:])
        self.beta = float(beta)
        self.kl_warmup_steps = int(kl_warmup_steps)
        self.num_classes = num_classes
        self.uses_labels = self.num_classes is not None
        self.conditioning = ("labels",) if self.uses_labels else ()
        self.add_loss_trackers("loss", "reconstruction_loss", "kl_loss")
        image_shape = (None, *self.data_shape)
        self.build(image_shape if num_classes is None else [image_shape, (None,)])

    def _with_labels(self, x, labels):
        return x if labels is None else [x, labels]

    def _encode(self, images, labels=None, training=False):
        """`(z_mean, z_log_var)`, float32, of `q(z|x[, y])` (pure TF)."""
        z_mean, z_log_var = self.encoder(self._with_labels(images, labels), training=training)
        return tf.cast(z_mean, "float32"), tf.cast(z_log_var, "float32")

    def _decode(self, latents, labels=None, training=False):
        """Pixel probabilities of `p(x|z[, y])`, float32 (pure TF)."""
        return tf.cast(
            self.decoder(self._with_labels(latents, labels), training=training), "float32"
        )

    def call(self, inputs, training=False):
        if self.num_classes is None:
            images, labels = inputs, None
        else:
            images, labels = inputs
        z_mean, _ = self.encoder(self._with_labels(images, labels), training=training)
        return self.decoder(self._with_labels(z_mean, labels), training=training)

    def kl_weight(self):
        """The KL weight at the current optimizer step (`beta` after warm-up)."""
        if self.kl_warmup_steps == 0 or self.optimizer is None:
            return tf.constant(self.beta, "float32")
        step = tf.cast(self.optimizer.iterations, "float32")
        return self.beta * tf.minimum(1.0, step / self.kl_warmup_steps)

    def _unpack(self, data):
        """`(images, labels)` of a batch; labels `None` when unconditional."""
        images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        if isinstance(images, (tuple, list)) and labels is None:
            images, labels = images[0], images[1]
        if self.num_classes is None:
            return images, None
        if labels is None:
            raise ValueError(
                "A class-conditional VAE trains on (images, labels) batches. "
                "Received batches without labels."
            )
        return images, tf.cast(tf.reshape(labels, [-1]), "int32")

    def compute_losses(self, data, training=False):
        images, labels = self._unpack(data)
        z_mean, z_log_var = self._encode(images, labels, training=training)
        eps = self.batch_noise(tf.shape(z_mean))
        z = z_mean + tf.exp(0.5 * z_log_var) * eps
        probabilities = self.decoder(self._with_labels(z, labels), training=training)
        reconstruction = -tf.reduce_mean(
            bernoulli_log_likelihood(images, probabilities)
        )
        kl = tf.reduce_mean(
            -0.5
            * tf.reduce_sum(
                1.0 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var), axis=-1
            )
        )
        weight = self.kl_weight() if training else tf.constant(self.beta, "float32")
        return {
            "loss": reconstruction + weight * kl,
            "reconstruction_loss": reconstruction,
            "kl_loss": kl,
        }

    def prepare_dataset(self, dataset, batch_size, shuffle=True, drop_remainder=False):
        """Batches a dataset, keeping `(images, label)` pairs when class-conditional.

        Args:
            dataset: Unbatched `tf.data.Dataset` of images or (image, label)
                pairs (an unconditional VAE drops the labels).
            batch_size: Positive int.
            shuffle: Whether to shuffle each epoch.
            drop_remainder: Whether to drop the last partial batch.

        Returns:
            A batched, prefetched `tf.data.Dataset`.
        """
        if self.num_classes is None:
            return super().prepare_dataset(dataset, batch_size, shuffle, drop_remainder)
        return labelled_pipeline(dataset, batch_size, shuffle, drop_remainder, "VAE")

    # ------------------------------------------------------------------
    # Inference.
    # ------------------------------------------------------------------
    def _checked_labels(self, labels, rows, required):
        """The `labels` argument of `encode`, `decode` and the bounds.

        Refused (`ValueError`) on an unconditional VAE; on a conditional one
        checked by `check_labels` and returned as an int32 tensor, `None`
        cycling through the classes unless `required`.
        """
        labels = self.check_conditioning({"labels": labels}).get("labels")
        if self.num_classes is None:
            return None
        if labels is None and required:
            raise ValueError(
                "A class-conditional VAE encodes an image with its label: pass "
                f"`labels` (an int or {rows} ints in [0, {self.num_classes})). "
                "Received: labels=None"
            )
        return tf.constant(check_labels(labels, rows, self.num_classes))

    def encode(self, images, labels=None):
        """The posterior `q(z|x[, y])` of `images`.

        Args:
            images: `(N, H, W, C)` array in [0, 1].
            labels: Class-conditional models only (required there): an int
                or `N` ints in `[0, num_classes)`, the images' classes.

        Returns:
            `(z_mean, z_log_var)`: two `(N, latent_dim)` float32 numpy arrays.
        """
        images = tf.convert_to_tensor(images, "float32")
        labels = self._checked_labels(labels, int(images.shape[0]), required=True)
        z_mean, z_log_var = self._encode(images, labels)
        return z_mean.numpy(), z_log_var.numpy()

    def decode(self, latents, labels=None):
        """Pixel probabilities of `p(x|z[, y])` for given latents.

        Args:
            latents: `(N, latent_dim)` array.
            labels: Class-conditional models only: an int or `N` ints in
                `[0, num_classes)`; defaults to `0, 1, 2, ...` cycling
                through the classes, as in `sample`.

        Returns:
            `(N, H, W, C)` float32 numpy array.
        """
        latents = np.asarray(latents, dtype="float32")
        if latents.ndim != 2 or latents.shape[-1] != self.latent_dim:
            raise ValueError(
                f"`latents` must have shape (N, {self.latent_dim}). Received: "
                f"shape {latents.shape}"
            )
        labels = self._checked_labels(labels, len(latents), required=False)
        return self._decode(tf.constant(latents), labels).numpy()

    def reconstruct(self, images, labels=None):
        """Decodes the posterior mean of `images` (with their `labels` when
        class-conditional, as in `encode`)."""
        images = tf.convert_to_tensor(images, "float32")
        labels = self._checked_labels(labels, int(images.shape[0]), required=True)
        z_mean, _ = self._encode(images, labels)
        return self._decode(z_mean, labels).numpy()

    def sample(self, num_samples, seed=None, *, labels=None, **conditioning):
        """Decodes `num_samples` latents drawn from the prior `N(0, I)`.

        Args:
            num_samples: Positive int.
            seed: `None`, an int or a pair of ints; the exported `sample`
                signature gives the same images for the same seed pair (and
                the same `labels`).
            labels: Class-conditional models only: an int or `num_samples`
                ints in `[0, num_classes)`; defaults to `0, 1, 2, ...`
                cycling through the classes.
            **conditioning: Refused with a `ValueError` (a VAE takes no
                `prompt` or `guidance_scale`).

        Returns:
            Pixel probabilities, `(num_samples, H, W, C)` float32 numpy.

        Example:

        ```python
        cvae.sample(8, seed=0, labels=[0, 1, 2, 3, 4, 5, 6, 7])
        ```
        """
        return super().sample(num_samples, seed, labels=labels, **conditioning)

    def sample_options(self, num_samples, labels=None):
        """`labels` becomes an int32 tensor option (none when unconditional)."""
        if self.num_classes is None:
            return {}, {}
        labels = check_labels(labels, num_samples, self.num_classes)
        return {}, {"labels": tf.constant(labels)}

    def sample_from_seed(self, num_samples, seed, labels=None):
        """Decodes `num_samples` latents drawn from the prior `N(0, I)`.

        Args:
            num_samples: int32 scalar tensor.
            seed: int32 `[2]` tensor of the stateless draw.
            labels: int32 `(num_samples,)` tensor (class-conditional models).

        Returns:
            float32 `(num_samples, H, W, C)` pixel probabilities.
        """
        latents = tf.random.stateless_normal(
            tf.stack([num_samples, self.latent_dim]), seed=seed
        )
        return self._decode(latents, labels)

    # ------------------------------------------------------------------
    # Evaluation.
    # ------------------------------------------------------------------
    def likelihood_bounds(self, images, num_importance_samples=100, seed=0, labels=None):
        """Per-image ELBO and IWAE estimates of `log p(x)`, in nats.

        `log p(x) >= log (1/k) sum_j p(x|z_j) p(z_j) / q(z_j|x)` with
        `z_j ~ q(z|x)` (Burda et al., 2016); with `k = 1` it is the ELBO. The
        ELBO returned is the mean of the `k` single-sample terms. A
        class-conditional VAE bounds `log p(x|y)` for the given labels, with
        `p(x|z_j, y)` and `q(z_j|x, y)` in the same formula.

        Args:
            images: `(N, H, W, C)` array.
            num_importance_samples: k.
            seed: Int seed of the draws.
            labels: Class-conditional models only (required there): an int
                or `N` ints, the images' classes.

        Returns:
            `(elbo, iwae)`: two `(N,)` float64 numpy arrays.
        """
        k = check_positive_int(num_importance_samples, "num_importance_samples")
        images = tf.convert_to_tensor(images, "float32")
        labels = self._checked_labels(labels, int(images.shape[0]), required=True)
        z_mean, z_log_var = self._encode(images, labels)
        shape = tf.concat([[k], tf.shape(z_mean)], 0)
        eps = tf.random.stateless_normal(shape, seed=[seed, 1])
        z = z_mean + tf.exp(0.5 * z_log_var) * eps  # (k, N, d)
        flat = tf.reshape(z, [-1, self.latent_dim])
        # Row j * N + n of `flat` is image n's j-th draw: tiling the labels k
        # times lines them up.
        flat_labels = None if labels is None else tf.tile(labels, [k])
        probabilities = tf.reshape(
            self._decode(flat, flat_labels), tf.concat([[k], tf.shape(images)], 0)
        )
        log_px_z = bernoulli_log_likelihood(images[None], probabilities)
        log_pz = gaussian_log_density(z, 0.0, tf.zeros_like(z))
        log_qz = gaussian_log_density(z, z_mean, z_log_var)
        log_w = tf.cast(log_px_z + log_pz - log_qz, "float64")
        elbo = tf.reduce_mean(log_w, 0)
        iwae = tf.reduce_logsumexp(log_w, 0) - math.log(k)
        return elbo.numpy(), iwae.numpy()

    def evaluation_metrics(
        self, dataset, num_importance_samples=100, batch_size=100, **kwargs
    ):
        """Test negative ELBO and IWAE NLL in nats per image.

        A class-conditional VAE is scored on `log p(x|y)` with each image's
        true label (the bounds of `likelihood_bounds`).

        Args:
            dataset: Unbatched dataset of images, or of (image, label) pairs
                (labels are required by a class-conditional VAE and ignored
                by an unconditional one).
            num_importance_samples: k of the IWAE bound.
            batch_size: Images per decoder batch (times k latents).
            **kwargs: Ignored (other families use e.g. `dataset_name`).

        Returns:
            `{"negative_elbo": float, "iwae_nll": float, "num_images": int}`.
        """
        from keras_genmodels import progress

        k = check_positive_int(num_importance_samples, "num_importance_samples")
        elbos, iwaes = [], []
        for batch in progress.track_test_batches(
            self, dataset, batch_size, f"IWAE bound (k={k})", "test images"
        ):
            images, labels = batch if self.num_classes is not None else (batch, None)
            elbo, iwae = self.likelihood_bounds(
                images, num_importance_samples, seed=len(elbos), labels=labels
            )
            elbos.append(elbo)
            iwaes.append(iwae)
        elbo, iwae = np.concatenate(elbos), np.concatenate(iwaes)
        return {
            "negative_elbo": float(-elbo.mean()),
            "iwae_nll": float(-iwae.mean()),
            "iwae_samples": num_importance_samples,
            "num_images": int(len(elbo)),
        }
