"""The `keras-genmodels` command: list, train, sample, evaluate, export.

```
keras-genmodels list
keras-genmodels train vae --preset conv --dataset mnist --out runs/vae
keras-genmodels sample runs/vae --num 64 --seed 0 --out grid.png
keras-genmodels evaluate runs/vae
keras-genmodels export runs/vae --base-dir savedmodels --tflite
```

`train` writes into its run directory `run.json` (what was trained),
`model.keras`, `history.csv`, `samples.png` (or `samples.txt` for text),
`metrics.json` and TensorBoard logs under `logs/`. An interrupted `train`
resumes from the last finished epoch when run again with the same `--out`.
Errors are one line on stderr and a non-zero exit status.
"""

import argparse
import json
import math
import os
import sys
import time

RUN_FILE = "run.json"
MODEL_FILE = "model.keras"


class CommandError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _parse_override(text):
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, received {text!r}")
    try:
        value = json.loads(value)
    except json.JSONDecodeError:
        pass  # A bare string such as `schedule=cosine`.
    if isinstance(value, list):
        value = tuple(value)
    return key, value


def _parser():
    parser = argparse.ArgumentParser(
        prog="keras-genmodels",
        description="Train, sample, evaluate and export generative models.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("list", help="families, presets and data sets")

    train = commands.add_parser("train", help="train a model into a run directory")
    train.add_argument("family", help="vae, gan, ar, flow or diffusion")
    train.add_argument("--preset", help="preset name (default: the family's default)")
    train.add_argument("--dataset", help="data set (default: the preset's)")
    train.add_argument("--epochs", type=int, help="epochs (default: the preset's length)")
    train.add_argument("--batch-size", type=int, help="batch size (default: the preset's)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.add_argument("--out", default=None, help="run directory (default runs/FAMILY)")
    train.add_argument(
        "--strategy", default="default", choices=["default", "mirrored", "multi-worker"],
        help="tf.distribute strategy: one device, every local device mirrored, or "
        "every worker of the TF_CONFIG cluster (the chief writes --out, worker N "
        "writes --out/worker-N)",
    )
    train.add_argument(
        "--mixed-precision", default="off", choices=["off", "mixed_float16", "mixed_bfloat16"],
        help="Keras dtype policy for the layers",
    )
    train.add_argument(
        "--jit-compile", default="auto", choices=["auto", "on", "off"],
        help="XLA-compile the train step (auto: the model's default)",
    )
    train.add_argument(
        "--steps-per-execution", type=int, default=1,
        help="batches per compiled call (default 1)",
    )
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        type=_parse_override,
        metavar="KEY=VALUE",
        help="override a preset argument (JSON value), e.g. --set latent_dim=8",
    )

    sample = commands.add_parser("sample", help="draw samples from a trained run")
    sample.add_argument("run")
    sample.add_argument("--num", type=int, default=64)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", help="output file (default RUN/samples-SEED.png)")

    evaluate = commands.add_parser("evaluate", help="held-out figures of a run")
    evaluate.add_argument("run")

    export = commands.add_parser("export", help="SavedModel for TF Serving (+ TF Lite)")
    export.add_argument("run")
    export.add_argument("--base-dir", default="savedmodels")
    export.add_argument("--name", help="model name (default: the family)")
    export.add_argument("--version", type=int, help="version (default: next free)")
    export.add_argument("--tflite", action="store_true", help="also write a .tflite file")
    return parser


# ----------------------------------------------------------------------
# Helpers.
# ----------------------------------------------------------------------
def _read_run(run_dir):
    path = os.path.join(run_dir, RUN_FILE)
    if not os.path.isfile(path):
        raise CommandError(f"{run_dir!r} is not a run directory (no {RUN_FILE}).")
    with open(path) as f:
        return json.load(f)


def _load_model(run_dir):
    import keras

    from keras_genmodels import presets

    run = _read_run(run_dir)
    presets.import_family(run["family"])  # Registers the family's classes.
    path = os.path.join(run_dir, MODEL_FILE)
    if not os.path.isfile(path):
        raise CommandError(
            f"{run_dir!r} has no {MODEL_FILE}; its training has not finished. "
            "Run the same train command again to resume it."
        )
    return run, keras.saving.load_model(path, safe_mode=True)


def _count(dataset):
    import tensorflow as tf

    size = int(dataset.cardinality())
    if size == tf.data.INFINITE_CARDINALITY:
        raise CommandError("The training data set is infinite; pass --epochs.")
    if size < 0:
        size = int(dataset.reduce(0, lambda n, _: n + 1))
    return size


def write_samples(model, samples, path, reference=None):
    """Writes samples as a picture (or text) suited to the model's data kind.

    Args:
        model: The model that drew them (its `data_kind` picks the format).
        samples: The output of `model.sample`.
        path: Output path; `.txt` is used for text whatever the suffix.
        reference: Optional `(M, 2)` data drawn under 2-D samples.

    Returns:
        The path written.
    """
    from keras_genmodels import plotting

    kind = model.data_kind
    if kind == "text":
        path = os.path.splitext(path)[0] + ".txt"
        with open(path, "w", encoding="utf-8") as f:
            for i, text in enumerate(samples):
                f.write(f"--- sample {i} ---\n{text}\n")
        return path
    if kind == "image":
        picture = plotting.image_grid(samples)
    elif kind == "points":
        picture = plotting.scatter(samples, reference)
    elif kind == "sequence":
        picture = plotting.line_plot(samples)
    else:
        raise CommandError(f"Unknown data kind {kind!r} of {type(model).__name__}.")
    picture.save(path)
    return path


def _reference_points(model, dataset, limit=2_000):
    import numpy as np

    if model.data_kind != "points":
        return None
    points = [np.asarray(x) for x in dataset.take(limit).as_numpy_iterator()]
    return np.stack([p[0] if isinstance(p, tuple) else p for p in points])


DIGIT_DATASETS = ("mnist", "mnist-5k")


def _digit_figures(model, test, dataset_name, num_images=1_000):
    """Classifier-FID, precision and recall for models of MNIST digits."""
    import numpy as np

    from keras_genmodels.evaluation import classifier_fid

    if model.data_kind != "image" or dataset_name not in DIGIT_DATASETS:
        return {}
    reference = [x[0] if isinstance(x, tuple) else x for x in test.take(num_images)]
    reference = np.stack([np.asarray(x) for x in reference])
    if reference.shape[1:] != classifier_fid.IMAGE_SHAPE:
        return {}
    generated = model.sample(len(reference), seed=0)
    return {
        "classifier_fid": classifier_fid.digit_scores(generated, reference),
        "classifier_fid_floor": classifier_fid.digit_floor(),
    }


def _evaluate(model, run):
    from keras_genmodels import data

    test = data.load(run["dataset"], "test", with_labels=model.uses_labels)
    start = time.perf_counter()
    figures = model.evaluation_metrics(test, dataset_name=run["dataset"])
    figures.update(_digit_figures(model, test, run["dataset"]))
    figures["evaluation_seconds"] = round(time.perf_counter() - start, 2)
    return figures


def _verbosity():
    return 1 if sys.stdout.isatty() else 2


# ----------------------------------------------------------------------
# Commands.
# ----------------------------------------------------------------------
def cmd_list(args):
    from keras_genmodels import data, presets

    for family in presets.FAMILY_MODULES:
        default = presets.default_preset(family)
        print(f"{family}:")
        for name, description in presets.list_presets(family).items():
            _, spec = presets.get_preset(family, name)
            marker = " (default)" if name == default else ""
            print(f"  {name}{marker}: {description} [data: {spec.dataset}]")
    print("datasets:")
    for name in data.list_datasets():
        print(f"  {name}")


def cmd_train(args, callbacks=()):
    import keras

    from keras_genmodels import data, distribute, presets

    preset_name, spec = presets.get_preset(args.family, args.preset)
    out = args.out or os.path.join("runs", args.family)
    if args.strategy == "multi-worker" and distribute.task_index() > 0:
        # Every worker runs the same command; only the chief writes --out.
        out = os.path.join(out, f"worker-{distribute.task_index()}")
    run_path = os.path.join(out, RUN_FILE)
    backup_dir = os.path.join(out, "backup")
    run = {
        "family": args.family,
        "preset": preset_name,
        "dataset": args.dataset or spec.dataset,
        "batch_size": spec.batch_size if args.batch_size is None else args.batch_size,
        "seed": args.seed,
        "overrides": dict(args.overrides),
        "epochs": args.epochs,
    }
    if os.path.isfile(run_path):
        previous = _read_run(out)
        if os.path.isfile(os.path.join(out, MODEL_FILE)) and not os.path.isdir(backup_dir):
            raise CommandError(
                f"{out!r} already holds a finished run; pass another --out."
            )
        if {k: previous.get(k) for k in run if k != "epochs"} != {
            k: v for k, v in run.items() if k != "epochs"
        }:
            raise CommandError(
                f"{out!r} holds an interrupted run with other settings "
                f"({previous}); resume it with the same arguments or pass another --out."
            )
        print(f"Resuming the interrupted run in {out}.")
    for name in ("batch_size", "epochs"):
        if run[name] is not None and run[name] < 1:
            flag = "--" + name.replace("_", "-")
            raise CommandError(f"{flag} must be positive. Received: {run[name]}")

    keras.utils.set_random_seed(args.seed)
    train = data.load(run["dataset"], "train")
    overrides = dict(run["overrides"])
    if spec.data_shape_argument:
        overrides.setdefault(spec.data_shape_argument, tuple(train.element_spec.shape))
    overrides.setdefault("seed", args.seed)
    if args.steps_per_execution > 1 and args.strategy != "default":
        # Keras 3.15's multi-step train function fails under MirroredStrategy
        # ("You must feed a value for placeholder tensor"), plain models too.
        raise CommandError("--steps-per-execution > 1 needs --strategy default.")
    policy = keras.mixed_precision.global_policy()
    distribute.set_precision(args.mixed_precision)
    try:
        with distribute.make_strategy(args.strategy).scope():
            model = presets.build(args.family, preset_name, **overrides)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    distribute.configure_compilation(model, args.jit_compile, args.steps_per_execution)
    if model.uses_labels:
        train = data.load(run["dataset"], "train", with_labels=True)
    batches = model.prepare_dataset(train, run["batch_size"])
    steps_per_epoch = math.ceil(_count(train) / run["batch_size"])
    epochs = run["epochs"] or max(1, math.ceil(spec.train_steps / steps_per_epoch))
    run["epochs"] = epochs

    os.makedirs(out, exist_ok=True)
    with open(run_path, "w") as f:
        json.dump(run, f, indent=2)
    start = time.perf_counter()
    history = model.fit(
        batches,
        epochs=epochs,
        shuffle=False,  # prepare_dataset shuffles.
        verbose=_verbosity(),
        callbacks=[
            keras.callbacks.BackupAndRestore(backup_dir),
            keras.callbacks.CSVLogger(os.path.join(out, "history.csv"), append=True),
            keras.callbacks.TensorBoard(os.path.join(out, "logs")),
            *callbacks,
        ],
    )
    train_seconds = time.perf_counter() - start
    model.save(os.path.join(out, MODEL_FILE))

    samples = model.sample(64, seed=args.seed)
    samples_path = write_samples(
        model, samples, os.path.join(out, "samples.png"), _reference_points(model, train)
    )
    metrics = {
        "family": args.family,
        "preset": preset_name,
        "dataset": run["dataset"],
        "parameters": int(model.count_params()),
        "epochs": epochs,
        "train_seconds": round(train_seconds, 2),
        "final": {k: float(v[-1]) for k, v in history.history.items() if v},
    }
    metrics["test"] = _evaluate(model, run)
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    print(f"Wrote {out}: {MODEL_FILE}, history.csv, {os.path.basename(samples_path)}, "
          "metrics.json, logs/")
    print(json.dumps(metrics["test"], indent=2))
    return metrics


def cmd_sample(args):
    run, model = _load_model(args.run)
    out = args.out or os.path.join(args.run, f"samples-{args.seed}.png")
    samples = model.sample(args.num, seed=args.seed)
    path = write_samples(model, samples, out)
    print(f"Wrote {args.num} samples to {path}")


def cmd_evaluate(args):
    run, model = _load_model(args.run)
    figures = _evaluate(model, run)
    path = os.path.join(args.run, "metrics.json")
    metrics = {}
    if os.path.isfile(path):
        with open(path) as f:
            metrics = json.load(f)
    metrics["test"] = figures
    with open(path, "w") as f:
        json.dump(metrics, f, indent=2)
    print(json.dumps(figures, indent=2))
    return figures


def cmd_export(args):
    from keras_genmodels import export

    run, model = _load_model(args.run)
    report = export.export_and_verify(
        model,
        args.base_dir,
        name=args.name or run["family"],
        version=args.version,
        tflite=args.tflite,
    )
    print(json.dumps(report, indent=2))
    return report


COMMANDS = {
    "list": cmd_list,
    "train": cmd_train,
    "sample": cmd_sample,
    "evaluate": cmd_evaluate,
    "export": cmd_export,
}


def main(argv=None):
    """Runs the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import keras_genmodels  # noqa: F401  (checks the Keras backend)

        COMMANDS[args.command](args)
    except Exception as error:
        if args.debug:
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        if not isinstance(error, (CommandError, ValueError, OSError)):
            if len(message) > 300:
                message = message[:300] + "..."
            message = f"{type(error).__name__}: {message} (--debug shows the traceback)"
        print(f"keras-genmodels: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
