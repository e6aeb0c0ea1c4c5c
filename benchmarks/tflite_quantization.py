"""Quantised TF Lite files: size, latency per call, and quality from the file itself.

Run from the repository root on trained run directories (`keras-genmodels
train FAMILY --out RUN`, each family's default preset):

    python -m benchmarks.tflite_quantization --run vae=runs/vae --run gan=runs/gan \\
        --run ar=runs/ar --run flow=runs/flow --run diffusion=runs/diffusion
    python -m benchmarks.tflite_quantization --smoke   # tiny models, trained here

For each run it writes the model's TF Lite file three times
(`keras_genmodels.export.export_tflite` with `quantization=None`,
`"float16"` and `"dynamic_int8"`, batch size 1) and reports for each file:

- `bytes` and the ratio to the float file;
- `latency_ms`: the median time of one call of each signature (the family's
  main one first) in one `ai_edge_litert` interpreter with its default
  threads, on the model's `signature_examples`, after two untimed calls;
- `max_rel_diff_from_float`: `export.compare_quantized` on those examples;
- quality computed from that file alone, on the run's held-out split
  (`keras_genmodels.evaluation.exported_figures.evaluate_export`, the code
  behind `keras-genmodels evaluate --export FILE`):
  VAE and GAN digits: classifier-FID, precision and recall of images decoded
  from the same seeded latents by the file's `decode`/`generate`; flow: the
  same, plus bits/dim of the test images through the file's `log_prob` (bin
  centres, as `evaluate --export` gives it for a `.tflite` file); byte
  transformer: bits/char of the held-out text through `next_token_logits`
  (the first `--max-chars` bytes); diffusion: classifier-FID of images from
  the TF Lite sampling loop of `keras_genmodels.litert.diffusion` when that
  module exists, else the row says `pending`.

`--num-test N` evaluates on the first N test examples (default: the whole
split; the digit figures take at most 1,000). Prints a table and writes
`benchmarks/results/tflite_quantization[-smoke].json`.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from keras_genmodels import cli, data, export, model_card  # noqa: E402
from keras_genmodels.run_dir import RunDirectory  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results")
FAMILIES = ("vae", "gan", "ar", "flow", "diffusion")
#: The signature whose latency heads each family's row.
MAIN_SIGNATURE = {
    "vae": "decode", "gan": "generate", "ar": "next_token_logits", "flow": "decode",
    "diffusion": "solver_step",  # The few-step loop's; else `denoise_step`.
}
FALLBACK_SIGNATURE = {"diffusion": "denoise_step"}
#: `--smoke`: each family's default preset, shrunk, trained for a few steps
#: (kernels above TF Lite's 1,024-element quantisation threshold kept).
SMOKE = {
    "vae": ("conv", ["latent_dim=2"]),
    "gan": ("dcgan", ["latent_dim=4", "generator_filters=[16,8]",
                      "discriminator_filters=[4,8]"]),
    "ar": ("transformer-small", ["context_length=16", "d_model=32", "num_heads=2",
                                 "num_layers=1"]),
    "flow": ("mnist", ["num_coupling_layers=2", "hidden_units=[32]"]),
    "diffusion": ("unet-mnist", ["base_filters=16", "channel_multipliers=[1]",
                                 "attention_resolutions=[]", "timesteps=10",
                                 "sampling_steps=4"]),
}
QUANTIZATIONS = export.QUANTIZATIONS


def latency_ms(path, signature, inputs, min_calls=20, min_seconds=1.0):
    """Median milliseconds of one call of `signature` in one interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    from keras_genmodels._startup import quiet_native_logs

    with quiet_native_logs():
        runner = Interpreter(model_path=path).get_signature_runner(signature)
        details = runner.get_input_details()
        feed = {k: np.asarray(v).astype(details[k]["dtype"]) for k, v in inputs.items()}
        for _ in range(2):
            runner(**feed)
    times, start = [], time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < min_seconds:
        begin = time.perf_counter()
        runner(**feed)
        times.append(time.perf_counter() - begin)
    return round(1000.0 * float(np.median(times)), 3)


