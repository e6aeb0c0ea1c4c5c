"""TF Lite generation speed: the KV-cached `decode` loop vs `next_token_logits`.

Run from the repository root:

    python -m benchmarks.ar_tflite_decode [--presets transformer-small] [--new-tokens 100]

For each preset (its own context length; untrained weights, which cost the
same per call as trained ones) the model is exported to one `.tflite` file
(`keras_genmodels.export.export_tflite`, batch 1) and greedy bytes are
generated after a 28-byte prompt in `ai_edge_litert`, two ways:

- `kv_cache`: `keras_genmodels.litert.text.generate_tokens`: one `prefill`
  of the prompt, then one `decode` call (one position through the cache)
  per new byte;
- `next_token_logits`: the loop of docs/ar.md before the cache: the window
  (prompt left-aligned, zero-padded to `context_length`) re-run for every
  new byte.

The table also gives the `prefill` call alone and, from the two, the time
of one `decode` call. `--new-tokens` defaults to fill the window exactly
(context minus the prompt), so neither loop slides or refills and both
must give the same bytes (checked). Each loop runs once untimed, then the two take turns for
`--repeats` rounds in one process (`benchmarks.best_times`); the best time
divided by the new bytes is the figure, and the ratio of the two is the
speed-up (the issue's target: at least 5x at context 128); the prefill is
part of the cached loop's time. The ratio of one `next_token_logits` call
to one `decode` call is the speed-up of a long generation, where the
prefill's share vanishes (`decode_call_speedup` in the JSON).

Prints a table and writes `benchmarks/results/ar_tflite_decode.json`.
"""

import argparse
import json
import os
import tempfile

import numpy as np

import keras_genmodels
from benchmarks import best_times, command_line, merged_rows
from keras_genmodels import export
from keras_genmodels.autoregressive import tokenizer
from keras_genmodels.litert import text as litert_text

RESULTS = os.path.join(os.path.dirname(__file__), "results", "ar_tflite_decode.json")
PROMPT = "def generate(self, prompt):\n"


def window_loop(runner, context_length, prompt, new_tokens):
    """Greedy bytes from `next_token_logits`, the whole window per byte."""
    window = np.zeros((1, context_length), np.int32)
    window[0, : len(prompt)] = prompt
    length = len(prompt)
    new = []
    for _ in range(new_tokens):
        logits = runner(tokens=window, length=np.array([length], np.int32))["logits"]
        token = int(np.argmax(logits[0]))
        new.append(token)
        if length < context_length:
            window[0, length] = token
            length += 1
        else:
            window = np.concatenate([window[:, 1:], [[token]]], axis=1).astype(np.int32)
    return np.array(new, np.int32)


def measure(preset, new_tokens, repeats, threads):
    model = keras_genmodels.build("ar", preset, seed=0)
    context = model.context_length
    prompt = tokenizer.encode(PROMPT)
    new_tokens = new_tokens or context - len(prompt)
    with tempfile.TemporaryDirectory() as tmp:
        path = export.export_tflite(model, os.path.join(tmp, "lm.tflite"))
        size = os.path.getsize(path)
        cached = litert_text.CachedTextModel(path, num_threads=threads)
        window_runner = cached._interpreter.get_signature_runner("next_token_logits")
        loops = {
            "prefill": (lambda: cached.prefill(prompt), None),
            "kv_cache": (
                lambda: litert_text.generate_tokens(cached, prompt, new_tokens, temperature=0.0),
                None,
            ),
            "next_token_logits": (
                lambda: window_loop(window_runner, context, prompt, new_tokens),
                None,
            ),
        }
        seconds, outputs = best_times(loops, repeats)
    per_byte = {name: 1000.0 * s / new_tokens for name, s in seconds.items()}
    decode_ms = 1000.0 * (seconds["kv_cache"] - seconds["prefill"]) / max(new_tokens - 1, 1)
    return {
        "preset": preset,
        "threads": threads,
        "parameters": int(model.count_params()),
        "context_length": context,
        "prompt_bytes": len(prompt),
        "new_tokens": new_tokens,
        "tflite_bytes": size,
        "prefill_ms": round(1000.0 * seconds["prefill"], 3),
        "decode_ms_per_call": round(decode_ms, 3),
        "kv_cache_ms_per_byte": round(per_byte["kv_cache"], 3),
        "next_token_logits_ms_per_byte": round(per_byte["next_token_logits"], 3),
        "speedup": round(per_byte["next_token_logits"] / per_byte["kv_cache"], 1),
        "decode_call_speedup": round(per_byte["next_token_logits"] / decode_ms, 1),
        "same_tokens": bool(np.array_equal(outputs["kv_cache"], outputs["next_token_logits"])),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["transformer-small"])
    parser.add_argument(
        "--new-tokens", type=int, default=None,
        help="bytes per generation (default: fill the window after the prompt)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per loop")
    parser.add_argument(
        "--threads", type=int, default=None, help="interpreter threads (default: LiteRT's)"
    )
    args = parser.parse_args()

    rows = [measure(p, args.new_tokens, args.repeats, args.threads) for p in args.presets]
    for row in rows:
        row["command"] = command_line("ar_tflite_decode", args)
    print("greedy bytes after a 28-byte prompt, batch 1, ai_edge_litert; ms per new byte")
    header = (
        "preset", "params", "context", "new bytes", "prefill", "decode call", "kv cache",
        "full window", "speed-up",
    )
    print(f"{header[0]:>18}" + "".join(f"{h:>12}" for h in header[1:]))
    for r in rows:
        print(
            f"{r['preset']:>18}{r['parameters']:>12,}{r['context_length']:>12}"
            f"{r['new_tokens']:>12}{r['prefill_ms']:>12.3f}{r['decode_ms_per_call']:>12.3f}"
            f"{r['kv_cache_ms_per_byte']:>12.3f}"
            f"{r['next_token_logits_ms_per_byte']:>12.3f}{r['speedup']:>11.1f}x"
        )
    print("same bytes in both loops:", all(r["same_tokens"] for r in rows))
    result = {
        "prompt": PROMPT,
        "cpu_count": os.cpu_count(),
        "rows": merged_rows(RESULTS, rows, ("preset", "threads")),
    }
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
