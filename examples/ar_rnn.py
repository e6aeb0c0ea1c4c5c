"""Train the seed SimpleRNN on a noisy sine, forecast, sample, export.

    python examples/ar_rnn.py [--epochs 5]
"""

import argparse

import numpy as np

import keras_genmodels
from keras_genmodels import data, export


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", default="savedmodels")
    args = parser.parse_args()

    model = keras_genmodels.build("ar", "reference", seed=0)
    model.summary()
    model.fit(model.prepare_dataset(data.load("sine"), batch_size=32), epochs=args.epochs)

    print(model.evaluation_metrics(data.load("sine", "test")))
    history = np.sin(2 * np.pi * np.arange(30) / 20)[None]
    print("forecast:", np.round(model.forecast(history, steps=10), 3))
    print("samples:", np.round(model.sample(2, seed=0)[:, :10], 3))

    print(export.export_and_verify(model, args.out, name="ar_rnn"))


if __name__ == "__main__":
    main()
