"""What a run writes besides the model: sample pictures and held-out figures."""

import math
import os
import time

import numpy as np

from keras_genmodels import files
from keras_genmodels.progress import Progress
from keras_genmodels.run_dir import CommandError

#: Data sets whose image samples are judged by the shipped digit classifier.
#: Samples drawn per call when many are needed, so a bar can show progress.
SAMPLE_CHUNK = 100
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def sample_in_chunks(model, num_samples, seed, description=None, chunk=SAMPLE_CHUNK, **options):
    """Draws `num_samples` in chunks, with a progress bar when there are several.

    Chunk `i` is drawn with the seed pair `(seed, i)`, so the first chunk is
    exactly `model.sample(chunk, seed=seed)` and the result is the same on
    every call.

    Args:
        model: A `GenerativeModel`.
        num_samples: Positive int.
        seed: Non-negative int.
        description: The bar's title (default: "Sampling N ...").
        chunk: Samples per `model.sample` call.
        **options: Keyword options of `model.sample`; a list with one entry
            per sample (e.g. `labels`, `prompt`) is split with the chunks.

    Returns:
        numpy samples, or a list of strings for text models.
    """

    def part(value, start, size):
        per_sample = isinstance(value, (list, tuple, np.ndarray)) and len(value) == num_samples
        return value[start : start + size] if per_sample else value

    if num_samples <= chunk:
        return model.sample(num_samples, seed=seed, **options)
    count = math.ceil(num_samples / chunk)
    bar = Progress(num_samples, description or f"Sampling {num_samples:,}", "sample")
    parts = []
    for i in range(count):
        size = min(chunk, num_samples - i * chunk)
        chunk_options = {k: part(v, i * chunk, size) for k, v in options.items()}
        parts.append(model.sample(size, seed=[seed, i], **chunk_options))
        bar.advance(size)
    if model.data_kind == "text":
        return [text for part in parts for text in part]
    return np.concatenate(parts)


def samples_path(model, path):
    """Checks that `path` suits the model's samples; returns it.

    Text samples are written as `.txt`, everything else as a picture whose
    format the suffix names. A mismatched suffix is refused rather than
    silently changed (which could overwrite another file).
    """
    suffix = os.path.splitext(path)[1].lower()
    if model.data_kind == "text":
        if suffix != ".txt":
            raise CommandError(
                f"{type(model).__name__} draws text, written as a .txt file. "
                f"Received: --out {path}"
            )
    elif suffix not in IMAGE_SUFFIXES:
        raise CommandError(
            f"{type(model).__name__} samples are written as a picture; --out must "
            f"end in one of {', '.join(IMAGE_SUFFIXES)}. Received: --out {path}"
        )
    return path


def grid_samples(model, seed, rows=8):
    """The samples of a run's `samples.png` and the grid's columns.

    64 samples in a square grid; a conditional model, whose `sample` cycles
    through its classes (or default prompts) when given none, draws
    `rows` rows of one sample per class, so each column is one class.

    Args:
        model: A `GenerativeModel`.
        seed: The sampling seed.
        rows: Rows of a conditional model's grid.

    Returns:
        `(samples, columns)`; `columns` is `None` for a square grid.
    """
    classes = getattr(model, "num_classes", None)
    if classes and {"labels", "prompt"} & set(model.conditioning):
        return model.sample(classes * rows, seed=seed), classes
    return model.sample(64, seed=seed), None


def write_samples(model, samples, path, reference=None, columns=None):
    """Writes samples as a picture (or text) suited to the model's data kind.

    The file is replaced atomically.

    Args:
        model: The model that drew them (its `data_kind` picks the format).
        samples: The output of `model.sample`.
        path: Output path (`.txt` for text models, an image suffix otherwise).
        reference: Optional `(M, 2)` data drawn under 2-D samples.
        columns: Images per grid row (default: a square grid).

    Returns:
        The path written.
    """
    from keras_genmodels import plotting

    kind = model.data_kind
    with files.replaced_atomically(path) as partial:
        if kind == "text":
            with open(partial, "w", encoding="utf-8") as f:
                for i, text in enumerate(samples):
                    f.write(f"--- sample {i} ---\n{text}\n")
            return path
        if kind == "image":
            picture = plotting.image_grid(samples, columns=columns)
        elif kind == "points":
            picture = plotting.scatter(samples, reference)
        elif kind == "sequence":
            picture = plotting.line_plot(samples)
        else:
            raise CommandError(f"Unknown data kind {kind!r} of {type(model).__name__}.")
        picture.save(partial, format=_pil_format(path))
    return path


def _pil_format(path):
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    return {"jpg": "JPEG", "tif": "TIFF"}.get(suffix, suffix.upper())


def reference_points(model, dataset, limit=2_000):
    """Up to `limit` data points to draw under 2-D samples (else `None`)."""
    if model.data_kind != "points":
        return None
    points = [np.asarray(x) for x in dataset.take(limit).as_numpy_iterator()]
    return np.stack([p[0] if isinstance(p, tuple) else p for p in points])


def evaluate(model, run):
    """The held-out figures of a trained model on its run's test split.

    Args:
        model: The trained `GenerativeModel`.
        run: The `run.json` record; `dataset` names the data actually used.

    Returns:
        A dict of figures (floats), with `evaluation_seconds`.
    """
    from keras_genmodels import data
    from keras_genmodels.evaluation import registry

    test = data.load(run["dataset"], "test", with_labels=model.uses_labels)
    start = time.perf_counter()
    figures = registry.evaluate(model, test, run["dataset"])
    figures["evaluation_seconds"] = round(time.perf_counter() - start, 2)
    return figures


def finite_figures(value):
    """Replaces NaN and infinities (not JSON) by `None`, recursively.

    Returns:
        `(clean value, list of the dotted keys that were not finite)`.
    """
    bad = []

    def clean(item, key):
        if isinstance(item, dict):
            return {k: clean(v, f"{key}.{k}" if key else k) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [clean(v, f"{key}[{i}]") for i, v in enumerate(item)]
        if isinstance(item, float) and not math.isfinite(item):
            bad.append(key)
            return None
        return item

    return clean(value, ""), bad
