"""The Keras / TensorFlow workarounds of `keras_genmodels._compat`.

Each problem a workaround fixes is reproduced on the installed versions, and
the test asserts that it reproduces exactly while `_compat.needed` keeps the
workaround on: when a Keras release fixes a problem, its test here fails and
says to set `_compat.FIXED_IN`. The other tests check that each workaround
gives the one-device result and that the version gates switch it off.
"""

import types

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.backend.tensorflow import trainer as keras_tf_trainer

from keras_genmodels import _compat

# Gradients of one variable on two replicas. Their sum is [4, 4]; each one
# needs clipping by itself and so does the sum, for every clipping argument.
REPLICA_GRADIENTS = ([3.0, 1.0], [1.0, 3.0])
CLIPPINGS = {"clipnorm": 1.0, "global_clipnorm": 1.0, "clipvalue": 1.0}


def _mirrored():
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def _per_replica(strategy, fn):
    """A `PerReplica` value: `fn(replica_id)` on each replica."""
    return strategy.experimental_distribute_values_from_function(
        lambda context: fn(context.replica_id_in_sync_group)
    )


def _assert_matches_gate(workaround, reproduces):
    """Fails when the problem and `_compat.needed(workaround)` disagree."""
    if reproduces and not _compat.needed(workaround):
        pytest.fail(
            f"Keras {_compat.KERAS_VERSION} still shows the problem behind "
            f"`{workaround}`, but _compat.FIXED_IN[{workaround!r}] = "
            f"{_compat.FIXED_IN[workaround]!r} switches its workaround off."
        )
    if not reproduces and _compat.needed(workaround):
        pytest.fail(
            f"Keras {_compat.KERAS_VERSION} no longer shows the problem behind "
            f"`{workaround}` (seen on {_compat.OBSERVED_ON}): set "
            f"_compat.FIXED_IN[{workaround!r}] to the first fixed release."
        )


def _set_fixed_in(monkeypatch, version):
    """Reports every problem fixed in `version` (`None`: in no release)."""
    for name in _compat.FIXED_IN:
        monkeypatch.setitem(_compat.FIXED_IN, name, version)


class _Holder(_compat.DistributionWorkarounds):
    """The attributes of a model that the clipping workaround reads."""

    def __init__(self, strategy, optimizer):
        self.distribute_strategy = strategy
        self.optimizer = optimizer


def _mirrored_update(clipping, workaround):
    """The update of SGD(1) with `clipping` from `REPLICA_GRADIENTS`."""
    strategy = _mirrored()
    with strategy.scope():
        variable = keras.Variable([0.0, 0.0])
        optimizer = keras.optimizers.SGD(1.0, **clipping)
        optimizer.build([variable])
    holder = _Holder(strategy, optimizer)

    def replica_step():
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        gradient = tf.gather(tf.constant(REPLICA_GRADIENTS), replica)
        if workaround:
            holder.apply_deferred_clipping(optimizer, [gradient], [variable])
        else:
            optimizer.apply_gradients([(gradient, variable)])

    if workaround:
        with holder.clipping_after_all_reduce():
            tf.function(lambda: strategy.run(replica_step))()
        assert optimizer.get_config()[next(iter(clipping))] == 1.0  # Restored.
    else:
        tf.function(lambda: strategy.run(replica_step))()
    return variable.numpy()


def _one_device_update(clipping):
    variable = keras.Variable([0.0, 0.0])
    optimizer = keras.optimizers.SGD(1.0, **clipping)
    optimizer.apply_gradients([(tf.reduce_sum(REPLICA_GRADIENTS, axis=0), variable)])
    return variable.numpy()


# ----------------------------------------------------------------------
# Version gates.
# ----------------------------------------------------------------------
@pytest.mark.parametrize("workaround", sorted(_compat.FIXED_IN))
def test_gate_turns_the_workaround_off_from_the_fixed_release(workaround, monkeypatch):
    monkeypatch.setitem(_compat.FIXED_IN, workaround, None)
    assert _compat.needed(workaround)  # No release fixes it: always on.
    monkeypatch.setitem(_compat.FIXED_IN, workaround, "3.16.0")
    for version, expected in [
        ("3.15.1", True),
        ("3.16.0.dev20260101", True),  # A pre-release is older than 3.16.0.
        ("3.16.0", False),
        ("4.0.0", False),
    ]:
        monkeypatch.setattr(_compat, "KERAS_VERSION", version)
        assert _compat.needed(workaround) is expected, version


def test_unknown_workaround_is_refused():
    with pytest.raises(ValueError, match="Received: workaround='clipping'"):
        _compat.needed("clipping")


