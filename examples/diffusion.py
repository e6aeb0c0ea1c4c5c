"""Trains a DDPM briefly, samples from it and exports it.

Run from the repository root:

    python examples/diffusion.py                                  # mlp2d on moons
    python examples/diffusion.py --preset unet-mnist --dataset mnist-5k --epochs 1

Writes `savedmodels/<preset>/<version>/` (TF Serving layout) and a `.tflite`
file with the `denoise_step` signature beside it.
"""

import argparse

import keras_genmodels
from keras_genmodels import data, export
from keras_genmodels.presets import get_preset


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mlp2d")
    parser.add_argument("--dataset", default="moons")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", default="savedmodels")
    args = parser.parse_args()

    _, preset = get_preset("diffusion", args.preset)
    train = data.load(args.dataset, "train")
    model = keras_genmodels.build(
        "diffusion", args.preset, data_shape=train.element_spec.shape
    )
    model.fit(model.prepare_dataset(train, preset.batch_size), epochs=args.epochs)

    samples = model.sample(16, seed=0)  # The preset's default sampler.
    print("samples:", samples.shape, "range", samples.min(), samples.max())
    fast = model.sample(16, num_steps=20, method="ddim", seed=0)
    print("20-step DDIM samples:", fast.shape)
    print(model.evaluation_metrics(data.load(args.dataset, "test"), dataset_name=args.dataset))

    report = export.export_and_verify(model, args.out, name=args.preset)
    print("SavedModel:", report["savedmodel"], "signatures:", report["signatures"])
    print("TF Lite:", report["tflite"], "max |diff|:", report["tflite_max_abs_diff"])


if __name__ == "__main__":
    main()
