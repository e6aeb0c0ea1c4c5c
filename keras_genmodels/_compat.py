"""Workarounds for Keras 3 / TensorFlow problems, kept out of the contract.

`keras_genmodels.base.GenerativeModel` calls into this module through
`DistributionWorkarounds` (a mixin it inherits from), `densify_sparse_gradients`
and `reducible_logs`; nothing else in the package reads a private Keras or
TensorFlow attribute. The workarounds, all observed on Keras 3.15.1 with
TensorFlow 2.21.0:

1. `PER_REPLICA_CLIPPING`: under a `tf.distribute` strategy with several
   replicas an optimizer's `clipnorm`, `global_clipnorm` and `clipvalue` act
   on each replica's gradients before they are summed, so the update depends
   on the replica count. Fix: `DistributionWorkarounds.clipping_after_all_reduce`
   and `DistributionWorkarounds.apply_deferred_clipping` clip the sum instead.
   No Keras 3 issue found; the same design problem made `tf.keras` refuse
   clipping under a strategy (tensorflow/tensorflow#33929).
2. `SPARSE_ADAM_MOMENTS`: Adam (and every optimizer that squares the
   gradient) squares each piece of a `tf.IndexedSlices` gradient before the
   pieces with the same index are added up, so its second moment gets
   `sum(g_i**2)` instead of `(sum g_i)**2`. A strategy concatenates the
   replicas' pieces, so the update also depends on the replica count. Fix:
   `densify_sparse_gradients`. No upstream issue found.
3. `MULTI_WORKER_SCALAR_LOGS`: under `MultiWorkerMirroredStrategy` Keras
   averages a step's logs across workers with
   `strategy.reduce("MEAN", value, axis=0)`, which fails for scalars ("Invalid
   reduction dimension 0 for input with 0 dimensions";
   tensorflow/tensorflow#72388, keras-team/keras#20585). Fix: `reducible_logs`.
4. `MULTI_WORKER_SYMBOLIC_BUILD`: `fit` on a model created under a strategy
   builds it from the first batch, reduced across replicas although only its
   shapes are read; under `MultiWorkerMirroredStrategy` that eager
   cross-worker reduce fails (keras-team/keras#20585). Fix:
   `DistributionWorkarounds._maybe_symbolic_build`.

Each workaround is on while `needed(name)` says so: until `FIXED_IN[name]`
names the first Keras release that fixes the problem, and that release (or a
later one) is installed. `tests/test_compat.py` reproduces each problem on the
installed versions and fails when one no longer reproduces while its
workaround is still on: then set `FIXED_IN`, and drop the workaround once the
package requires that Keras release.
"""

import contextlib

import keras
import tensorflow as tf
from packaging.version import Version

PER_REPLICA_CLIPPING = "per_replica_clipping"
SPARSE_ADAM_MOMENTS = "sparse_adam_moments"
MULTI_WORKER_SCALAR_LOGS = "multi_worker_scalar_logs"
MULTI_WORKER_SYMBOLIC_BUILD = "multi_worker_symbolic_build"

#: The installed Keras version the gates compare with (all four problems are
#: in Keras' code; TensorFlow 2.21.0 was installed when they were observed).
KERAS_VERSION = keras.version()
#: The Keras and TensorFlow versions each problem was last reproduced on.
OBSERVED_ON = {"keras": "3.15.1", "tensorflow": "2.21.0"}
#: The first Keras release that fixes each problem; `None` while no release
#: does, and the workaround stays on for every version. Keeping a workaround
#: on after a fix is harmless (each one gives the one-device result), turning
#: it off before one is not, so a gate never switches itself off on a guess.
FIXED_IN = {
    PER_REPLICA_CLIPPING: None,
    SPARSE_ADAM_MOMENTS: None,
    MULTI_WORKER_SCALAR_LOGS: None,
    MULTI_WORKER_SYMBOLIC_BUILD: None,
}
CLIP_ARGUMENTS = ("clipnorm", "global_clipnorm", "clipvalue")