def test_densify_follows_its_gate(monkeypatch):
    _set_fixed_in(monkeypatch, None)
    slices = tf.IndexedSlices(tf.ones([2, 1]), tf.constant([0, 0]), tf.constant([2, 1]))
    dense = _compat.densify_sparse_gradients([slices, None])
    assert isinstance(dense[0], tf.Tensor) and dense[1] is None
    np.testing.assert_array_equal(dense[0].numpy(), [[2.0], [0.0]])
    _set_fixed_in(monkeypatch, _compat.KERAS_VERSION)
    assert _compat.densify_sparse_gradients([slices])[0] is slices


def test_reducible_logs_follow_their_gate(monkeypatch):
    _set_fixed_in(monkeypatch, None)
    logs = {"loss": tf.constant(1.5)}
    assert _compat.reducible_logs(logs) is logs  # Not multi-worker.
    monkeypatch.setattr(_compat, "multi_worker", lambda strategy: True)
    assert _compat.reducible_logs(logs)["loss"].shape == (1,)
    _set_fixed_in(monkeypatch, _compat.KERAS_VERSION)
    assert _compat.reducible_logs(logs) is logs


def test_clipping_after_all_reduce_follows_its_gate(monkeypatch):
    _set_fixed_in(monkeypatch, None)
    strategy = _mirrored()
    with strategy.scope():
        optimizer = keras.optimizers.Adam(global_clipnorm=0.5)
    holder = _Holder(strategy, optimizer)
    with holder.clipping_after_all_reduce():
        assert optimizer.global_clipnorm is None
        assert list(holder._deferred_clipping.values()) == [
            {"clipnorm": None, "global_clipnorm": 0.5, "clipvalue": None}
        ]
    assert optimizer.global_clipnorm == 0.5 and holder._deferred_clipping == {}
    _set_fixed_in(monkeypatch, _compat.KERAS_VERSION)
    with holder.clipping_after_all_reduce():
        assert optimizer.global_clipnorm == 0.5
    assert getattr(holder, "_deferred_clipping", {}) == {}


def test_clipping_after_all_reduce_does_nothing_on_one_replica():
    optimizer = keras.optimizers.Adam(clipnorm=0.5)
    holder = _Holder(tf.distribute.get_strategy(), optimizer)
    with holder.clipping_after_all_reduce():
        assert optimizer.clipnorm == 0.5


class _RecordingTrainer:
    """Stands for Keras' trainer: records what `_maybe_symbolic_build` gets."""

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        self.received = {"iterator": iterator, "data_batch": data_batch}


class _BuildProbe(_compat.DistributionWorkarounds, _RecordingTrainer):
    def __init__(self, strategy):
        self._distribute_strategy = strategy
        self.distribute_strategy = strategy


def test_symbolic_build_uses_this_replicas_batch_and_follows_its_gate(monkeypatch):
    _set_fixed_in(monkeypatch, None)
    strategy = _mirrored()
    batch = _per_replica(strategy, lambda r: tf.fill([2, 3], tf.cast(r, "float32") + 1))
    probe = _BuildProbe(strategy)
    probe._maybe_symbolic_build(iterator=[(0, 1, iter([(batch, None)]))])
    assert probe.received["iterator"] is None
    x, y = probe.received["data_batch"]
    assert y is None and isinstance(x, tf.Tensor)
    np.testing.assert_array_equal(x.numpy(), np.ones([2, 3]))  # Replica 0's rows.
    _set_fixed_in(monkeypatch, _compat.KERAS_VERSION)
    iterator = [(0, 1, iter([(batch, None)]))]
    probe._maybe_symbolic_build(iterator=iterator)
    assert probe.received == {"iterator": iterator, "data_batch": None}


def test_multi_worker_detection():
    assert not _compat.multi_worker(tf.distribute.get_strategy())
    assert not _compat.multi_worker(_mirrored())
    # A strategy spanning workers, without a cluster: only the class and
    # `extended._in_multi_worker_mode()` are read.
    strategy = tf.distribute.MultiWorkerMirroredStrategy.__new__(
        tf.distribute.MultiWorkerMirroredStrategy
    )
    strategy._extended = types.SimpleNamespace(_in_multi_worker_mode=lambda: True)
    assert _compat.multi_worker(strategy)
    strategy._extended = types.SimpleNamespace(_in_multi_worker_mode=lambda: False)
    assert not _compat.multi_worker(strategy)


# ----------------------------------------------------------------------
# The problems, reproduced on the installed versions.
# ----------------------------------------------------------------------
def test_adam_squares_each_piece_of_indexed_slices():
    # Two pieces of 1 for row 0: Adam's second moment gets 1 + 1, the dense
    # gradient's (1 + 1)**2, so the first steps differ.
    slices = tf.IndexedSlices(tf.ones([2, 1]), tf.constant([0, 0]), tf.constant([2, 1]))
    updates = {}
    for kind, gradient in [
        ("sparse", slices),
        ("dense", tf.convert_to_tensor(slices)),
        ("workaround", _compat.densify_sparse_gradients([slices])[0]),
    ]:
        variable = keras.Variable([[0.0], [0.0]])
        keras.optimizers.Adam(0.1).apply_gradients([(gradient, variable)])
        updates[kind] = variable.numpy()
    differs = not np.allclose(updates["sparse"], updates["dense"], rtol=1e-4)
    _assert_matches_gate(_compat.SPARSE_ADAM_MOMENTS, differs)
    np.testing.assert_allclose(updates["workaround"], updates["dense"])


