"""Speed, size and (with --quality) quality of every family, in one process.

```
python -m benchmarks.run [--quick] [--families vae gan ...] [--quality]
```

For each family and preset it measures: parameters; training step time
after warm-up and throughput (examples/s); floating-point operations per
training step, counted from the traced `train_step` graph by TensorFlow's
profiler, and the achieved FLOP/s as a fraction of a dense float32 matmul's
FLOP/s measured in the same run (the machine's practical peak); sampling
throughput (samples/s, and characters/s for text); the latency of each
SavedModel and TF Lite signature per call; and the process's peak resident
memory after the preset (a high-water mark, so it only grows).

`--quality` trains each family's default preset on its default data set
through the command (`keras-genmodels train`) for the preset's default
length, or `--quality-steps` optimizer steps, and reports every evaluation
figure with the wall time.

It prints a table and writes `benchmarks/results/run[-quick][-quality].json`.
"""

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import best_times  # noqa: E402
from keras_genmodels import data, export, presets  # noqa: E402

RESULTS_DIR = os.path.join(os.path.dirname(__file__), "results")
# Presets that fit a 2-core CPU in --quick mode; the full run takes every one.
QUICK_PRESETS = {
    "vae": ["reference", "conv"],
    "gan": ["reference", "dcgan", "mlp2d"],
    "ar": ["reference", "transformer-small"],
    "flow": ["reference", "mlp2d", "mnist"],
    "diffusion": ["mlp2d", "unet-mnist"],
}


def _median_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def matmul_peak_flops(size=2048, repeats=10):
    """Best measured FLOP/s of a dense float32 `size x size` matmul."""
    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    matmul = tf.function(lambda: tf.reduce_sum(tf.linalg.matmul(a, b)))
    # The fastest of the repeats: the practical peak, least disturbed by
    # other work on the machine.
    seconds, _ = best_times({"matmul": (lambda: matmul().numpy(), None)}, repeats)
    seconds = seconds["matmul"]
    return 2 * size**3 / seconds


def train_step_flops(model, batch):
    """Floating-point operations of one traced `train_step` on `batch`."""
    spec = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), batch)
    graph = tf.function(model.train_step).get_concrete_function(spec).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph, options=options)
    return int(profile.total_float_ops)


def _one_batch(model, dataset_name, batch_size):
    train = data.load(dataset_name, "train", with_labels=model.uses_labels)
    batches = model.prepare_dataset(train, batch_size, drop_remainder=True)
    return next(iter(batches))


def _build(family, preset_name, overrides=None):
    _, spec = presets.get_preset(family, preset_name)
    overrides = dict(overrides or {})
    if spec.adapts_to_data_shape:
        shape = data.load(spec.dataset, "train").element_spec.shape
        overrides.setdefault("data_shape", tuple(shape))
    return spec, presets.build(family, preset_name, seed=0, **overrides)


def _sample_units(model, samples):
    if model.data_kind == "text":
        return len(samples), sum(len(s) for s in samples)
    return len(samples), None


def _signature_latency(model, repeats):
    """Median seconds per call of every SavedModel and TF Lite signature."""
    saved, lite = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        path = export.export_savedmodel(model, tmp, name="bench")
        loaded = tf.saved_model.load(path)
        for name, arguments in model.signature_examples().items():
            fn = loaded.signatures[name]
            tensors = {k: tf.constant(v) for k, v in arguments.items()}
            fn(**tensors)
            saved[name] = _median_seconds(lambda fn=fn, t=tensors: fn(**t), repeats)
        lite_path = export.export_tflite(model, os.path.join(tmp, "bench.tflite"))
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=lite_path)
        examples = model.signature_examples(batch_size=1)
        for name in interpreter.get_signature_list():
            runner = interpreter.get_signature_runner(name)
            details = runner.get_input_details()
            inputs = {
                k: np.asarray(v).astype(details[k]["dtype"])
                for k, v in examples[name].items()
            }
            runner(**inputs)
            lite[name] = _median_seconds(lambda r=runner, i=inputs: r(**i), repeats)
    return saved, lite


