"""Compresses the `pydoc` test split with a trained `TransformerLM` and with `xz -9e`.

Run from the repository root, after training and saving a model:

    python -m benchmarks.ar_pydoc_bpc --minutes 15 --clock cpu \\
        --mixed-precision mixed_bfloat16 --save runs/pydoc_lm.keras
    python -m benchmarks.ar_pydoc_compress --model runs/pydoc_lm.keras

The model codes the test split with an arithmetic coder
(`keras_genmodels.autoregressive.compression`): statically (its trained
weights) and with dynamic evaluation (one SGD step after each segment, as
`TransformerLM.dynamic_bits_per_char` scores it). Each code is decoded back
and compared with the text, so the sizes are of working compressed files,
not sums of log-probabilities. `xz -9e`'s figure is the bytes it adds to
code the test split after the train split. Prints a table and writes
`benchmarks/results/ar_pydoc_compress.json`.
"""

import argparse
import json
import math
import os
import time

import keras

from benchmarks import command_line
from keras_genmodels import data
from keras_genmodels.autoregressive import compression, dynamic_evaluation, windows
from keras_genmodels.evaluation import xz_baseline

RESULTS = os.path.join(os.path.dirname(__file__), "results", "ar_pydoc_compress.json")


def _coded(model, tokens, learning_rate):
    """Compresses, decompresses and checks; returns the row of the table."""
    start = time.time()
    code = compression.compress(model, tokens, learning_rate)
    encode_seconds = time.time() - start
    start = time.time()
    decoded = compression.decompress(model, code, learning_rate)
    decode_seconds = time.time() - start
    nats = dynamic_evaluation.dynamic_nll(model, tokens, learning_rate)
    return {
        "learning_rate": learning_rate,
        "compressed_bytes": len(code),
        "bits_per_char": 8 * len(code) / len(tokens),
        "model_bits_per_char": float(nats.mean() / math.log(2)),
        "round_trip_exact": bool((decoded == tokens).all()),
        "encode_seconds": round(encode_seconds, 1),
        "decode_seconds": round(decode_seconds, 1),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a saved TransformerLM .keras")
    parser.add_argument(
        "--learning-rate", type=float,
        default=dynamic_evaluation.DEFAULT_LEARNING_RATE,
        help="step size of dynamic evaluation",
    )
    args = parser.parse_args()

    model = keras.saving.load_model(args.model)
    tokens = windows.stream_array(data.load("pydoc", "test"), "int32")
    # The conditional rate is a whole number of bytes spread over the test split.
    xz_bytes = round(xz_baseline.dataset_rate("pydoc") * len(tokens) / 8)
    rows = {
        "static": _coded(model, tokens, 0.0),
        "dynamic": _coded(model, tokens, args.learning_rate),
    }
    result = {
        "command": command_line("ar_pydoc_compress", args),
        "model": args.model,
        "parameters": int(model.count_params()),
        "test_bytes": int(len(tokens)),
        "xz_9e_conditional_bytes": int(xz_bytes),
        "xz_9e_conditional_bits_per_char": 8 * xz_bytes / len(tokens),
        **rows,
        "dynamic_smaller_than_xz": rows["dynamic"]["compressed_bytes"] < xz_bytes,
        "static_smaller_than_xz": rows["static"]["compressed_bytes"] < xz_bytes,
    }
    print(f"{'coder':<34}{'bytes':>10}{'bits/char':>11}{'model bpc':>11}"
          f"{'exact':>7}{'enc s':>8}{'dec s':>8}")
    print(f"{'xz -9e (test after train)':<34}{xz_bytes:>10}"
          f"{result['xz_9e_conditional_bits_per_char']:>11.4f}")
    for name, row in rows.items():
        label = f"model, {name} (learning rate {row['learning_rate']:g})"
        print(f"{label:<34}{row['compressed_bytes']:>10}{row['bits_per_char']:>11.4f}"
              f"{row['model_bits_per_char']:>11.4f}{str(row['round_trip_exact']):>7}"
              f"{row['encode_seconds']:>8.1f}{row['decode_seconds']:>8.1f}")
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
