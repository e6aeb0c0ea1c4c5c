"""Keras callbacks for every family: non-finite losses, crash-safe backups,
and sample grids in TensorBoard."""

import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from keras_genmodels.files import replaced_atomically
from keras_genmodels.progress import warn


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops `fit` with a `FloatingPointError` when a loss is NaN or infinite.

    `GenerativeModel.fit` installs it for every family. It reads the logs
    after each batch, so it works the same with XLA (where
    `tf.debugging.check_numerics` is compiled away) and under a
    `tf.distribute` strategy.

    Args:
        advice: What to try, appended to the error message (e.g. "lower the
            learning rate").
    """

    def __init__(self, advice="Lower the learning rate or check the data."):
        super().__init__()
        self.advice = advice
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            value = np.asarray(value)
            if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                self.model.stop_training = True
                shown = value.item() if value.size == 1 else value.tolist()
                raise FloatingPointError(
                    f"Training stopped: {name} became {shown} at epoch "
                    f"{self._epoch + 1}, batch {batch + 1}. {self.advice}"
                )


class DurableBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` whose backups survive a kill at any moment.

    Each epoch-end backup is written to temporary files and renamed into
    place, and the backup before it is kept as `previous.*`. When a rerun finds
    the newest backup damaged (say, by a full disk), it says so on stderr
    and resumes from the one before; if both are damaged, from the start.
    The backup is never deleted by the callback (`delete_checkpoint=False`):
    the caller removes it once the final model is safely on disk.

    Args:
        backup_dir: Directory of the backup files.

    Example:

    ```python
    backup = DurableBackupAndRestore("runs/vae/backup")
    model.fit(data, epochs=10, callbacks=[backup])
    ```
    """

    def __init__(self, backup_dir):
        super().__init__(backup_dir, double_checkpoint=True, delete_checkpoint=False)
        # Keras loads weights only from names ending in `.weights.h5`.
        self._prev_weights_path = os.path.join(backup_dir, "previous.weights.h5")
        self._prev_training_metadata_path = os.path.join(
            backup_dir, "previous_training_metadata.json"
        )
        #: Epochs finished, counting those restored from the backup.
        self.finished_epochs = 0

    def on_train_begin(self, logs=None):
        candidates = [
            (self._weights_path, self._training_metadata_path),
            (self._prev_weights_path, self._prev_training_metadata_path),
        ]
        for index, (weights, metadata) in enumerate(candidates):
            if not os.path.exists(weights):
                if index == 0:
                    break  # No backup: a fresh run.
                continue
            try:
                self._restore(weights, metadata)
                if index:
                    warn(f"resumed from the previous backup {weights}.")
                return
            except (OSError, ValueError, KeyError) as error:
                reason = " ".join(str(error).split())[:160] or type(error).__name__
                warn(f"the backup {weights} is damaged ({reason}).")
        if any(os.path.exists(w) for w, _ in candidates):
            warn("no usable backup is left; training starts from the beginning.")
            for paths in candidates:
                for path in paths:
                    if os.path.exists(path):
                        os.remove(path)
        self.model._initial_epoch = 0

    def _restore(self, weights, metadata):
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(weights)
        epoch = 0
        if os.path.exists(metadata):
            with open(metadata) as f:
                epoch = int(json.load(f)["epoch"])
        self.model._initial_epoch = epoch
        self.finished_epochs = epoch

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self.finished_epochs = epoch + 1

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        for current, previous in (
            (self._weights_path, self._prev_weights_path),
            (self._training_metadata_path, self._prev_training_metadata_path),
        ):
            if os.path.exists(current):
                os.replace(current, previous)
        with replaced_atomically(self._weights_path) as partial:
            self.model.save_weights(partial)
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
        with replaced_atomically(self._training_metadata_path) as partial:
            with open(partial, "w") as f:
                json.dump(metadata, f)


class SampleLogger(keras.callbacks.Callback):
    """Logs fixed-seed samples to TensorBoard as training goes on.

    Image families get a grid, 2-D families a scatter over the data, sequence
    models line plots (all under the "samples" image tag) and text models a
    text summary. The seed is fixed, so successive epochs show how the same
    draws evolve. Sampling is skipped on epochs where it would cost more than
    `budget` of the training time so far; the first and the last epoch are
    always logged.

    Args:
        log_dir: TensorBoard log directory (a `samples` subdirectory is used).
        num_samples: How many samples per picture.
        seed: The fixed sampling seed.
        reference: Optional `(M, 2)` data drawn under 2-D scatters.
        budget: Largest share of the wall time spent sampling.
        total_epochs: The epoch count `fit` was given, to log the last one.
    """

    def __init__(
        self,
        log_dir,
        num_samples=16,
        seed=0,
        reference=None,
        budget=0.1,
        total_epochs=None,
    ):
        super().__init__()
        self.log_dir = os.path.join(log_dir, "samples")
        self.num_samples = num_samples
        self.seed = seed
        self.reference = reference
        self.budget = budget
        self.total_epochs = total_epochs
        self._writer = None
        self._start = None
        self._sampling_seconds = 0.0

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()
        self._writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        last = self.total_epochs is not None and epoch + 1 >= self.total_epochs
        elapsed = time.perf_counter() - self._start
        if epoch > 0 and not last and self._sampling_seconds > self.budget * elapsed:
            return
        began = time.perf_counter()
        self.log(epoch)
        self._sampling_seconds += time.perf_counter() - began

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()

    def log(self, epoch):
        """Samples and writes one summary at step `epoch + 1`."""
        from keras_genmodels import plotting

        samples = self.model.sample(self.num_samples, seed=self.seed)
        kind = self.model.data_kind
        with self._writer.as_default(step=epoch + 1):
            if kind == "text":
                text = "\n\n".join(f"    {s}".replace("\n", "\n    ") for s in samples)
                tf.summary.text("samples", text)
            else:
                if kind == "image":
                    picture = plotting.image_grid(samples)
                elif kind == "points":
                    picture = plotting.scatter(samples, self.reference)
                else:
                    picture = plotting.line_plot(samples)
                pixels = np.asarray(picture.convert("RGB"))
                tf.summary.image("samples", pixels[None])
        self._writer.flush()
