"""Conditional accuracy: does a conditional model draw the class it was asked for?

The share of generated digits that the shipped digit classifier
(`keras_genmodels.evaluation.classifier_fid`, 98.6% on the 1,000 `mnist-5k`
test digits) assigns to the requested class. Beside classifier-FID and
precision/recall it shows the trade-off classifier-free guidance makes:
a larger guidance weight raises accuracy and precision and lowers recall.
"""

import numpy as np

from keras_genmodels.evaluation import classifier_fid


def balanced_labels(num_samples, num_classes=10):
    """`num_samples` requested labels, as even over the classes as they can be.

    Args:
        num_samples: Positive int.
        num_classes: Number of classes.

    Returns:
        int32 `(num_samples,)`: `0, 1, ..., num_classes - 1, 0, 1, ...`.
    """
    return (np.arange(num_samples) % num_classes).astype("int32")


def conditional_accuracy(images, requested, batch_size=500):
    """Share of digits the shipped classifier assigns to the requested class.

    Args:
        images: `(N, 28, 28, 1)` generated digits in [0, 1].
        requested: `(N,)` ints, the class each image was drawn for.
        batch_size: Images per classifier call.

    Returns:
        `{"accuracy": float, "per_class": {class: float}, "num_samples": int}`.

    Example:

    ```python
    labels = balanced_labels(1000)
    images = model.sample(1000, seed=0, labels=labels)
    conditional_accuracy(images, labels)["accuracy"]
    ```
    """
    images = classifier_fid.check_digits(images)
    requested = np.asarray(requested).reshape(-1)
    if requested.shape != (len(images),):
        raise ValueError(
            "`requested` must have one label per image. Received "
            f"{requested.shape[0]} labels for {len(images)} images"
        )
    classifier = _classifier()
    predicted = np.concatenate([
        classifier.predict_on_batch(images[i : i + batch_size]).argmax(-1)
        for i in range(0, len(images), batch_size)
    ])
    correct = predicted == requested
    per_class = {
        int(c): float(correct[requested == c].mean()) for c in np.unique(requested)
    }
    return {
        "accuracy": float(correct.mean()),
        "per_class": per_class,
        "num_samples": int(len(images)),
    }


def _classifier():
    classifier = classifier_fid.build_classifier()
    classifier.load_weights(classifier_fid.weights_path())
    return classifier
