"""The generative adversarial network (Goodfellow et al., 2014).

`GAN` holds the two networks, the data handling, sampling and evaluation;
its update is in `keras_genmodels.gan.training`, the loss terms in
`keras_genmodels.gan.losses` and the exported signatures in
`keras_genmodels.gan.serving`.
"""


import keras
import numpy as np
import tensorflow as tf

from keras_genmodels import ema
from keras_genmodels.base import GenerativeModel, check_positive_int
from keras_genmodels.conditioning import check_labels, check_num_classes, labelled_pipeline
from keras_genmodels.gan.networks import PackExamples
from keras_genmodels.gan.serving import GANServing
from keras_genmodels.gan.training import AdversarialTraining


@keras.saving.register_keras_serializable(package="keras_genmodels")
class GAN(AdversarialTraining, GANServing, GenerativeModel):
    """Generative adversarial network with one train step for both players.

    Each `train_step` draws latents `z ~ N(0, I)`, takes `d_steps` updates of
    the discriminator (with fresh latents, on the same real batch) and then
    one update of the generator, each with its own optimizer:

    - `non_saturating` (Goodfellow et al., 2014):
      `L_D = -E[log D(x)] - E[log(1 - D(G(z)))]`, `L_G = -E[log D(G(z))]`;
    - `hinge` (Lim and Ye, 2017; Miyato et al., 2018):
      `L_D = E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]`, `L_G = -E[D(G(z))]`;
    - `wgan_gp` (Gulrajani et al., 2017):
      `L_D = E[D(G(z))] - E[D(x)] + lambda E[(||grad D(x_hat)|| - 1)^2]` with
      `x_hat = u x + (1 - u) G(z)`, `u ~ U(0, 1)` per example, `lambda = 10`;
      `L_G = -E[D(G(z))]`.

    The optional R1 penalty (Mescheder et al., 2018) adds
    `gamma / 2 * E[||grad D(x)||^2]` on real data to `L_D`. With `ema_decay`
    an exponential moving average of the generator weights,
    `w_ema <- decay * w_ema + (1 - decay) * w` after every step (batch
    normalisation statistics are copied; `keras_genmodels.ema.WeightAverage`
    with `non_trainable="copy"`), is what `sample`, `call` and the exports
    use; it is saved with the model as `ema_generator`.

    With `num_classes` the model is class-conditional: the generator and the
    discriminator take int `labels` as a second input, training reads
    `(data, label)` batches and generated examples get the real batch's labels.

    References:
        Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014.
        Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017.
        Miyato et al., "Spectral Normalization for Generative Adversarial
        Networks", ICLR 2018 (the hinge loss).
        Mescheder et al., "Which Training Methods for GANs do actually
        Converge?", ICML 2018 (R1).
        Yazici et al., "The Unusual Effectiveness of Averaging in GAN
        Training", ICLR 2019 (EMA of the generator).

    Args:
        generator: `keras.Model` from latents `(batch, latent_dim)` (and int
            labels `(batch,)` when `num_classes` is set) to data.
        discriminator: `keras.Model` from data (and labels) to `(batch, 1)`
            scores.
        latent_dim: Size of the latent; `None` reads it from the generator.
        num_classes: Number of classes for a class-conditional model, or
            `None`.
        ema_decay: Decay of the generator's weight average in (0, 1), or
            `None` for no average.
        from_logits: Whether the discriminator outputs logits (`True`) or
            sigmoid probabilities (`False`, the seed's discriminator; only the
            `non_saturating` loss accepts it).
        seed: Optional int seed of the training noise.
        **kwargs: Passed to `keras.Model`.

    Call arguments:
        inputs: Latents `(batch, latent_dim)`, or `[latents, labels]` when
            class-conditional.

    Returns (of `call`):
        The generated data, `(batch, *data_shape)`.

    Example:

    ```python
    from keras_genmodels.gan import networks
    gan = GAN(networks.dcgan_generator(), networks.dcgan_discriminator(), 64)
    gan.compile()  # Adam(2e-4, beta_1=0.5) for both, non-saturating loss.
    gan.fit(images, epochs=1, batch_size=64)
    gan.sample(16, seed=0).shape  # (16, 28, 28, 1)
    ```
    """

    nested_networks = ("generator", "discriminator")
    config_arguments = ("latent_dim", "num_classes", "ema_decay", "from_logits")

    def __init__(
        self,
        generator,
        discriminator,
        latent_dim=None,
        num_classes=None,
        ema_decay=None,
        from_logits=True,
        seed=None,
        **kwargs,
    ):
        kwargs.setdefault("name", "gan")
        super().__init__(seed=seed, **kwargs)
        num_classes = check_num_classes(
            num_classes, generator=generator, discriminator=discriminator
        )
        generator_latent = generator.inputs[0].shape[-1]
        if latent_dim is None:
            latent_dim = generator_latent
        if latent_dim != generator_latent:
            raise ValueError(
                "`latent_dim` must equal the generator's input size. Received: "
                f"latent_dim={latent_dim}, generator input {tuple(generator.inputs[0].shape)}"
            )
        data_shape = tuple(generator.outputs[0].shape[1:])
        if tuple(discriminator.inputs[0].shape[1:]) != data_shape:
            raise ValueError(
                "The discriminator's input shape must equal the generator's output "
                f"shape. Received: {tuple(discriminator.inputs[0].shape[1:])} and {data_shape}"
            )
        if tuple(discriminator.outputs[0].shape[1:]) != (1,):
            raise ValueError(
                "The discriminator must output one score per example, (batch, 1). "
                f"Received: {tuple(discriminator.outputs[0].shape)}"
            )
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise ValueError(
                f"`ema_decay` must be None or in (0, 1). Received: ema_decay={ema_decay}"
            )
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim)
        self.num_classes = num_classes
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self.from_logits = bool(from_logits)
        self.data_shape = tuple(int(d) for d in data_shape)
        self.data_kind = "image" if len(self.data_shape) == 3 else "points"
        self.uses_labels = self.num_classes is not None
        self.conditioning = ("labels",) if self.uses_labels else ()
        self.pack = max(
            (layer.pack for layer in discriminator.layers if isinstance(layer, PackExamples)),
            default=1,
        )
        # The twin keeps this attribute name: `.keras` files store its weights
        # under it.
        self.ema_generator = None
        self._weight_average = None
        if self.ema_decay is not None:
            self.ema_generator = ema.averaged_twin(generator)
            self._weight_average = ema.WeightAverage(
                generator, self.ema_generator, self.ema_decay, non_trainable="copy"
            )
        # Penalty trackers exist from the start (Keras creates no state after
        # build); `metrics` lists them only when the penalty is on.
        self.add_loss_trackers("d_loss", "g_loss", "gradient_penalty", "r1_penalty")
        self.loss = None  # The adversarial loss, set by `compile`.
        self.gradient_penalty_weight = 0.0
        self.r1_weight = 0.0
        latent_shape = (None, self.latent_dim)
        self.build(latent_shape if num_classes is None else [latent_shape, (None,)])

    @property
    def sampling_generator(self):
        """The generator used by `sample`, `call` and the exports (EMA if on)."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def call(self, inputs, training=False):
        return self.sampling_generator(inputs, training=training)

    # ------------------------------------------------------------------
    # Data (the updates are in `training.AdversarialTraining`).
    # ------------------------------------------------------------------
    def _unpack(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if isinstance(x, (tuple, list)) and y is None:
            x, y = x[0], x[1]
        if self.num_classes is not None:
            if y is None:
                raise ValueError(
                    "A class-conditional GAN trains on (data, label) batches. "
                    "Received batches without labels."
                )
            y = tf.cast(tf.reshape(y, [-1]), "int32")
        else:
            y = None
        return x, y

    def _with_labels(self, x, labels):
        return x if labels is None else [x, labels]

    def prepare_dataset(self, dataset, batch_size, shuffle=True, drop_remainder=False):
        """Batches a dataset, keeping `(data, label)` pairs when class-conditional.

        Args:
            dataset: Unbatched `tf.data.Dataset` of data or (data, label) pairs.
            batch_size: Positive int.
            shuffle: Whether to shuffle each epoch.
            drop_remainder: Whether to drop the last partial batch (always
                done with a packed discriminator).

        Returns:
            A batched, prefetched `tf.data.Dataset`.
        """
        if self.pack > 1:
            # A packed discriminator scores groups of `pack` examples.
            if check_positive_int(batch_size, "batch_size") % self.pack:
                raise ValueError(
                    f"`batch_size` must be a multiple of the discriminator's pack="
                    f"{self.pack}. Received: batch_size={batch_size}"
                )
            drop_remainder = True
        if self.num_classes is None:
            return super().prepare_dataset(dataset, batch_size, shuffle, drop_remainder)
        return labelled_pipeline(dataset, batch_size, shuffle, drop_remainder, "GAN")

    # ------------------------------------------------------------------
    # Sampling.
    # ------------------------------------------------------------------
    def sample_from_seed(self, num_samples, seed, labels=None):
        """Generates from latents `z ~ N(0, I)` drawn with the stateless `seed`.

        Args:
            num_samples: int32 scalar tensor.
            seed: int32 `[2]` tensor.
            labels: int32 `(num_samples,)` tensor (class-conditional models).

        Returns:
            float32 `(num_samples, *data_shape)`.
        """
        latents = tf.random.stateless_normal(tf.stack([num_samples, self.latent_dim]), seed=seed)
        return self._generate(latents, labels)

    def _generate(self, latents, labels=None):
        return tf.cast(self.sampling_generator(self._with_labels(latents, labels)), "float32")

    def sample(self, num_samples, seed=None, *, labels=None, **conditioning):
        """Generates `num_samples` examples from latents `z ~ N(0, I)`.

        Args:
            num_samples: Positive int.
            seed: `None`, an int or a pair of ints; the exported `sample`
                signature gives the same output for the same seed pair (and
                the same `labels`).
            labels: Class-conditional models only: an int or `num_samples`
                ints in `[0, num_classes)`; defaults to `0, 1, 2, ...`
                cycling through the classes.
            **conditioning: Refused with a `ValueError` (a GAN takes no
                `prompt` or `guidance_scale`).

        Returns:
            float32 numpy array `(num_samples, *data_shape)`: images in [0, 1]
            or points.

        Example:

        ```python
        gan.sample(16, seed=0, labels=3)  # sixteen 3s from a conditional GAN
        ```
        """
        return super().sample(num_samples, seed, labels=labels, **conditioning)

    def sample_options(self, num_samples, labels=None):
        """`labels` becomes an int32 tensor option (`None` when unconditional)."""
        if self.num_classes is None:
            return {}, {}
        labels = check_labels(labels, num_samples, self.num_classes)
        return {}, {"labels": tf.constant(labels)}

    def generate(self, latents, labels=None):
        """Maps given latents `(N, latent_dim)` (and labels) to data, as numpy."""
        latents = np.asarray(latents, dtype="float32")
        if latents.ndim != 2 or latents.shape[-1] != self.latent_dim:
            raise ValueError(
                f"`latents` must have shape (N, {self.latent_dim}). Received: "
                f"shape {latents.shape}"
            )
        labels = self.check_conditioning({"labels": labels}).get("labels")
        if self.num_classes is not None:
            labels = tf.constant(check_labels(labels, len(latents), self.num_classes))
        return self._generate(tf.constant(latents), labels).numpy()

    # ------------------------------------------------------------------
    # Evaluation.
    # ------------------------------------------------------------------
    def evaluation_metrics(self, dataset, seed=0, batch_size=256, **kwargs):
        """Test-set adversarial losses and the discriminator's accuracy.

        The data-set figures (mode coverage on the 2-D toy sets,
        classifier-FID on digits) come from
        `keras_genmodels.evaluation.registry.evaluate`, which calls this.

        Args:
            dataset: Unbatched test dataset (data, or (data, label) pairs).
            seed: Seed of the latents.
            batch_size: Test batch size. A packed discriminator (`pack > 1`)
                scores full batches only; a test set smaller than one batch
                is scored as one batch of as many whole packs as it holds.
            **kwargs: Ignored (e.g. `dataset_name`, other families' options).

        Returns:
            A dict of JSON-serialisable numbers: `d_loss`, `g_loss`,
            `d_accuracy` (share of test and generated examples the
            discriminator classifies right) and `num_test_examples`.
        """
        del kwargs
        if self.loss is None:
            raise ValueError("Call `compile()` before `evaluation_metrics()`.")

        def eval_fn(real, labels, eval_seed):
            latents = tf.random.stateless_normal(
                tf.stack([tf.shape(real)[0], self.latent_dim]), seed=eval_seed
            )
            return self._adversarial_losses(real, labels, latents)

        eval_fn = self.traced_function(("evaluation_metrics",), eval_fn)
        from keras_genmodels import progress

        batch_size = check_positive_int(batch_size, "batch_size")
        if self.pack > 1:
            size = progress.dataset_size(dataset)
            if size < batch_size:  # No full batch: one batch of whole packs.
                batch_size = size // self.pack * self.pack
            if batch_size == 0:
                raise ValueError(
                    f"The evaluation data set has {size} examples; the packed "
                    f"discriminator scores groups of pack={self.pack}, so it needs "
                    f"at least {self.pack}."
                )
        totals, count = {}, 0
        batches = progress.track_test_batches(
            self, dataset, batch_size, "GAN losses and discriminator accuracy"
        )
        for step, batch in enumerate(batches):
            real, labels = self._unpack(batch)
            n = int(real.shape[0])
            values = eval_fn(real, labels, tf.constant([seed, step], tf.int32))
            for name, value in values.items():
                totals[name] = totals.get(name, 0.0) + float(value) * n
            count += n
        metrics = {name: total / count for name, total in totals.items()}
        metrics["num_test_examples"] = count
        return metrics
