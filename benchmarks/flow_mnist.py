"""RealNVP `mnist` preset on mnist-5k: test bits/dim after the default training.

Trains the preset for its default length (`train_steps` rounded up to whole
epochs of the 4,000 training digits, as the command does), then reports the
training time, the train and test bits/dim (test images dequantised with
seeded uniform noise, logit-transform Jacobian included, so comparable with
published figures), `max |decode(encode(x)) - x|` on test digits, and a
SavedModel + TF Lite export check. A grid of 64 samples is saved.

Run from the repository root:

    python -m benchmarks.flow_mnist
    python -m benchmarks.flow_mnist --steps 200   # a quick look

Writes `benchmarks/results/flow_mnist.json` and
`benchmarks/results/flow_mnist_samples.png` (`flow_mnist_steps<N>.*` with
`--steps N`).
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--steps", type=int, help="default: the preset's train_steps")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-export", action="store_true")
    args = parser.parse_args()
    os.makedirs(RESULTS, exist_ok=True)
    # The default run writes flow_mnist.json; `--steps N` writes
    # flow_mnist_steps<N>.json beside it.
    name = "flow_mnist" + (f"_steps{args.steps}" if args.steps else "")

    _, spec = presets.get_preset("flow", "mnist")
    batch_size = args.batch_size or spec.batch_size
    keras.utils.set_random_seed(args.seed)
    train = data.load(args.dataset, "train")
    model = keras_genmodels.build(
        "flow", "mnist", data_shape=tuple(train.element_spec.shape), seed=args.seed
    )
    steps_per_epoch = math.ceil(int(train.cardinality()) / batch_size)
    epochs = training.epochs_for_steps(
        args.steps or spec.train_steps, int(train.cardinality()), batch_size
    )
    start = time.perf_counter()
    history = model.fit(
        model.prepare_dataset(train, batch_size), epochs=epochs, verbose=2
    )
    seconds = time.perf_counter() - start

    start = time.perf_counter()
    metrics = model.evaluation_metrics(data.load(args.dataset, "test"), dataset_name=args.dataset)
    eval_seconds = time.perf_counter() - start
    test = np.stack(list(data.load(args.dataset, "test").take(256).as_numpy_iterator()))
    round_trip = float(np.abs(model.decode(model.encode(test)) - test).max())
    picture = os.path.join(RESULTS, f"{name}_samples.png")
    plotting.image_grid(model.sample(64, seed=args.seed, temperature=0.7)).save(picture)

    result = {
        "dataset": args.dataset,
        "preset": "mnist",
        "parameters": int(model.count_params()),
        "batch_size": batch_size,
        "epochs": epochs,
        "steps": epochs * steps_per_epoch,
        "train_seconds": round(seconds, 1),
        "seconds_per_step": round(seconds / (epochs * steps_per_epoch), 4),
        "train_bits_per_dim": float(history.history["bits_per_dim"][-1]),
        "test_bits_per_dim": metrics["bits_per_dim"],
        "test_median_bits_per_dim": metrics["median_bits_per_dim"],
        "test_nll_nats": metrics["test_nll"],
        "eval_seconds": round(eval_seconds, 1),
        "max_round_trip_error": round_trip,
        "samples_png": os.path.relpath(picture),
    }
    if not args.no_export:
        with tempfile.TemporaryDirectory() as tmp:
            report = export.export_and_verify(model, tmp, name="flow_mnist")
        result["signatures"] = report["signatures"]
        result["tflite_max_abs_diff"] = report["tflite_max_abs_diff"]
        result["tflite_tolerance"] = model.tflite_tolerance

    for key, value in result.items():
        print(f"{key:<26}{value}")
    command = "python -m benchmarks.flow_mnist" + (
        f" --steps {args.steps}" if args.steps else ""
    )
    with open(os.path.join(RESULTS, f"{name}.json"), "w") as f:
        json.dump(
            {
                "command": command,
                "machine_note": "2 shared CPU cores; timings are pessimistic.",
                "results": [result],
            },
            f,
            indent=2,
        )


if __name__ == "__main__":
    main()
