"""Limits on what a client may ask of a served signature, checked in the graph.

TensorFlow Serving passes a request's tensors straight into a signature: it
checks neither their shapes against the signature's nor their values. So
every exported signature checks its own inputs first, with assertions that
fail with `INVALID_ARGUMENT` naming the input, the value received and what is
accepted, before any other op runs (and so before any allocation a client
could size):

- every input has the shape of the signature (`tf.ensure_shape`: static
  shapes are not enforced by TF Serving, and shape-derived checks are
  constant-folded from the declared shape);
- every size a client controls (`num_samples`, `max_new_tokens`,
  `num_steps`, forecast `steps`, prompt, text and history lengths, the rows
  of a batched input) lies between 1 (0 for a prompt) and a limit fixed at
  export time;
- every other value lies in its range (seeds, labels, timesteps, token ids,
  temperatures, `top_k`) and float inputs are finite.

A model lists the limits its signatures use in its `serving_limits`
property, a `ServingLimits`; `export_savedmodel(..., limits=...)` overrides
them by name. `DEFAULT_LIMITS` holds the defaults a family does not change.
A model with a `sample` signature also exports its batchable twin
`sample_batch`, whose limits (`sample_batch_limits`) `ServingLimits` adds by
itself; `RowChecks` runs the checks of `sample` on every row of it.
"""

import numbers

import tensorflow as tf

_INT32_MAX = 2**31 - 1

#: Default limit of each client-controlled size, by limit name.
DEFAULT_LIMITS = {
    "num_samples": 1024,
    "batch_size": 1024,
    "max_new_tokens": 1024,
    "prompt": 16384,
    "text": 16384,
    "history": 4096,
    "steps": 1024,
    "num_steps": 1000,
}

#: What each limit bounds (for model cards and the README).
LIMIT_MEANINGS = {
    "num_samples": "largest `num_samples`",
    "batch_size": "most rows of a batched input (its first dimension)",
    "max_new_tokens": "largest `max_new_tokens`",
    "prompt": "longest `prompt`, in UTF-8 bytes",
    "text": "longest `text`, in UTF-8 bytes",
    "history": "longest `history` row, in values",
    "steps": "largest forecast `steps`",
    "num_steps": "largest `num_steps` (reverse diffusion steps)",
}


def sample_batch_limits(sample_limits):
    """The limits of `sample_batch`, from those of `sample`.

    `sample_batch` has no `num_samples`: its rows (one sample each) are
    bounded by `batch_size`, and each row by the other limits of `sample`
    (e.g. `num_steps`, `max_new_tokens`).

    Args:
        sample_limits: The limit names of the `sample` signature.

    Returns:
        A tuple of limit names, `batch_size` first.
    """
    others = [key for key in sample_limits if key not in ("num_samples", "batch_size")]
    return ("batch_size", *others)


class ServingLimits:
    """The limits a model's serving signatures enforce.

    When `signatures` has `sample` but no `sample_batch`, `sample_batch` is
    added with `sample_batch_limits` (every model with a `sample` signature
    exports its batchable twin, `GenerativeModel.sample_batch_endpoint`).

    Args:
        signatures: `{signature: tuple of limit names}`, the limits each
            serving signature checks.
        defaults: Optional `{limit name: int}` replacing `DEFAULT_LIMITS` for
            this model.
        maxima: Optional `{limit name: int}`: largest value the model can
            serve at all (e.g. `num_steps` is at most the diffusion's T).

    Example:

    ```python
    limits = ServingLimits({"sample": ("num_samples",)}, {"num_samples": 256})
    limits.resolve({"num_samples": 64})  # {"num_samples": 64}
    limits.by_signature()
    # {"sample": {"num_samples": 256}, "sample_batch": {"batch_size": 1024}}
    ```
    """

    def __init__(self, signatures, defaults=None, maxima=None):
        self.signatures = {name: tuple(keys) for name, keys in signatures.items()}
        if "sample" in self.signatures:
            self.signatures.setdefault(
                "sample_batch", sample_batch_limits(self.signatures["sample"])
            )
        self.names = tuple(
            sorted({key for keys in self.signatures.values() for key in keys})
        )
        defaults = dict(defaults or {})
        self.defaults = {
            key: defaults.get(key, DEFAULT_LIMITS.get(key)) for key in self.names
        }
        missing = sorted(key for key, value in self.defaults.items() if value is None)
        if missing:
            raise ValueError(
                f"Limits {missing} have no default; pass them in `defaults`. "
                f"Received: defaults={defaults!r}"
            )
        self.maxima = dict(maxima or {})

    def resolve(self, limits=None):
        """Merges `limits` into the defaults and validates the result.

        Args:
            limits: Optional `{limit name: positive int}`.

        Returns:
            `{limit name: int}` for every limit of the model.
        """
        limits = dict(limits or {})
        unknown = sorted(set(limits) - set(self.names))
        if unknown:
            raise ValueError(
                f"Unknown serving limit(s) {unknown}; this model's signatures "
                f"accept {list(self.names)}. Received: limits={limits!r}"
            )
        resolved = dict(self.defaults)
        for key, value in limits.items():
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Integral)
                or not 1 <= value <= _INT32_MAX
            ):
                raise ValueError(
                    f"Serving limit `{key}` must be an integer in [1, 2**31 - 1]. "
                    f"Received: {key}={value!r}"
                )
            resolved[key] = int(value)
        for key, maximum in self.maxima.items():
            if key in resolved and resolved[key] > maximum:
                raise ValueError(
                    f"Serving limit `{key}` must be at most {maximum} for this "
                    f"model. Received: {key}={resolved[key]}"
                )
        return resolved

    def by_signature(self, limits=None):
        """Returns `{signature: {limit name: int}}` after merging `limits`."""
        resolved = self.resolve(limits)
        return {
            signature: {key: resolved[key] for key in keys}
            for signature, keys in sorted(self.signatures.items())
        }


