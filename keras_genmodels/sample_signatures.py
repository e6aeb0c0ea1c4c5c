"""The exported `sample` and `sample_batch` signatures every family shares.

`SampleSignatures` is mixed into `keras_genmodels.base.GenerativeModel`. A
family supplies `sample_from_seed` and, when its `sample` signature takes
more than `num_samples` and `seed`, `sample_signature_inputs`,
`check_sample_inputs` and `sample_signature_example`; this module builds
from them:

- `sample(num_samples, seed[2], ...) -> {sample_output_name: [num_samples, ...]}`
  (`sample_endpoint`): one request, one seed, `num_samples` samples.
- `sample_batch(seed[N, 2], ...) -> {sample_output_name: [N, ...]}`
  (`sample_batch_endpoint`): every input has a leading row dimension and row
  `i` of the output is `sample(num_samples=1, seed=seed[i], <row i of the
  other inputs>)`, so TF Serving's request batching (`--enable_batching`)
  can merge concurrent requests along dimension 0 and split the answer
  back.

`export_endpoints` and `export_examples` are the one list of signatures
(and their example inputs) that `keras_genmodels.export` writes, verifies
and warms up.
"""

import numpy as np
import tensorflow as tf

from keras_genmodels.signatures import named_function

#: Name of the batchable twin of the `sample` signature.
SAMPLE_BATCH = "sample_batch"


