"""Captions for labelled image sets: several templates per class, some held out.

A text-conditional model trains on `(image, caption)` pairs made from
`(image, label)` pairs: each example gets its class's caption from a
template drawn at random, e.g. `"a handwritten 7"` or `"the digit seven"`
for a 7. The templates come in two disjoint sets: the `"train"` templates,
drawn during training, and the `"test"` (held-out) templates, never seen in
training and used only to measure whether the model follows prompts worded
in new ways.

The digits' templates (`DIGITS`, the default `CaptionBuilder`):

- train: `"a handwritten {digit}"`, `"handwritten {name}"`, `"the digit
  {name}"`, `"the number {digit}"`, `"number {digit}"`, `"{name}"`,
  `"{digit}"`, `"an image of the number {name}"`, `"a picture of the digit
  {digit}"`;
- held out: `"digit {digit}"`, `"a handwritten {name}"`, `"the number
  {name}"`. Each puts a class word (`"seven"`) or numeral (`"7"`) in a
  wording that training used only with the other form (`"a handwritten 7"`,
  `"the number 7"`) or not at all (`"digit"` without `"the"`), so a model
  must read the class from the prompt rather than match whole captions.

`{digit}` is the numeral and `{name}` the English word. Another data set is
captioned with its own `CaptionBuilder(class_names, templates, held_out)`.
"""

import string

import numpy as np
import tensorflow as tf

SPLITS = ("train", "test")

#: The English words of the digits 0-9.
DIGIT_NAMES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
)
#: Templates drawn while training a digit model.
DIGIT_TRAIN_TEMPLATES = (
    "a handwritten {digit}",
    "handwritten {name}",
    "the digit {name}",
    "the number {digit}",
    "number {digit}",
    "{name}",
    "{digit}",
    "an image of the number {name}",
    "a picture of the digit {digit}",
)
#: Templates held out of training, for testing prompt following only.
DIGIT_HELD_OUT_TEMPLATES = (
    "digit {digit}",
    "a handwritten {name}",
    "the number {name}",
)


def _fields(template):
    return {
        field for _, field, _, _ in string.Formatter().parse(template) if field is not None
    }


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
    return split