@pytest.mark.parametrize("argument", sorted(CLIPPINGS))
def test_keras_clips_each_replica_before_the_all_reduce(argument):
    clipping = {argument: CLIPPINGS[argument]}
    one_device = _one_device_update(clipping)
    keras_mirrored = _mirrored_update(clipping, workaround=False)
    differs = not np.allclose(keras_mirrored, one_device, rtol=1e-4)
    _assert_matches_gate(_compat.PER_REPLICA_CLIPPING, differs)
    np.testing.assert_allclose(
        _mirrored_update(clipping, workaround=True), one_device, rtol=1e-6
    )


@pytest.mark.parametrize("argument", sorted(CLIPPINGS))
def test_clip_gradients_matches_keras_on_one_device(argument):
    gradients = [tf.constant([3.0, 4.0]), tf.constant([[0.5], [-2.0]])]
    variables = [keras.Variable(tf.zeros_like(g)) for g in gradients]
    keras.optimizers.SGD(1.0, **{argument: 1.0}).apply_gradients(
        zip(gradients, variables)
    )
    clipping = dict.fromkeys(_compat.CLIP_ARGUMENTS) | {argument: 1.0}
    for variable, clipped in zip(variables, _compat.clip_gradients(gradients, clipping)):
        np.testing.assert_allclose(variable.numpy(), -clipped.numpy(), rtol=1e-6)


def test_keras_reduces_scalar_logs_on_axis_zero_across_workers(monkeypatch):
    # Keras reduces logs with `strategy.reduce("MEAN", value, axis=0)` when its
    # private `_collective_all_reduce_multi_worker(strategy)` says the strategy
    # spans workers. That reduce fails the same way for one worker's two
    # replicas, so the problem shows without a cluster: Keras' check is
    # patched to say "multi-worker" for a `MirroredStrategy`.
    strategy = _mirrored()
    monkeypatch.setattr(
        keras_tf_trainer, "_collective_all_reduce_multi_worker", lambda s: True
    )
    monkeypatch.setattr(_compat, "multi_worker", lambda s: True)

    def replica_logs():
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        return {"loss": tf.cast(replica, "float32") + 1.0}

    try:
        keras_tf_trainer.reduce_per_replica(strategy.run(replica_logs), strategy, "auto")
        fails = False
    except ValueError as error:
        assert "Invalid reduction dimension 0" in str(error)
        fails = True
    _assert_matches_gate(_compat.MULTI_WORKER_SCALAR_LOGS, fails)

    logs = strategy.run(lambda: _compat.reducible_logs(replica_logs()))
    reduced = keras_tf_trainer.reduce_per_replica(logs, strategy, "auto")
    assert float(np.squeeze(reduced["loss"])) == pytest.approx(1.5)


def test_keras_reduces_the_first_batch_across_replicas_to_build(monkeypatch):
    # Under `MultiWorkerMirroredStrategy` this eager cross-worker reduce of
    # the first batch is what fails (keras-team/keras#20585); showing the
    # failure itself needs a cluster of processes (tests/test_multi_worker.py
    # trains through the workaround on one). Here: Keras still reduces the
    # batch across replicas to build a model created under a strategy.
    assert hasattr(keras.Model, "_maybe_symbolic_build")  # The overridden hook.
    strategy = _mirrored()
    with strategy.scope():
        model = keras.Sequential([keras.layers.Dense(2)])
        model.compile(optimizer="sgd", loss="mse")
    batch = _per_replica(strategy, lambda r: tf.ones([2, 3]))
    targets = _per_replica(strategy, lambda r: tf.zeros([2, 2]))
    reduced = []
    original = strategy.reduce

    def recording_reduce(reduce_op, value, axis):
        reduced.append(value)
        return original(reduce_op, value, axis=axis)

    monkeypatch.setattr(strategy, "reduce", recording_reduce)
    keras.Model._maybe_symbolic_build(model, iterator=[(0, 1, iter([(batch, targets)]))])
    assert model.built
    reduces_batch = any(
        isinstance(v, tf.distribute.DistributedValues)
        for value in reduced
        for v in tf.nest.flatten(value, expand_composites=False)
    )
    _assert_matches_gate(_compat.MULTI_WORKER_SYMBOLIC_BUILD, reduces_batch)
