"""Cached vs uncached generation speed of the byte transformer.

Run from the repository root:

    python -m benchmarks.ar_generation_speed [--new-tokens 256] [--presets ...]

For each preset (built with a 512-byte context so that the prompt and 256 new
tokens fit without the cache's window refill) these loops, each one compiled
function, generate the same tokens from the same weights (checked):

- `cached`: `TransformerLM.generate_tokens`, a key/value cache filled from the
  prompt, one position per new token, the token loop XLA-compiled (the
  library's default);
- `cached_graph`: the same loop as a plain `tf.function` graph (no XLA), as
  the exported SavedModel `generate` signature runs it;
- `full_window`: every new token re-runs the model over the whole
  `context_length` window (as a static-shape runtime such as the TF Lite
  `next_token_logits` signature does), loop and model in a `tf.function`
  graph (TensorFlow's oneDNN kernels);
- `full_window_xla`: the same, with the window's forward pass XLA-compiled;
- `prefix`: every new token re-runs the model over the tokens so far
  (`generate_tokens(use_cache=False)`, a graph; its shapes change every
  step, so it is not XLA-compiled).

Every loop is run once untimed (tracing and XLA compilation), then the
loops take turns for `--repeats` rounds; each one's best time counts. The
speedups divide the faster of the two full-window baselines (and the prefix
loop) by `cached`.

Prints a table and writes `benchmarks/results/ar_generation_speed.json`.
"""

import argparse
import json
import os

import numpy as np
import tensorflow as tf

import keras_genmodels
from benchmarks import best_times
from keras_genmodels.autoregressive import sampling, tokenizer

RESULTS = os.path.join(os.path.dirname(__file__), "results", "ar_generation_speed.json")
PROMPT = "def generate(self, prompt):\n"


def full_window_generate(model, jit_compile=False):
    """A compiled loop that runs the whole static window for every token."""
    size = model.context_length
    forward = tf.function(model.__call__, jit_compile=True) if jit_compile else model

    @tf.function
    def generate(prompt, max_new_tokens, temperature, top_k, top_p, seed):
        batch, length = tf.shape(prompt)[0], tf.shape(prompt)[1]
        window = tf.pad(prompt, [[0, 0], [0, size - length]])
        uniform = tf.random.stateless_uniform(
            tf.stack([max_new_tokens, batch, model.vocab_size]), seed=seed
        )

        def body(i, window, length, output):
            logits = forward(window)  # (batch, size, vocab): the whole window.
            pick = tf.one_hot(length - 1, size)[None, :, None]
            logits = tf.reduce_sum(logits * pick, axis=1)
            token = sampling.sample_next(logits, uniform[i], temperature, top_k, top_p)
            slot = tf.one_hot(length, size, dtype=tf.int32)[None]
            window = window * (1 - slot) + token[:, None] * slot
            return i + 1, window, length + 1, output.write(i, token)

        output = tf.TensorArray(tf.int32, size=max_new_tokens)
        *_, output = tf.while_loop(
            lambda i, *_: i < max_new_tokens, body, (tf.constant(0), window, length, output)
        )
        return tf.transpose(output.stack(), [1, 0])

    def run(prompt_tokens, max_new_tokens, temperature, top_k, seed):
        return generate(
            tf.constant(prompt_tokens, tf.int32), tf.constant(max_new_tokens),
            tf.constant(temperature), tf.constant(top_k), tf.constant(1.0),
            model.resolve_seed(seed),
        ).numpy()

    return run


def measure(preset, new_tokens, batch_size, repeats):
    model = keras_genmodels.build("ar", preset, context_length=512, seed=0)
    prompt = np.repeat(tokenizer.encode(PROMPT)[None], batch_size, 0)
    kwargs = {"temperature": 1.0, "top_k": 40, "seed": 0}
    full = full_window_generate(model)
    full_xla = full_window_generate(model, jit_compile=True)
    loops = {
        "cached": lambda n: model.generate_tokens(prompt, n or new_tokens, **kwargs),
        "cached_graph": lambda n: model.generate_tokens(
            prompt, n or new_tokens, jit_compile=False, **kwargs
        ),
        "full_window": lambda n: full(prompt, n or new_tokens, **kwargs),
        "full_window_xla": lambda n: full_xla(prompt, n or new_tokens, **kwargs),
        "prefix": lambda n: model.generate_tokens(
            prompt, n or new_tokens, use_cache=False, **kwargs
        ),
    }
    row = {"preset": preset, "parameters": int(model.count_params()), "context_length": 512}
    # The loop length is a tensor: one trace serves every call.
    seconds, outputs = best_times(
        {name: (lambda fn=fn: fn(None), None) for name, fn in loops.items()}, repeats
    )
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per loop")
    parser.add_argument(
        "--presets", nargs="+", default=["transformer-small", "transformer-base"]
    )
    args = parser.parse_args()

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
    result = {
        "new_tokens": args.new_tokens,
        "batch_size": args.batch_size,
        "prompt": PROMPT,
        "cpu_count": os.cpu_count(),
        "repeats": args.repeats,
        "rows": rows,
    }
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