def needed(workaround):
    """Whether a workaround is needed with the installed Keras.

    Args:
        workaround: One of the names in `FIXED_IN`.

    Returns:
        `True` unless `FIXED_IN[workaround]` names a Keras release not newer
        than `KERAS_VERSION`.
    """
    if workaround not in FIXED_IN:
        raise ValueError(
            f"Unknown workaround. Expected one of {sorted(FIXED_IN)}. "
            f"Received: workaround={workaround!r}"
        )
    fixed_in = FIXED_IN[workaround]
    return fixed_in is None or Version(KERAS_VERSION) < Version(fixed_in)


def multi_worker(strategy):
    """Whether `strategy` spans several workers (`MultiWorkerMirroredStrategy`).

    The same test Keras' TF trainer makes before it reduces logs on axis 0; it
    reads the private `strategy.extended._in_multi_worker_mode`, which has no
    public equivalent.

    Args:
        strategy: A `tf.distribute.Strategy`.

    Returns:
        A bool.
    """
    in_multi_worker_mode = getattr(strategy.extended, "_in_multi_worker_mode", None)
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and bool(
        in_multi_worker_mode and in_multi_worker_mode()
    )


def reducible_logs(logs):
    """Makes a step's scalar logs reducible across workers.

    Workaround `MULTI_WORKER_SCALAR_LOGS`: Keras (3.15.1 observed, with
    TensorFlow 2.21.0) averages a step's outputs across workers with
    `strategy.reduce("MEAN", value, axis=0)`, which needs an axis: scalars
    fail ("Invalid reduction dimension 0 for input with 0 dimensions").
    A length-1 axis averages to the same scalar. Upstream:
    tensorflow/tensorflow#72388, keras-team/keras#20585.

    Args:
        logs: Dict of name to scalar tensor, as `train_step` returns it.

    Returns:
        `logs`, each value reshaped to `[1]` under a multi-worker strategy
        while the workaround is needed, unchanged otherwise.
    """
    if needed(MULTI_WORKER_SCALAR_LOGS) and multi_worker(tf.distribute.get_strategy()):
        return {name: tf.reshape(value, [1]) for name, value in logs.items()}
    return logs


def densify_sparse_gradients(gradients):
    """Turns `tf.IndexedSlices` gradients into dense tensors.

    Workaround `SPARSE_ADAM_MOMENTS`: embedding gradients come as
    `tf.IndexedSlices` with repeated indices. Keras' Adam (3.15.1 observed,
    with TensorFlow 2.21.0) squares each slice before adding them up (its
    second moment gets `sum(g_i**2)`, not `(sum g_i)**2`), and a strategy
    concatenates the replicas' slices, so the update would depend on the
    replica count. Dense gradients give the one-device Adam update
    everywhere. No upstream issue found.

    Args:
        gradients: List of gradients (tensors, `tf.IndexedSlices` or `None`).

    Returns:
        The list with every `tf.IndexedSlices` made dense while the
        workaround is needed; `gradients` unchanged otherwise.
    """
    if not needed(SPARSE_ADAM_MOMENTS):
        return gradients
    return [
        tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g
        for g in gradients
    ]


def clip_gradients(gradients, clipping):
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


