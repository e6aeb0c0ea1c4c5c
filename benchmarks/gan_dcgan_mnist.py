"""DCGAN on MNIST through the default command, timed, with a digit check.

Runs exactly `keras-genmodels train gan --dataset mnist-5k --out OUT` (the
family's default preset, `dcgan`, for its default length), then copies the
command's `samples.png` grid here and judges whether the samples are
recognisable digits with a small CNN classifier trained on the `mnist-5k`
training split: the classifier's confidence on 1,000 generated digits against
its confidence on the 1,000 real test digits, and how evenly the generated
digits spread over the ten classes (a collapsed generator gives few classes).

Run from the repository root:

    python -m benchmarks.gan_dcgan_mnist
    python -m benchmarks.gan_dcgan_mnist --epochs 5

Writes `benchmarks/results/gan_dcgan_mnist.json` and
`benchmarks/results/gan_dcgan_mnist.png`.
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

RESULTS = os.path.join(os.path.dirname(__file__), "results")
NAME = "gan_dcgan_mnist"


def digit_classifier(seed=0):
    """A small CNN trained on the mnist-5k training split (about 98% test accuracy)."""
    keras.utils.set_random_seed(seed)
    train = data.load("mnist-5k", "train", with_labels=True)
    x, y = (np.stack(a) for a in zip(*train.as_numpy_iterator()))
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=8, batch_size=64, verbose=0)
    return model


def judge(classifier, images):
    probabilities = classifier.predict(images, verbose=0, batch_size=250)
    confidence = probabilities.max(1)
    counts = np.bincount(probabilities.argmax(1), minlength=10)
    share = counts / counts.sum()
    entropy = -np.sum(share[share > 0] * np.log(share[share > 0]))
    return {
        "mean_confidence": float(confidence.mean()),
        "share_confident_0.9": float((confidence > 0.9).mean()),
        "classes_seen": int(np.count_nonzero(counts)),
        "class_entropy_nats": float(entropy),
        "class_counts": counts.tolist(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--epochs", type=int, help="default: the preset's length")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="run directory (default: a temporary one)")
    args = parser.parse_args()
    os.makedirs(RESULTS, exist_ok=True)
    out = args.out or os.path.join(tempfile.mkdtemp(prefix="gan_dcgan_"), "run")
    argv = ["train", "gan", "--dataset", args.dataset, "--out", out, "--seed", str(args.seed)]
    if args.epochs:
        argv += ["--epochs", str(args.epochs)]
    start = time.perf_counter()
    status = cli.main(argv)
    wall = time.perf_counter() - start
    if status:
        raise SystemExit(f"The command failed with status {status}.")
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    picture = os.path.join(RESULTS, f"{NAME}.png")
    shutil.copy(os.path.join(out, "samples.png"), picture)

    model = keras.saving.load_model(os.path.join(out, "model.keras"), safe_mode=True)
    classifier = digit_classifier(args.seed)
    test = data.load("mnist-5k", "test", with_labels=True)
    real, labels = (np.stack(a) for a in zip(*test.as_numpy_iterator()))
    real_accuracy = float(
        (classifier.predict(real, verbose=0).argmax(1) == labels).mean()
    )
    generated = judge(classifier, model.sample(1_000, seed=args.seed))
    reference = judge(classifier, real)
    result = {
        "command": "keras-genmodels " + " ".join(argv[:4] + argv[6:]) + " --out OUT",
        "preset": metrics["preset"],
        "dataset": metrics["dataset"],
        "parameters": metrics["parameters"],
        "epochs": metrics["epochs"],
        "train_seconds": metrics["train_seconds"],
        "command_wall_seconds": round(wall, 1),
        "final_losses": metrics["final"],
        "test_metrics": metrics["test"],
        "classifier_test_accuracy": real_accuracy,
        "generated": generated,
        "real_test": reference,
        "samples_png": os.path.relpath(picture),
        "machine_note": "2 CPU cores shared with other TensorFlow jobs; timings are pessimistic.",
    }
    print(f"{'':<22}{'mean conf.':>11}{'conf>0.9':>10}{'classes':>9}{'entropy':>9}")
    for name, row in (("generated (1,000)", generated), ("real test (1,000)", reference)):
        print(
            f"{name:<22}{row['mean_confidence']:>11.3f}{row['share_confident_0.9']:>10.3f}"
            f"{row['classes_seen']:>9}{row['class_entropy_nats']:>9.3f}"
        )
    print(
        f"preset {result['preset']} on {result['dataset']}: {result['epochs']} epochs, "
        f"training {result['train_seconds']:.1f} s, whole command {wall:.1f} s; "
        f"classifier test accuracy {real_accuracy:.3f}; grid: {result['samples_png']}"
    )
    with open(os.path.join(RESULTS, f"{NAME}.json"), "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