def resolve_limits(model, limits=None):
    """The limits a model's export enforces: its defaults merged with `limits`.

    Args:
        model: A `GenerativeModel` with a `serving_limits` property.
        limits: Optional `{limit name: positive int}`.

    Returns:
        `{limit name: int}`.
    """
    return model.serving_limits.resolve(limits)


def signature_limits(model, limits=None):
    """The limits each serving signature of `model` enforces.

    Args:
        model: A `GenerativeModel` with a `serving_limits` property.
        limits: Optional `{limit name: positive int}` as given to
            `export_savedmodel`.

    Returns:
        `{signature: {limit name: int}}`; `LIMIT_MEANINGS` says what each
        limit bounds.

    Example:

    ```python
    signature_limits(vae)
    # {"decode": {"batch_size": 1024}, "encode": {"batch_size": 1024},
    #  "sample": {"num_samples": 1024}, "sample_batch": {"batch_size": 1024}}
    ```
    """
    return model.serving_limits.by_signature(limits)


def _shape_text(shape):
    """`[N, 28, 28, 1]`: `N` is the batch, `?` any other free dimension."""
    dims = ["?" if d is None else str(d) for d in shape]
    return "[" + ", ".join(["N", *dims[1:]] if dims else dims) + "]"


class InputChecks:
    """In-graph checks of one signature's inputs, run before anything else.

    `shape`, `count`, `seed`, `seed_rows`, `batch`, `text` and `scalar`
    check one input and return it with its shape ensured (`tf.ensure_shape`,
    which fails with `INVALID_ARGUMENT` too); `finite`, `values`,
    `same_rows` and `check` add checks of values; `per_row` is a
    `RowChecks` view adding to the same checks. The assertions run one after another (so
    the first failing one is reported), and `gate` returns the inputs
    behind all of them, so no op built from the gated tensors runs before
    every check has passed. A failing check raises `InvalidArgumentError`
    (TF Serving: `INVALID_ARGUMENT`) with a message such as
    `num_samples must be in [1, 1024]. Received: num_samples=1000000000`.

    Example:

    ```python
    @tf.function(input_signature=[...])
    def sample(num_samples, seed):
        checks = InputChecks()
        num_samples = checks.count("num_samples", num_samples, 1024)
        seed = checks.seed(seed)
        num_samples, seed = checks.gate(num_samples, seed)
        ...
    ```
    """

    def __init__(self):
        self._asserts = []

    def check(self, condition, template, *values):
        """Adds an assertion of `condition`.

        Args:
            condition: Scalar bool tensor.
            template: Message; each `{}` is replaced by one of `values`
                (summarised to 3 elements per dimension).
            *values: Tensors formatted into the message.
        """
        message = tf.strings.format(template, values, summarize=3)
        with tf.control_dependencies(self._asserts[-1:]):
            self._asserts.append(tf.debugging.Assert(condition, [message]))

    def gate(self, *tensors):
        """Returns `tensors` behind every check so far (one tensor for one).

        `None` entries (absent optional inputs) are returned as they are.
        """
        with tf.control_dependencies(self._asserts):
            gated = tuple(None if t is None else tf.identity(t) for t in tensors)
        return gated[0] if len(gated) == 1 else gated

    def shape(self, name, value, shape):
        """Ensures `value` has `shape` (`None`: any size); returns it."""
        return tf.ensure_shape(value, shape, name=f"check_{name}_shape")

    def count(self, name, value, limit, low=1):
        """Checks an int scalar `value` in `[low, limit]`; returns it."""
        value = self.shape(name, value, [])
        self.check(
            (value >= low) & (value <= limit),
            f"{name} must be in [{low}, {limit}]. Received: {name}={{}}",
            value,
        )
        return value

    def seed(self, value, name="seed"):
        """Checks an int32 `[2]` seed of non-negative ints; returns it."""
        value = self.shape(name, value, [2])
        self.check(
            tf.reduce_all(value >= 0),
            f"{name} must be two ints in [0, 2**31 - 1]. Received: {name}={{}}",
            value,
        )
        return value

    def seed_rows(self, value, limit, name="seed"):
        """Checks int32 `[N, 2]` seeds, `1 <= N <= limit`, each row two
        non-negative ints (the first bad row is named); returns them."""
        value = self.batch(name, value, [None, 2], limit)
        bad = tf.reduce_any(value < 0, axis=1)
        rows = tf.shape(value)[0]
        first = tf.reduce_min(tf.where(bad, tf.range(rows), rows))
        self.check(
            tf.logical_not(tf.reduce_any(bad)),
            f"Every {name} row must be two ints in [0, 2**31 - 1]. Received: "
            f"{name}[{{}}]={{}}",
            first,
            tf.reshape(tf.boolean_mask(value, bad)[:1], [-1]),
        )
        return value

    def per_row(self):
        """A `RowChecks` view whose checks join this chain (same `gate`)."""
        view = RowChecks()
        view._asserts = self._asserts
        return view

    def batch(self, name, value, shape, limit, finite=False, low=None, high=None):
        """Checks a batched tensor: `shape` with `N` rows, `1 <= N <= limit`.

        Args:
            name: Input name.
            value: The input.
            shape: Expected shape; the first dimension is the batch and
                `None` dimensions are free.
            limit: Most rows.
            finite: Whether every value must be finite (float inputs).
            low: Optional smallest value allowed.
            high: Optional largest value allowed.

        Returns:
            `value` with its shape ensured.
        """
        value = self.shape(name, value, shape)
        rows = tf.shape(value)[0]
        self.check(
            (rows >= 1) & (rows <= limit),
            f"{name} must have shape {_shape_text(shape)} with 1 <= N <= {limit}. "
            f"Received: {name} with shape {{}}",
            tf.shape(value),
        )
        if finite:
            self.finite(name, value)
        if low is not None or high is not None:
            self.values(name, value, low, high)
        return value

    def finite(self, name, value):
        """Checks that every value of a float tensor is finite."""
        self.check(
            tf.reduce_all(tf.math.is_finite(value)),
            f"{name} must be finite. Received: {name} with NaN or infinite values",
        )

    def values(self, name, value, low=None, high=None):
        """Checks every value of `value` in `[low, high]` (either may be `None`)."""
        condition = tf.constant(True)
        if low is not None:
            condition &= tf.reduce_all(value >= low)
        if high is not None:
            condition &= tf.reduce_all(value <= high)
        low_text = "-inf" if low is None else low
        high_text = "inf" if high is None else high
        self.check(
            condition,
            f"{name} must be in [{low_text}, {high_text}]. Received: {name} with "
            "values in [{}, {}]",
            tf.reduce_min(value),
            tf.reduce_max(value),
        )

    def same_rows(self, **tensors):
        """Checks that the named tensors have the same number of rows."""
        names = list(tensors)
        rows = [tf.shape(t)[0] for t in tensors.values()]
        condition = tf.reduce_all(tf.equal(tf.stack(rows), rows[0]))
        self.check(
            condition,
            f"{', '.join(names)} must have the same number of rows. Received: "
            + ", ".join("{}" for _ in names) + " rows",
            *rows,
        )

    def text(self, name, value, limit, low=1):
        """Checks a string scalar of `low` to `limit` UTF-8 bytes; returns it."""
        value = self.shape(name, value, [])
        length = tf.strings.length(value)
        self.check(
            (length >= low) & (length <= limit),
            f"{name} must have {low} to {limit} bytes. Received: {name} with {{}} "
            "bytes",
            length,
        )
        return value

    def scalar(self, name, value, low=None, high=None):
        """Checks a finite float scalar in `[low, high]`; returns it."""
        value = self.shape(name, value, [])
        condition = tf.math.is_finite(value)
        if low is not None:
            condition &= value >= low
        if high is not None:
            condition &= value <= high
        low_text = "-inf" if low is None else low
        high_text = "inf" if high is None else high
        self.check(
            condition,
            f"{name} must be a finite number in [{low_text}, {high_text}]. "
            f"Received: {name}={{}}",
            value,
        )
        return value


