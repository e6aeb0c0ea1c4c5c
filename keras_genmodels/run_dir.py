"""The run directory `keras-genmodels train` writes, and its states.

A run directory holds `run.json` (what was asked for and what actually ran),
`model.keras`, `history.csv`, `samples.png` (or `samples.txt`),
`metrics.json`, TensorBoard logs in `logs/` and, while training, the backup
in `backup/`. Every file is written atomically (`keras_genmodels.files`), and
the backup is removed only once `model.keras` is complete, so a kill at any
moment leaves a run that the same command resumes.

States, as `RunDirectory.state()` reports them:

- `"new"`: the directory does not exist or is empty;
- `"foreign"`: it holds files but no `run.json`: not a run of this package;
- `"interrupted"`: `run.json` without a complete `model.keras`, or with the
  backup still there;
- `"finished"`: a complete `model.keras` and no backup.
"""

import json
import os
import shutil
import zipfile

from keras_genmodels import files
from keras_genmodels.progress import warn

RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
BACKUP_DIR = "backup"
LOGS_DIR = "logs"
#: What `train --overwrite` removes from a finished run before starting anew.
RUN_OUTPUTS = (
    RUN_FILE, MODEL_FILE, METRICS_FILE, HISTORY_FILE, "samples.png", "samples.txt",
    BACKUP_DIR, LOGS_DIR,
)
#: Settings that must match for a rerun to resume an interrupted run.
RESUME_KEYS = ("family", "preset", "requested_dataset", "batch_size", "seed", "overrides")


class CommandError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


class RunDirectory:
    """One run directory of `keras-genmodels train`.

    Args:
        path: The directory (it need not exist yet).

    Example:

    ```python
    run = RunDirectory("runs/vae")
    run.state()  # "finished"
    model = run.load_model()
    ```
    """

    def __init__(self, path):
        self.path = path

    def file(self, name):
        """Returns the path of `name` inside the run directory."""
        return os.path.join(self.path, name)

    @property
    def model_path(self):
        return self.file(MODEL_FILE)

    @property
    def backup_dir(self):
        return self.file(BACKUP_DIR)

    def model_is_complete(self):
        """Whether `model.keras` exists and is a whole `.keras` (zip) file."""
        return os.path.isfile(self.model_path) and zipfile.is_zipfile(self.model_path)

    def state(self):
        """Returns `"new"`, `"foreign"`, `"interrupted"` or `"finished"`."""
        if not os.path.exists(self.path):
            return "new"
        if not os.path.isdir(self.path):
            raise CommandError(f"{self.path!r} is a file, not a run directory.")
        if not os.path.isfile(self.file(RUN_FILE)):
            return "new" if not os.listdir(self.path) else "foreign"
        if self.model_is_complete() and not os.path.isdir(self.backup_dir):
            return "finished"
        return "interrupted"

    def read_run(self):
        """Returns the `run.json` record, refusing a directory without one."""
        path = self.file(RUN_FILE)
        if not os.path.isfile(path):
            raise CommandError(f"{self.path!r} is not a run directory (no {RUN_FILE}).")
        try:
            with open(path, encoding="utf-8") as f:
                run = json.load(f)
        except (OSError, ValueError) as error:
            raise CommandError(f"{path!r} is damaged: {error}") from None
        # Runs written before `requested_dataset` existed.
        run.setdefault("requested_dataset", run.get("dataset"))
        return run

    def write_run(self, run):
        files.write_json(self.file(RUN_FILE), run)

    def prepare(self, run, overwrite=False):
        """Checks that training `run` may write here; returns whether it resumes.

        Args:
            run: The new `run.json` record.
            overwrite: Whether a foreign directory may be written into and a
                finished run replaced.

        Returns:
            `True` when an interrupted run with the same settings resumes.
        """
        state = self.state()
        if state == "foreign" and not overwrite:
            raise CommandError(
                f"{self.path!r} holds files but is not a keras-genmodels run "
                f"(no {RUN_FILE}); pass another --out, or --overwrite to write into it."
            )
        if state == "finished":
            if not overwrite:
                raise CommandError(
                    f"{self.path!r} already holds a finished run; pass another --out, "
                    "or --overwrite to train it again from the start."
                )
            self.clear()
            return False
        if state != "interrupted":
            return False
        previous = self.read_run()
        if overwrite:
            self.clear()
            return False
        asked = {k: run.get(k) for k in RESUME_KEYS}
        found = {k: previous.get(k) for k in RESUME_KEYS}
        if asked != found:
            differing = sorted(k for k in RESUME_KEYS if asked[k] != found[k])
            raise CommandError(
                f"{self.path!r} holds an interrupted run with other settings "
                f"({', '.join(f'{k}={found[k]!r}' for k in differing)}); resume it "
                "with the same arguments, pass another --out, or --overwrite."
            )
        if os.path.exists(self.model_path) and not self.model_is_complete():
            warn(f"{self.model_path} is damaged; resuming from the backup.")
            os.remove(self.model_path)
        files.remove_stale_partials(self.path)
        return True

    def clear(self):
        """Removes this package's outputs (and nothing else) from the directory."""
        for name in RUN_OUTPUTS:
            path = self.file(name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
        files.remove_stale_partials(self.path)

    def save_model(self, model):
        """Saves `model.keras` atomically, then drops the training backup."""
        with files.replaced_atomically(self.model_path) as partial:
            model.save(partial)
        if os.path.isdir(self.backup_dir):
            shutil.rmtree(self.backup_dir)

    def load_model(self):
        """Loads `model.keras` with `safe_mode=True`.

        Returns:
            `(run, model)`: the `run.json` record and the model.
        """
        import keras

        import keras_genmodels  # noqa: F401  (registers every family's classes)

        run = self.read_run()
        if not self.model_is_complete():
            detail = "is damaged" if os.path.exists(self.model_path) else "is missing"
            raise CommandError(
                f"{self.model_path} {detail}: the training of {self.path!r} has not "
                "finished. Run the same train command again to resume it."
            )
        return run, keras.saving.load_model(self.model_path, safe_mode=True)

    def read_metrics(self):
        path = self.file(METRICS_FILE)
        if not os.path.isfile(path):
            return {}
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    def write_metrics(self, metrics):
        files.write_json(self.file(METRICS_FILE), metrics)
