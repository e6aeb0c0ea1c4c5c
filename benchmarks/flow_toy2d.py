"""Flows on the 2-D toy sets: test NLL against the true entropy.

Trains a flow preset (default `mlp2d`; also `maf2d`, `iaf2d`, `reference`)
on each data set for the preset's
default length (as the command does: `train_steps` rounded up to whole
epochs), then reports the training time, the test NLL, the true entropy
estimated with the set's known density on the same test points, their gap
(the KL divergence from the data, up to sampling error), and the exactness
checks: `max |decode(encode(x)) - x|` and the largest difference between the
chain's log-determinant and `log |det J|` of the autodiff Jacobian. A scatter
of 2,000 samples over the test data is saved for each set.

Run from the repository root:

    python -m benchmarks.flow_toy2d
    python -m benchmarks.flow_toy2d --datasets moons --preset reference --steps 1000
    python -m benchmarks.flow_toy2d --preset maf2d
    python -m benchmarks.flow_toy2d --preset iaf2d

Writes `benchmarks/results/flow_toy2d.json` and
`benchmarks/results/flow_toy2d_<set>.png` for `mlp2d`;
`flow_toy2d_<preset>.json` and `flow_toy2d_<preset>_<set>.png` for another
preset.
"""

import argparse
import json
import math
import os
import re
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_genmodels  # noqa: E402
from benchmarks import command_line  # noqa: E402
from keras_genmodels import data, plotting, presets, training  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results")
NAME = "flow_toy2d"


def exactness(model, points):
    """Round-trip error and log-det error against the autodiff Jacobian."""
    z = model.encode(points)
    round_trip = float(np.abs(model.decode(z) - points).max())
    z = tf.constant(z[:512])
    with tf.GradientTape() as tape:
        tape.watch(z)
        x = model.bijector.forward(z)
    jacobian = tape.batch_jacobian(x, z).numpy().astype("float64")
    autodiff = np.log(np.abs(np.linalg.det(jacobian)))
    fldj = model.bijector.forward_log_det_jacobian(z, event_ndims=1).numpy()
    return round_trip, float(np.abs(fldj - autodiff).max())


def result_name(preset_name):
    """File stem of a preset's results: `mlp2d` keeps the historic name."""
    return NAME if preset_name == "mlp2d" else f"{NAME}_{preset_name.replace('-', '_')}"


def run(dataset, preset_name, steps, batch_size, seed):
    _, spec = presets.get_preset("flow", preset_name)
    batch_size = batch_size or spec.batch_size
    keras.utils.set_random_seed(seed)
    model = keras_genmodels.build("flow", preset_name, data_shape=(2,), seed=seed)
    train = data.load(dataset, "train")
    num_train = int(train.cardinality())
    steps_per_epoch = math.ceil(num_train / batch_size)
    epochs = training.epochs_for_steps(steps or spec.train_steps, num_train, batch_size)
    start = time.perf_counter()
    history = model.fit(
        model.prepare_dataset(train, batch_size), epochs=epochs, verbose=0
    )
    seconds = time.perf_counter() - start
    metrics = model.evaluation_metrics(data.load(dataset, "test"), dataset_name=dataset)
    test = np.stack(list(data.load(dataset, "test").as_numpy_iterator()))
    round_trip, log_det = exactness(model, test)
    stem = result_name(preset_name)
    picture = os.path.join(RESULTS, f"{stem}_{re.sub(r'[^A-Za-z0-9]+', '_', dataset)}.png")
    plotting.scatter(model.sample(2_000, seed=seed), test[:2_000]).save(picture)
    return {
        "dataset": dataset,
        "preset": preset_name,
        "parameters": int(model.count_params()),
        "batch_size": batch_size,
        "epochs": epochs,
        "steps": epochs * steps_per_epoch,
        "train_seconds": round(seconds, 1),
        "final_train_loss": float(history.history["loss"][-1]),
        **metrics,
        "max_round_trip_error": round_trip,
        "max_log_det_error": log_det,
        "samples_png": os.path.relpath(picture),
    }


def write_results(args, rows):
    """Writes the rows so far to the preset's JSON."""
    with open(os.path.join(RESULTS, f"{result_name(args.preset)}.json"), "w") as f:
        json.dump(
            {
                "command": command_line("flow_toy2d", args),
                "machine_note": "2 shared CPU cores; timings are pessimistic.",
                "results": rows,
            },
            f,
            indent=2,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["ring8:sigma=0.1", "moons"])
    parser.add_argument("--preset", default="mlp2d")
    parser.add_argument("--steps", type=int, help="default: the preset's train_steps")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(RESULTS, exist_ok=True)
    rows = []
    for dataset in args.datasets:
        rows.append(run(dataset, args.preset, args.steps, args.batch_size, args.seed))
        # Written after each set, so a long run interrupted keeps what ended.
        write_results(args, rows)
    header = (
        f"{'dataset':<18}{'preset':<12}{'params':>8}{'steps':>7}{'train s':>9}"
        f"{'test NLL':>10}{'entropy':>9}{'gap':>8}{'inv err':>10}{'logdet err':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['dataset']:<18}{r['preset']:<12}{r['parameters']:>8}{r['steps']:>7}"
            f"{r['train_seconds']:>9.1f}{r['test_nll']:>10.4f}{r['true_entropy']:>9.4f}"
            f"{r['nll_minus_entropy']:>8.4f}{r['max_round_trip_error']:>10.1e}"
            f"{r['max_log_det_error']:>11.1e}"
        )


if __name__ == "__main__":
    main()
