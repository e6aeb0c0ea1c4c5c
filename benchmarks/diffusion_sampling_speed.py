"""Compiled sampling loop vs a Python loop calling `predict` once per step.

The Python loop is how keras.io's DDPM example samples: every reverse step
calls `network.predict` and then updates the sample eagerly. `DDPM.sample`
runs the same sampler (same timesteps, same update, same noise) as one
`tf.while_loop` in a cached `tf.function`. Both run in the same process, on
the same (untrained: speed does not depend on the weights) model, at the same
step count, after one warm-up call each; the loops take turns for
`--repeats` rounds and the table gives each one's best time (the least
inflated by other jobs on a shared machine) and the largest difference
between the outputs.
The `+XLA step` column is `DDPM.sample(..., jit_compile=True)`: the same
loop with each step (network and update) compiled by XLA.

The `network only s` column is a floor for any loop: `steps` calls of the
network alone in one graph loop (no update, no noise), at the same batch.
The compiled loop's time over that floor is its whole overhead. The
`ceiling` column is the predict loop's time over that floor: the largest
speedup over the predict loop that any sampling loop running this network
could reach on this machine. Where the network's own compute dominates (the
U-Net at 8 or more images on a 2-core CPU) the ceiling itself is small: the
predict loop costs the same compute plus its per-call overhead (60-80 ms per
step here), so no loop can beat it by a large factor.

First call (`--first-call-repeats`, 0 to skip; `--first-call-only` skips
the table above): what a script that samples once pays (tracing, graph
optimisation, XLA compilation). Each repeat starts a fresh process per mode
(`benchmarks.first_call`) that builds the default preset (`unet-mnist`) and
times three equal `sample(n, seed=[1, 2])` calls with the default sampler
(the first, the second and the warm third), plus the trace alone
(`get_concrete_function` before the first call): `graph` is the default
(`jit_compile=False`), `xla` is `jit_compile=True`.

Run from the repository root:

    python -m benchmarks.diffusion_sampling_speed [--repeats 3]
    python -m benchmarks.diffusion_sampling_speed --first-call-only --first-call-samples 1

Prints tables and writes `benchmarks/results/diffusion_sampling_speed.json`.
"""

import argparse
import functools
import json
import os

import numpy as np
import tensorflow as tf

import keras_genmodels
from benchmarks import best_times, first_call, merged_rows

NAME = "diffusion_sampling_speed"
RESULTS = os.path.join(os.path.dirname(__file__), "results")

CASES = [
    # (preset, samples, method, steps)
    ("unet-mnist", 1, "ddim", 50),
    ("unet-mnist", 4, "ddim", 50),
    ("unet-mnist", 8, "ddim", 50),
    ("unet-mnist", 16, "ddim", 50),
    ("unet-mnist", 64, "ddim", 50),
    ("mlp2d", 2000, "ddim", 100),
    ("mlp2d", 2000, "ddpm", 1000),
]


def python_loop(model, num_samples, method, num_steps, seed):
    """The keras.io-style sampler: one `predict` call per step."""
    process = model.process
    seed = tf.constant(seed, tf.int32)
    shape = [num_samples, *model.data_shape]
    x = tf.random.stateless_normal(shape, seed=seed)
    timesteps = process.timestep_sequence(num_steps).numpy()
    for i in reversed(range(len(timesteps))):
        t = np.full([num_samples], timesteps[i], "int32")
        t_prev = np.full([num_samples], timesteps[i - 1] if i else -1, "int32")
        eps = model.ema_network.predict([x.numpy(), t], batch_size=num_samples, verbose=0)
        eps = tf.constant(eps, tf.float32)
        noise = tf.random.stateless_normal(
            shape, seed=tf.random.experimental.stateless_fold_in(seed, i + 1)
        )
        if method == "ddpm" and t_prev[0] == t[0] - 1:
            x = process.ddpm_step(x, t, eps, noise)
        else:
            x = process.ddim_step(x, t, t_prev, eps, noise, 1.0 if method == "ddpm" else 0.0)
    return model.from_process_space(x).numpy()