class DistributionWorkarounds:
    """Mixin fixing Keras' `tf.distribute` training for a `keras.Model`.

    Put it before `keras.Model` in the bases. It holds the two workarounds
    that need the model: gradient clipping after the all-reduce
    (`clipping_after_all_reduce` with `apply_deferred_clipping`) and the
    multi-worker symbolic build (an override of Keras' private
    `_maybe_symbolic_build`).
    """

    @contextlib.contextmanager
    def clipping_after_all_reduce(self):
        """Moves the optimizers' gradient clipping after the all-reduce.

        Workaround `PER_REPLICA_CLIPPING`: under a `tf.distribute` strategy
        Keras (3.15.1 observed, with TensorFlow 2.21.0) clips each replica's
        gradients (`clipnorm`, `global_clipnorm`, `clipvalue`) before it sums
        them across replicas, which is not the one-device update. Under a
        strategy with several replicas, the clipping arguments of every
        optimizer the model holds are set to `None` for the duration and
        applied by `apply_deferred_clipping` to the gradients summed across
        replicas; they are restored on exit. `fit` and `train_on_batch` use
        it; with one replica, or once the workaround is not needed, it does
        nothing. No Keras 3 issue found; the same problem made `tf.keras`
        refuse clipping under a strategy (tensorflow/tensorflow#33929).

        Returns:
            A context manager.
        """
        if (
            not needed(PER_REPLICA_CLIPPING)
            or self.distribute_strategy.num_replicas_in_sync == 1
        ):
            yield
            return
        optimizers = {}
        for value in list(vars(self).values()):
            if isinstance(value, keras.optimizers.Optimizer):
                inner = getattr(value, "inner_optimizer", value)
                optimizers[id(inner)] = inner
        saved = {}
        for key, inner in optimizers.items():
            clipping = {name: getattr(inner, name, None) for name in CLIP_ARGUMENTS}
            if any(clipping.values()):
                saved[key] = (inner, clipping)
        # Filled before the replica threads trace the step, read-only there.
        self._deferred_clipping = {key: clipping for key, (_, clipping) in saved.items()}
        try:
            for inner, _ in saved.values():
                for name in CLIP_ARGUMENTS:
                    setattr(inner, name, None)
            yield
        finally:
            for inner, clipping in saved.values():
                for name, value in clipping.items():
                    setattr(inner, name, value)
            self._deferred_clipping = {}

    def apply_deferred_clipping(self, optimizer, gradients, variables):
        """Applies gradients, clipping their sum if clipping was deferred.

        Part of workaround `PER_REPLICA_CLIPPING` (see
        `clipping_after_all_reduce`). When `clipping_after_all_reduce` took
        `optimizer`'s clipping and several replicas are in sync, the
        gradients are summed across replicas, clipped as the optimizer clips
        them on one device, and handed to the optimizer divided by the number
        of replicas, so its own sum gives back the clipped global gradient.
        Otherwise they go to `optimizer.apply_gradients` as they are.

        Args:
            optimizer: The optimizer applying the update; it unscales
                mixed-precision gradients itself.
            gradients: List of dense gradients (or `None`), one per variable.
            variables: The variables to update.
        """
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
        clipped = clip_gradients([g / scale for g in summed], clipping)
        gradients = list(gradients)
        for i, g in zip(present, clipped):
            gradients[i] = g * (scale / replicas)
        optimizer.apply_gradients(zip(gradients, variables))

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Builds the model from this replica's first batch.

        Workaround `MULTI_WORKER_SYMBOLIC_BUILD`, an override of Keras'
        private `TensorFlowTrainer._maybe_symbolic_build`: Keras (3.15.1
        observed, with TensorFlow 2.21.0) builds a model created under a
        strategy from its first batch, and gets that batch by reducing the
        per-replica batches across replicas (`strategy.reduce("MEAN",
        batch)`) although it only reads shapes and dtypes. Under
        `MultiWorkerMirroredStrategy` that eager cross-worker reduce fails
        ("Attempt to convert a value (PerReplica...) with an unsupported
        type"), even for a `Sequential` model. This replica's own batch has
        the shapes the build needs. Upstream: keras-team/keras#20585.

        Args:
            iterator: Keras' epoch iterator, or `None`.
            data_batch: A batch, or `None`.
        """
        if not needed(MULTI_WORKER_SYMBOLIC_BUILD):
            return super()._maybe_symbolic_build(
                iterator=iterator, data_batch=data_batch
            )
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
