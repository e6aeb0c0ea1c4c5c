"""Trains `transformer-small` on `pydoc` and compares its test bits/char with `xz -9e`.

Run from the repository root:

    python -m benchmarks.ar_pydoc_bpc [--steps N] [--save PATH]

Prints a table and writes `benchmarks/results/ar_pydoc_bpc.json`. The xz
figure is the conditional rate: the extra bits `xz -9e` needs to code the test
split after the train split, per byte of the test split.
"""

import argparse
import json
import os
import time

import keras_genmodels
from keras_genmodels import data
from keras_genmodels.evaluation import xz_baseline
from keras_genmodels.presets import get_preset

RESULTS = os.path.join(os.path.dirname(__file__), "results", "ar_pydoc_bpc.json")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="transformer-small")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps")
    parser.add_argument("--save", default=None, help="write the trained .keras here")
    parser.add_argument(
        "--override", action="append", default=[], metavar="KEY=VALUE",
        help="preset override, e.g. dropout=0.2 (repeatable)",
    )
    args = parser.parse_args()

    _, preset = get_preset("ar", args.preset)
    steps = args.steps or preset.train_steps
    overrides = {}
    for item in args.override:
        key, value = item.split("=", 1)
        overrides[key] = float(value) if "." in value or "e" in value else int(value)
    model = keras_genmodels.build("ar", args.preset, decay_steps=steps, **overrides)
    train = model.prepare_dataset(data.load("pydoc", "train"), preset.batch_size)
    # The test bits/char after each epoch, for the learning curve only: the
    # result is the model after the last epoch, not a selected one.
    test = model.prepare_dataset(data.load("pydoc", "test"), 64, shuffle=False)
    steps_per_epoch = int(train.cardinality())
    epochs = max(1, round(steps / steps_per_epoch))
    start = time.time()
    history = model.fit(train, epochs=epochs, validation_data=test, verbose=2)
    train_seconds = time.time() - start

    start = time.time()
    metrics = model.evaluation_metrics(data.load("pydoc", "test"))
    eval_seconds = time.time() - start
    xz = xz_baseline.dataset_rate("pydoc")
    result = {
        "preset": args.preset,
        "parameters": int(model.count_params()),
        "optimizer_steps": int(model.optimizer.iterations.numpy()),
        "epochs": epochs,
        "batch_size": preset.batch_size,
        "train_seconds": round(train_seconds, 1),
        "final_train_bits_per_char": float(history.history["bits_per_char"][-1]),
        "test_bits_per_char": metrics["bits_per_char"],
        "test_chars": metrics["num_chars"],
        "xz_9e_conditional_bits_per_char": xz,
        "beats_xz": metrics["bits_per_char"] < xz,
        "eval_seconds": round(eval_seconds, 1),
        "sample": model.generate("The ", max_new_tokens=200, temperature=0.7, seed=0),
        "overrides": overrides,
        "test_bits_per_char_by_epoch (windows from 0 context)": [
            round(v, 4) for v in history.history["val_bits_per_char"]
        ],
        "train_bits_per_char_by_epoch": [
            round(v, 4) for v in history.history["bits_per_char"]
        ],
    }
    print(f"{'measure':<40}{'value':>14}")
    for key in (
        "parameters", "optimizer_steps", "train_seconds", "final_train_bits_per_char",
        "test_bits_per_char", "xz_9e_conditional_bits_per_char", "beats_xz",
    ):
        value = result[key]
        text = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{key:<40}{text:>14}")
    print("sample:", repr(result["sample"]))
    if args.save:
        model.save(args.save)
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
