"""Cached vs uncached generation speed of the byte transformer.

Run from the repository root:

    python -m benchmarks.ar_generation_speed [--new-tokens 256] [--presets ...]

For each preset (built with a 512-byte context so that the prompt and 256 new
tokens fit without the cache's window refill) these loops, the strategies of
`keras_genmodels.autoregressive.decoding` run by
`TransformerLM.generate_tokens`, each one compiled function, generate the
same tokens from the same weights (checked):

- `cached`: a key/value cache filled from the prompt, one position per new
  token, the token loop XLA-compiled (the library's default);
- `cached_graph`: the same loop as a plain `tf.function` graph (no XLA), as
  the exported SavedModel `generate` signature runs it;
- `full_window`: every new token re-runs the model over the whole
  `context_length` window (as a static-shape runtime such as the TF Lite
  `next_token_logits` signature does), loop and model in a `tf.function`
  graph (TensorFlow's oneDNN kernels);
- `full_window_xla`: the same, with the window's forward pass XLA-compiled;
- `prefix`: every new token re-runs the model over the tokens so far (a
  graph; its shapes change every step, so it is not XLA-compiled).

Every loop is run once untimed (tracing and XLA compilation), then the
loops take turns for `--repeats` rounds; each one's best time counts. The
speedups divide the faster of the two full-window baselines (and the prefix
loop) by `cached`.

First call (`--first-call-repeats`, 0 to skip): what a script that
generates once pays. Each repeat starts a fresh process per mode
(`benchmarks.first_call`) that builds the preset and times three equal
`generate_tokens` calls (the first, the second, and the warm third) of the
cached loop:

- `default`: `jit_compile=None`, the library's choice (`use_xla`: the first
  call of a batch size and length bucket runs as a graph, later calls
  XLA-compiled);
- `xla`: `jit_compile=True` on every call (the default before);
- `graph`: `jit_compile=False` on every call;
- `xla_persistent_cache`: `xla` with XLA's persistent compilation cache
  (`TF_XLA_FLAGS=--tf_xla_persistent_cache_directory=DIR`), filled by one
  untimed process first, as a second run of a script finds it.

Prints the tables and writes `benchmarks/results/ar_generation_speed.json`.
"""

import argparse
import functools
import json
import os
import tempfile

import numpy as np

import keras_genmodels
from benchmarks import best_times, first_call
from keras_genmodels.autoregressive import tokenizer

RESULTS = os.path.join(os.path.dirname(__file__), "results", "ar_generation_speed.json")
PROMPT = "def generate(self, prompt):\n"


def measure(preset, new_tokens, batch_size, repeats):
    model = keras_genmodels.build("ar", preset, context_length=512, seed=0)
    prompt = np.repeat(tokenizer.encode(PROMPT)[None], batch_size, 0)
    kwargs = {"temperature": 1.0, "top_k": 40, "seed": 0}
    strategies = {
        "cached": ("cached", True),
        "cached_graph": ("cached", False),
        "full_window": ("full_window", False),
        "full_window_xla": ("full_window", True),
        "prefix": ("prefix", False),
    }
    loops = {
        name: functools.partial(
            model.generate_tokens, prompt, new_tokens, strategy=strategy,
            jit_compile=jit_compile, **kwargs,
        )
        for name, (strategy, jit_compile) in strategies.items()
    }
    row = {"preset": preset, "parameters": int(model.count_params()), "context_length": 512}
    # The loop length is a tensor: one trace serves every call.
    seconds, outputs = best_times({name: (fn, None) for name, fn in loops.items()}, repeats)
    for name in loops:
        row[f"{name}_seconds"] = round(seconds[name], 3)
    baseline = min(row["full_window_seconds"], row["full_window_xla_seconds"])
    row["speedup_vs_full_window"] = round(baseline / row["cached_seconds"], 1)
    row["speedup_vs_prefix"] = round(row["prefix_seconds"] / row["cached_seconds"], 1)
    row["speedup_graph_vs_full_window"] = round(baseline / row["cached_graph_seconds"], 1)
    row["same_tokens"] = all(
        np.array_equal(outputs["cached"], out) for out in outputs.values()
    )
    return row


JIT_MODES = {"default": None, "xla": True, "graph": False}


