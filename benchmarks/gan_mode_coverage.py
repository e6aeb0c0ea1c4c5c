"""GAN mode coverage on the 2-D mixtures (`grid25`, `ring8`).

Trains the `mlp2d` preset on each data set for the preset's default length
(as the command does: `train_steps` rounded up to whole epochs), then applies
the VEEGAN/PacGAN protocol to 2,500 samples of the final model (no checkpoint
picking): modes covered, the share of high-quality samples (within 3 sigma of
their nearest centre) and the KL divergence from the mode histogram to the
uniform one. Every `--trace-every` epochs it also prints the same figures, so
the course of training is visible. A scatter of the samples over the test
data is saved for each set.

Run from the repository root:

    python -m benchmarks.gan_mode_coverage
    python -m benchmarks.gan_mode_coverage --datasets ring8 --steps 5000

Writes `benchmarks/results/gan_mode_coverage.json` and
`benchmarks/results/gan_mode_coverage_<set>.png`.
"""

import argparse
import json
import os
import re
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_genmodels  # noqa: E402
from benchmarks import command_line  # noqa: E402
from keras_genmodels import data, plotting, presets, training  # noqa: E402
from keras_genmodels.evaluation import mode_coverage, registry  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results")
NAME = "gan_mode_coverage"
TIME_LIMIT_S = 600
TARGETS = {"grid25": (24, 0.8), "ring8": (8, 0.8)}


class CoverageTrace(keras.callbacks.Callback):
    """Records the mode-coverage figures every `every` epochs."""

    def __init__(self, dataset, every):
        super().__init__()
        self.dataset, self.every, self.rows = dataset, every, []
        self.start = time.perf_counter()
        self.excluded = 0.0  # Seconds spent here, not training.

    def on_epoch_end(self, epoch, logs=None):
        if not self.every or (epoch + 1) % self.every:
            return
        tick = time.perf_counter()
        figures = mode_coverage.evaluate_toy2d(self.model.sample(2_500, seed=0), self.dataset)
        row = {
            "epoch": epoch + 1,
            "step": int(self.model.g_optimizer.iterations),
            "train_seconds": round(tick - self.start - self.excluded, 1),
            "modes_covered": figures["modes_covered"],
            "high_quality_fraction": figures["high_quality_fraction"],
        }
        self.rows.append(row)
        print(
            f"  {self.dataset} epoch {row['epoch']:4d} step {row['step']:6d} "
            f"{row['train_seconds']:7.1f}s modes {row['modes_covered']:2d} "
            f"high quality {row['high_quality_fraction']:.3f}",
            flush=True,
        )
        self.excluded += time.perf_counter() - tick


def run(dataset, preset_name, steps, batch_size, seed, trace_every):
    _, spec = presets.get_preset("gan", preset_name)
    batch_size = batch_size or spec.batch_size
    keras.utils.set_random_seed(seed)
    model = keras_genmodels.build("gan", preset_name, data_shape=(2,), seed=seed)
    train = data.load(dataset, "train")
    epochs = training.epochs_for_steps(
        steps or spec.train_steps, int(train.cardinality()), batch_size
    )
    trace = CoverageTrace(dataset, trace_every)
    start = time.perf_counter()
    model.fit(model.prepare_dataset(train, batch_size), epochs=epochs, verbose=0,
              callbacks=[trace])
    seconds = time.perf_counter() - start - trace.excluded
    test = data.load(dataset, "test")
    metrics = model.evaluation_metrics(test, seed=seed)
    metrics.update(registry.toy_figures(model, test, dataset, num_samples=2_500, seed=seed))
    samples = model.sample(2_500, seed=seed)
    reference = np.stack(list(test.take(2_500).as_numpy_iterator()))
    picture = os.path.join(RESULTS, f"{NAME}_{re.sub(r'[^A-Za-z0-9]+', '_', dataset)}.png")
    plotting.scatter(samples, reference).save(picture)
    base = dataset.split(":")[0]
    modes_needed, quality_needed = TARGETS.get(base, (None, None))
    return {
        "dataset": dataset,
        "preset": preset_name,
        "parameters": int(model.count_params()),
        "batch_size": batch_size,
        "epochs": epochs,
        "steps": int(model.g_optimizer.iterations),
        "train_seconds": round(seconds, 1),
        **metrics,
        "target_met": (
            None if modes_needed is None else bool(
                metrics["modes_covered"] >= modes_needed
                and metrics["high_quality_fraction"] >= quality_needed
                and seconds <= TIME_LIMIT_S
            )
        ),
        "trace": trace.rows,
        "samples_png": os.path.relpath(picture),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["grid25", "ring8"])
    parser.add_argument("--preset", default="mlp2d")
    parser.add_argument("--steps", type=int, help="default: the preset's train_steps")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trace-every", type=int, default=10, help="epochs; 0 turns it off")
    args = parser.parse_args()
    os.makedirs(RESULTS, exist_ok=True)
    rows = [
        run(d, args.preset, args.steps, args.batch_size, args.seed, args.trace_every)
        for d in args.datasets
    ]
    header = (
        f"{'dataset':<10}{'preset':<8}{'params':>8}{'steps':>7}{'train s':>9}"
        f"{'modes':>8}{'high q.':>9}{'KL(U)':>8}{'log p(x~G)':>12}{'target':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        kl = "-" if r["kl_to_uniform"] is None else f"{r['kl_to_uniform']:.3f}"
        print(
            f"{r['dataset']:<10}{r['preset']:<8}{r['parameters']:>8}{r['steps']:>7}"
            f"{r['train_seconds']:>9.1f}{r['modes_covered']:>5}/{r['num_modes']:<2}"
            f"{r['high_quality_fraction']:>9.3f}{kl:>8}{r['sample_log_likelihood']:>12.2f}"
            f"{'met' if r['target_met'] else 'missed':>8}"
        )
    with open(os.path.join(RESULTS, f"{NAME}.json"), "w") as f:
        json.dump(
            {
                "command": command_line("gan_mode_coverage", args),
                "protocol": "2,500 samples; high quality within 3 sigma of the nearest centre.",
                "targets": "grid25: >= 24/25 modes and >= 80% high quality; ring8: 8/8 and "
                           ">= 80%; each within 600 s of training.",
                "machine_note": "2 CPU cores shared with other TensorFlow jobs; "
                                "timings are pessimistic.",
                "results": rows,
            },
            f,
            indent=2,
        )


if __name__ == "__main__":
    main()