def _test_split(dataset, family, num_test, max_chars):
    test = data.load(dataset, "test")
    if family == "ar":
        return test.take(max_chars) if max_chars else test
    return test.take(num_test) if num_test else test


def _headline(family, figures):
    """The table's quality column: `(name, value)`."""
    if family == "ar":
        return "bits/char", figures.get("bits_per_char")
    fid = (figures.get("classifier_fid") or {}).get("fid")
    return "classifier-FID", fid


def diffusion_figures(path, test, seed=0):
    """Classifier-FID of the diffusion TF Lite file's sampling loop, or why not.

    Runs `keras_genmodels.litert.diffusion.diffusion_sample(path, noise)`
    (the file's `solver_step` loop, numpy and `ai_edge_litert` only) from
    standard normal start noise, one image per test image (at most 1,000).

    Returns:
        `(figures, None)` or `(None, reason)`; the figures also hold
        `calls_per_image` and `seconds_per_image` of the loop.
    """
    try:
        from keras_genmodels.litert import diffusion as litert_diffusion
    except ImportError:
        return None, (
            "pending: keras_genmodels.litert.diffusion (the TF Lite sampling loop) "
            "is not in this checkout"
        )
    from keras_genmodels.evaluation import classifier_fid

    reference = np.stack([np.asarray(x[0] if isinstance(x, tuple) else x)
                          for x in test.take(1000)])
    if reference.shape[1:] != classifier_fid.IMAGE_SHAPE:
        return None, f"images of shape {reference.shape[1:]} are not 28x28 digits"
    noise = np.random.default_rng(seed).standard_normal(reference.shape).astype("float32")
    start = time.perf_counter()
    try:  # The loop and its signature are another module's: report, not crash.
        images, calls = litert_diffusion.diffusion_sample(path, noise)
    except Exception as error:
        return None, f"pending: diffusion_sample failed: {type(error).__name__}: {error}"
    seconds = time.perf_counter() - start
    return {
        "classifier_fid": classifier_fid.digit_scores(images, reference),
        "calls_per_image": calls / len(noise),
        "seconds_per_image": round(seconds / len(noise), 4),
    }, None


def quality(family, path, test, dataset):
    """`(figures, note)` of one file, computed from the file alone."""
    from keras_genmodels.evaluation.exported_figures import evaluate_export

    if family == "diffusion":
        return diffusion_figures(path, test)
    report = evaluate_export(path, dataset, test=test)
    figures = {k: v for k, v in report["figures"].items() if k != "evaluation_seconds"}
    return figures, "; ".join(report["notes"]) or None


def measure(family, run, folder, num_test, max_chars):
    """The rows (one per quantisation) of one run directory."""
    run_dir = RunDirectory(run)
    info, model = run_dir.load_model()
    dataset = run_dir.read_metrics().get("dataset") or info.get("dataset")
    test = _test_split(dataset, family, num_test, max_chars)
    examples = model.signature_examples(batch_size=1)
    rows, float_path = [], None
    for quantization in QUANTIZATIONS:
        name = f"{family}.{quantization or 'float32'}.tflite"
        path = export.export_tflite(model, os.path.join(folder, name), quantization=quantization)
        float_path = float_path or path
        signatures = export.tflite_signatures(path)
        main = MAIN_SIGNATURE[family]
        if main not in signatures:
            main = FALLBACK_SIGNATURE.get(family, signatures[0])
        order = [main] + [s for s in signatures if s != main]
        start = time.perf_counter()
        figures, note = quality(family, path, test, dataset)
        row = {
            "family": family,
            "preset": info.get("preset"),
            "run": os.path.abspath(run),
            "dataset": dataset,
            "quantization": quantization or "float32",
            "bytes": os.path.getsize(path),
            "size_ratio": round(os.path.getsize(path) / os.path.getsize(float_path), 3),
            "main_signature": order[0],
            "latency_ms": {s: latency_ms(path, s, examples[s]) for s in order},
            "max_rel_diff_from_float": (
                export.compare_quantized(path, float_path, examples, float("inf"))
                if quantization else None
            ),
            "figures": figures,
            "quality_seconds": round(time.perf_counter() - start, 1),
        }
        if note:
            row["note"] = note
        rows.append(row)
        print(_format_row(row), flush=True)
    return rows


