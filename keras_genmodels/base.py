"""`GenerativeModel`: the contract every family keeps.

A family model is a `keras.Model` that trains with plain `fit`, samples to
numpy, saves as `.keras` and exports pure-TensorFlow functions for TF Serving
and TF Lite. This module holds what all families share: the seed handling, the
loss trackers, the distribution- and mixed-precision-aware update, and the
dataset preparation that `fit` is fed with.
"""

import contextlib
import numbers

import keras
import numpy as np
import tensorflow as tf

MAX_SEED = 2**31 - 1
NOISE_DISTRIBUTIONS = ("normal", "uniform", "integer")
_CLIP_ARGUMENTS = ("clipnorm", "global_clipnorm", "clipvalue")


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


def _multi_worker(strategy):
    """Whether `strategy` spans several workers (`MultiWorkerMirroredStrategy`)."""
    in_multi_worker_mode = getattr(strategy.extended, "_in_multi_worker_mode", None)
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and bool(
        in_multi_worker_mode and in_multi_worker_mode()
    )


def check_positive_int(value, name):
    """Validates that `value` is a positive Python or numpy integer.

    Args:
        value: The value to check.
        name: The argument name used in the error message.

    Returns:
        `value` as a Python int.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(
            f"`{name}` must be a positive integer. Received: {name}={value!r}"
        )
    if value < 1:
        raise ValueError(
            f"`{name}` must be a positive integer. Received: {name}={value}"
        )
    return int(value)


class GenerativeModel(keras.Model):
    """Base class of every family model.

    Subclasses implement:

    - `call` (deterministic forward pass) so the model builds symbolically,
    - `compute_losses(data, training)` returning a dict of scalar losses whose
      `"loss"` entry is minimised by the default `train_step`,
    - `sample(num_samples, seed=None, **conditioning)` returning numpy,
    - `serving_endpoints()`, `tflite_endpoints(batch_size)` and
      `signature_examples(batch_size)` for `keras_genmodels.export`,
    - `evaluation_metrics(dataset)` for the command's `evaluate`.

    Families with several optimizers (the GAN) override `train_step` and use
    `scaled_loss` and `apply_gradients` so they stay right under a
    `tf.distribute` strategy and a mixed-precision policy.

    Args:
        seed: Optional int seeding the model's `keras.random.SeedGenerator`,
            from which training noise and unseeded `sample` calls draw.
        **kwargs: Passed to `keras.Model` (`name`, `dtype`, ...).

    Example:

    ```python
    model = keras_genmodels.build("vae", "reference")
    model.fit(images, epochs=1)
    images = model.sample(16, seed=0)
    ```
    """

    #: What `sample` returns: "image", "points", "text" or "sequence".
    data_kind = "image"
    #: Whether `prepare_dataset` needs `(features, label)` pairs, i.e. whether
    #: the command loads the data set `with_labels=True` (class-conditional
    #: models).
    uses_labels = False
    #: Largest absolute difference allowed between a TF Lite signature and the
    #: same signature run by TensorFlow.
    tflite_tolerance = 1e-4

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        if seed is not None and (
            isinstance(seed, bool)
            or not isinstance(seed, numbers.Integral)
            or not 0 <= seed <= MAX_SEED
        ):
            raise ValueError(
                "`seed` must be None or an int in [0, 2**31 - 1]. "
                f"Received: seed={seed!r}"
            )
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._loss_trackers = {}

    # ------------------------------------------------------------------
    # Loss trackers.
    # ------------------------------------------------------------------
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
        if _multi_worker(tf.distribute.get_strategy()):
            # Keras 3.15 averages a step's outputs across workers with
            # `strategy.reduce("MEAN", value, axis=0)`, which needs an axis:
            # scalars fail ("Invalid reduction dimension 0 for input with 0
            # dimensions"). A length-1 axis averages to the same scalar.
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results

    # ------------------------------------------------------------------
    # Training.
    # ------------------------------------------------------------------
    def compute_losses(self, data, training=False):
        """Returns a dict of scalar losses for one batch; `"loss"` is minimised.

        Args:
            data: One batch as yielded by the dataset.
            training: Whether the call is part of a training step.

        Returns:
            Dict of name to scalar float32 tensor.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement `compute_losses`."
        )

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

        Under a `tf.distribute` strategy Keras 3 clips each replica's
        gradients (`clipnorm`, `global_clipnorm`, `clipvalue`) before it sums
        them across replicas, which is not the one-device update. During
        `fit` under a strategy with several replicas the optimizer's clipping
        is therefore switched off (see `clipping_after_all_reduce`) and done
        here instead: the gradients are summed across replicas, clipped as
        the optimizer clips them on one device, and handed to the optimizer
        divided by the number of replicas, so its own sum gives back the
        clipped global gradient.

        Args:
            tape: The `tf.GradientTape` that recorded `loss`.
            loss: The output of `scaled_loss`.
            variables: The variables to update.
            optimizer: The optimizer applying the update; it unscales
                mixed-precision gradients itself.
        """
        gradients = tape.gradient(loss, variables)
        # Embedding gradients come as `tf.IndexedSlices` with repeated
        # indices. Keras 3.15's Adam squares each slice before adding them up
        # (its second moment gets `sum(g_i^2)`, not `(sum g_i)^2`), and a
        # strategy concatenates the replicas' slices, so the update would
        # depend on the replica count. Dense gradients give the one-device
        # Adam update everywhere.
        gradients = [
            tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g
            for g in gradients
        ]
        inner = getattr(optimizer, "inner_optimizer", optimizer)
        clipping = getattr(self, "_deferred_clipping", {}).get(id(inner))
        context = tf.distribute.get_replica_context()
        if clipping is None or context is None or context.num_replicas_in_sync == 1:
            optimizer.apply_gradients(zip(gradients, variables))
            return
        replicas = context.num_replicas_in_sync
        present = [i for i, g in enumerate(gradients) if g is not None]
        summed = context.all_reduce(
            tf.distribute.ReduceOp.SUM, [gradients[i] for i in present]
        )
        scale = 1.0
        if inner is not optimizer:  # A LossScaleOptimizer: clip unscaled.
            scale = tf.cast(optimizer.scale_loss(1.0), "float32")
        clipped = _clip_gradients([g / scale for g in summed], clipping)
        gradients = list(gradients)
        for i, g in zip(present, clipped):
            gradients[i] = g * (scale / replicas)
        optimizer.apply_gradients(zip(gradients, variables))

    @contextlib.contextmanager
    def clipping_after_all_reduce(self):
        """Moves the optimizers' gradient clipping after the all-reduce.

        Under a strategy with several replicas, the `clipnorm`,
        `global_clipnorm` and `clipvalue` of every optimizer the model holds
        are set to `None` for the duration and applied by `apply_gradients`
        to the gradients summed across replicas; they are restored on exit.
        `fit` and `train_on_batch` use it; with one replica it does nothing.

        Returns:
            A context manager.
        """
        if self.distribute_strategy.num_replicas_in_sync == 1:
            yield
            return
        optimizers = {}
        for value in list(vars(self).values()):
            if isinstance(value, keras.optimizers.Optimizer):
                inner = getattr(value, "inner_optimizer", value)
                optimizers[id(inner)] = inner
        saved = {}
        for key, inner in optimizers.items():
            clipping = {name: getattr(inner, name, None) for name in _CLIP_ARGUMENTS}
            if any(clipping.values()):
                saved[key] = (inner, clipping)
        # Filled before the replica threads trace the step, read-only there.
        self._deferred_clipping = {key: clipping for key, (_, clipping) in saved.items()}
        try:
            for inner, _ in saved.values():
                for name in _CLIP_ARGUMENTS:
                    setattr(inner, name, None)
            yield
        finally:
            for inner, clipping in saved.values():
                for name, value in clipping.items():
                    setattr(inner, name, value)
            self._deferred_clipping = {}

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3.15 builds a model created under a strategy from its first
        # batch, and gets that batch by reducing the per-replica batches
        # across replicas (`strategy.reduce("MEAN", batch)`) although it only
        # reads shapes and dtypes. Under `MultiWorkerMirroredStrategy` that
        # eager cross-worker reduce fails ("Attempt to convert a value
        # (PerReplica...) with an unsupported type", keras-team/keras#20585),
        # even for a `Sequential` model. This replica's own batch has the
        # shapes the build needs.
        if iterator is not None and self._distribute_strategy is not None:
            strategy = self.distribute_strategy
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(
                    lambda value: strategy.experimental_local_results(value)[0]
                    if isinstance(value, tf.distribute.DistributedValues)
                    else value,
                    next(batches),
                )
                break
        return super()._maybe_symbolic_build(data_batch=data_batch)

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
        with self.clipping_after_all_reduce():
            return super().fit(*args, callbacks=callbacks, **kwargs)

    def train_on_batch(self, *args, **kwargs):
        with self.clipping_after_all_reduce():
            return super().train_on_batch(*args, **kwargs)

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

    # ------------------------------------------------------------------
    # Data.
    # ------------------------------------------------------------------
    def prepare_dataset(
        self, dataset, batch_size, shuffle=True, drop_remainder=False
    ):
        """Turns an unbatched `keras_genmodels.data.load` dataset into batches.

        The default keeps the features only (labels are dropped unless the
        family overrides this), then caches, shuffles, batches and prefetches.

        Args:
            dataset: Unbatched `tf.data.Dataset` of features or
                (features, label) pairs.
            batch_size: Positive int.
            shuffle: Whether to shuffle each epoch.
            drop_remainder: Whether to drop the last partial batch (needed
                where shapes must be static).

        Returns:
            A batched, prefetched `tf.data.Dataset`.
        """
        batch_size = check_positive_int(batch_size, "batch_size")
        if isinstance(dataset.element_spec, tuple):
            dataset = dataset.map(
                lambda x, *_: x, num_parallel_calls=tf.data.AUTOTUNE
            )
        return batch_pipeline(dataset, batch_size, shuffle, drop_remainder)

    # ------------------------------------------------------------------
    # Sampling and seeds.
    # ------------------------------------------------------------------
    def resolve_seed(self, seed):
        """Turns a user seed into the int32 `[2]` tensor stateless ops take.

        Args:
            seed: `None` (draw from the model's `SeedGenerator`), a
                non-negative int, or a pair of non-negative ints.

        Returns:
            An int32 tensor of shape `[2]`.
        """
        if seed is None:
            return keras.random.randint(
                (2,), 0, MAX_SEED, dtype="int32", seed=self.seed_generator
            )
        if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
            pair = [int(seed), 0]
        elif isinstance(seed, (tf.Tensor, np.ndarray, list, tuple)):
            pair = [int(s) for s in np.asarray(seed).reshape(-1)]
        else:
            pair = None
        if pair is None or len(pair) != 2 or not all(
            0 <= s <= MAX_SEED for s in pair
        ):
            raise ValueError(
                "`seed` must be None, an int in [0, 2**31 - 1] or a pair of "
                f"such ints. Received: seed={seed!r}"
            )
        return tf.constant(pair, dtype=tf.int32)

    def sample(self, num_samples, seed=None, **conditioning):
        """Draws samples from the model.

        Args:
            num_samples: Positive int.
            seed: `None`, an int, or a pair of ints (see `resolve_seed`). The
                same seed gives the same samples, here and in the exported
                `sample` signature.
            **conditioning: Family-specific conditioning (e.g. `labels`).

        Returns:
            A numpy array of samples.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement `sample`.")

    # ------------------------------------------------------------------
    # Export and evaluation.
    # ------------------------------------------------------------------
    def serving_endpoints(self):
        """Returns `{name: tf.function}` with input signatures for TF Serving.

        Each function returns a dict of named tensors, takes randomness as an
        int32 `seed` of shape `[2]` and uses only TensorFlow ops.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement `serving_endpoints`."
        )

    def tflite_endpoints(self, batch_size=1):
        """Returns `{name: tf.function}` with static shapes for TF Lite.

        Every name is also a `serving_endpoints` name with the same meaning,
        so the TF Lite file can be checked against the SavedModel.

        Args:
            batch_size: The static batch dimension.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement `tflite_endpoints`."
        )

    def signature_examples(self, batch_size=1):
        """Returns `{name: {argument: numpy array}}` for every endpoint.

        Inputs of TF Lite endpoints have `batch_size` rows so they fit the
        static shapes. Used to verify exports.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement `signature_examples`."
        )

    def evaluation_metrics(self, dataset, **kwargs):
        """Returns a dict of held-out figures (floats) for `dataset`.

        Args:
            dataset: Unbatched test-split dataset from `keras_genmodels.data`.
            **kwargs: Family-specific options; the command passes
                `dataset_name` (the data set's name) to every family, and
                families that do not need it ignore it.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement `evaluation_metrics`."
        )

    def get_config(self):
        config = super().get_config()
        config.update({"seed": self.seed})
        return config