class RowChecks(InputChecks):
    """The checks of a one-request signature, run on every row of a batch.

    `sample_batch` gives each scalar input of `sample` one value per row
    (`[N]`) and each per-sample input one entry per row. Passed to the
    family's `check_sample_inputs` in place of `InputChecks`, `RowChecks`
    runs the same checks on all rows at once: a scalar shape `[]` is
    ensured as `[N]` and every condition must hold on every row, so a
    per-row `num_steps` is checked against the limit of `sample`'s
    `num_steps`, with the rows received in the message (summarised). Get
    one with `InputChecks.per_row()`, so its checks are gated with the
    others.

    Example:

    ```python
    checks = InputChecks()
    seed = checks.seed_rows(seed, 1024)
    num_steps = checks.per_row().count("num_steps", num_steps, 1000)
    # InvalidArgumentError: num_steps must be in [1, 1000].
    #   Received: num_steps=[3 2000 3]
    ```
    """

    def check(self, condition, template, *values):
        """Adds an assertion that `condition` holds on every row."""
        super().check(tf.reduce_all(condition), template, *values)

    def shape(self, name, value, shape):
        """Ensures `shape`, a scalar shape `[]` read as `[N]`; returns `value`."""
        shape = tf.TensorShape(shape)
        return super().shape(name, value, [None] if shape.rank == 0 else shape)