def network_floor(model, num_samples, steps):
    """A callable running `steps` calls of the EMA network alone in one graph loop.

    Each call's input is `x + 0.001 * previous output` (so no call can be
    hoisted or skipped, and the values stay those of a sampler's inputs);
    there is no sampler update, no noise and no Python between calls: no
    sampling loop at this batch size can be much faster.
    """
    network = model.ema_network
    x = tf.random.normal([num_samples, *model.data_shape])
    t = tf.fill([num_samples], model.timesteps // 2)

    @tf.function(autograph=False)
    def repeated(x, t):
        return tf.while_loop(
            lambda i, x: i < steps,
            lambda i, y: (i + 1, network([x + 0.001 * y, t], training=False)),
            (tf.constant(0), tf.zeros_like(x)),
        )[1]

    return lambda: repeated(x, t).numpy()


FIRST_CALL_PRESET = "unet-mnist"


def child(num_samples, mode):
    """Times the first sampling calls of a fresh process (`report`s them)."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras_genmodels.build("diffusion", FIRST_CALL_PRESET, seed=0)
    jit_compile = mode == "xla"
    # The traced function `sample` builds, traced alone first.
    static, tensors = model.sample_options(num_samples, jit_compile=jit_compile)
    fn = model.traced_function(
        ("sample",) + tuple(sorted(static.items())),
        functools.partial(model.sample_from_seed, **static),
    )
    values = {}
    values["trace_seconds"], values["trace_cpu_seconds"], _ = first_call.timed(
        lambda: fn.get_concrete_function(
            tf.constant(num_samples, tf.int32), tf.constant([1, 2], tf.int32), **tensors
        )
    )
    outputs = []
    for name in ("first", "second", "warm"):
        wall, cpu, out = first_call.timed(
            lambda: model.sample(num_samples, seed=[1, 2], jit_compile=jit_compile)
        )
        values[f"{name}_seconds"], values[f"{name}_cpu_seconds"] = wall, cpu
        outputs.append(out)
    values["same_samples"] = all(np.array_equal(outputs[0], o) for o in outputs)
    values["load_average_1min"] = os.getloadavg()[0]
    first_call.report(values)


def first_call_rows(sample_counts, repeats):
    """First/second/warm seconds per mode and sample count, fresh processes."""
    rows = []
    for n in sample_counts:
        modes = {m: (["--child", str(n), m], None) for m in ("graph", "xla")}
        table = first_call.first_call_table(NAME, modes, repeats)
        for mode, row in table.items():
            rows.append({
                "preset": FIRST_CALL_PRESET, "samples": n, "mode": mode,
                **{k: v for k, v in row.items() if k != "runs"},
                "same_samples": all(r["same_samples"] for r in row["runs"]),
                "load_average_1min": [r["load_average_1min"] for r in row["runs"]],
            })
    print(f"first calls of {FIRST_CALL_PRESET} in fresh processes (best of {repeats}), "
          "seconds (process CPU seconds); the trace is timed alone, before the first call")
    print(f"{'n':>4}{'mode':>7}" + "".join(
        f"{k:>18}" for k in ("trace", "first", "second", "warm")))
    for r in rows:
        print(f"{r['samples']:>4}{r['mode']:>7}" + "".join(
            f"{r[f'{k}_seconds']:>10.2f} ({r[f'{k}_cpu_seconds']:5.2f})"
            for k in ("trace", "first", "second", "warm")
        ))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--presets", nargs="*", default=None, help="only these presets")
    parser.add_argument(
        "--first-call-repeats", type=int, default=2,
        help="fresh processes per first-call mode (0: skip the first-call table)",
    )
    parser.add_argument(
        "--first-call-samples", type=int, nargs="+", default=[1, 64],
        help="sample counts of the first-call table",
    )
    parser.add_argument(
        "--first-call-only", action="store_true", help="only the first-call table"
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(int(args.child[0]), args.child[1])
    path = os.path.join(RESULTS, f"{NAME}.json")
    first_rows = []
    if args.first_call_repeats:
        first_rows = first_call_rows(args.first_call_samples, args.first_call_repeats)
    if args.first_call_only:
        result = {}
        if os.path.isfile(path):
            with open(path) as f:
                result = json.load(f)
        result["first_call"] = first_call_json(first_rows, args.first_call_repeats)
        os.makedirs(RESULTS, exist_ok=True)
        with open(path, "w") as f:
            json.dump(result, f, indent=2)
        return
    rows, models = [], {}
    for preset, n, method, steps in CASES:
        if args.presets and preset not in args.presets:
            continue
        if preset not in models:
            models[preset] = keras_genmodels.build("diffusion", preset, seed=0)
        model = models[preset]
        seconds, out = best_times(
            {
                "compiled": (
                    lambda m=model, n=n, method=method, steps=steps: m.sample(
                        n, num_steps=steps, method=method, seed=[1, 2]
                    ),
                    None,
                ),
                "xla": (
                    lambda m=model, n=n, method=method, steps=steps: m.sample(
                        n, num_steps=steps, method=method, seed=[1, 2], jit_compile=True
                    ),
                    None,
                ),
                "predict": (
                    lambda m=model, n=n, method=method, steps=steps: python_loop(
                        m, n, method, steps, [1, 2]
                    ),
                    # Two steps trace the predict function; more add nothing.
                    lambda m=model, n=n, method=method: python_loop(m, n, method, 2, [1, 2]),
                ),
                "floor": (network_floor(model, n, steps), None),
            },
            args.repeats,
        )
        compiled_s, xla_s, python_s, floor_s = (
            seconds[k] for k in ("compiled", "xla", "predict", "floor")
        )
        compiled, xla, looped = out["compiled"], out["xla"], out["predict"]
        rows.append(
            {
                "preset": preset,
                "samples": n,
                "method": method,
                "steps": steps,
                "compiled_seconds": round(compiled_s, 3),
                "compiled_xla_step_seconds": round(xla_s, 3),
                "python_predict_seconds": round(python_s, 3),
                "network_only_seconds": round(floor_s, 3),
                "speedup": round(python_s / compiled_s, 2),
                "speedup_xla_step": round(python_s / xla_s, 2),
                "ceiling": round(python_s / floor_s, 2),
                "max_abs_diff": float(np.max(np.abs(compiled - looped))),
                "max_abs_diff_xla_step": float(np.max(np.abs(xla - looped))),
                "load_average_1min": round(os.getloadavg()[0], 2),
            }
        )
        print(rows[-1], flush=True)
    print(f"{'preset':<12}{'n':>6}{'method':>7}{'steps':>6}{'compiled s':>12}"
          f"{'+XLA step s':>13}{'predict loop s':>16}{'network only s':>16}"
          f"{'speedup':>9}{'+XLA':>7}{'ceiling':>9}{'max diff':>10}")
    for r in rows:
        print(f"{r['preset']:<12}{r['samples']:>6}{r['method']:>7}{r['steps']:>6}"
              f"{r['compiled_seconds']:>12.3f}{r['compiled_xla_step_seconds']:>13.3f}"
              f"{r['python_predict_seconds']:>16.3f}{r['network_only_seconds']:>16.3f}"
              f"{r['speedup']:>9.2f}"
              f"{r['speedup_xla_step']:>7.2f}{r['ceiling']:>9.2f}{r['max_abs_diff']:>10.2g}")
    os.makedirs(RESULTS, exist_ok=True)
    if args.presets:  # Keep the other presets' rows.
        rows = merged_rows(path, rows, key=("preset",))
    with open(path, "w") as f:
        json.dump(
            {
                "rows": rows,
                "target": "compiled loop >= 5x faster than the predict loop",
                "ceiling": "predict loop seconds / network-only seconds: the largest "
                "speedup any loop running the same network could reach here",
                "repeats": args.repeats,
                "statistic": "best of the repeats, loops interleaved",
                "cpu_count": os.cpu_count(),
                "note": "All columns of a row are measured in the same process, one "
                "after the other; a row's load average above cpu_count means other "
                "jobs shared the CPU and its timings are noisy.",
                "first_call": first_call_json(first_rows, args.first_call_repeats),
            },
            f,
            indent=2,
        )


def first_call_json(rows, repeats):
    return {
        "repeats": repeats,
        "statistic": "best of the fresh processes, modes interleaved",
        "rows": rows,
    }


if __name__ == "__main__":
    main()