def batch_pipeline(dataset, batch_size, shuffle=True, drop_remainder=False):
    """Caches, shuffles, batches and prefetches an unbatched dataset.

    Args:
        dataset: Unbatched `tf.data.Dataset`.
        batch_size: Positive int.
        shuffle: Whether to reshuffle each epoch (buffer of 10,000 elements).
        drop_remainder: Whether to drop the last partial batch.

    Returns:
        The batched `tf.data.Dataset`.
    """
    dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(10_000, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _clip_gradients(gradients, clipping):
    """Clips gradients as a Keras optimizer with `clipping` settings does.

    Args:
        gradients: List of dense gradient tensors.
        clipping: Dict with the optimizer's `clipnorm`, `global_clipnorm`
            and `clipvalue` (at most one set).

    Returns:
        The clipped gradients.
    """
    if clipping["clipnorm"]:
        return [tf.clip_by_norm(g, clipping["clipnorm"]) for g in gradients]
    if clipping["global_clipnorm"]:
        clip = clipping["global_clipnorm"]
        norm = tf.sqrt(sum(tf.reduce_sum(tf.square(g)) for g in gradients))
        # Keras' formula: NaN (a skipped step) when the norm is not finite.
        scale = clip * tf.minimum(1.0 / norm, 1.0 / clip) + (norm - norm)
        return [g * scale for g in gradients]
    value = clipping["clipvalue"]
    return [tf.clip_by_value(g, -value, value) for g in gradients]
