"""Trains the digit classifier behind classifier-FID and writes its weights.

Run from the repository root:

```
python -m keras_genmodels.evaluation.train_classifier [--epochs 30] [--out PATH]
```

It trains on the `mnist-5k` train split (4,000 digits) with small random
shifts and rotations, reports the accuracy on the 1,000 test digits, and
writes `keras_genmodels/evaluation/digit_classifier.weights.h5`.
"""

import argparse
import json
import time

import keras
import numpy as np
from keras import layers

from keras_genmodels.data.images import mnist_5k_arrays
from keras_genmodels.evaluation.classifier_fid import build_classifier, weights_path


def train(epochs=30, seed=0):
    """Trains the classifier and returns `(model, test_accuracy)`."""
    keras.utils.set_random_seed(seed)
    x_train, y_train = mnist_5k_arrays("train")
    x_test, y_test = mnist_5k_arrays("test")
    x_train = (x_train / 255.0).astype("float32")[..., None]
    x_test = (x_test / 255.0).astype("float32")[..., None]
    augment = keras.Sequential(
        [
            layers.RandomTranslation(0.1, 0.1, fill_mode="constant"),
            layers.RandomRotation(0.04, fill_mode="constant"),
        ]
    )
    classifier = build_classifier()
    inputs = keras.Input(x_train.shape[1:])
    trainer = keras.Model(inputs, classifier(augment(inputs)))
    schedule = keras.optimizers.schedules.CosineDecay(
        1e-3, decay_steps=epochs * int(np.ceil(len(x_train) / 64))
    )
    trainer.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    trainer.fit(x_train, y_train, batch_size=64, epochs=epochs, verbose=2)
    classifier.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    _, accuracy = classifier.evaluate(x_test, y_test, verbose=0)
    return classifier, float(accuracy)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=weights_path())
    args = parser.parse_args(argv)
    start = time.perf_counter()
    classifier, accuracy = train(args.epochs, args.seed)
    classifier.save_weights(args.out)
    print(
        json.dumps(
            {
                "test_accuracy": round(accuracy, 4),
                "epochs": args.epochs,
                "seconds": round(time.perf_counter() - start, 1),
                "weights": args.out,
            }
        )
    )


if __name__ == "__main__":
    main()
