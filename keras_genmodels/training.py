"""The training routine behind `keras-genmodels train` and the benchmarks.

`train_run` builds a preset, trains it on a named data set with plain `fit`
into a run directory (`keras_genmodels.run_dir`), resumes an interrupted run,
and then writes samples and held-out figures. An evaluation failure never
discards the trained model: `model.keras` is saved before evaluation starts,
and `keras-genmodels evaluate RUN` can be rerun alone.
"""

import math
import os
import time

from keras_genmodels import run_outputs
from keras_genmodels.run_dir import CommandError, RunDirectory


class TrainingInterrupted(Exception):
    """Training was interrupted (Ctrl-C); the run resumes from its backup."""


def count_examples(dataset):
    """Returns the number of elements of a finite `tf.data.Dataset`."""
    import tensorflow as tf

    size = int(dataset.cardinality())
    if size == tf.data.INFINITE_CARDINALITY:
        raise CommandError("The training data set is infinite; pass --epochs.")
    if size < 0:
        size = int(dataset.reduce(0, lambda n, _: n + 1))
    return size


def epochs_for_steps(steps, num_examples, batch_size):
    """Whole epochs covering at least `steps` optimizer steps (at least one).

    The rule behind a preset's `train_steps`, the command's `--steps` and
    the benchmarks' step budgets, so that a budget means the same training
    on MNIST as on mnist-5k.

    Args:
        steps: Positive int, optimizer steps wanted.
        num_examples: Examples per epoch.
        batch_size: Examples per step (the last batch may be partial).

    Returns:
        The number of epochs, an int `>= 1`.
    """
    steps_per_epoch = max(1, math.ceil(num_examples / batch_size))
    return max(1, math.ceil(steps / steps_per_epoch))


def train(family, out, preset=None, **options):
    """Trains a preset into a run directory, as `keras-genmodels train` does.

    The benchmarks call this, so a benchmark figure comes from the same
    routine (data loading, step budget, fit, samples, evaluation) as the
    command's.

    Args:
        family: One of `vae`, `gan`, `ar`, `flow`, `diffusion`.
        out: The run directory.
        preset: Preset name, or `None` for the family's default.
        **options: Any `train` flag by its argument name (`dataset`,
            `epochs`, `steps`, `batch_size`, `seed`, `overwrite`, ...);
            `overrides` is a dict of preset arguments.

    Returns:
        The `metrics.json` record.

    Example:

    ```python
    metrics = training.train("gan", "runs/ring8", preset="mlp2d", steps=2000,
                             dataset="ring8", overrides={"latent_dim": 4})
    ```
    """
    from keras_genmodels import cli

    argv = ["train", family, "--out", out]
    if preset is not None:
        argv += ["--preset", preset]
    args = cli.parser().parse_args(argv)
    overrides = options.pop("overrides", None) or {}
    unknown = sorted(set(options) - set(vars(args)))
    if unknown:
        raise TypeError(
            f"Unknown train option(s): {', '.join(unknown)}. Expected some of: "
            f"{', '.join(sorted(vars(args)))}"
        )
    vars(args).update(options)
    args.overrides = list(overrides.items())
    return train_run(args)


def _check_data_kind(model, train, dataset_name, family, preset_name, default_dataset):
    data_kind = getattr(train, "data_kind", None)
    if data_kind is not None and data_kind != model.data_kind:
        raise CommandError(
            f"The {family} preset {preset_name!r} models {model.data_kind} data, but "
            f"{dataset_name!r} holds {data_kind} data; pass a {model.data_kind} data "
            f"set (e.g. --dataset {default_dataset}) or another preset."
        )


