"""The variational autoencoder (Kingma and Welling, 2014)."""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_genmodels.base import GenerativeModel, check_positive_int
from keras_genmodels.serving_limits import InputChecks, ServingLimits
from keras_genmodels.signatures import latents_endpoint

_EPS = 1e-7
_LOG_2PI = math.log(2.0 * math.pi)


def bernoulli_log_likelihood(images, probabilities):
    """`sum_i x_i log p_i + (1 - x_i) log(1 - p_i)` over the pixels of each image.

    Args:
        images: `(..., H, W, C)` targets in [0, 1].
        probabilities: Decoder outputs of the same shape, clipped to
            `[1e-7, 1 - 1e-7]`.

    Returns:
        `(...)` float32 log-likelihoods.
    """
    images = tf.cast(images, "float32")
    p = tf.clip_by_value(tf.cast(probabilities, "float32"), _EPS, 1.0 - _EPS)
    ll = images * tf.math.log(p) + (1.0 - images) * tf.math.log1p(-p)
    return tf.reduce_sum(ll, axis=[-3, -2, -1])


def gaussian_log_density(z, mean, log_var):
    """`log N(z; mean, diag(exp(log_var)))`, summed over the last axis."""
    return -0.5 * tf.reduce_sum(
        _LOG_2PI + log_var + tf.square(z - mean) * tf.exp(-log_var), axis=-1
    )


