"""Train the byte-level transformer on the Python docs, generate, export.

    python examples/ar_transformer.py [--steps 300]

The `transformer-small` preset, trained briefly; the full preset
(`keras-genmodels train ar`) takes about 15 minutes on 2 CPU cores.
"""

import argparse

import keras_genmodels
from keras_genmodels import data, export


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", default="savedmodels")
    args = parser.parse_args()

    model = keras_genmodels.build("ar", "transformer-small", decay_steps=args.steps)
    train = model.prepare_dataset(data.load("pydoc", "train"), batch_size=32)
    model.fit(train.repeat(), steps_per_epoch=args.steps, epochs=1)

    print(model.evaluation_metrics(data.load("pydoc", "test"), dataset_name="pydoc"))
    print(model.generate("The ", max_new_tokens=200, temperature=0.7, top_k=20, seed=0))

    report = export.export_and_verify(model, args.out, name="ar_transformer")
    print(report)
    print(export.rest_request_body("generate", model.signature_examples()["generate"]))


if __name__ == "__main__":
    main()
