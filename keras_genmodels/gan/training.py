"""The GAN's two-player update: compilation, objectives and train steps.

`AdversarialTraining` is mixed into `keras_genmodels.gan.GAN`; it relies on
the model's `generator`, `discriminator`, `from_logits`, `data_shape`,
`latent_dim`, `_unpack(data)`, `_with_labels(x, labels)` and the base
class's `scaled_loss`, `apply_gradients`, `batch_noise` and `update_trackers`.
The loss terms themselves are in `keras_genmodels.gan.losses`.
"""

import keras
import tensorflow as tf

from keras_genmodels.base import check_positive_int
from keras_genmodels.gan import losses


class AdversarialTraining:
    """`compile` with two optimizers, and the train and test steps of a GAN."""

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
        losses.check_compile_arguments(
            loss, self.from_logits, gradient_penalty_weight, r1_weight, label_smoothing
        )
        d_steps = check_positive_int(d_steps, "d_steps")
        for key in ("optimizer", "loss_fn"):
            if key in kwargs:
                raise ValueError(
                    f"GAN.compile takes `d_optimizer` and `g_optimizer`. Received: {key}="
                )
        d_optimizer = keras.optimizers.get(d_optimizer or losses.default_optimizer(loss))
        g_optimizer = keras.optimizers.get(g_optimizer or losses.default_optimizer(loss))
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
        self.loss = loss
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
        if self.loss is None:
            raise ValueError("Call `compile()` before `fit()`.")
        return super().fit(*args, **kwargs)

    @property
    def metrics(self):
        names = ["d_loss", "g_loss"]
        if self.gradient_penalty_weight:
            names.append("gradient_penalty")
        if self.r1_weight:
            names.append("r1_penalty")
        return [self._loss_trackers[name] for name in names]

    def _scores(self, data, labels, training):
        scores = self.discriminator(self._with_labels(data, labels), training=training)
        if self.from_logits:
            return tf.cast(scores, "float32")
        return losses.probabilities_to_logits(scores)

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
        d_loss = losses.discriminator_losses(
            real_scores, fake_scores, self.loss, self.label_smoothing
        )
        total = d_loss
        if self.gradient_penalty_weight:
            shape = tf.concat([tf.shape(real)[:1], tf.ones([len(self.data_shape)], "int32")], 0)
            u = self.batch_noise(shape, "uniform", dtype=real.dtype)
            mixed = u * real + (1.0 - u) * fake
            _, sq_norms = self._input_gradient_norms(mixed, labels, training)
            penalty = losses.gradient_penalty(sq_norms)
            logs["gradient_penalty"] = penalty
            total += self.gradient_penalty_weight * penalty
        if self.r1_weight:
            total += 0.5 * self.r1_weight * logs["r1_penalty"]
        logs["d_loss"] = d_loss
        return total, logs

    def _generator_objective(self, labels, latents, training):
        fake = self.generator(self._with_labels(latents, labels), training=training)
        return losses.generator_loss(self._scores(fake, labels, training), self.loss)

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
            "d_loss": losses.discriminator_losses(real_scores, fake_scores, self.loss),
            "g_loss": losses.generator_loss(fake_scores, self.loss),
            "d_accuracy": accuracy,
        }

    def after_train_step(self):
        # The generator's weight average (`keras_genmodels.ema.WeightAverage`).
        if self._weight_average is not None:
            self._weight_average.update(self.g_optimizer.iterations)