@keras.saving.register_keras_serializable(package="keras_genmodels")
class VAE(GenerativeModel):
    """Variational autoencoder with a Bernoulli decoder and Gaussian posterior.

    The encoder gives `q(z|x) = N(z_mean, exp(z_log_var))`; a latent is drawn
    with the reparameterisation `z = z_mean + exp(0.5 * z_log_var) * eps`,
    `eps ~ N(0, I)`, and the decoder gives pixel probabilities. The loss per
    image is

    `loss = -sum_pixels log Bern(x | decoder(z)) + beta * KL(q(z|x) || N(0, I))`

    with the analytic
    `KL = -0.5 * sum(1 + z_log_var - z_mean^2 - exp(z_log_var))`. With
    `kl_warmup_steps > 0`, `beta` grows linearly from 0 over that many steps.

    References:
        Kingma and Welling, "Auto-Encoding Variational Bayes", ICLR 2014.
        Burda et al., "Importance Weighted Autoencoders", ICLR 2016 (the
        IWAE bound used by `evaluation_metrics`).

    Args:
        encoder: `keras.Model` from images to `[z_mean, z_log_var]`.
        decoder: `keras.Model` from latents to pixel probabilities in [0, 1].
        beta: Weight of the KL term (1.0 is the ELBO).
        kl_warmup_steps: Optimizer steps over which the KL weight ramps up
            from 0 to `beta`; 0 disables the warm-up.
        seed: Optional int seed of the training noise.
        **kwargs: Passed to `keras.Model`.

    Call arguments:
        images: `(batch, H, W, C)` float images.

    Returns (of `call`):
        The reconstruction from the posterior mean, `(batch, H, W, C)`.

    Example:

    ```python
    from keras_genmodels.vae import networks
    vae = VAE(networks.mlp_encoder(), networks.mlp_decoder())
    vae.compile(optimizer="adam")
    vae.fit(images, epochs=1, batch_size=128)
    vae.sample(16, seed=0).shape  # (16, 28, 28, 1)
    ```
    """

    data_kind = "image"
    nested_networks = ("encoder", "decoder")
    config_arguments = ("beta", "kl_warmup_steps")

    def __init__(
        self, encoder, decoder, beta=1.0, kl_warmup_steps=0, seed=None, **kwargs
    ):
        kwargs.setdefault("name", "vae")
        super().__init__(seed=seed, **kwargs)
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
        self.add_loss_trackers("loss", "reconstruction_loss", "kl_loss")
        self.build((None, *self.data_shape))

    def call(self, images, training=False):
        z_mean, _ = self.encoder(images, training=training)
        return self.decoder(z_mean, training=training)

    def kl_weight(self):
        """The KL weight at the current optimizer step (`beta` after warm-up)."""
        if self.kl_warmup_steps == 0 or self.optimizer is None:
            return tf.constant(self.beta, "float32")
        step = tf.cast(self.optimizer.iterations, "float32")
        return self.beta * tf.minimum(1.0, step / self.kl_warmup_steps)

    def compute_losses(self, data, training=False):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        z_mean, z_log_var = self.encoder(images, training=training)
        z_mean = tf.cast(z_mean, "float32")
        z_log_var = tf.cast(z_log_var, "float32")
        eps = self.batch_noise(tf.shape(z_mean))
        z = z_mean + tf.exp(0.5 * z_log_var) * eps
        probabilities = self.decoder(z, training=training)
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

    # ------------------------------------------------------------------
    # Inference.
    # ------------------------------------------------------------------
    def encode(self, images):
        """Returns `(z_mean, z_log_var)` numpy arrays for `images`."""
        z_mean, z_log_var = self.encoder(tf.convert_to_tensor(images, "float32"))
        return keras.ops.convert_to_numpy(z_mean), keras.ops.convert_to_numpy(z_log_var)

    def decode(self, latents):
        """Returns pixel probabilities `(N, H, W, C)` for `latents` `(N, d)`."""
        latents = np.asarray(latents, dtype="float32")
        if latents.ndim != 2 or latents.shape[-1] != self.latent_dim:
            raise ValueError(
                f"`latents` must have shape (N, {self.latent_dim}). Received: "
                f"shape {latents.shape}"
            )
        return keras.ops.convert_to_numpy(self.decoder(latents))

    def reconstruct(self, images):
        """Decodes the posterior mean of `images`."""
        return keras.ops.convert_to_numpy(self(tf.convert_to_tensor(images, "float32")))

    def sample_from_seed(self, num_samples, seed):
        """Decodes `num_samples` latents drawn from the prior `N(0, I)`.

        `sample(num_samples, seed=None)` returns these pixel probabilities,
        `(num_samples, H, W, C)` float32, as numpy; the exported `sample`
        signature gives the same images for the same seed pair.
        """
        latents = tf.random.stateless_normal(
            tf.stack([num_samples, self.latent_dim]), seed=seed
        )
        return tf.cast(self.decoder(latents), "float32")

    # ------------------------------------------------------------------
    # Evaluation.
    # ------------------------------------------------------------------
    def likelihood_bounds(self, images, num_importance_samples=100, seed=0):
        """Per-image ELBO and IWAE estimates of `log p(x)`, in nats.

        `log p(x) >= log (1/k) sum_j p(x|z_j) p(z_j) / q(z_j|x)` with
        `z_j ~ q(z|x)` (Burda et al., 2016); with `k = 1` it is the ELBO. The
        ELBO returned is the mean of the `k` single-sample terms.

        Args:
            images: `(N, H, W, C)` array.
            num_importance_samples: k.
            seed: Int seed of the draws.

        Returns:
            `(elbo, iwae)`: two `(N,)` float64 numpy arrays.
        """
        k = check_positive_int(num_importance_samples, "num_importance_samples")
        images = tf.convert_to_tensor(images, "float32")
        z_mean, z_log_var = (tf.cast(t, "float32") for t in self.encoder(images))
        shape = tf.concat([[k], tf.shape(z_mean)], 0)
        eps = tf.random.stateless_normal(shape, seed=[seed, 1])
        z = z_mean + tf.exp(0.5 * z_log_var) * eps  # (k, N, d)
        flat = tf.reshape(z, [-1, self.latent_dim])
        probabilities = tf.reshape(
            self.decoder(flat), tf.concat([[k], tf.shape(images)], 0)
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

        Args:
            dataset: Unbatched dataset of images (labels are ignored).
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
            elbo, iwae = self.likelihood_bounds(
                batch, num_importance_samples, seed=len(elbos)
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

    # ------------------------------------------------------------------
    # Export.
    # ------------------------------------------------------------------
    #: Default model name of an export (`BASE/NAME/VERSION`).
    default_export_name = "vae"

    @property
    def serving_limits(self):
        """The limits the serving signatures enforce (`ServingLimits`)."""
        return ServingLimits(
            {"sample": ("num_samples",), "encode": ("batch_size",), "decode": ("batch_size",)}
        )

    def serving_endpoints(self, limits=None):
        """The `sample`, `encode` and `decode` signatures, inputs checked.

        Args:
            limits: Optional `{limit name: int}` replacing the defaults of
                `serving_limits`.
        """
        limits = self.serving_limits.resolve(limits)
        image_shape = [None, *self.data_shape]
        image_spec = tf.TensorSpec(image_shape, tf.float32, name="images")

        @tf.function(input_signature=[image_spec])
        def encode(images):
            checks = InputChecks()
            images = checks.batch(
                "images", images, image_shape, limits["batch_size"], low=0.0, high=1.0
            )
            z_mean, z_log_var = self.encoder(checks.gate(images))
            return {
                "z_mean": tf.cast(z_mean, "float32"),
                "z_log_var": tf.cast(z_log_var, "float32"),
            }

        return {
            "sample": self.sample_endpoint(limits),
            "encode": encode,
            "decode": self._decode_endpoint(None, limits["batch_size"]),
        }

    def _decode_endpoint(self, batch_size, limit=None):
        """`decode`; with a row `limit` (serving) its input is checked."""
        return latents_endpoint(
            "decode", lambda z: tf.cast(self.decoder(z), "float32"), self.latent_dim,
            "images", batch_size, limit,
        )

    def tflite_endpoints(self, batch_size=1):
        return {"decode": self._decode_endpoint(batch_size)}

    def signature_examples(self, batch_size=1):
        rng = np.random.default_rng(0)
        return {
            "sample": self.sample_signature_example(),
            "encode": {
                "images": rng.uniform(size=(batch_size, *self.data_shape)).astype("float32")
            },
            "decode": {
                "latents": rng.standard_normal((batch_size, self.latent_dim)).astype("float32")
            },
        }
