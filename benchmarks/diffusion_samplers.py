"""Judges one trained digit DDPM's samples under several DDIM noise scales.

Loads a `.keras` DDPM trained on 28x28 digits (e.g. the `model.keras` that
`keras-genmodels train diffusion --dataset mnist-5k --out OUT` writes), draws
the same number of digits from the same seed with DDIM at each `eta`
(`eta = 0`: deterministic DDIM, Song et al. 2021; `eta = 1`: the respaced
ancestral sampler, `unet-mnist`'s default) and scores each set with the
classifier that ships with the package: classifier-FID, precision and recall
against the test digits, the classifier's confidence and the spread over the
ten classes (as `benchmarks.default_digits` does for a whole command).

Run from the repository root:

    keras-genmodels train diffusion --dataset mnist-5k --seed 0 --out runs/ddpm
    python -m benchmarks.diffusion_samplers --model runs/ddpm/model.keras [--etas 0 1]

Prints a table, writes `benchmarks/results/diffusion_samplers.json` and a
64-digit grid per `eta` (`diffusion_samplers_eta{eta}.png`).
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_genmodels  # noqa: E402, F401  (registers the classes load_model needs)
from benchmarks import command_line  # noqa: E402
from benchmarks.default_digits import judge  # noqa: E402
from benchmarks.diffusion_mnist import save_grid  # noqa: E402
from keras_genmodels import data  # noqa: E402
from keras_genmodels.evaluation import classifier_fid  # noqa: E402

NAME = "diffusion_samplers"
RESULTS = os.path.join(os.path.dirname(__file__), "results")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a trained digit DDPM's .keras file")
    parser.add_argument("--etas", type=float, nargs="+", default=[0.0, 1.0])
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps")
    parser.add_argument("--num", type=int, default=1_000, help="digits per sampler")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset", default="mnist-5k", help="reference test digits")
    args = parser.parse_args(argv)

    model = keras.saving.load_model(args.model, safe_mode=True)
    if not isinstance(model, keras_genmodels.DDPM):
        raise SystemExit(f"{args.model} holds a {type(model).__name__}, not a DDPM.")
    test = np.stack(list(data.load(args.dataset, "test")))
    classifier = classifier_fid.build_classifier()
    classifier.load_weights(classifier_fid.weights_path())
    os.makedirs(RESULTS, exist_ok=True)

    rows = []
    for eta in args.etas:
        start = time.perf_counter()
        images = model.sample(
            args.num, num_steps=args.steps, method="ddim", eta=eta, seed=args.seed
        )
        seconds = time.perf_counter() - start
        grid = os.path.join(RESULTS, f"{NAME}_eta{eta:g}.png")
        save_grid(images[:64], grid)
        row = {"eta": eta, "sample_seconds": round(seconds, 1)}
        row.update(classifier_fid.digit_scores(images, test[: args.num]))
        row.update(judge(classifier, images))
        row["grid"] = os.path.relpath(grid)
        rows.append(row)

    print(f"{'eta':>5}{'FID':>8}{'precision':>11}{'recall':>8}{'conf>0.9':>10}"
          f"{'classes':>9}{'seconds':>9}")
    for r in rows:
        print(f"{r['eta']:>5g}{r['fid']:>8.1f}{r['precision']:>11.3f}{r['recall']:>8.3f}"
              f"{r['share_confident_0.9']:>10.3f}{r['classes_seen']:>9}"
              f"{r['sample_seconds']:>9.1f}")
    with open(os.path.join(RESULTS, f"{NAME}.json"), "w") as f:
        json.dump(
            {
                "command": command_line(NAME, args),
                "sampler": f"DDIM, {args.steps} steps, {args.num} digits, seed {args.seed}",
                "rows": rows,
                "machine": f"{os.cpu_count()} CPU cores; times depend on what else runs",
            },
            f,
            indent=2,
        )
    return rows


if __name__ == "__main__":
    main()