class CaptionBuilder:
    """Captions of a labelled data set's classes from format-string templates.

    Args:
        class_names: One entry per class, in label order: a `str` (the
            `{name}` field) or a `dict` of fields (e.g. `{"name": "seven",
            "digit": "7"}`); every class must have the same fields.
        templates: The training templates, `str.format` strings over those
            fields (e.g. `"a photo of a {name}"`).
        held_out: The test-only templates, disjoint from `templates`.

    Example:

    ```python
    fashion = CaptionBuilder(
        ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
         "sneaker", "bag", "ankle boot"],
        templates=["{name}", "the {name}", "a photo of the {name}"],
        held_out=["a picture of the {name}"],
    )
    fashion.caption(9, "a photo of the {name}")  # "a photo of the ankle boot"
    pairs = fashion.captioned(keras_genmodels.data.load("fashion_mnist",
                                                         with_labels=True), seed=0)
    ```
    """

    def __init__(self, class_names, templates, held_out):
        classes = [
            {"name": c} if isinstance(c, str) else dict(c) if isinstance(c, dict) else None
            for c in class_names
        ]
        if not classes or any(
            c is None
            or set(c) != set(classes[0])
            or not all(isinstance(v, str) for v in c.values())
            for c in classes
        ):
            raise ValueError(
                "`class_names` must be a non-empty list of strings, or of dicts of "
                f"string fields with the same keys. Received: class_names={class_names!r}"
            )
        self.classes = tuple(classes)
        self.train_templates = self._check_templates(templates, "templates")
        self.held_out_templates = self._check_templates(held_out, "held_out")
        shared = sorted(set(self.train_templates) & set(self.held_out_templates))
        if shared:
            raise ValueError(
                f"A held-out template must not be a training template. Received "
                f"{shared} in both `templates` and `held_out`"
            )

    def _check_templates(self, templates, what):
        if isinstance(templates, str) or not templates:
            raise ValueError(
                f"`{what}` must be a non-empty list of template strings. "
                f"Received: {what}={templates!r}"
            )
        templates = tuple(templates)
        known = set(self.classes[0])
        for template in templates:
            if not isinstance(template, str):
                raise ValueError(f"A template must be a string. Received: {template!r}")
            unknown = sorted(_fields(template) - known)
            if unknown:
                raise ValueError(
                    f"Template {template!r} uses unknown field(s) {unknown}; the "
                    f"classes have {sorted(known)}"
                )
        return templates

    @property
    def num_classes(self):
        return len(self.classes)

    def templates(self, split="train"):
        """The templates of a split: `"train"` or `"test"` (the held-out ones)."""
        if _check_split(split) == "train":
            return self.train_templates
        return self.held_out_templates

    def caption(self, label, template):
        """The caption of class `label` in `template`.

        Args:
            label: Int in `[0, num_classes)`.
            template: A format string over the class fields (any template,
                not only this builder's).

        Returns:
            `str`.
        """
        if (
            isinstance(label, bool)
            or not isinstance(label, (int, np.integer))
            or not 0 <= label < self.num_classes
        ):
            raise ValueError(
                f"`label` must be an int in [0, {self.num_classes}). Received: "
                f"label={label!r}"
            )
        self._check_templates([template], "template")
        return template.format(**self.classes[label])

    def captions(self, split="train"):
        """Every caption of a split: `[num_classes][num_templates]` strings."""
        return [
            [self.caption(label, t) for t in self.templates(split)]
            for label in range(self.num_classes)
        ]

    def prompts_for(self, labels, split="test"):
        """One caption per requested label, cycling through a split's templates.

        What the conditional-accuracy figures ask a text-conditional model
        for: with `split="test"`, phrasings it never saw in training.

        Args:
            labels: Ints in `[0, num_classes)`.
            split: `"train"` or `"test"` (the held-out templates).

        Returns:
            A list of `len(labels)` strings.
        """
        templates = self.templates(split)
        return [
            self.caption(int(label), templates[i % len(templates)])
            for i, label in enumerate(labels)
        ]

    def longest_caption_bytes(self):
        """UTF-8 bytes of the longest caption of either split."""
        return max(
            len(caption.encode("utf-8"))
            for split in SPLITS
            for row in self.captions(split)
            for caption in row
        )

    def captioned(self, dataset, split="train", seed=None, keep_labels=False):
        """Maps `(image, label)` examples to `(image, caption)` in `tf.data`.

        Each example's template is drawn uniformly from the split's
        templates with `tf.data.Dataset.random(seed)`: the same `seed` gives
        the same captions. The train split draws new templates on each pass
        over the data (each epoch); the test split keeps every example's
        caption from pass to pass.

        Args:
            dataset: Unbatched `tf.data.Dataset` of `(image, label, ...)`
                with int labels in `[0, num_classes)` (e.g.
                `data.load(name, with_labels=True)`).
            split: `"train"` (training templates) or `"test"` (held-out).
            seed: Optional int seed; `None` draws differently every time.
            keep_labels: If True, elements are `(image, caption, label)`.

        Returns:
            An unbatched dataset of `(image, caption tf.string [])` (and the
            int32 label).
        """
        if not isinstance(dataset.element_spec, tuple) or len(dataset.element_spec) < 2:
            raise ValueError(
                "Captions are made from (image, label) pairs: load the data set "
                f"with `with_labels=True`. Received a dataset of {dataset.element_spec}"
            )
        table = tf.constant(self.captions(split))
        num_templates = len(self.templates(split))
        draws = tf.data.Dataset.random(
            seed=seed, rerandomize_each_iteration=split == "train"
        )

        def attach(example, draw):
            image, label = example[0], tf.cast(tf.reshape(example[1], []), tf.int32)
            template = tf.cast(draw % num_templates, tf.int32)
            caption = table[label, template]
            return (image, caption, label) if keep_labels else (image, caption)

        return tf.data.Dataset.zip(dataset, draws).map(
            attach, num_parallel_calls=tf.data.AUTOTUNE
        )


#: The digits' captions (MNIST and the other digit sets).
DIGITS = CaptionBuilder(
    [{"name": name, "digit": str(i)} for i, name in enumerate(DIGIT_NAMES)],
    DIGIT_TRAIN_TEMPLATES,
    DIGIT_HELD_OUT_TEMPLATES,
)


def digit_caption(label, template):
    """The caption of digit `label` in `template`, e.g. `(7, "the digit {name}")`
    -> `"the digit seven"`."""
    return DIGITS.caption(label, template)


def caption_templates(split="train"):
    """The digits' training (`"train"`) or held-out (`"test"`) templates."""
    return DIGITS.templates(split)


def captioned(dataset, split="train", seed=None, keep_labels=False, builder=DIGITS):
    """`builder.captioned(...)` (see `CaptionBuilder.captioned`), digits by default.

    Example:

    ```python
    pairs = captioned(keras_genmodels.data.load("mnist-5k", with_labels=True), seed=0)
    image, caption = next(iter(pairs))  # caption: e.g. b"the digit five"
    ```
    """
    return builder.captioned(dataset, split=split, seed=seed, keep_labels=keep_labels)
