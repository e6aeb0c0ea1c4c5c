"""Shared test set-up: quiet TensorFlow, deterministic seeds."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPU devices for the tf.distribute tests; this must happen before
# TensorFlow initialises its devices, i.e. before any test runs an op.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
)


@pytest.fixture(autouse=True)
def _seed_everything():
    keras.utils.set_random_seed(1234)
    yield


def pytest_configure(config):
    # `-n N` schedules test by test; the contract suite groups each preset's
    # checks (`xdist_group`) so one worker builds, trains and exports it once.
    # Honour the groups whenever xdist would otherwise spread them.
    if config.pluginmanager.hasplugin("xdist") and config.getoption("dist", "no") == "load":
        config.option.dist = "loadgroup"

