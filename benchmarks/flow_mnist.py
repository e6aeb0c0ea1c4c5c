"""Flow image presets on mnist-5k: test bits/dim, classifier-FID, time.

Trains a flow image preset (`mnist`, the default; `realnvp-mnist`,
`glow-mnist`) for its default length (`train_steps` rounded up to whole
epochs of the training digits, as the command does), then reports the
training time, the train and test bits/dim, mean and median (test images
dequantised with seeded uniform noise, logit-transform Jacobian included,
so comparable with published figures), the classifier-FID of samples at
temperature 1.0 and 0.7 against the test digits (28x28x1 data only),
`max |decode(encode(x)) - x|` on test digits, and a SavedModel + TF Lite
export check. A grid of 64 samples at temperature 0.7 is saved.

Regularisation for a small training set: `--val-fraction F` carves the last
`F` of the training split out as a validation set and `--patience P` stops
when its loss has not improved for `P` epochs, restoring the best weights
(the presets' AdamW weight decay applies in any case).

Run from the repository root:

    python -m benchmarks.flow_mnist
    python -m benchmarks.flow_mnist --steps 200   # a quick look
    python -m benchmarks.flow_mnist --preset glow-mnist --val-fraction 0.1 --patience 5
    python -m benchmarks.flow_mnist --preset realnvp-mnist --epochs 1 --no-export  # smoke

Writes `benchmarks/results/flow_mnist.json` and
`benchmarks/results/flow_mnist_samples.png` for `mnist`
(`flow_mnist_<preset>*` for another preset; `_steps<N>` / `_epochs<N>` with
`--steps N` / `--epochs N`).
"""

import argparse
import json
import math
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_genmodels  # noqa: E402
from keras_genmodels import data, export, plotting, presets, training  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results")


def split_validation(train, fraction):
    """`(train, validation)`: the last `fraction` of `train` held out."""
    total = int(train.cardinality())
    held = int(round(total * fraction))
    if not 0 < held < total:
        raise SystemExit(f"--val-fraction {fraction} leaves no train or validation data.")
    return train.take(total - held), train.skip(total - held)


def sample_scores(model, test, seed, num_samples):
    """Classifier-FID (and precision/recall) at temperature 1.0 and 0.7."""
    from keras_genmodels.evaluation.classifier_fid import digit_scores

    if model.data_shape != (28, 28, 1):
        return {}
    scores = {}
    for temperature in (1.0, 0.7):
        samples = model.sample(num_samples, seed=seed, temperature=temperature)
        figures = digit_scores(samples, test[:num_samples])
        key = f"t{temperature:g}".replace(".", "")
        scores.update({f"{name}_{key}": value for name, value in figures.items()})
    return scores


def reproducing_command(args):
    """The command line of this run: flags given, options that differ from
    their defaults."""
    parts = ["python -m benchmarks.flow_mnist"]
    defaults = {"preset": "mnist", "dataset": "mnist-5k", "val_fraction": 0.0,
                "fid_samples": 1000, "seed": 0}
    for key, value in vars(args).items():
        if value is None or value is False or defaults.get(key) == value:
            continue
        flag = "--" + key.replace("_", "-")
        parts.append(flag if value is True else f"{flag} {value}")
    return " ".join(parts)


def run_name(args):
    name = "flow_mnist" + ("" if args.preset == "mnist" else f"_{args.preset.replace('-', '_')}")
    if args.steps:
        name += f"_steps{args.steps}"
    if args.epochs:
        name += f"_epochs{args.epochs}"
    return name


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="mnist")
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--steps", type=int, help="default: the preset's train_steps")
    parser.add_argument("--epochs", type=int, help="overrides --steps (e.g. 1 for a smoke run)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--val-fraction", type=float, default=0.0)
    parser.add_argument("--patience", type=int, help="early stopping on the validation loss")
    parser.add_argument("--fid-samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-export", action="store_true")
    args = parser.parse_args()
    os.makedirs(RESULTS, exist_ok=True)
    name = run_name(args)

    _, spec = presets.get_preset("flow", args.preset)
    batch_size = args.batch_size or spec.batch_size
    keras.utils.set_random_seed(args.seed)
    train = data.load(args.dataset, "train")
    validation = None
    if args.val_fraction:
        train, validation = split_validation(train, args.val_fraction)
    model = keras_genmodels.build(
        "flow", args.preset, data_shape=tuple(train.element_spec.shape), seed=args.seed
    )
    num_train = int(train.cardinality())
    steps_per_epoch = math.ceil(num_train / batch_size)
    epochs = args.epochs or training.epochs_for_steps(
        args.steps or spec.train_steps, num_train, batch_size
    )
    callbacks = []
    if args.patience:
        if validation is None:
            raise SystemExit("--patience needs --val-fraction.")
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=args.patience, restore_best_weights=True
        ))
    start = time.perf_counter()
    history = model.fit(
        model.prepare_dataset(train, batch_size),
        validation_data=None if validation is None else model.prepare_dataset(
            validation, batch_size, shuffle=False
        ),
        epochs=epochs, verbose=2, callbacks=callbacks,
    )
    seconds = time.perf_counter() - start
    epochs_run = len(history.history["loss"])

    start = time.perf_counter()
    metrics = model.evaluation_metrics(data.load(args.dataset, "test"), dataset_name=args.dataset)
    eval_seconds = time.perf_counter() - start
    test_all = np.stack(list(data.load(args.dataset, "test").as_numpy_iterator()))
    test = test_all[:256]
    round_trip = float(np.abs(model.decode(model.encode(test)) - test).max())
    picture = os.path.join(RESULTS, f"{name}_samples.png")
    plotting.image_grid(model.sample(64, seed=args.seed, temperature=0.7)).save(picture)

    result = {
        "dataset": args.dataset,
        "preset": args.preset,
        "parameters": int(model.count_params()),
        "batch_size": batch_size,
        "epochs": epochs_run,
        "steps": epochs_run * steps_per_epoch,
        "validation_examples": 0 if validation is None else int(validation.cardinality()),
        "train_seconds": round(seconds, 1),
        "seconds_per_step": round(seconds / (epochs_run * steps_per_epoch), 4),
        "train_bits_per_dim": float(history.history["bits_per_dim"][-1]),
        "test_bits_per_dim": metrics["bits_per_dim"],
        "test_median_bits_per_dim": metrics["median_bits_per_dim"],
        "test_nll_nats": metrics["test_nll"],
        "eval_seconds": round(eval_seconds, 1),
        "max_round_trip_error": round_trip,
        "samples_png": os.path.relpath(picture),
    }
    if "val_bits_per_dim" in history.history:
        result["best_val_bits_per_dim"] = float(min(history.history["val_bits_per_dim"]))
    if args.fid_samples:
        result.update(sample_scores(model, test_all, args.seed, args.fid_samples))
    if not args.no_export:
        with tempfile.TemporaryDirectory() as tmp:
            report = export.export_and_verify(model, tmp, name="flow_mnist")
        result["signatures"] = report["signatures"]
        result["tflite_max_abs_diff"] = report["tflite_max_abs_diff"]
        result["tflite_tolerance"] = model.tflite_tolerance

    for key, value in result.items():
        print(f"{key:<26}{value}")
    with open(os.path.join(RESULTS, f"{name}.json"), "w") as f:
        json.dump(
            {
                "command": reproducing_command(args),
                "machine_note": "2 shared CPU cores; timings are pessimistic.",
                "results": [result],
            },
            f,
            indent=2,
        )


if __name__ == "__main__":
    main()
