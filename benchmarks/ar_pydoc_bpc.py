"""Trains `transformer-small` on `pydoc` and compares its test bits/char with `xz -9e`.

Run from the repository root:

    python -m benchmarks.ar_pydoc_bpc [--steps N | --minutes M]
        [--mixed-precision mixed_bfloat16] [--save PATH]

Prints a table and writes `benchmarks/results/ar_pydoc_bpc.json`. The xz
figure is the conditional rate: the extra bits `xz -9e` needs to code the test
split after the train split, per byte of the test split.

The model is scored twice: statically (the trained weights score every test
byte) and with dynamic evaluation (`TransformerLM.dynamic_bits_per_char`:
after each segment of half a window, 64 bytes for `transformer-small`, is
scored, one SGD step learns from its window, so the model adapts to the test
text as it reads it, as `xz` does), at the library's default step size and at
each of `--dynamic-learning-rates`.

`--minutes M` sizes the run to a time budget: a throwaway copy of the model
times 30 training steps (after its compilation), the number of steps that
fit in `M` minutes sets the length of the learning-rate schedule, and a fresh
model trains for that many steps (a callback stops it past 1.1 M minutes).
With `--clock wall` the minutes are wall-clock time; with `--clock cpu` they
are this process's CPU time divided by `--cores` (2): the wall time the run
would take with the cores to itself, a measure that other jobs sharing the
machine do not inflate. With
`--mixed-precision mixed_bfloat16` the model trains in bfloat16 (variables
stay float32) and is scored in float32 with the trained weights.
"""

import argparse
import json
import math
import os
import time

import keras

import keras_genmodels
from keras_genmodels import data
from keras_genmodels.autoregressive import windows
from keras_genmodels.autoregressive.transformer import TransformerLM
from keras_genmodels.evaluation import xz_baseline
from keras_genmodels.presets import get_preset

EPOCHS = 20  # Validation points of the learning curve.


class _Clock:
    """Wall-clock seconds, or process CPU seconds divided by `cores`."""

    def __init__(self, kind="wall", cores=2):
        self.kind = kind
        self.cores = cores

    def __call__(self):
        if self.kind == "wall":
            return time.time()
        return time.process_time() / self.cores


class _Deadline(keras.callbacks.Callback):
    """Stops training once `seconds` have passed on `clock`."""

    def __init__(self, seconds, clock):
        super().__init__()
        self.seconds = seconds
        self.clock = clock
        self.start = None
        self.stopped_early = False

    def on_train_begin(self, logs=None):
        self.start = self.clock()

    def on_train_batch_end(self, batch, logs=None):
        if self.seconds and self.clock() - self.start > self.seconds:
            self.model.stop_training = True
            self.stopped_early = True


def _build(preset, policy, steps, overrides):
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        return keras_genmodels.build("ar", preset, decay_steps=steps, **overrides)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _steps_in(minutes, probe, batches, clock):
    """Optimizer steps that fit in `minutes`, timed on a throwaway model."""
    probe.fit(batches, steps_per_epoch=5, epochs=1, verbose=0)  # Compiles.
    start = clock()
    probe.fit(batches, steps_per_epoch=30, epochs=1, verbose=0)
    seconds_per_step = (clock() - start) / 30
    return int(minutes * 60 / seconds_per_step), seconds_per_step

