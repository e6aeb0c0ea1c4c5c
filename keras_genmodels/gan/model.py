"""The generative adversarial network (Goodfellow et al., 2014)."""

import numbers

import keras
import numpy as np
import tensorflow as tf

from keras_genmodels.base import GenerativeModel, batch_pipeline, check_positive_int
from keras_genmodels.gan.networks import PackExamples
from keras_genmodels.serving_limits import InputChecks, ServingLimits

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


def _probabilities_to_logits(p):
    p = tf.clip_by_value(tf.cast(p, "float32"), _EPS, 1.0 - _EPS)
    return tf.math.log(p) - tf.math.log1p(-p)


@keras.saving.register_keras_serializable(package="keras_genmodels")
class GAN(GenerativeModel):
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
    normalisation statistics are copied), is what `sample`, `call` and the
    exports use; it is saved with the model.

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
        if num_classes is not None and (
            isinstance(num_classes, bool)
            or not isinstance(num_classes, numbers.Integral)
            or num_classes < 2
        ):
            raise ValueError(
                f"`num_classes` must be None or an int >= 2. Received: num_classes={num_classes!r}"
            )
        expected_inputs = 1 if num_classes is None else 2
        for net, what in ((generator, "generator"), (discriminator, "discriminator")):
            if len(net.inputs) != expected_inputs:
                raise ValueError(
                    f"With num_classes={num_classes}, the {what} must take "
                    f"{expected_inputs} input(s). Received a {what} with "
                    f"{len(net.inputs)} inputs."
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
        self.num_classes = None if num_classes is None else int(num_classes)
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self.from_logits = bool(from_logits)
        self.data_shape = tuple(int(d) for d in data_shape)
        self.data_kind = "image" if len(self.data_shape) == 3 else "points"
        self.uses_labels = self.num_classes is not None
        self.pack = max(
            (layer.pack for layer in discriminator.layers if isinstance(layer, PackExamples)),
            default=1,
        )
        self.ema_generator = None
        if self.ema_decay is not None:
            self.ema_generator = keras.models.clone_model(generator)
            self.ema_generator.set_weights(generator.get_weights())
            self.ema_generator.trainable = False
        # Penalty trackers exist from the start (Keras creates no state after
        # build); `metrics` lists them only when the penalty is on.
        self.add_loss_trackers("d_loss", "g_loss", "gradient_penalty", "r1_penalty")
        self.loss_name = None
        self.gradient_penalty_weight = 0.0
        self.r1_weight = 0.0
        self._sample_fn = None
        self._eval_fn = None
        latent_shape = (None, self.latent_dim)
        self.build(latent_shape if num_classes is None else [latent_shape, (None,)])

    def build(self, input_shape=None):
        # The generator and discriminator are built functional models.
        self.built = True

    @property
    def metrics(self):
        names = ["d_loss", "g_loss"]
        if self.gradient_penalty_weight:
            names.append("gradient_penalty")
        if self.r1_weight:
            names.append("r1_penalty")
        return [self._loss_trackers[name] for name in names]

    @property
    def sampling_generator(self):
        """The generator used by `sample`, `call` and the exports (EMA if on)."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def call(self, inputs, training=False):
        return self.sampling_generator(inputs, training=training)

    # ------------------------------------------------------------------
    # Compilation.
    # ------------------------------------------------------------------
    def compile(
        self,
        d_optimizer=None,
        g_optimizer=None,
        loss="non_saturating",
        gradient_penalty_weight=10.0,
        r1_weight=0.0,
        d_steps=1,
        label_smoothing=0.0,
        **kwargs,
    ):
        """Sets the two optimizers and the adversarial loss.

        Args:
            d_optimizer: Discriminator optimizer (instance or name). Defaults
                to `Adam(2e-4, beta_1=0.5)`, or `Adam(1e-4, beta_1=0.5,
                beta_2=0.9)` for `wgan_gp`.
            g_optimizer: Generator optimizer, with the same defaults.
            loss: `"non_saturating"`, `"hinge"` or `"wgan_gp"`.
            gradient_penalty_weight: `lambda` of the WGAN-GP penalty.
            r1_weight: `gamma` of the R1 penalty on real data; 0 turns it off.
            d_steps: Discriminator updates per generator update.
            label_smoothing: One-sided label smoothing of the real target in
                [0, 1) (`non_saturating` only).
            **kwargs: Passed to `keras.Model.compile` (e.g. `jit_compile`,
                `steps_per_execution`).
        """
        if loss not in LOSSES:
            raise ValueError(f"`loss` must be one of {LOSSES}. Received: loss={loss!r}")
        if loss != "non_saturating" and not self.from_logits:
            raise ValueError(
                f"The {loss!r} loss needs a discriminator that outputs logits "
                "(from_logits=True). Received: from_logits=False"
            )
        if gradient_penalty_weight < 0 or r1_weight < 0:
            raise ValueError(
                "Penalty weights must be non-negative. Received: "
                f"gradient_penalty_weight={gradient_penalty_weight}, r1_weight={r1_weight}"
            )
        d_steps = check_positive_int(d_steps, "d_steps")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(
                f"`label_smoothing` must be in [0, 1). Received: label_smoothing={label_smoothing}"
            )
        if label_smoothing and loss != "non_saturating":
            raise ValueError(
                "`label_smoothing` applies to the non_saturating loss only. Received: "
                f"loss={loss!r}, label_smoothing={label_smoothing}"
            )
        for key in ("optimizer", "loss_fn"):
            if key in kwargs:
                raise ValueError(
                    f"GAN.compile takes `d_optimizer` and `g_optimizer`. Received: {key}="
                )

        def default_optimizer():
            if loss == "wgan_gp":
                return keras.optimizers.Adam(1e-4, beta_1=0.5, beta_2=0.9)
            return keras.optimizers.Adam(2e-4, beta_1=0.5)

        d_optimizer = keras.optimizers.get(d_optimizer or default_optimizer())
        g_optimizer = keras.optimizers.get(g_optimizer or default_optimizer())
        if d_optimizer is g_optimizer:
            raise ValueError("`d_optimizer` and `g_optimizer` must be two optimizer objects.")
        super().compile(optimizer=g_optimizer, **kwargs)
        if self.dtype_policy.name == "mixed_float16" and not isinstance(
            d_optimizer, keras.optimizers.LossScaleOptimizer
        ):
            d_optimizer = keras.optimizers.LossScaleOptimizer(d_optimizer)
        # `self.optimizer` is the generator's (its iterations count train steps).
        self.g_optimizer = self.optimizer
        self.d_optimizer = d_optimizer
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.loss_name = loss
        self.gradient_penalty_weight = float(gradient_penalty_weight) if loss == "wgan_gp" else 0.0
        self.r1_weight = float(r1_weight)
        self.d_steps = d_steps
        self.label_smoothing = float(label_smoothing)
        self._gan_compile_config = {
            "d_optimizer": keras.optimizers.serialize(self.d_optimizer),
            "g_optimizer": keras.optimizers.serialize(self.g_optimizer),
            "loss": loss,
            "gradient_penalty_weight": float(gradient_penalty_weight),
            "r1_weight": self.r1_weight,
            "d_steps": d_steps,
            "label_smoothing": self.label_smoothing,
        }

    def get_compile_config(self):
        if self.compiled and hasattr(self, "_gan_compile_config"):
            return dict(self._gan_compile_config)
        return {}

    def compile_from_config(self, config):
        config = dict(config)
        for key in ("d_optimizer", "g_optimizer"):
            config[key] = keras.optimizers.deserialize(config[key])
        self.compile(**config)

    non_finite_advice = (
        "Lower the learning rates, add a gradient penalty (r1_weight=) or "
        "check the data for NaN."
    )

    def fit(self, *args, **kwargs):
        if self.loss_name is None:
            raise ValueError("Call `compile()` before `fit()`.")
        return super().fit(*args, **kwargs)

    # ------------------------------------------------------------------
    # Training.
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

    def _scores(self, data, labels, training):
        scores = self.discriminator(self._with_labels(data, labels), training=training)
        if self.from_logits:
            return tf.cast(scores, "float32")
        return _probabilities_to_logits(scores)

    def _input_gradient_norms(self, data, labels, training):
        """Scores of `data` and `||grad_x D(x)||^2` per example."""
        with tf.GradientTape() as tape:
            tape.watch(data)
            scores = self._scores(data, labels, training)
            total = tf.reduce_sum(scores)
        gradients = tf.cast(tape.gradient(total, data), "float32")
        axes = list(range(1, len(self.data_shape) + 1))
        return scores, tf.reduce_sum(tf.square(gradients), axis=axes)

    def _draw_latents(self, batch_size):
        return self.batch_noise(tf.stack([batch_size, self.latent_dim]))

    def _discriminator_objective(self, real, labels, latents, training):
        fake = tf.stop_gradient(
            self.generator(self._with_labels(latents, labels), training=training)
        )
        real = tf.cast(real, fake.dtype)
        logs = {}
        if self.r1_weight:
            real_scores, sq_norms = self._input_gradient_norms(real, labels, training)
            logs["r1_penalty"] = tf.reduce_mean(sq_norms)
        else:
            real_scores = self._scores(real, labels, training)
        fake_scores = self._scores(fake, labels, training)
        d_loss = discriminator_losses(
            real_scores, fake_scores, self.loss_name, self.label_smoothing
        )
        total = d_loss
        if self.gradient_penalty_weight:
            shape = tf.concat([tf.shape(real)[:1], tf.ones([len(self.data_shape)], "int32")], 0)
            u = self.batch_noise(shape, "uniform", dtype=real.dtype)
            mixed = u * real + (1.0 - u) * fake
            _, sq_norms = self._input_gradient_norms(mixed, labels, training)
            penalty = tf.reduce_mean(tf.square(tf.sqrt(sq_norms + 1e-12) - 1.0))
            logs["gradient_penalty"] = penalty
            total += self.gradient_penalty_weight * penalty
        if self.r1_weight:
            total += 0.5 * self.r1_weight * logs["r1_penalty"]
        logs["d_loss"] = d_loss
        return total, logs

    def _generator_objective(self, labels, latents, training):
        fake = self.generator(self._with_labels(latents, labels), training=training)
        return generator_loss(self._scores(fake, labels, training), self.loss_name)

    def train_step(self, data):
        real, labels = self._unpack(data)
        batch_size = tf.shape(real)[0]
        logs = {}
        for _ in range(self.d_steps):
            latents = self._draw_latents(batch_size)
            with tf.GradientTape() as tape:
                d_total, logs = self._discriminator_objective(real, labels, latents, True)
                scaled = self.scaled_loss(d_total, self.d_optimizer)
            self.apply_gradients(
                tape, scaled, self.discriminator.trainable_variables, self.d_optimizer
            )
        latents = self._draw_latents(batch_size)
        with tf.GradientTape() as tape:
            g_loss = self._generator_objective(labels, latents, True)
            scaled = self.scaled_loss(g_loss, self.g_optimizer)
        self.apply_gradients(tape, scaled, self.generator.trainable_variables, self.g_optimizer)
        self.after_train_step()
        logs["g_loss"] = g_loss
        return self.update_trackers(logs)

    def test_step(self, data):
        real, labels = self._unpack(data)
        latents = self._draw_latents(tf.shape(real)[0])
        return self.update_trackers(self._adversarial_losses(real, labels, latents))

    def _adversarial_losses(self, real, labels, latents):
        fake = self.generator(self._with_labels(latents, labels), training=False)
        real_scores = self._scores(tf.cast(real, fake.dtype), labels, False)
        fake_scores = self._scores(fake, labels, False)
        accuracy = 0.5 * (
            tf.reduce_mean(tf.cast(real_scores > 0, "float32"))
            + tf.reduce_mean(tf.cast(fake_scores < 0, "float32"))
        )
        return {
            "d_loss": discriminator_losses(real_scores, fake_scores, self.loss_name),
            "g_loss": generator_loss(fake_scores, self.loss_name),
            "d_accuracy": accuracy,
        }

    def after_train_step(self):
        if self.ema_generator is None:
            return
        decay = self.ema_decay
        for average, weight in zip(self.ema_generator.weights, self.generator.weights):
            if weight.trainable:
                average.assign(decay * average + (1.0 - decay) * weight)
            else:
                average.assign(weight)

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
        if not isinstance(dataset.element_spec, tuple):
            raise ValueError(
                "A class-conditional GAN needs (data, label) pairs: load the data "
                "set with `with_labels=True`."
            )
        batch_size = check_positive_int(batch_size, "batch_size")
        dataset = dataset.map(lambda x, y, *_: (x, y), num_parallel_calls=tf.data.AUTOTUNE)
        return batch_pipeline(dataset, batch_size, shuffle, drop_remainder)

    # ------------------------------------------------------------------
    # Sampling.
    # ------------------------------------------------------------------
    def _sample_from_seed(self, num_samples, seed, labels=None):
        latents = tf.random.stateless_normal(tf.stack([num_samples, self.latent_dim]), seed=seed)
        return self._generate(latents, labels)

    def _generate(self, latents, labels=None):
        return tf.cast(self.sampling_generator(self._with_labels(latents, labels)), "float32")

    def _check_labels(self, labels, num_samples):
        if self.num_classes is None:
            if labels is not None:
                raise ValueError(
                    "`labels` is only accepted by a class-conditional GAN "
                    "(num_classes set). Received labels for an unconditional GAN."
                )
            return None
        if labels is None:
            labels = np.arange(num_samples) % self.num_classes
        labels = np.asarray(labels)
        if labels.ndim == 0:
            labels = np.full(num_samples, labels)
        if labels.shape != (num_samples,) or labels.dtype.kind not in "iu":
            raise ValueError(
                f"`labels` must be an int or {num_samples} ints. Received: "
                f"shape {labels.shape}, dtype {labels.dtype}"
            )
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(
                f"`labels` must lie in [0, {self.num_classes}). Received: "
                f"range [{labels.min()}, {labels.max()}]"
            )
        return tf.constant(labels, tf.int32)

    def sample(self, num_samples, seed=None, labels=None):
        """Generates `num_samples` examples from latents `z ~ N(0, I)`.

        Args:
            num_samples: Positive int.
            seed: `None`, an int or a pair of ints; the exported `sample`
                signature gives the same output for the same seed pair.
            labels: Class-conditional models only: an int or `num_samples`
                ints in `[0, num_classes)`; defaults to `0, 1, 2, ...`
                cycling through the classes.

        Returns:
            float32 numpy array `(num_samples, *data_shape)`: images in [0, 1]
            or points.
        """
        num_samples = check_positive_int(num_samples, "num_samples")
        labels = self._check_labels(labels, num_samples)
        if self._sample_fn is None:
            self._sample_fn = tf.function(self._sample_from_seed)
        seed = self.resolve_seed(seed)
        return self._sample_fn(tf.constant(num_samples, tf.int32), seed, labels).numpy()

    def generate(self, latents, labels=None):
        """Maps given latents `(N, latent_dim)` (and labels) to data, as numpy."""
        latents = np.asarray(latents, dtype="float32")
        if latents.ndim != 2 or latents.shape[-1] != self.latent_dim:
            raise ValueError(
                f"`latents` must have shape (N, {self.latent_dim}). Received: "
                f"shape {latents.shape}"
            )
        labels = self._check_labels(labels, len(latents))
        return self._generate(tf.constant(latents), labels).numpy()

    # ------------------------------------------------------------------
    # Evaluation.
    # ------------------------------------------------------------------
    def evaluation_metrics(
        self, dataset, dataset_name=None, num_samples=2500, seed=0, batch_size=256, **kwargs
    ):
        """Test-set adversarial losses, and mode coverage on 2-D toy sets.

        Args:
            dataset: Unbatched test dataset (data, or (data, label) pairs).
            dataset_name: The data set's name; for the 2-D toy sets
                (`grid25`, `ring8`, `moons`, with parameters) it adds the
                mode-coverage figures of
                `keras_genmodels.evaluation.mode_coverage` and the true
                log-density of the samples.
            num_samples: Samples drawn for the 2-D figures (2,500 in the
                standard protocol).
            seed: Seed of the latents.
            batch_size: Test batch size. A packed discriminator (`pack > 1`)
                scores full batches only; a test set smaller than one batch
                is scored as one batch of as many whole packs as it holds.
            **kwargs: Ignored (other families' options).

        Returns:
            A dict of JSON-serialisable numbers: `d_loss`, `g_loss`,
            `d_accuracy` (share of test and generated examples the
            discriminator classifies right) and, for 2-D toy sets,
            `modes_covered`, `num_modes`, `high_quality_fraction`,
            `kl_to_uniform`, `sample_log_likelihood`,
            `data_log_likelihood`.
        """
        del kwargs
        if self.loss_name is None:
            raise ValueError("Call `compile()` before `evaluation_metrics()`.")
        if self._eval_fn is None:

            def eval_fn(real, labels, eval_seed):
                latents = tf.random.stateless_normal(
                    tf.stack([tf.shape(real)[0], self.latent_dim]), seed=eval_seed
                )
                return self._adversarial_losses(real, labels, latents)

            self._eval_fn = tf.function(eval_fn)
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
            values = self._eval_fn(real, labels, tf.constant([seed, step], tf.int32))
            for name, value in values.items():
                totals[name] = totals.get(name, 0.0) + float(value) * n
            count += n
        metrics = {name: total / count for name, total in totals.items()}
        metrics["num_test_examples"] = count
        if self.data_kind == "points" and dataset_name:
            from keras_genmodels.evaluation import mode_coverage

            samples = self.sample(num_samples, seed=seed)
            test_batches = self.prepare_dataset(dataset, batch_size, shuffle=False)
            test_points = np.concatenate(
                [np.asarray(self._unpack(b)[0]) for b in test_batches]
            )
            metrics.update(mode_coverage.evaluate_toy2d(samples, dataset_name, test_points))
        return metrics

    # ------------------------------------------------------------------
    # Export.
    # ------------------------------------------------------------------
    def _output_name(self):
        return "images" if self.data_kind == "image" else "samples"

    @property
    def default_export_name(self):
        """Default model name of an export: `gan`, plus `-cond` for a
        class-conditional model (its signatures take `labels`) and `-points`
        for vector data, so exports with different signatures never become
        versions of one servable."""
        conditional = "" if self.num_classes is None else "-cond"
        points = "" if self.data_kind == "image" else "-points"
        return f"gan{conditional}{points}"

    @property
    def serving_limits(self):
        """The limits the serving signatures enforce (`ServingLimits`)."""
        return ServingLimits({"sample": ("num_samples",), "generate": ("batch_size",)})

    def _check_served_labels(self, checks, labels, rows):
        labels = checks.shape("labels", labels, [None])
        checks.check(
            tf.equal(tf.shape(labels)[0], rows),
            "labels must have one entry per sample. Received: {} labels for {} samples",
            tf.shape(labels)[0],
            rows,
        )
        checks.values("labels", labels, 0, self.num_classes - 1)
        return labels

    def serving_endpoints(self, limits=None):
        """The `sample` and `generate` signatures, inputs checked.

        Args:
            limits: Optional `{limit name: int}` replacing the defaults of
                `serving_limits`.
        """
        limits = self.serving_limits.resolve(limits)
        specs = [
            tf.TensorSpec([], tf.int32, name="num_samples"),
            tf.TensorSpec([2], tf.int32, name="seed"),
        ]
        if self.num_classes is not None:
            specs.append(tf.TensorSpec([None], tf.int32, name="labels"))

        @tf.function(input_signature=specs)
        def sample(num_samples, seed, labels=None):
            checks = InputChecks()
            num_samples = checks.count("num_samples", num_samples, limits["num_samples"])
            seed = checks.seed(seed)
            if labels is not None:
                labels = self._check_served_labels(checks, labels, num_samples)
            return {"samples": self._sample_from_seed(*checks.gate(num_samples, seed, labels))}

        return {
            "sample": sample,
            "generate": self._generate_endpoint(None, limits["batch_size"]),
        }

    def _generate_endpoint(self, batch_size, limit=None):
        """`generate`; with a row `limit` (serving) its inputs are checked."""
        shape = [batch_size, self.latent_dim]
        specs = [tf.TensorSpec(shape, tf.float32, name="latents")]
        if self.num_classes is not None:
            specs.append(tf.TensorSpec([batch_size], tf.int32, name="labels"))
        output = self._output_name()

        @tf.function(input_signature=specs)
        def generate(latents, labels=None):
            if limit is not None:
                checks = InputChecks()
                latents = checks.batch("latents", latents, shape, limit, finite=True)
                if labels is not None:
                    labels = self._check_served_labels(checks, labels, tf.shape(latents)[0])
                latents, labels = checks.gate(latents, labels)
            return {output: self._generate(latents, labels)}

        return generate

    def tflite_endpoints(self, batch_size=1):
        return {"generate": self._generate_endpoint(batch_size)}

    def signature_examples(self, batch_size=1):
        rng = np.random.default_rng(0)
        sample = {"num_samples": np.int32(3), "seed": np.array([1, 2], np.int32)}
        generate = {
            "latents": rng.standard_normal((batch_size, self.latent_dim)).astype("float32")
        }
        if self.num_classes is not None:
            sample["labels"] = (np.arange(3) % self.num_classes).astype("int32")
            generate["labels"] = (np.arange(batch_size) % self.num_classes).astype("int32")
        return {"sample": sample, "generate": generate}

    # ------------------------------------------------------------------
    # Serialization.
    # ------------------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "generator": keras.saving.serialize_keras_object(self.generator),
                "discriminator": keras.saving.serialize_keras_object(self.discriminator),
                "latent_dim": self.latent_dim,
                "num_classes": self.num_classes,
                "ema_decay": self.ema_decay,
                "from_logits": self.from_logits,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
