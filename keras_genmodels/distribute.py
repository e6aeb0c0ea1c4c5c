"""Strategies and precision policies for training past one device.

Every family's `train_step` divides its per-replica mean loss by the number
of replicas (`GenerativeModel.scaled_loss`) and draws its noise for the whole
global batch (`GenerativeModel.batch_noise`), so a step under a strategy gives
the update the same step gives on one device with the same global batch.
"""

import json
import os

import keras
import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi-worker")
PRECISIONS = ("off", "mixed_float16", "mixed_bfloat16")
JIT_MODES = ("auto", "on", "off")


def make_strategy(name="default"):
    """Returns the `tf.distribute` strategy called `name`.

    Args:
        name: `"default"` (one device), `"mirrored"` (every local GPU, or
            every logical CPU device when there is no GPU) or
            `"multi-worker"` (`MultiWorkerMirroredStrategy`, which reads the
            cluster from the `TF_CONFIG` environment variable).

    Returns:
        A `tf.distribute.Strategy`.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy([d.name for d in gpus])
        # CPU devices share host memory: summing on one device is all the
        # all-reduce needs, and it avoids collective ops, whose instance keys
        # clash when one process builds several strategies.
        cpus = tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(
            [d.name for d in cpus], cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
    if name == "multi-worker":
        config = os.environ.get("TF_CONFIG")
        if not config:
            raise ValueError(
                "--strategy multi-worker needs the TF_CONFIG environment variable "
                '(e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                '"task": {"type": "worker", "index": 0}}).'
            )
        try:
            json.loads(config)
        except json.JSONDecodeError as error:
            raise ValueError(f"TF_CONFIG is not valid JSON: {error}.") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"Unknown strategy {name!r}. Expected one of: {', '.join(STRATEGIES)}.")


def task_index():
    """Returns this worker's index in the `TF_CONFIG` cluster (0: the chief).

    Returns:
        The `task.index` of `TF_CONFIG`, or 0 when it is unset or names a
        `chief` task.
    """
    config = os.environ.get("TF_CONFIG")
    if not config:
        return 0
    try:
        task = json.loads(config).get("task", {})
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON: {error}.") from None
    if task.get("type") == "chief":
        return 0
    index = int(task.get("index", 0))
    return index + 1 if "chief" in json.loads(config).get("cluster", {}) else index


def set_precision(policy="off"):
    """Sets Keras' global dtype policy before a model is built.

    Layers then compute in float16 or bfloat16 with float32 variables; the
    families keep losses, log-determinants, KL terms, softmaxes and noise
    schedules in float32, and `compile` wraps the optimizer in a
    `LossScaleOptimizer` under `mixed_float16`.

    Args:
        policy: `"off"` (float32), `"mixed_float16"` or `"mixed_bfloat16"`.
    """
    if policy not in PRECISIONS:
        raise ValueError(
            f"Unknown precision {policy!r}. Expected one of: {', '.join(PRECISIONS)}."
        )
    keras.mixed_precision.set_global_policy("float32" if policy == "off" else policy)


def configure_compilation(model, jit_compile="auto", steps_per_execution=1):
    """Sets XLA compilation and steps per execution on a compiled model.

    Args:
        model: A compiled `keras.Model`.
        jit_compile: `"auto"` (keep the model's setting), `"on"` or `"off"`.
        steps_per_execution: Batches run in one compiled call.
    """
    if jit_compile not in JIT_MODES:
        raise ValueError(
            f"Unknown jit_compile {jit_compile!r}. Expected one of: {', '.join(JIT_MODES)}."
        )
    if jit_compile != "auto":
        model.jit_compile = jit_compile == "on"
    if steps_per_execution < 1:
        raise ValueError(
            "`steps_per_execution` must be positive. Received: "
            f"steps_per_execution={steps_per_execution}"
        )
    model.steps_per_execution = steps_per_execution