RESULTS = os.path.join(os.path.dirname(__file__), "results", "ar_pydoc_bpc.json")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="transformer-small")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps")
    parser.add_argument(
        "--minutes", type=float, default=None,
        help="training budget on --clock; sets the steps from a timed probe",
    )
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"])
    parser.add_argument("--cores", type=int, default=2, help="for --clock cpu")
    parser.add_argument(
        "--mixed-precision", default="float32", choices=["float32", "mixed_bfloat16"],
    )
    parser.add_argument("--save", default=None, help="write the trained .keras here")
    parser.add_argument(
        "--override", action="append", default=[], metavar="KEY=VALUE",
        help="preset override, e.g. dropout=0.2 (repeatable)",
    )
    parser.add_argument(
        "--dynamic-learning-rates", default="0.01,0.02,0.05,0.1",
        help="comma-separated extra step sizes of dynamic evaluation to report",
    )
    args = parser.parse_args()

    _, preset = get_preset("ar", args.preset)
    overrides = {}
    for item in args.override:
        key, value = item.split("=", 1)
        overrides[key] = float(value) if "." in value or "e" in value else int(value)
    batch_size = overrides.pop("batch_size", preset.batch_size)
    policy = args.mixed_precision
    probe = _build(args.preset, policy, 1000, overrides)
    train = probe.prepare_dataset(data.load("pydoc", "train"), batch_size).repeat()
    # The test bits/char after each epoch, for the learning curve only: the
    # result is the model after the last epoch, not a selected one.
    test = probe.prepare_dataset(data.load("pydoc", "test"), 64, shuffle=False)
    clock = _Clock(args.clock, args.cores)
    probe_seconds_per_step = None
    if args.minutes:
        steps, probe_seconds_per_step = _steps_in(args.minutes, probe, train, clock)
    else:
        steps = args.steps or preset.train_steps
    steps_per_epoch = math.ceil(steps / EPOCHS)
    model = _build(args.preset, policy, steps_per_epoch * EPOCHS, overrides)
    deadline = _Deadline(args.minutes * 66 if args.minutes else None, clock)
    start, cpu_start = time.time(), time.process_time()
    history = model.fit(
        train, epochs=EPOCHS, steps_per_epoch=steps_per_epoch, validation_data=test,
        callbacks=[deadline], verbose=2,
    )
    train_seconds = time.time() - start
    train_cpu_seconds = time.process_time() - cpu_start
    optimizer_steps = int(model.optimizer.iterations.numpy())

    if policy != "float32":  # Score the trained weights in float32.
        scorer = TransformerLM.from_config({**model.get_config(), "dtype": "float32"})
        scorer.set_weights(model.get_weights())
        model = scorer
    start = time.time()
    test_tokens = windows.stream_array(data.load("pydoc", "test"), "int32")
    metrics = model.evaluation_metrics(test_tokens)
    eval_seconds = time.time() - start
    dynamic_by_rate = {metrics["dynamic_learning_rate"]: metrics["dynamic_bits_per_char"]}
    for rate in args.dynamic_learning_rates.split(","):
        if rate.strip():
            dynamic_by_rate[float(rate)] = model.dynamic_bits_per_char(
                test_tokens, float(rate)
            )
    xz = xz_baseline.dataset_rate("pydoc")
    result = {
        "preset": args.preset,
        "parameters": int(model.count_params()),
        "optimizer_steps": optimizer_steps,
        "scheduled_steps": steps_per_epoch * EPOCHS,
        "batch_size": batch_size,
        "context_length": model.context_length,
        "mixed_precision": policy,
        "budget_minutes": args.minutes,
        "budget_clock": f"{args.clock} (cpu: process CPU time / {args.cores} cores)",
        "probe_seconds_per_step": probe_seconds_per_step,
        "train_seconds": round(train_seconds, 1),
        "train_cpu_seconds": round(train_cpu_seconds, 1),
        f"train_cpu_seconds_per_{args.cores}_cores": round(train_cpu_seconds / args.cores, 1),
        "stopped_at_deadline": deadline.stopped_early,
        "final_train_bits_per_char": float(history.history["bits_per_char"][-1]),
        "test_bits_per_char": metrics["bits_per_char"],
        "test_chars": metrics["num_chars"],
        "xz_9e_conditional_bits_per_char": xz,
        "beats_xz": metrics["bits_per_char"] < xz,
        "dynamic_learning_rate": metrics["dynamic_learning_rate"],
        "dynamic_test_bits_per_char": metrics["dynamic_bits_per_char"],
        "dynamic_beats_xz": metrics["dynamic_bits_per_char"] < xz,
        "dynamic_test_bits_per_char_by_learning_rate": {
            str(rate): dynamic_by_rate[rate] for rate in sorted(dynamic_by_rate)
        },
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
        "parameters", "optimizer_steps", "scheduled_steps", "train_seconds",
        f"train_cpu_seconds_per_{args.cores}_cores",
        "final_train_bits_per_char", "test_bits_per_char",
        "dynamic_test_bits_per_char", "xz_9e_conditional_bits_per_char",
        "beats_xz", "dynamic_beats_xz",
    ):
        value = result[key]
        text = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{key:<40}{text:>14}")
    for rate in sorted(dynamic_by_rate):
        print(f"{f'dynamic, learning rate {rate:g}':<40}{dynamic_by_rate[rate]:>14.4f}")
    print("sample:", repr(result["sample"]))
    if args.save:
        model.save(args.save)
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