def bench_preset(family, preset_name, peak_flops, quick):
    phase_start = time.perf_counter()
    phases = {}

    def phase(name):
        nonlocal phase_start
        now = time.perf_counter()
        phases[name] = round(now - phase_start, 2)
        phase_start = now

    spec, model = _build(family, preset_name)
    batch_size = spec.batch_size
    batch = _one_batch(model, spec.dataset, batch_size)
    steps = 5 if quick else 20
    repeated = tf.data.Dataset.from_tensors(batch).repeat(steps)
    warm_up = tf.data.Dataset.from_tensors(batch).repeat(2)
    model.fit(warm_up, epochs=1, verbose=0, shuffle=False)
    start = time.perf_counter()
    model.fit(repeated, epochs=1, verbose=0, shuffle=False)
    step_seconds = (time.perf_counter() - start) / steps
    phase("train")
    flops = train_step_flops(model, batch)
    phase("flops")
    num_samples = 16 if quick else 64
    model.sample(num_samples, seed=0)  # Warm-up (traces and compiles).
    start = time.perf_counter()
    samples = model.sample(num_samples, seed=1)
    sample_seconds = time.perf_counter() - start
    count, characters = _sample_units(model, samples)
    phase("sample")
    saved, lite = _signature_latency(model, repeats=3 if quick else 10)
    phase("export")
    row = {
        "family": family,
        "preset": preset_name,
        "dataset": spec.dataset,
        "parameters": int(model.count_params()),
        "batch_size": batch_size,
        "train_step_seconds": step_seconds,
        "train_examples_per_second": batch_size / step_seconds,
        "train_step_flops": flops,
        "achieved_flops_per_second": flops / step_seconds,
        "fraction_of_matmul_peak": flops / step_seconds / peak_flops,
        "samples_per_second": count / sample_seconds,
        "characters_per_second": None if characters is None else characters / sample_seconds,
        "savedmodel_latency_seconds": saved,
        "tflite_latency_seconds": lite,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "benchmark_seconds": phases,
    }
    return row


def quality_run(family, steps=None):
    """Trains the family's default preset with the command's routine; returns metrics."""
    from keras_genmodels import training

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        metrics = training.train(family, os.path.join(tmp, family), steps=steps)
        metrics["wall_seconds"] = round(time.perf_counter() - start, 1)
    return metrics


def _format(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


COLUMNS = [
    ("family", "family"),
    ("preset", "preset"),
    ("params", "parameters"),
    ("step ms", "train_step_seconds"),
    ("ex/s", "train_examples_per_second"),
    ("GFLOP/step", "train_step_flops"),
    ("% peak", "fraction_of_matmul_peak"),
    ("samples/s", "samples_per_second"),
    ("SavedModel ms", "savedmodel_latency_seconds"),
    ("TF Lite ms", "tflite_latency_seconds"),
    ("RSS MiB", "peak_rss_mib"),
]


def table_cells(rows):
    """The table's header and rows as strings, in display units."""
    table = []
    for row in rows:
        cells = []
        for _, key in COLUMNS:
            value = row.get(key)
            if key == "train_step_seconds":
                value = value * 1e3
            elif key == "train_step_flops":
                value = value / 1e9
            elif key == "fraction_of_matmul_peak":
                value = 100 * value
            elif isinstance(value, dict):
                value = " ".join(f"{k}={v * 1e3:.3g}" for k, v in value.items())
            cells.append(_format(value))
        table.append(cells)
    return [header for header, _ in COLUMNS], table


def print_table(rows, peak_flops):
    print(f"\nDense float32 matmul peak: {peak_flops / 1e9:.1f} GFLOP/s\n")
    headers, table = table_cells(rows)
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    for cells in table:
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths)))


def markdown_table(rows):
    """The same table in Markdown, for the README."""
    headers, table = table_cells(rows)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CPU-sized presets, fewer steps")
    parser.add_argument("--families", nargs="+", default=list(presets.FAMILY_MODULES))
    parser.add_argument("--quality", action="store_true", help="also train default presets")
    parser.add_argument("--quality-steps", type=int, help="optimizer steps per quality run")
    parser.add_argument("--out", help="JSON path (default benchmarks/results/run*.json)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    peak = matmul_peak_flops()
    rows = []
    for family in args.families:
        names = QUICK_PRESETS[family] if args.quick else list(presets.list_presets(family))
        for name in names:
            print(f"[{time.perf_counter() - start:6.0f}s] {family}/{name}", flush=True)
            rows.append(bench_preset(family, name, peak, args.quick))
    print_table(rows, peak)
    result = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "tensorflow": tf.__version__,
            "python": sys.version.split()[0],
        },
        "command": "python -m benchmarks.run " + " ".join(argv or sys.argv[1:]),
        "matmul_peak_flops_per_second": peak,
        "speed": rows,
    }
    if args.quality:
        result["quality"] = {}
        for family in args.families:
            print(f"[{time.perf_counter() - start:6.0f}s] quality {family}", flush=True)
            result["quality"][family] = quality_run(family, args.quality_steps)
    result["seconds"] = round(time.perf_counter() - start, 1)
    suffix = ("-quick" if args.quick else "") + ("-quality" if args.quality else "")
    out = args.out or os.path.join(RESULTS_DIR, f"run{suffix}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    with open(os.path.splitext(out)[0] + ".md", "w") as f:
        f.write(markdown_table(rows))
    print(f"\nWrote {out} and its Markdown table ({result['seconds']} s)")
    return result


if __name__ == "__main__":
    main()