class SampleSignatures:
    """The `sample` and `sample_batch` signatures, their examples and the
    list of exported signatures (mixed into `GenerativeModel`)."""

    #: Output key of the exported `sample` and `sample_batch` signatures.
    sample_output_name = "samples"

    # ------------------------------------------------------------------
    # `sample`.
    # ------------------------------------------------------------------
    def sample_signature_inputs(self):
        """Inputs of the `sample` signature after `num_samples` and `seed`.

        A scalar spec (`[]`) is one value for the whole request (e.g.
        `num_steps`); a spec whose first dimension is `None` has one entry
        per sample (e.g. `labels: int32 [None]`). `sample_batch` relies on
        this: it gives the first one value per row and the second one entry
        per row (see `sample_batch_inputs`).

        Returns:
            A list of named `tf.TensorSpec`s; each is passed to
            `sample_from_seed` as the keyword of its name.
        """
        return []

    def check_sample_inputs(self, checks, num_samples, limits, **inputs):
        """Checks the extra `sample` signature inputs in the graph.

        `sample_batch` runs the same method on all its rows at once, with a
        `serving_limits.RowChecks` as `checks` (scalar inputs then arrive
        as `[N]` vectors, one value per row, and `num_samples` is `N`): check
        every input through `checks` (elementwise conditions), not with
        Python or `tf.cond` on its value.

        Args:
            checks: The signature's `serving_limits.InputChecks`.
            num_samples: The checked int32 `num_samples`.
            limits: The resolved `{limit name: int}`.
            **inputs: The extra inputs, by name.

        Returns:
            The checked inputs, by name.
        """
        return inputs

    def sample_endpoint(self, limits):
        """The exported `sample` signature: `(num_samples, seed, ...) -> samples`.

        Every input is checked before anything runs (`num_samples` against
        `limits["num_samples"]`, the seed, then `check_sample_inputs`), and
        the same seed gives what `sample` gives.

        Args:
            limits: The resolved `{limit name: int}` of `serving_limits`.

        Returns:
            A `tf.function` with a named input signature.
        """
        from keras_genmodels.serving_limits import InputChecks

        def sample(num_samples, seed, **inputs):
            checks = InputChecks()
            num_samples = checks.count("num_samples", num_samples, limits["num_samples"])
            seed = checks.seed(seed)
            inputs = self.check_sample_inputs(checks, num_samples, limits, **inputs)
            names = list(inputs)
            gated = checks.gate(num_samples, seed, *inputs.values())
            inputs = dict(zip(names, gated[2:]))
            samples = self.sample_from_seed(gated[0], gated[1], **inputs)
            return {self.sample_output_name: samples}

        specs = [
            tf.TensorSpec([], tf.int32, name="num_samples"),
            tf.TensorSpec([2], tf.int32, name="seed"),
            *self.sample_signature_inputs(),
        ]
        return named_function(sample, specs)

    def sample_signature_example(self):
        """Example inputs of the `sample` signature (numpy), for export checks."""
        return {"num_samples": np.int32(3), "seed": np.array([1, 2], np.int32)}

    # ------------------------------------------------------------------
    # `sample_batch`.
    # ------------------------------------------------------------------
    @property
    def sample_output_dtype(self):
        """dtype of `sample_from_seed`'s output: `tf.string` for text, else
        `tf.float32` (`sample_batch` declares it before tracing the sampler)."""
        return tf.string if self.data_kind == "text" else tf.float32

    def sample_batch_inputs(self):
        """Inputs of the `sample_batch` signature, each with `N` rows.

        `seed: int32 [N, 2]`, then each input of `sample_signature_inputs`
        with a row dimension: a scalar becomes `[N]` (one value per row), an
        input with one entry per sample (first dimension `None`) keeps its
        shape, one entry per row. There is no `num_samples`: each row is one
        sample.

        Returns:
            A list of named `tf.TensorSpec`s.

        Raises:
            ValueError: A `sample` input is neither a scalar nor one entry
                per sample; the family must override this method and
                `sample_batch_endpoint`.
        """
        specs = [tf.TensorSpec([None, 2], tf.int32, name="seed")]
        for spec in self.sample_signature_inputs():
            if spec.shape.rank == 0:
                specs.append(tf.TensorSpec([None], spec.dtype, name=spec.name))
            elif spec.shape.rank is not None and spec.shape[0] is None:
                specs.append(spec)
            else:
                raise ValueError(
                    f"{type(self).__name__}'s `sample` input `{spec.name}` is neither "
                    "a scalar nor one entry per sample (first dimension None), so "
                    "`sample_batch` cannot give it a row dimension. Received: "
                    f"shape {spec.shape}"
                )
        return specs

    def sample_batch_endpoint(self, limits):
        """The exported `sample_batch` signature: `(seed[N, 2], ...) -> [N, ...]`.

        Row `i` of the output depends on row `i` of the inputs only and
        equals `sample(num_samples=1, seed=seed[i], ...)` with row `i`'s
        other inputs (a scalar input of `sample` takes row `i`'s value, a
        per-sample input row `i`'s entry), so TF Serving can batch
        concurrent requests along dimension 0.

        Every input is checked before anything runs: `N` in
        `[1, limits["batch_size"]]`, every seed row two ints in
        `[0, 2**31 - 1]`, every input with `N` rows, then the family's
        `check_sample_inputs` on all rows at once (`RowChecks`: each row
        against the limits of `sample`). The rows are sampled one after
        another by `tf.map_fn` over `sample_from_seed(1, seed[i], ...)`,
        traced once.

        Args:
            limits: The resolved `{limit name: int}` of `serving_limits`.

        Returns:
            A `tf.function` with a named input signature.

        Example:

        ```python
        endpoint = model.sample_batch_endpoint(model.serving_limits.resolve())
        endpoint(seed=tf.constant([[1, 2], [3, 4]]))["samples"]  # 2 rows
        ```
        """
        from keras_genmodels.serving_limits import InputChecks

        specs = self.sample_batch_inputs()
        shapes = {spec.name: spec.shape for spec in specs}
        per_sample = {
            spec.name for spec in self.sample_signature_inputs() if spec.shape.rank != 0
        }
        dtype = self.sample_output_dtype
        row_shape = []

        def one_sample(row):
            seed, options = row
            options = {
                name: value[None] if name in per_sample else value
                for name, value in options.items()
            }
            sample = self.sample_from_seed(tf.constant(1, tf.int32), seed, **options)
            row_shape[:] = sample.shape[1:]
            return sample[0]

        def sample_batch(seed, *second, **inputs):
            # `named_function` passes the second input (if any) positionally.
            inputs = dict(zip([spec.name for spec in specs[1:2]], second), **inputs)
            checks = InputChecks()
            seed = checks.seed_rows(seed, limits["batch_size"])
            inputs = {name: checks.shape(name, v, shapes[name]) for name, v in inputs.items()}
            if inputs:
                checks.same_rows(seed=seed, **inputs)
            rows = tf.shape(seed)[0]
            inputs = self.check_sample_inputs(checks.per_row(), rows, limits, **inputs)
            gated = checks.gate(seed, *inputs.values())
            gated = gated if inputs else (gated,)
            options = dict(zip(inputs, gated[1:]))
            samples = tf.map_fn(
                one_sample, (gated[0], options),
                fn_output_signature=tf.TensorSpec(None, dtype),
            )
            samples = tf.ensure_shape(samples, [None, *row_shape])
            return {self.sample_output_name: samples}

        if len(specs) > 1:
            return named_function(sample_batch, specs)

        def sample_batch_of_seeds(seed):
            return sample_batch(seed)

        return tf.function(sample_batch_of_seeds, input_signature=specs, autograph=False)

    def sample_batch_example(self, rows=3):
        """Example inputs of `sample_batch` (numpy), derived from
        `sample_signature_example`: seeds `[1, 2], [2, 3], ...`, each scalar
        repeated on every row, per-sample inputs cycled to `rows` entries.

        Args:
            rows: Number of rows.

        Returns:
            `{input: numpy array}`.
        """
        example = self.sample_signature_example()
        seed = np.asarray(example["seed"], np.int32)
        batch = {"seed": (seed[None] + np.arange(rows, dtype=np.int32)[:, None])}
        for spec in self.sample_signature_inputs():
            value = np.asarray(example[spec.name])
            if value.ndim == 0:
                batch[spec.name] = np.full(rows, value, dtype=value.dtype)
            else:
                batch[spec.name] = np.resize(value, (rows, *value.shape[1:]))
        return batch

    # ------------------------------------------------------------------
    # What an export holds.
    # ------------------------------------------------------------------
    def export_endpoints(self, limits=None):
        """Every signature a SavedModel export holds, `{name: tf.function}`.

        The family's `serving_endpoints(limits)` plus, when they include
        `sample`, its batchable twin `sample_batch`
        (`sample_batch_endpoint`); `keras_genmodels.export` writes exactly
        these. The TF Lite file is unchanged (`tflite_endpoints`).

        Args:
            limits: Optional `{limit name: int}` replacing the defaults of
                the model's `serving_limits`.
        """
        endpoints = dict(self.serving_endpoints(limits=limits))
        if "sample" in endpoints and SAMPLE_BATCH not in endpoints:
            resolved = self.serving_limits.resolve(limits)
            endpoints[SAMPLE_BATCH] = self.sample_batch_endpoint(resolved)
        return endpoints

    def export_examples(self, limits=None):
        """Example inputs of every `export_endpoints` signature, within limits.

        Args:
            limits: Optional `{limit name: int}` the export enforces (as in
                `export_endpoints`); every example is cut to fit them, so
                an export with small limits still verifies and its warm-up
                requests are accepted.

        Returns:
            `{signature: {input: numpy array}}`, used to verify an export
            and to write its TF Serving warm-up requests.
        """
        examples = dict(self.signature_examples())
        if "sample" in examples and SAMPLE_BATCH not in examples:
            examples[SAMPLE_BATCH] = self.sample_batch_example()
        by_signature = self.serving_limits.by_signature(limits)
        return {
            name: fit_example(inputs, by_signature.get(name, {}))
            for name, inputs in examples.items()
        }


