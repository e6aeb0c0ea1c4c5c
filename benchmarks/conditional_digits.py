"""Does a conditional model draw the digit it is asked for? Guidance swept.

For a class-conditional (`labels`) or text-conditional (`prompt`) model
trained on `mnist-5k`, draws 1,000 digits — 100 per class, a text model's
prompts built from the caption templates held out of training — at each
classifier-free guidance scale `w` (0: unconditional, 1: conditional, above
1: guided) and reports, from the shipped digit classifier
(`keras_genmodels.evaluation`): the conditional accuracy (share read as the
requested class), classifier-FID and precision/recall against the 1,000 test
digits, and the sampling time. Guidance trades diversity (recall) for
fidelity (precision, accuracy); the table shows where the default sits.

Models without guidance (the conditional VAE) get one row.

Run from the repository root, on a trained run (or without `--run` to train
one with the command first):

    python -m benchmarks.conditional_digits --run RUN
    python -m benchmarks.conditional_digits --preset unet-mnist-cond

Writes `benchmarks/results/conditional_digits_PRESET.json` and
`conditional_digits_PRESET.png` (a row of samples per class or prompt at the
model's default guidance).
"""

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_genmodels import cli, plotting, run_outputs  # noqa: E402
from keras_genmodels.data.captions import DIGITS  # noqa: E402
from keras_genmodels.data.images import mnist_5k_arrays  # noqa: E402
from keras_genmodels.evaluation.classifier_fid import digit_scores  # noqa: E402
from keras_genmodels.evaluation.conditional import (  # noqa: E402
    balanced_labels,
    conditional_accuracy,
)

RESULTS = os.path.join(os.path.dirname(__file__), "results")
FAMILY_OF_PRESET = {"unet-mnist-cond": "diffusion", "unet-mnist-text": "diffusion",
                    "conv-cond": "vae"}


def conditioning_options(model, labels):
    """`sample` options asking for `labels`: the labels or held-out prompts."""
    if "prompt" in model.conditioning:
        return {"prompt": DIGITS.prompts_for(labels, "test")}
    if "labels" in model.conditioning:
        return {"labels": labels}
    raise SystemExit(f"{type(model).__name__} is not conditional: {model.conditioning}")


def evaluate_at(model, options, labels, test, seed, guidance):
    """Figures of 1,000 samples drawn with `options` at guidance `guidance`."""
    if guidance is not None:
        options = {**options, "guidance_scale": guidance}
    start = time.perf_counter()
    images = run_outputs.sample_in_chunks(model, len(labels), seed, **options)
    seconds = time.perf_counter() - start
    accuracy = conditional_accuracy(images, labels)
    scores = digit_scores(images, test)
    return {
        "guidance_scale": guidance,
        "accuracy": accuracy["accuracy"],
        "worst_class_accuracy": min(accuracy["per_class"].values()),
        "classifier_fid": scores["fid"],
        "precision": scores["precision"],
        "recall": scores["recall"],
        "sample_seconds": round(seconds, 1),
    }


def write_grid(model, path, seed, per_row=10):
    """A row of `per_row` samples per class (or held-out prompt)."""
    labels = np.repeat(np.arange(10), per_row).astype("int32")
    images = model.sample(len(labels), seed=seed, **conditioning_options(model, labels))
    plotting.image_grid(images, columns=per_row).save(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", help="a trained run directory")
    parser.add_argument("--preset", default="unet-mnist-cond", choices=sorted(FAMILY_OF_PRESET),
                        help="preset to train when --run is not given")
    parser.add_argument("--guidance", type=float, nargs="+", default=[0.0, 1.0, 2.0, 4.0])
    parser.add_argument("--num", type=int, default=1000, help="samples per row (100 per class)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.makedirs(RESULTS, exist_ok=True)
    train_seconds = None
    run = args.run
    if run is None:
        run = os.path.join(tempfile.mkdtemp(prefix="conditional_digits_"), "run")
        command = ["train", FAMILY_OF_PRESET[args.preset], "--preset", args.preset,
                   "--dataset", "mnist-5k", "--seed", str(args.seed), "--out", run]
        if cli.main(command):
            raise SystemExit("The training command failed.")
    with open(os.path.join(run, "metrics.json")) as f:
        metrics = json.load(f)
    train_seconds = metrics.get("train_seconds")
    model = keras.saving.load_model(os.path.join(run, "model.keras"), safe_mode=True)
    preset = metrics.get("preset", args.preset)
    test = mnist_5k_arrays("test")[0][..., None] / 255.0
    labels = balanced_labels(args.num)
    options = conditioning_options(model, labels)
    guided = "guidance_scale" in model.conditioning
    default = getattr(model, "guidance_scale", None) if guided else None
    scales = sorted(set(args.guidance) | {default}) if guided else [None]
    rows = [evaluate_at(model, options, labels, test, args.seed, w) for w in scales]
    name = f"conditional_digits_{preset}"
    picture = os.path.join(RESULTS, f"{name}.png")
    write_grid(model, picture, args.seed)
    result = {
        "run": os.path.abspath(run),
        "preset": preset,
        "parameters": metrics.get("parameters"),
        "epochs": metrics.get("epochs"),
        "train_seconds": train_seconds,
        "conditioning": "held-out caption templates" if "prompt" in model.conditioning
        else "class labels",
        "default_guidance_scale": default,
        "num_samples": args.num,
        "rows": rows,
        "samples_png": os.path.relpath(picture),
        "machine": f"{os.cpu_count()} CPU cores; times depend on what else runs",
    }
    print(f"{preset}: {args.num} samples per row, {result['conditioning']}")
    print(f"{'w':>6}{'accuracy':>10}{'worst cls':>10}{'FID':>8}{'prec.':>7}{'recall':>7}{'s':>7}")
    for row in rows:
        w = "-" if row["guidance_scale"] is None else f"{row['guidance_scale']:g}"
        mark = " (default)" if guided and row["guidance_scale"] == default else ""
        print(
            f"{w:>6}{row['accuracy']:>10.3f}{row['worst_class_accuracy']:>10.3f}"
            f"{row['classifier_fid']:>8.1f}{row['precision']:>7.3f}{row['recall']:>7.3f}"
            f"{row['sample_seconds']:>7.1f}{mark}"
        )
    with open(os.path.join(RESULTS, f"{name}.json"), "w") as f:
        json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