def _format_row(row):
    name, value = _headline(row["family"], row["figures"] or {})
    if row["figures"] is None:
        figure = row.get("note", "n/a")
    elif value is None:
        figure = "n/a"
    else:
        figure = f"{name} {value:.5g}"
        bpd = row["figures"].get("bits_per_dim_bin_centres", row["figures"].get("bits_per_dim"))
        if bpd is not None:
            figure += f", bits/dim {bpd:.4g}"
    latency = row["latency_ms"][row["main_signature"]]
    diff = row["max_rel_diff_from_float"]
    diff = "" if diff is None else format(max(diff.values(), default=0.0), ".2g")
    return (
        f"{row['family']:<10}{row['preset'] or '':<18}{row['quantization']:<14}"
        f"{row['bytes']:>12,}{row['size_ratio']:>7.3f}  "
        f"{row['main_signature'] + ' ' + format(latency, '.3f') + ' ms':<32}"
        f"{diff:>9}  {figure}"
    )


def smoke_runs(folder, steps, families=FAMILIES):
    """Trains each family's shrunk default preset for `steps` steps (`SMOKE`)."""
    runs = {}
    for family in families:
        preset, overrides = SMOKE[family]
        run = os.path.join(folder, "runs", family)
        argv = ["train", family, "--preset", preset, "--steps", str(steps), "--out", run]
        if family != "ar":
            argv += ["--dataset", "mnist-5k"]
        for override in overrides:
            argv += ["--set", override]
        if cli.main(argv) != 0:
            raise SystemExit(f"keras-genmodels {' '.join(argv)} failed")
        runs[family] = run
    return runs


def _parse_run(text):
    family, sep, path = text.partition("=")
    if not sep or family not in FAMILIES:
        raise argparse.ArgumentTypeError(
            f"expected FAMILY=RUN_DIR with FAMILY one of {', '.join(FAMILIES)}. "
            f"Received: {text!r}"
        )
    return family, path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", action="append", default=[], type=_parse_run,
                        metavar="FAMILY=RUN_DIR", help="a trained run directory (repeat)")
    parser.add_argument("--smoke", action="store_true",
                        help="train tiny default-preset models here and measure them")
    parser.add_argument("--smoke-steps", type=int, default=20)
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES),
                        help="with --smoke: the families to train (default: all)")
    parser.add_argument("--num-test", type=int, default=None,
                        help="first N test examples (default: all; --smoke: 200)")
    parser.add_argument("--max-chars", type=int, default=20_000,
                        help="held-out bytes scored for the LM's bits/char (0: all)")
    parser.add_argument("--out", help="JSON path (default benchmarks/results/...)")
    args = parser.parse_args(argv)
    if not args.run and not args.smoke:
        parser.error("give --run FAMILY=RUN_DIR (repeatable) or --smoke")
    folder = tempfile.mkdtemp(prefix="tflite_quantization_")
    try:
        runs = dict(args.run)
        num_test, max_chars = args.num_test, args.max_chars
        if args.smoke:
            runs = {**smoke_runs(folder, args.smoke_steps, args.families), **runs}
            num_test = num_test or 200
            max_chars = min(max_chars or 2_000, 2_000)
        print(f"{'family':<10}{'preset':<18}{'quantization':<14}{'bytes':>12}{'ratio':>7}  "
              f"{'latency per call':<32}{'rel diff':>9}  quality (from the file)", flush=True)
        rows = []
        for family, run in runs.items():
            rows += measure(family, run, folder, num_test, max_chars)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    out = args.out or os.path.join(
        RESULTS, f"tflite_quantization{'-smoke' if args.smoke else ''}.json"
    )
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    result = {
        "command": "python -m benchmarks.tflite_quantization "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "num_test": num_test, "max_chars": max_chars, "rows": rows,
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(model_card.json_safe(result), f, indent=2)
    print(f"Wrote {out}")
    return result


if __name__ == "__main__":
    main()
