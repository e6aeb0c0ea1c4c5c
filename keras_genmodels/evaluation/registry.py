"""Which held-out figures a model gets, keyed by data kind and data set.

A family reports what only it can compute (`evaluation_metrics`: its losses,
likelihood bounds, bits per dimension). Figures that depend on the data set
rather than the family are registered here once, for every family whose
samples are of the registered data kind:

- `image` on the MNIST digit sets: classifier-FID, precision and recall
  (`keras_genmodels.evaluation.classifier_fid`);
- `points` on the named 2-D toy sets: mode coverage and the samples' true
  log-density (`keras_genmodels.evaluation.mode_coverage`).

`evaluate(model, test, dataset_name)` is what the command and the benchmarks
call.
"""

import dataclasses
from collections.abc import Callable

import numpy as np

DIGIT_DATASETS = ("mnist", "mnist-5k")
#: Points drawn for the 2-D toy-set figures.
TOY_SAMPLES = 2_500
#: Images drawn for classifier-FID (and as many test images).
DIGIT_IMAGES = 1_000


def toy_set(dataset_name):
    """The 2-D toy set a data set name denotes, or `None`.

    The one place a data set name is recognised as a toy set, so that
    `ring8:sigma=0.1` means the same thing to every figure.

    Args:
        dataset_name: A data set name such as `"ring8:sigma=0.1"`, or `None`.

    Returns:
        The `keras_genmodels.data.toy2d.Toy2D`, or `None` when the name is
        not a 2-D toy set.
    """
    if not isinstance(dataset_name, str):
        return None
    from keras_genmodels.data import toy2d
    from keras_genmodels.data.errors import DataError

    try:
        return toy2d.parse(dataset_name)[0]
    except DataError:
        return None


@dataclasses.dataclass(frozen=True)
class Evaluator:
    """Data-set figures for models whose samples are of one data kind.

    Args:
        name: What the figures are, for messages.
        data_kind: `"image"`, `"points"`, `"text"` or `"sequence"`.
        applies: Callable `(dataset_name) -> bool`.
        figures: Callable `(model, test, dataset_name) -> dict`.
    """

    name: str
    data_kind: str
    applies: Callable
    figures: Callable


EVALUATORS = []


def register(name, data_kind, applies):
    """Registers `figures(model, test, dataset_name)` for a data kind and sets.

    Args:
        name: What the figures are.
        data_kind: The data kind of the models it applies to.
        applies: Callable `(dataset_name) -> bool`.

    Returns:
        A decorator that registers the function and returns it unchanged.
        A function that takes a `seed` keyword (default: the seed of
        `evaluate`'s draws) gets the `--seed` of `keras-genmodels evaluate
        --export` (`keras_genmodels.evaluation.exported_figures`).
    """

    def decorate(figures):
        EVALUATORS.append(Evaluator(name, data_kind, applies, figures))
        return figures

    return decorate


def evaluators_for(model, dataset_name):
    """The registered evaluators that apply to `model` on `dataset_name`."""
    return [
        e for e in EVALUATORS if e.data_kind == model.data_kind and e.applies(dataset_name)
    ]


def evaluate(model, test, dataset_name):
    """Every held-out figure of `model` on a test split.

    Args:
        model: A trained `GenerativeModel`.
        test: The unbatched test split (with labels when `model.uses_labels`).
        dataset_name: The name of the data set actually loaded.

    Returns:
        The family's `evaluation_metrics` updated with every applicable
        registered evaluator's figures.
    """
    figures = model.evaluation_metrics(test, dataset_name=dataset_name)
    for evaluator in evaluators_for(model, dataset_name):
        figures.update(evaluator.figures(model, test, dataset_name))
    return figures


def _features(test, limit):
    rows = [x[0] if isinstance(x, tuple) else x for x in test.take(limit)]
    return np.stack([np.asarray(x) for x in rows])


@register("classifier-FID", "image", lambda name: name in DIGIT_DATASETS)
def digit_figures(model, test, dataset_name, num_images=DIGIT_IMAGES, seed=0):
    """Classifier-FID, precision and recall of generated MNIST digits.

    Args:
        model: A `GenerativeModel` drawing images.
        test: The unbatched test split.
        dataset_name: The data set's name (one of `DIGIT_DATASETS`).
        num_images: How many samples (and test images) to compare.
        seed: The sampling seed (`sample_in_chunks`).

    Returns:
        The figures, or `{}` when the model's images are not 28x28x1. A
        conditional model draws balanced classes (labels, or for a text
        model captions in the held-out templates) and also gets
        `conditional_accuracy`, the share the shipped classifier reads as
        the requested class.
    """
    from keras_genmodels.evaluation import classifier_fid
    from keras_genmodels.evaluation.conditional import conditional_accuracy
    from keras_genmodels.run_outputs import sample_in_chunks

    reference = _features(test, num_images)
    if reference.shape[1:] != classifier_fid.IMAGE_SHAPE:
        return {}
    requested, options = _requested_digits(model, len(reference))
    generated = sample_in_chunks(
        model, len(reference), seed=seed,
        description=f"classifier-FID: sampling {len(reference):,} images", **options,
    )
    figures = {
        "classifier_fid": classifier_fid.digit_scores(generated, reference),
        "classifier_fid_floor": classifier_fid.digit_floor(),
    }
    if requested is not None:
        figures["conditional_accuracy"] = conditional_accuracy(generated, requested)["accuracy"]
    return figures


def _requested_digits(model, num_images):
    """The classes a conditional model is asked for (balanced) and the
    `sample` options that ask for them: labels, or held-out captions."""
    from keras_genmodels.data.captions import DIGITS
    from keras_genmodels.evaluation.conditional import balanced_labels

    conditioning = getattr(model, "conditioning", ())
    if "labels" in conditioning:
        requested = balanced_labels(num_images, model.num_classes)
        return requested, {"labels": requested}
    if "prompt" in conditioning:
        requested = balanced_labels(num_images, DIGITS.num_classes)
        return requested, {"prompt": DIGITS.prompts_for(requested, "test")}
    return None, {}


@register("2-D toy-set figures", "points", lambda name: toy_set(name) is not None)
def toy_figures(model, test, dataset_name, num_samples=TOY_SAMPLES, seed=0):
    """Mode coverage and true log-density of samples of a named 2-D toy set.

    Args:
        model: A `GenerativeModel` drawing `(N, 2)` points.
        test: The unbatched test split.
        dataset_name: The toy set's name, e.g. `"ring8:sigma=0.1"`.
        num_samples: How many points to draw.
        seed: The sampling seed.

    Returns:
        `keras_genmodels.evaluation.mode_coverage.evaluate_toy2d`'s figures.
    """
    from keras_genmodels.evaluation import mode_coverage

    test_points = _features(test, -1)
    samples = model.sample(num_samples, seed=seed)  # One call: points are cheap.
    return mode_coverage.evaluate_toy2d(samples, dataset_name, test_points)
