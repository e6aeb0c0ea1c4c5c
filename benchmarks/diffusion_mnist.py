"""Trains `unet-mnist` on `mnist-5k` and samples a digit grid with DDIM in 50 steps (eta=1).

Run from the repository root:

    python -m benchmarks.diffusion_mnist [--steps N] [--save PATH] [--init PATH]

`--init` continues training a saved model (optimizer state and EMA included);
`train_seconds` then counts this run only.

Prints a table, writes `benchmarks/results/diffusion_mnist.json` and the
64-digit grid `benchmarks/results/diffusion_mnist.png`.
"""

import argparse
import json
import os
import time

import numpy as np

import keras_genmodels
from keras_genmodels import data, training
from keras_genmodels.presets import get_preset

NAME = "diffusion_mnist"
RESULTS = os.path.join(os.path.dirname(__file__), "results")


def save_grid(images, path):
    """Writes `(n, H, W, 1)` images in [0, 1] as a square grid PNG."""
    from PIL import Image

    n, h, w, _ = images.shape
    side = int(np.ceil(np.sqrt(n)))
    grid = np.ones((side * (h + 2), side * (w + 2)), "float32")
    for i, image in enumerate(images):
        r, c = divmod(i, side)
        grid[r * (h + 2) + 1 : r * (h + 2) + 1 + h, c * (w + 2) + 1 : c * (w + 2) + 1 + w] = (
            image[..., 0]
        )
    Image.fromarray((grid * 255).round().astype("uint8")).resize(
        (grid.shape[1] * 3, grid.shape[0] * 3), Image.NEAREST
    ).save(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="unet-mnist")
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps")
    parser.add_argument("--sampling-steps", type=int, default=50)
    parser.add_argument(
        "--eta", type=float, default=1.0,
        help="DDIM noise scale (1: respaced ancestral; 0 gave squiggles, see docs)",
    )
    parser.add_argument("--save", default=None, help="write the trained .keras here")
    parser.add_argument("--init", default=None, help="continue training this .keras file")
    args = parser.parse_args()

    _, preset = get_preset("diffusion", args.preset)
    steps = args.steps or preset.train_steps
    if args.init:
        import keras

        model = keras.saving.load_model(args.init, safe_mode=True)
    else:
        model = keras_genmodels.build("diffusion", args.preset, seed=0)
    unbatched = data.load(args.dataset, "train")
    train = model.prepare_dataset(unbatched, preset.batch_size)
    epochs = training.epochs_for_steps(
        steps, training.count_examples(unbatched), preset.batch_size
    )
    start = time.time()
    history = model.fit(train, epochs=epochs, verbose=2)
    train_seconds = time.time() - start
    if args.save:
        model.save(args.save)

    model.sample(2, num_steps=args.sampling_steps, method="ddim", eta=args.eta, seed=0)  # Trace.
    start = time.time()
    images = model.sample(
        64, num_steps=args.sampling_steps, method="ddim", eta=args.eta, seed=0
    )
    sample_seconds = time.time() - start
    os.makedirs(RESULTS, exist_ok=True)
    save_grid(images, os.path.join(RESULTS, f"{NAME}.png"))
    metrics = model.evaluation_metrics(data.load(args.dataset, "test"))

    result = {
        "preset": args.preset,
        "dataset": args.dataset,
        "parameters_network": int(model.network.count_params()),
        "optimizer_steps": int(model.optimizer.iterations.numpy()),
        "continued_from": args.init,
        "epochs": epochs,
        "batch_size": preset.batch_size,
        "train_seconds": round(train_seconds, 1),
        "final_train_loss": float(history.history["loss"][-1]),
        "first_epoch_loss": float(history.history["loss"][0]),
        "test_loss": metrics["test_loss"],
        "sampling": f"DDIM eta={args.eta:g}, {args.sampling_steps} steps, 64 images",
        "sample_seconds": round(sample_seconds, 2),
        "grid": f"benchmarks/results/{NAME}.png",
        "note": "2-core CPU shared with other TensorFlow jobs: timings are pessimistic.",
    }
    print(f"{'quantity':<22} value")
    for key, value in result.items():
        print(f"{key:<22} {value}")
    with open(os.path.join(RESULTS, f"{NAME}.json"), "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
