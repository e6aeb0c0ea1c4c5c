"""A family's default command on the bundled digits, timed and judged.

Runs exactly `keras-genmodels train FAMILY --dataset mnist-5k --out OUT` (the
family's default preset for its default length), copies the command's
`samples.png` grid here, and judges 1,000 samples with the classifier that
ships with the package (`keras_genmodels.evaluation.classifier_fid`, 98.6%
on the 1,000 test digits): the command's classifier-FID, precision and
recall with the real-data floor beside them, the classifier's confidence on
the generated digits against its confidence on the real test digits, and
how evenly the generated digits spread over the ten classes (a collapsed
generator gives few classes). Every figure the command's `evaluate` wrote
(e.g. the VAE's negative ELBO and IWAE NLL) is kept in the JSON.

Run from the repository root:

    python -m benchmarks.default_digits vae
    python -m benchmarks.default_digits gan --epochs 5

Writes `benchmarks/results/default_digits_FAMILY.json` and `.png`.
"""

import argparse
import json
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_genmodels import cli, data  # noqa: E402
from keras_genmodels.evaluation import classifier_fid  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results")
IMAGE_FAMILIES = ("vae", "gan", "flow", "diffusion")


def judge(classifier, images):
    """Classifier confidence and class spread of `(N, 28, 28, 1)` digits.

    Returns:
        Mean top-class probability, the share above 0.9, the number of
        classes predicted at least once, the entropy of the predicted class
        histogram (nats; ln 10 = 2.303 is perfectly even) and the counts.
    """
    probabilities = classifier.predict(classifier_fid.check_digits(images), verbose=0)
    confidence = probabilities.max(1)
    counts = np.bincount(probabilities.argmax(1), minlength=10)
    share = counts[counts > 0] / counts.sum()
    return {
        "mean_confidence": float(confidence.mean()),
        "share_confident_0.9": float((confidence > 0.9).mean()),
        "classes_seen": int(np.count_nonzero(counts)),
        "class_entropy_nats": float(-np.sum(share * np.log(share))),
        "class_counts": counts.tolist(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("family", choices=IMAGE_FAMILIES)
    parser.add_argument("--epochs", type=int, help="default: the preset's length")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="run directory (default: a temporary one)")
    args = parser.parse_args(argv)
    os.makedirs(RESULTS, exist_ok=True)
    out = args.out or os.path.join(tempfile.mkdtemp(prefix="default_digits_"), "run")
    command = ["train", args.family, "--dataset", "mnist-5k", "--seed", str(args.seed)]
    if args.epochs:
        command += ["--epochs", str(args.epochs)]
    start = time.perf_counter()
    status = cli.main([*command, "--out", out])
    wall = time.perf_counter() - start
    if status:
        raise SystemExit(f"The command failed with status {status}.")
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    name = f"default_digits_{args.family}"
    picture = os.path.join(RESULTS, f"{name}.png")
    shutil.copy(os.path.join(out, "samples.png"), picture)

    classifier = classifier_fid.build_classifier()
    classifier.load_weights(classifier_fid.weights_path())
    model = keras.saving.load_model(os.path.join(out, "model.keras"), safe_mode=True)
    sample_start = time.perf_counter()
    generated_images = model.sample(1_000, seed=args.seed)
    sample_seconds = time.perf_counter() - sample_start
    test, labels = (np.stack(a) for a in zip(*data.load("mnist-5k", "test", True)))
    real = judge(classifier, test)
    generated = judge(classifier, generated_images)
    result = {
        "command": "keras-genmodels " + " ".join(command) + " --out OUT",
        "preset": metrics["preset"],
        "parameters": metrics["parameters"],
        "epochs": metrics["epochs"],
        "train_seconds": metrics["train_seconds"],
        "command_wall_seconds": round(wall, 1),
        "sample_1000_seconds": round(sample_seconds, 2),
        "final_losses": metrics["final"],
        "test_metrics": metrics["test"],
        "generated": generated,
        "real_test": real,
        "samples_png": os.path.relpath(picture),
        "machine": f"{os.cpu_count()} CPU cores; times depend on what else runs",
    }
    print(f"{'':<20}{'mean conf.':>11}{'conf>0.9':>10}{'classes':>9}{'entropy':>9}")
    for label, row in (("generated (1,000)", generated), ("real test (1,000)", real)):
        print(
            f"{label:<20}{row['mean_confidence']:>11.3f}{row['share_confident_0.9']:>10.3f}"
            f"{row['classes_seen']:>9}{row['class_entropy_nats']:>9.3f}"
        )
    for key, value in metrics["test"].items():
        print(f"{key:<28}{value}")
    print(
        f"{args.family}/{result['preset']}: {result['epochs']} epochs, training "
        f"{result['train_seconds']:.1f} s, whole command {wall:.1f} s, 1,000 samples "
        f"{sample_seconds:.1f} s; grid: {result['samples_png']}"
    )
    with open(os.path.join(RESULTS, f"{name}.json"), "w") as f:
        json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