def fit_example(inputs, limits):
    """Cuts example inputs down to a signature's limits.

    A scalar int input named after a limit (`num_samples`, `num_steps`,
    `max_new_tokens`, `steps`) is lowered to it, and inputs with one row
    per sample follow `num_samples`; a string input named after a limit
    (`prompt`, `text`) is cut to that many bytes; the rows of batched inputs
    are cut to `batch_size`.

    Args:
        inputs: `{input: numpy array}` of one signature.
        limits: `{limit name: int}` of that signature.

    Returns:
        The fitted inputs (a new dict; unchanged arrays are shared).
    """
    inputs = dict(inputs)

    def cut_rows(rows, keep):
        for key, value in inputs.items():
            if np.ndim(value) >= 1 and np.shape(value)[0] == rows:
                inputs[key] = value[:keep]

    for name, limit in limits.items():
        value = inputs.get(name)
        if name == "batch_size":
            rows = {np.shape(v)[0] for v in inputs.values() if np.ndim(v) >= 1}
            for count in rows:
                if count > limit:
                    cut_rows(count, limit)
        elif value is None or np.ndim(value) != 0:
            continue
        elif np.asarray(value).dtype.kind in "iu" and int(value) > limit:
            inputs[name] = np.asarray(limit, dtype=np.asarray(value).dtype)
            if name == "num_samples":
                cut_rows(int(value), limit)
        elif isinstance(np.asarray(value).item(), (bytes, str)):
            text = np.asarray(value).item()
            text = text.encode("utf-8") if isinstance(text, str) else text
            if len(text) > limit:  # A byte-length limit (`prompt`, `text`).
                inputs[name] = np.asarray(text[:limit], dtype=object)
    return inputs

