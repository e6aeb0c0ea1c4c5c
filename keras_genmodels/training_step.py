"""The training step every family shares: loss trackers and the update.

`TrainingStep` is the part of `GenerativeModel` that trains: its loss
trackers, the default `train_step`/`test_step`, and what makes a step give
the weights one device gives for the same global batch under any
`tf.distribute` strategy: losses
scaled per replica and for mixed precision, training noise drawn for the
global batch, statistics averaged across replicas, sparse gradients made
dense and the optimizer's clipping applied after the all-reduce, and `fit`
stopping on a non-finite loss. The Keras workarounds it needs live in
`keras_genmodels._compat`.
"""

import keras
import tensorflow as tf

from keras_genmodels import _compat

MAX_SEED = 2**31 - 1
NOISE_DISTRIBUTIONS = ("normal", "uniform", "integer")


def num_replicas_in_sync():
    """Returns the number of replicas the current replica context spans.

    Returns:
        An int: 1 outside a `tf.distribute` strategy, the strategy's replica
        count inside one.
    """
    context = tf.distribute.get_replica_context()
    if context is None:  # Cross-replica context: the strategy is in scope.
        return tf.distribute.get_strategy().num_replicas_in_sync
    return context.num_replicas_in_sync


class TrainingStep(_compat.DistributionWorkarounds):
    """The training step of every family: loss trackers and the update.

    The default `train_step` minimises `compute_losses(...)["loss"]` with
    one optimizer; families with several optimizers (the GAN) write their
    own from `scaled_loss`, `batch_noise` and `apply_gradients`, which keep
    it right under a `tf.distribute` strategy and a mixed-precision policy.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._loss_trackers = {}

    def add_loss_trackers(self, *names):
        """Creates one `keras.metrics.Mean` tracker per name.

        Args:
            *names: Tracker names, shown by the progress bar and `History`.
        """
        for name in names:
            self._loss_trackers[name] = keras.metrics.Mean(name=name)

    @property
    def metrics(self):
        return list(self._loss_trackers.values())

    def update_trackers(self, values):
        """Updates the trackers named in `values` and returns all results.

        Args:
            values: Dict of tracker name to a scalar tensor.

        Returns:
            Dict of tracker name to its running mean.
        """
        for name, value in values.items():
            if name in self._loss_trackers:
                self._loss_trackers[name].update_state(value)
        results = {m.name: m.result() for m in self.metrics}
        return _compat.reducible_logs(results)

    def scaled_loss(self, loss, optimizer):
        """Scales a per-replica mean loss for `tape.gradient`.

        The loss is divided by the number of replicas so that the gradients
        summed across replicas equal the gradient of the global-batch mean,
        then multiplied by the optimizer's loss scale (a no-op unless the
        optimizer is a `keras.optimizers.LossScaleOptimizer`). Call it inside
        the tape.

        Args:
            loss: Scalar mean loss over this replica's batch.
            optimizer: The optimizer that will apply the gradients.

        Returns:
            The scaled scalar loss.
        """
        loss = tf.cast(loss, "float32") / num_replicas_in_sync()
        return optimizer.scale_loss(loss)

    def batch_noise(
        self, shape, distribution="normal", dtype="float32", minval=0, maxval=None
    ):
        """Training noise for this replica's share of the global batch.

        The noise of the whole global batch is drawn from one seed taken from
        the model's `SeedGenerator` and each replica keeps its own rows, so a
        step under a `tf.distribute` strategy sees exactly the noise the same
        step sees on one device with the same global batch (and therefore
        reaches the same weights). Use it for every random draw of a
        `train_step` whose first axis is the batch (latents, diffusion times
        and noise, dequantisation noise, interpolation weights).

        Args:
            shape: Shape of this replica's noise (a tuple or an int32 tensor);
                the first axis is the per-replica batch.
            distribution: `"normal"` (standard normal), `"uniform"` (in
                `[minval, maxval)`, `maxval` defaulting to 1) or `"integer"`
                (uniform ints in `[minval, maxval)`; `maxval` is required).
            dtype: Dtype of the result: a float dtype for `"normal"` and
                `"uniform"`, `"int32"` or `"int64"` for `"integer"`.
            minval: Lower bound of `"uniform"` and `"integer"`.
            maxval: Upper bound (exclusive) of `"uniform"` and `"integer"`.

        Returns:
            A tensor of `shape` and `dtype`.

        Example:

        ```python
        t = self.batch_noise([batch], "integer", "int32", maxval=1000)
        eps = self.batch_noise(tf.shape(x))
        ```
        """
        if distribution not in NOISE_DISTRIBUTIONS:
            raise ValueError(
                f"`distribution` must be one of {NOISE_DISTRIBUTIONS}. "
                f"Received: distribution={distribution!r}"
            )
        if distribution == "integer" and maxval is None:
            raise ValueError(
                "`distribution='integer'` needs `maxval`. Received: maxval=None"
            )
        if (distribution == "integer") != tf.as_dtype(dtype).is_integer:
            raise ValueError(
                "`dtype` must be an integer dtype for distribution='integer' and a "
                f"float dtype otherwise. Received: distribution={distribution!r}, "
                f"dtype={dtype!r}"
            )
        shape = tf.convert_to_tensor(shape, tf.int32)
        replicas = num_replicas_in_sync()
        seed = keras.random.randint(
            (2,), 0, MAX_SEED, dtype="int32", seed=self.seed_generator
        )
        local = shape[0]
        if replicas > 1:
            shape = tf.concat([[local * replicas], shape[1:]], 0)
        if distribution == "normal":
            noise = tf.random.stateless_normal(shape, seed, dtype=dtype)
        else:
            noise = tf.random.stateless_uniform(
                shape,
                seed,
                minval=minval,
                maxval=1 if maxval is None else maxval,
                dtype=dtype,
            )
        if replicas == 1:
            return noise
        context = tf.distribute.get_replica_context()
        replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
        return noise[replica * local : (replica + 1) * local]

    def replica_mean(self, value):
        """The mean of a per-replica mean over all replicas.

        With equal per-replica batches this is the mean over the global
        batch, so a statistic assigned to a non-trainable variable (a running
        mean, a variance) gets the value it gets on one device.

        Args:
            value: A float tensor computed by this replica.

        Returns:
            The mean of `value` across replicas (`value` itself outside a
            strategy or with one replica).
        """
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return value
        return context.all_reduce(tf.distribute.ReduceOp.MEAN, value)

    def apply_gradients(self, tape, loss, variables, optimizer):
        """Differentiates a `scaled_loss` and applies the update.

        The update is the one-device update of the global batch under any
        `tf.distribute` strategy: sparse gradients are made dense and, during
        `fit` and `train_on_batch`, the optimizer's gradient clipping acts on
        the gradients summed across replicas (the Keras workarounds behind
        this are in `keras_genmodels._compat`).

        Args:
            tape: The `tf.GradientTape` that recorded `loss`.
            loss: The output of `scaled_loss`.
            variables: The variables to update.
            optimizer: The optimizer applying the update; it unscales
                mixed-precision gradients itself.
        """
        gradients = _compat.densify_sparse_gradients(tape.gradient(loss, variables))
        self.apply_deferred_clipping(optimizer, gradients, variables)

    #: Appended to the error raised when a training loss stops being finite.
    non_finite_advice = "Lower the learning rate or check the data."

    def fit(self, *args, callbacks=None, **kwargs):
        """`keras.Model.fit` that stops with a clear error on a NaN or Inf loss.

        A `StopOnNonFiniteLoss` callback is added to `callbacks` (unless one
        is there), so a loss that stops being finite raises
        `FloatingPointError` naming the loss, the epoch and the batch instead
        of training on to a NaN model.
        """
        from keras_genmodels.callbacks import StopOnNonFiniteLoss

        callbacks = list(callbacks or [])
        if not any(isinstance(c, StopOnNonFiniteLoss) for c in callbacks):
            callbacks.append(StopOnNonFiniteLoss(self.non_finite_advice))
        self.build_optimizer()
        with self.clipping_after_all_reduce():
            return super().fit(*args, callbacks=callbacks, **kwargs)

    def train_on_batch(self, *args, **kwargs):
        self.build_optimizer()
        with self.clipping_after_all_reduce():
            return super().train_on_batch(*args, **kwargs)

    def build_optimizer(self):
        """Creates the optimizer's slots before the first training step.

        Without a strategy, Keras leaves them to the first trace of the train
        function, whose variable creation makes TensorFlow trace it a second
        time; built here, the first `fit` traces once (the U-Net's first
        `fit` costs well under half the CPU time). Families with their own
        optimizers build them in `compile` (the GAN).
        """
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

    def train_step(self, data):
        with tf.GradientTape() as tape:
            losses = self.compute_losses(data, training=True)
            loss = self.scaled_loss(losses["loss"], self.optimizer)
        self.apply_gradients(tape, loss, self.trainable_variables, self.optimizer)
        self.after_train_step()
        return self.update_trackers(losses)

    def test_step(self, data):
        return self.update_trackers(self.compute_losses(data, training=False))

    def after_train_step(self):
        """Hook run after each update (e.g. an EMA of the weights)."""
