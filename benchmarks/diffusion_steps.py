"""Sample quality against sampling steps for DDPM, DDIM and DPM-Solver++(2M).

For each sampler — ancestral DDPM (respaced below T steps), DDIM with
`eta = 0` and DPM-Solver++(2M) (`method="dpmpp_2m"`) — and each step count
(5, 10, 20, 50 and 100 by default) the same model draws the same number of
samples from the same seed, and the samples are judged:

- `points`: `mlp2d` on a 2-D set (`moons` by default; trained here unless
  `--points-model` gives a `.keras` file; cheap): the sliced Wasserstein
  distance (sliced W2, 512 directions) to held-out test points, next to the
  same distance between two independent draws of data (the floor).
- `digits` (only with `--model`, a trained 28x28 digit DDPM such as the
  `model.keras` of `keras-genmodels train diffusion --dataset mnist-5k`):
  classifier-FID, precision and recall against the test digits with the
  classifier that ships with the package, its confidence and the classes
  seen (as `benchmarks.diffusion_samplers` does). The issue's targets:
  DPM-Solver++ at 20 steps no worse than the 50-step default's
  classifier-FID (51.8), and at 10 steps within 15% of it.

Sampling seconds are the best of one timed call after an untimed warm-up
call that traces the sampler (the trace is not counted).

Run from the repository root:

    python -m benchmarks.diffusion_steps                       # 2-D part only
    python -m benchmarks.diffusion_steps --model runs/ddpm/model.keras --parts digits
    python -m benchmarks.diffusion_steps --num 1000 --steps 5 10 20 --train-steps 4000

Prints a table per part and writes `benchmarks/results/diffusion_steps_points.json`
and `diffusion_steps_digits.json` (and digit grids
`diffusion_steps_<method>_<steps>.png` for the `--grid-steps`).
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_genmodels  # noqa: E402
from benchmarks import command_line  # noqa: E402
from keras_genmodels import data, training  # noqa: E402
from keras_genmodels.evaluation.registry import toy_set  # noqa: E402
from keras_genmodels.evaluation.sliced_wasserstein import sliced_wasserstein  # noqa: E402
from keras_genmodels.presets import get_preset  # noqa: E402

NAME = "diffusion_steps"
RESULTS = os.path.join(os.path.dirname(__file__), "results")
METHODS = ("ddpm", "ddim", "dpmpp_2m")
LABELS = {"ddpm": "DDPM (ancestral)", "ddim": "DDIM eta=0", "dpmpp_2m": "DPM-Solver++(2M)"}
#: classifier-FID of the default digit model with its 50-step default sampler.
DEFAULT_FID = 51.8


def timed_sample(model, num, seed, method, steps):
    """`model.sample` after an untimed warm-up (trace) call; (samples, seconds)."""
    model.sample(2, seed=seed, method=method, num_steps=steps)
    start = time.perf_counter()
    samples = model.sample(num, seed=seed, method=method, num_steps=steps)
    return samples, time.perf_counter() - start


def load_ddpm(path):
    model = keras.saving.load_model(path, safe_mode=True)
    if not isinstance(model, keras_genmodels.DDPM):
        raise SystemExit(f"{path} holds a {type(model).__name__}, not a DDPM.")
    return model


def train_points_model(dataset, train_steps, seed):
    """`mlp2d` trained for about `train_steps` optimizer steps; (model, seconds)."""
    _, preset = get_preset("diffusion", "mlp2d")
    model = keras_genmodels.build("diffusion", "mlp2d", seed=seed)
    unbatched = data.load(dataset, "train")
    epochs = training.epochs_for_steps(
        train_steps, int(unbatched.cardinality()), preset.batch_size
    )
    start = time.perf_counter()
    model.fit(model.prepare_dataset(unbatched, preset.batch_size), epochs=epochs, verbose=0)
    return model, time.perf_counter() - start


def points_part(args):
    """Sliced W2 of `mlp2d` samples at each (method, steps)."""
    num = args.num or 2000
    info = {"dataset": args.dataset}
    if args.points_model:
        model = load_ddpm(args.points_model)
        info["model"] = args.points_model
    else:
        model, seconds = train_points_model(args.dataset, args.train_steps, args.seed)
        info.update(
            model=f"mlp2d trained here, {int(model.optimizer.iterations.numpy())} steps",
            train_seconds=round(seconds, 1),
        )
    points = np.stack(list(data.load(args.dataset, "test").as_numpy_iterator()))
    test, reference = points[:num], points[num : 2 * num]
    toy = toy_set(args.dataset)
    if len(reference) < len(test) and toy is not None:
        reference, _ = toy.sample(len(test), seed=args.seed + 1000)
    if len(reference) < len(test):
        raise SystemExit(f"{args.dataset}'s test split has fewer than {2 * num} points.")
    floor = sliced_wasserstein(reference, test, seed=args.seed)
    rows = []
    for method in args.methods:
        for steps in args.steps:
            samples, seconds = timed_sample(model, len(test), args.seed, method, steps)
            distance = sliced_wasserstein(samples, test, seed=args.seed)
            rows.append({
                "method": method, "steps": steps, "sliced_wasserstein": distance,
                "ratio_to_data": distance / floor, "sample_seconds": round(seconds, 3),
            })
    print(f"\nmlp2d on {args.dataset}: sliced W2 of {len(test):,} samples to as many test "
          f"points (two draws of data: {floor:.4f})")
    print(f"{'sampler':<18}" + "".join(f"{s:>16}" for s in args.steps))
    for method in args.methods:
        cells = [r for r in rows if r["method"] == method]
        print(f"{LABELS[method]:<18}" + "".join(
            f"{r['sliced_wasserstein']:>9.4f} {r['sample_seconds']:>5.2f}s" for r in cells
        ))
    return {**info, "num_samples": len(test), "sliced_wasserstein_data": floor, "rows": rows}


def digits_part(args):
    """Classifier-FID, precision and recall of digits at each (method, steps)."""
    from benchmarks.default_digits import judge
    from benchmarks.diffusion_mnist import save_grid
    from keras_genmodels.evaluation import classifier_fid

    num = args.num or 1000
    model = load_ddpm(args.model)
    test = np.stack(list(data.load(args.digits_dataset, "test")))
    classifier = classifier_fid.build_classifier()
    classifier.load_weights(classifier_fid.weights_path())
    rows = []
    for method in args.methods:
        for steps in args.steps:
            images, seconds = timed_sample(model, num, args.seed, method, steps)
            row = {"method": method, "steps": steps, "sample_seconds": round(seconds, 1)}
            row.update(classifier_fid.digit_scores(images, test[:num]))
            row.update(judge(classifier, images))
            if steps in args.grid_steps:
                grid = os.path.join(RESULTS, f"{NAME}_{method}_{steps}.png")
                save_grid(images[:64], grid)
                row["grid"] = os.path.relpath(grid)
            rows.append(row)
    print(f"\n{args.model}: {num:,} digits per row, seed {args.seed}")
    print(f"{'sampler':<18}{'steps':>6}{'FID':>8}{'precision':>11}{'recall':>8}"
          f"{'conf>0.9':>10}{'classes':>9}{'seconds':>9}")
    for r in rows:
        print(f"{LABELS[r['method']]:<18}{r['steps']:>6}{r['fid']:>8.1f}{r['precision']:>11.3f}"
              f"{r['recall']:>8.3f}{r['share_confident_0.9']:>10.3f}{r['classes_seen']:>9}"
              f"{r['sample_seconds']:>9.1f}")
    solver = {r["steps"]: r["fid"] for r in rows if r["method"] == "dpmpp_2m"}
    targets = {}
    if 20 in solver:
        targets["dpmpp_2m_20_steps_no_worse_than_default"] = solver[20] <= DEFAULT_FID
    if 10 in solver:
        targets["dpmpp_2m_10_steps_within_15_percent"] = solver[10] <= 1.15 * DEFAULT_FID
    if targets:
        print(f"targets (default sampler's FID {DEFAULT_FID}): {targets}")
    return {"model": args.model, "num_samples": num, "rows": rows, "targets": targets}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a trained digit DDPM's .keras file (digits part)")
    parser.add_argument("--points-model", help="a trained 2-D DDPM's .keras file")
    parser.add_argument("--parts", nargs="+", choices=("points", "digits"),
                        help="default: points, and digits when --model is given")
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 50, 100])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--num", type=int,
                        help="samples per row (default: 2,000 points, 1,000 digits)")
    parser.add_argument("--dataset", default="moons", help="2-D set of the points part")
    parser.add_argument("--train-steps", type=int, default=8000,
                        help="optimizer steps of the mlp2d trained here")
    parser.add_argument("--digits-dataset", default="mnist-5k", help="reference test digits")
    parser.add_argument("--grid-steps", type=int, nargs="*", default=[10, 20])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    parts = args.parts or (["points", "digits"] if args.model else ["points"])
    if "digits" in parts and not args.model:
        raise SystemExit("The digits part needs --model PATH (a trained digit DDPM).")
    os.makedirs(RESULTS, exist_ok=True)
    results = {}
    for part in parts:
        result = points_part(args) if part == "points" else digits_part(args)
        result.update(
            command=command_line(NAME, args),
            machine=f"{os.cpu_count()} CPU cores; times depend on what else runs",
        )
        with open(os.path.join(RESULTS, f"{NAME}_{part}.json"), "w") as f:
            json.dump(result, f, indent=2)
        results[part] = result
    return results


if __name__ == "__main__":
    main()
