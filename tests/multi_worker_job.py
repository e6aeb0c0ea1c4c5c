"""One worker of `test_multi_worker.py`: trains a tiny GAN under
`MultiWorkerMirroredStrategy` (cluster from `TF_CONFIG`) and saves its weights.

Run as `python -m tests.multi_worker_job OUT.npz`.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_genmodels  # noqa: E402
from keras_genmodels import distribute  # noqa: E402

STEPS = 3


def main(out):
    strategy = distribute.make_strategy("multi-worker")
    keras.utils.set_random_seed(0)
    with strategy.scope():
        # Two optimizers, the R1 penalty and the generator EMA.
        model = keras_genmodels.build("gan", "mlp2d", hidden_units=(16,), seed=0)
    initial = model.get_weights()
    points = np.random.default_rng(0).normal(size=(16 * STEPS, 2)).astype("float32")
    batches = tf.data.Dataset.from_tensor_slices(points).batch(16)
    history = model.fit(batches, epochs=1, verbose=0)
    np.savez(
        out,
        replicas=strategy.num_replicas_in_sync,
        d_loss=history.history["d_loss"][-1],
        moved=max(float(np.max(np.abs(a - b))) for a, b in zip(initial, model.get_weights())),
        **{f"w{i}": w for i, w in enumerate(model.get_weights())},
    )


if __name__ == "__main__":
    main(sys.argv[1])
