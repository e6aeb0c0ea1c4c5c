"""Trains the seed `reference` SimpleRNN on `sine` and compares its test MSE
with the noise variance.

Run from the repository root:

    python -m benchmarks.ar_sine [--steps N]

The test MSE is that of the next value after a full window of 10 values
(`evaluation_metrics()["mse"]`); no predictor can go below the noise variance
(0.1^2 = 0.01), the target is below 1.5 times it. Prints a table and writes
`benchmarks/results/ar_sine.json`.
"""

import argparse
import json
import os
import time

import keras_genmodels
from keras_genmodels import data, training
from keras_genmodels.data import sequences
from keras_genmodels.presets import get_preset

RESULTS = os.path.join(os.path.dirname(__file__), "results", "ar_sine.json")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    _, preset = get_preset("ar", "reference")
    steps = args.steps or preset.train_steps
    model = keras_genmodels.build("ar", "reference", seed=args.seed)
    train = model.prepare_dataset(data.load("sine"), preset.batch_size)
    epochs = training.epochs_for_steps(steps, int(train.cardinality()), 1)  # Batches.
    start = time.time()
    model.fit(train, epochs=epochs, verbose=2)
    seconds = time.time() - start
    metrics = model.evaluation_metrics(data.load("sine", "test"))
    noise_variance = sequences.SINE_DEFAULTS["noise"] ** 2
    result = {
        "parameters": int(model.count_params()),
        "optimizer_steps": int(model.optimizer.iterations.numpy()),
        "train_seconds": round(seconds, 1),
        "test_mse": metrics["mse"],
        "test_mse_all_positions": metrics["mse_all_positions"],
        "noise_variance": noise_variance,
        "target_mse": 1.5 * noise_variance,
        "mse_over_noise_variance": metrics["mse"] / noise_variance,
        "below_target": metrics["mse"] < 1.5 * noise_variance,
        "residual_variance": metrics["residual_variance"],
    }
    print(f"{'measure':<28}{'value':>12}")
    for key, value in result.items():
        text = f"{value:.5f}" if isinstance(value, float) else str(value)
        print(f"{key:<28}{text:>12}")
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