def child(preset, new_tokens, batch_size, mode):
    """Times the first three cached generations of a fresh process (`report`s them)."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras_genmodels.build("ar", preset, context_length=512, seed=0)
    prompt = np.repeat(tokenizer.encode(PROMPT)[None], batch_size, 0)
    jit_compile = JIT_MODES[mode.replace("_persistent_cache", "")]
    values, outputs = {}, []
    for name in ("first", "second", "warm"):
        wall, cpu, tokens = first_call.timed(
            lambda: model.generate_tokens(
                prompt, new_tokens, temperature=1.0, top_k=40, seed=0,
                jit_compile=jit_compile,
            )
        )
        values[f"{name}_seconds"], values[f"{name}_cpu_seconds"] = wall, cpu
        outputs.append(tokens)
    same = all(np.array_equal(outputs[0], out) for out in outputs)
    values["tokens"] = outputs[0].tolist() if same else None
    values["load_average_1min"] = os.getloadavg()[0]
    first_call.report(values)


def first_call_rows(preset, new_tokens, batch_size, repeats):
    """First/second/warm seconds of every mode over fresh processes."""
    args = ["--child", preset, str(new_tokens), str(batch_size)]
    with tempfile.TemporaryDirectory() as cache:
        env = {"TF_XLA_FLAGS": f"--tf_xla_persistent_cache_directory={cache}"}
        first_call.run_child("ar_generation_speed", args + ["xla"], env)  # Fills the cache.
        modes = {mode: (args + [mode], None) for mode in JIT_MODES}
        modes["xla_persistent_cache"] = (args + ["xla_persistent_cache"], env)
        table = first_call.first_call_table("ar_generation_speed", modes, repeats)
    tokens = [run["tokens"] for row in table.values() for run in row["runs"]]
    rows = []
    for mode, row in table.items():
        rows.append({"preset": preset, "mode": mode, **{
            k: v for k, v in row.items() if k != "runs"
        }, "load_average_1min": [run["load_average_1min"] for run in row["runs"]]})
    return rows, tokens[0] is not None and all(t == tokens[0] for t in tokens)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per loop")
    parser.add_argument(
        "--presets", nargs="+", default=["transformer-small", "transformer-base"]
    )
    parser.add_argument(
        "--first-call-repeats", type=int, default=2,
        help="fresh processes per first-call mode (0: skip the first-call table)",
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        preset, new_tokens, batch_size, mode = args.child
        return child(preset, int(new_tokens), int(batch_size), mode)

    rows = [measure(p, args.new_tokens, args.batch_size, args.repeats) for p in args.presets]
    print(f"{args.new_tokens} new tokens, batch {args.batch_size}, seconds per generation")
    header = (
        "preset", "params", "cached", "cached graph", "full window", "full win xla",
        "prefix", "x full", "x prefix",
    )
    print("".join(f"{h:>14}" for h in header))
    for r in rows:
        print(
            f"{r['preset']:>14}{r['parameters']:>14,}{r['cached_seconds']:>14.3f}"
            f"{r['cached_graph_seconds']:>14.3f}{r['full_window_seconds']:>14.3f}"
            f"{r['full_window_xla_seconds']:>14.3f}{r['prefix_seconds']:>14.3f}"
            f"{r['speedup_vs_full_window']:>14.1f}{r['speedup_vs_prefix']:>14.1f}"
        )
    print("same tokens in all loops:", all(r["same_tokens"] for r in rows))
    first_rows, same = [], True
    if args.first_call_repeats:
        for preset in args.presets:
            preset_rows, preset_same = first_call_rows(
                preset, args.new_tokens, args.batch_size, args.first_call_repeats
            )
            first_rows += preset_rows
            same = same and preset_same
        print(
            f"first calls in fresh processes (best of {args.first_call_repeats}), "
            "seconds (process CPU seconds)"
        )
        print(f"{'preset':>18}{'mode':>22}{'first':>18}{'second':>18}{'warm':>18}")
        for r in first_rows:
            print(f"{r['preset']:>18}{r['mode']:>22}" + "".join(
                f"{r[f'{k}_seconds']:>10.2f} ({r[f'{k}_cpu_seconds']:5.2f})"
                for k in ("first", "second", "warm")
            ))
        print("same tokens in every mode and process:", same)
    result = {
        "new_tokens": args.new_tokens,
        "batch_size": args.batch_size,
        "prompt": PROMPT,
        "cpu_count": os.cpu_count(),
        "repeats": args.repeats,
        "rows": rows,
        "first_call": {
            "repeats": args.first_call_repeats,
            "statistic": "best of the fresh processes, modes interleaved",
            "same_tokens": same,
            "rows": first_rows,
        },
    }
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