def train_run(args, callbacks=()):
    """Trains `args.family` into the run directory `args.out`.

    Args:
        args: The parsed `train` arguments of `keras_genmodels.cli`.
        callbacks: Extra Keras callbacks for `fit`.

    Returns:
        The `metrics.json` record.
    """
    import keras

    from keras_genmodels import data, distribute, presets
    from keras_genmodels.callbacks import DurableBackupAndRestore, SampleLogger

    preset_name, spec = presets.get_preset(args.family, args.preset)
    out = args.out or os.path.join("runs", args.family)
    if args.strategy == "multi-worker" and distribute.task_index() > 0:
        # Every worker runs the same command; only the chief writes --out.
        out = os.path.join(out, f"worker-{distribute.task_index()}")
    run_dir = RunDirectory(out)
    requested = args.dataset or spec.dataset
    run = {
        "family": args.family,
        "preset": preset_name,
        "requested_dataset": requested,
        "dataset": requested,
        "batch_size": spec.batch_size if args.batch_size is None else args.batch_size,
        "seed": args.seed,
        "overrides": dict(args.overrides),
        "epochs": args.epochs,
    }
    steps = getattr(args, "steps", None)
    for name, value in (("batch_size", run["batch_size"]), ("epochs", run["epochs"]),
                        ("steps", steps)):
        if value is not None and value < 1:
            flag = "--" + name.replace("_", "-")
            raise CommandError(f"{flag} must be positive. Received: {value}")
    if steps is not None:
        run["steps"] = steps
    if args.steps_per_execution > 1 and args.strategy != "default":
        # Keras 3.15's multi-step train function fails under MirroredStrategy
        # ("You must feed a value for placeholder tensor"), plain models too.
        raise CommandError("--steps-per-execution > 1 needs --strategy default.")
    if run_dir.prepare(run, overwrite=getattr(args, "overwrite", False)):
        print(f"Resuming the interrupted run in {out}.")

    keras.utils.set_random_seed(args.seed)
    train = data.load(requested, "train")
    run["dataset"] = getattr(train, "source_name", requested)
    overrides = dict(run["overrides"])
    if spec.adapts_to_data_shape:
        overrides.setdefault("data_shape", tuple(train.element_spec.shape))
    overrides.setdefault("seed", args.seed)
    policy = keras.mixed_precision.global_policy()
    distribute.set_precision(args.mixed_precision)
    try:
        with distribute.make_strategy(args.strategy).scope():
            model = presets.build(args.family, preset_name, **overrides)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    _check_data_kind(model, train, requested, args.family, preset_name, spec.dataset)
    distribute.configure_compilation(model, args.jit_compile, args.steps_per_execution)
    if model.uses_labels:
        train = data.load(run["dataset"], "train", with_labels=True)
    batches = model.prepare_dataset(train, run["batch_size"])
    epochs = run["epochs"] or epochs_for_steps(
        steps or spec.train_steps, count_examples(train), run["batch_size"]
    )
    run["epochs"] = epochs
    run_dir.write_run(run)

    backup = DurableBackupAndRestore(run_dir.backup_dir)
    reference = run_outputs.reference_points(model, train)
    start = time.perf_counter()
    try:
        history = model.fit(
            batches,
            epochs=epochs,
            shuffle=False,  # prepare_dataset shuffles.
            verbose=1 if _interactive() else 2,
            callbacks=[
                backup,
                keras.callbacks.CSVLogger(run_dir.file("history.csv"), append=True),
                keras.callbacks.TensorBoard(run_dir.file("logs")),
                SampleLogger(
                    run_dir.file("logs"), seed=args.seed, reference=reference,
                    total_epochs=epochs,
                ),
                *callbacks,
            ],
        )
    except KeyboardInterrupt:
        raise TrainingInterrupted(
            f"interrupted after epoch {backup.finished_epochs} of {epochs}; run the "
            "same command to resume."
        ) from None
    train_seconds = time.perf_counter() - start
    run_dir.save_model(model)

    metrics = {
        "family": args.family,
        "preset": preset_name,
        "requested_dataset": requested,
        "dataset": run["dataset"],
        "parameters": int(model.count_params()),
        "epochs": epochs,
        "train_seconds": round(train_seconds, 2),
        "final": {k: float(v[-1]) for k, v in history.history.items() if v},
    }
    samples_file = "samples.txt" if model.data_kind == "text" else "samples.png"
    try:
        samples, columns = run_outputs.grid_samples(model, args.seed)
        run_outputs.write_samples(
            model, samples, run_dir.file(samples_file), reference, columns=columns
        )
        metrics["test"] = run_outputs.evaluate(model, run)
    except Exception as error:
        reason = " ".join(str(error).split())[:300] or type(error).__name__
        metrics["test_error"] = reason
        write_metrics(run_dir, metrics)
        raise CommandError(
            f"Training finished and {run_dir.model_path} is saved, but the evaluation "
            f"failed: {reason} (fix it and run `keras-genmodels evaluate {out}`)."
        ) from error
    write_metrics(run_dir, metrics)
    print(f"Wrote {out}: model.keras, history.csv, {samples_file}, metrics.json, logs/")
    return metrics


def write_metrics(run_dir, metrics):
    """Writes `metrics.json`; non-finite figures become `null` with a warning."""
    from keras_genmodels.progress import warn

    clean, bad = run_outputs.finite_figures(metrics)
    if bad:
        warn(f"non-finite figures written as null: {', '.join(bad)}")
    run_dir.write_metrics(clean)
    return clean


def _interactive():
    import sys

    return sys.stdout.isatty()
