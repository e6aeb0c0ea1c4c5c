"""Progress bars for long evaluation and sampling loops, and warning lines.

Training shows Keras' own progress bar; this module gives the loops outside
`fit` (importance-sampled likelihoods, classifier-FID, chunked sampling) the
same bar with a title saying what is being computed.

Bars go to standard error (standard output stays for a command's JSON). The
bar is drawn when standard error is a terminal; elsewhere (logs, CI,
tests) one line is printed when the loop ends. `KERAS_GENMODELS_PROGRESS=0`
turns both off, `=1` forces the bar, `=2` forces the one line.
"""

import contextlib
import os
import sys

ENV_VARIABLE = "KERAS_GENMODELS_PROGRESS"


def progress_verbosity():
    """Returns the `keras.utils.Progbar` verbosity to use now.

    Returns:
        0 (silent) when `KERAS_GENMODELS_PROGRESS=0`, 2 (one line at the
        end) with `KERAS_GENMODELS_PROGRESS=2`, 1 (a live bar) on a terminal
        or with `KERAS_GENMODELS_PROGRESS=1`, else 2.
    """
    setting = os.environ.get(ENV_VARIABLE, "").strip()
    if setting in ("0", "2"):
        return int(setting)
    if setting == "1" or sys.stderr.isatty():
        return 1
    return 2


class Progress:
    """A titled `keras.utils.Progbar` over a known amount of work.

    Args:
        total: Number of units of work (positive int), e.g. images.
        description: What is being computed, shown before the bar.
        unit_name: Name of one unit, shown by the bar.

    Example:

    ```python
    bar = Progress(1_000, "classifier-FID: sampling 1,000 images", "image")
    for chunk in chunks:
        ...
        bar.advance(len(chunk))
    ```
    """

    def __init__(self, total, description, unit_name="step"):
        if int(total) < 1:
            raise ValueError(f"`total` must be positive. Received: total={total!r}")
        self.total = int(total)
        self.description = description
        self.done = 0
        self.verbose = progress_verbosity()
        self._bar = None
        if self.verbose:
            print(description, file=sys.stderr, flush=True)
            import keras  # Here: `keras-genmodels inspect` imports this module, not Keras.

            self._bar = keras.utils.Progbar(
                self.total, verbose=self.verbose, unit_name=unit_name
            )

    def advance(self, amount=1, **values):
        """Records `amount` more units of finished work.

        Args:
            amount: Units finished since the last call.
            **values: Running figures shown beside the bar (e.g. `nll=1.2`).
        """
        if self.done == self.total:  # Finished: the last line is printed.
            return
        self.done = min(self.total, self.done + int(amount))
        if self._bar is not None:
            # On stderr, so a command's stdout (JSON figures) stays parseable.
            with contextlib.redirect_stdout(sys.stderr):
                self._bar.update(self.done, values=list(values.items()) or None)


def track(iterable, total, description, unit_name="step"):
    """Yields the items of `iterable` while a `Progress` bar counts them.

    Args:
        iterable: The loop's items.
        total: How many items there are (the bar's length).
        description: What is being computed.
        unit_name: Name of one item.

    Yields:
        The items of `iterable`, unchanged.

    Example:

    ```python
    for batch in track(batches, num_batches, "IWAE (k=100) on the test set", "batch"):
        ...
    ```
    """
    bar = Progress(total, description, unit_name)
    for item in iterable:
        yield item
        bar.advance(1)


def dataset_size(dataset):
    """How many elements a dataset yields (batches, for a batched one).

    Uses `tf.data.Dataset.cardinality()` when TensorFlow knows it, else
    counts the elements once (a `filter` makes it unknown; a `cache()` in
    the pipeline keeps the counting pass from being repeated).

    Args:
        dataset: A finite `tf.data.Dataset`, or anything with `len()`.

    Returns:
        A non-negative int.

    Example:

    ```python
    batches = model.prepare_dataset(test, 100, shuffle=False)
    for batch in track(batches, dataset_size(batches), "IWAE bound", "batch"):
        ...
    ```
    """
    import tensorflow as tf

    if not isinstance(dataset, tf.data.Dataset):
        return len(dataset)
    size = int(dataset.cardinality())
    if size == int(tf.data.INFINITE_CARDINALITY):
        raise ValueError(
            "Expected a finite dataset to evaluate on. Received an infinite one "
            "(e.g. from `repeat()`): take a finite part of it first."
        )
    if size == int(tf.data.UNKNOWN_CARDINALITY):

        def add_one(count, _):
            return count + 1

        size = int(dataset.reduce(tf.constant(0, tf.int64), add_one))
    return size


def known_size(dataset):
    """The number of elements of a dataset if known without reading it, else `None`.

    Args:
        dataset: A `tf.data.Dataset`, or anything with `len()`.

    Returns:
        A non-negative int, or `None` (unknown or infinite cardinality).
    """
    import tensorflow as tf

    if not isinstance(dataset, tf.data.Dataset):
        return len(dataset)
    size = int(dataset.cardinality())
    return size if size >= 0 else None


def count_phrase(count, noun):
    """`"1,000 test images"` for a known count, `"the test images"` for `None`."""
    return f"{count:,} {noun}" if count is not None else f"the {noun}"


def track_test_batches(model, dataset, batch_size, title, noun="test examples"):
    """Batches a held-out split for evaluation and tracks them with a bar.

    Args:
        model: The model whose `prepare_dataset` batches the split (not
            shuffled).
        dataset: The unbatched test split.
        batch_size: Examples per batch.
        title: What is computed, e.g. `"IWAE bound (k=100)"`; the bar reads
            `"<title> on 1,000 test images"`.
        noun: What one example is called.

    Returns:
        An iterator over the batches.

    Example:

    ```python
    for batch in track_test_batches(vae, test, 100, "IWAE bound (k=100)", "test images"):
        ...
    ```
    """
    batches = model.prepare_dataset(dataset, batch_size, shuffle=False)
    num_batches = dataset_size(batches)
    if num_batches == 0:
        raise ValueError(f"The test split is empty: no {noun} to evaluate.")
    description = f"{title} on {count_phrase(known_size(dataset), noun)}"
    return track(batches, num_batches, description, "batch")


def warn(message):
    """Prints one `keras_genmodels: warning: ...` line on stderr.

    Args:
        message: The warning, one line.
    """
    print(f"keras_genmodels: warning: {message}", file=sys.stderr, flush=True)
