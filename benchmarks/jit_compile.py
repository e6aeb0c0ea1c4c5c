"""Training throughput with and without XLA (`jit_compile`) per family.

For each family's default preset (or `--presets FAMILY=PRESET ...`) it
builds two models with the same seed, one with `jit_compile=True` and one
with `jit_compile=False`, feeds both the same batch of the preset's data set
at the preset's batch size, runs `--warmup` steps (tracing and XLA
compilation) and then `--rounds` timed rounds of `--steps` steps, with the
two modes alternating so that a change in machine load hits both. It reports
the median examples/s of each mode, the speed-up of XLA and the first-call
(compile) time, and says which is faster.

Run from the repository root:

    python -m benchmarks.jit_compile
    python -m benchmarks.jit_compile --families flow gan --steps 5 --rounds 3

Prints a table and writes `benchmarks/results/jit_compile.json` (a run over
some families replaces their rows there and keeps the other families').
"""

import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import merged_rows  # noqa: E402
from keras_genmodels import data, presets  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results")
NAME = "jit_compile"


def _batches(model, spec, batch_size):
    """One real batch of the preset's data set, repeated (no input cost)."""
    train = data.load(spec.dataset, "train", with_labels=model.uses_labels)
    batch = next(iter(model.prepare_dataset(train, batch_size, shuffle=False)))
    return tf.data.Dataset.from_tensors(batch).repeat()


def _build(family, preset, spec, jit, seed=0):
    keras.utils.set_random_seed(seed)
    overrides = {"seed": seed}
    if spec.adapts_to_data_shape:
        train = data.load(spec.dataset, "train")
        overrides["data_shape"] = tuple(train.element_spec.shape)
    model = presets.build(family, preset, **overrides)
    model.jit_compile = jit
    return model


def measure(family, preset=None, steps=5, rounds=3, warmup=2):
    """Median training throughput of one preset with and without XLA.

    Args:
        family: Family name.
        preset: Preset name, or `None` for the family's default.
        steps: Training steps per timed round.
        rounds: Timed rounds per mode (the modes alternate).
        warmup: Untimed steps first (tracing and compilation).

    Returns:
        A dict of the figures of both modes.
    """
    preset, spec = presets.get_preset(family, preset)
    batch_size = spec.batch_size
    models, first_call, rates = {}, {}, {True: [], False: []}
    for jit in (True, False):
        model = _build(family, preset, spec, jit)
        batches = _batches(model, spec, batch_size)
        start = time.perf_counter()
        model.fit(batches, steps_per_epoch=warmup, epochs=1, verbose=0)
        first_call[jit] = time.perf_counter() - start
        models[jit] = (model, batches)
    for _ in range(rounds):
        for jit in (True, False):
            model, batches = models[jit]
            start = time.perf_counter()
            model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
            rates[jit].append(steps * batch_size / (time.perf_counter() - start))
    on, off = float(np.median(rates[True])), float(np.median(rates[False]))
    return {
        "family": family,
        "preset": preset,
        "batch_size": batch_size,
        "steps": steps,
        "rounds": rounds,
        "jit_examples_per_s": round(on, 1),
        "no_jit_examples_per_s": round(off, 1),
        "xla_speedup": round(on / off, 3),
        "jit_first_call_s": round(first_call[True], 2),
        "no_jit_first_call_s": round(first_call[False], 2),
        "faster": "jit_compile=True" if on > off else "jit_compile=False",
        "all_jit_examples_per_s": [round(r, 1) for r in rates[True]],
        "all_no_jit_examples_per_s": [round(r, 1) for r in rates[False]],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(presets.FAMILY_MODULES))
    parser.add_argument("--presets", nargs="*", default=[], metavar="FAMILY=PRESET")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args(argv)
    chosen = dict(item.split("=", 1) for item in args.presets)
    rows = []
    for family in args.families:
        row = measure(family, chosen.get(family), args.steps, args.rounds, args.warmup)
        rows.append(row)
        print(json.dumps(row), flush=True)
    header = (
        f"{'family':<10} {'preset':<18} {'batch':>5} {'XLA ex/s':>10} {'no-XLA ex/s':>12} "
        f"{'speed-up':>9} {'XLA 1st s':>10} {'faster'}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['family']:<10} {r['preset']:<18} {r['batch_size']:>5} "
            f"{r['jit_examples_per_s']:>10.1f} {r['no_jit_examples_per_s']:>12.1f} "
            f"{r['xla_speedup']:>9.2f} {r['jit_first_call_s']:>10.1f} {r['faster']}"
        )
    os.makedirs(RESULTS, exist_ok=True)
    result = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "devices": [d.name for d in tf.config.list_logical_devices()],
            "note": "Same process, modes alternating per round; medians.",
        },
        "results": rows,
    }
    path = os.path.join(RESULTS, f"{NAME}.json")
    # A run over some families replaces their rows and keeps the others.
    result["results"] = merged_rows(path, rows, key=("family", "preset"), field="results")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()
