"""The batchable `sample_batch` signature every family exports beside `sample`.

Row `i` of `sample_batch(seed[N, 2], ...)` must equal a single request
`sample(num_samples=1, seed=seed[i], <row i's inputs>)` and the Python
`model.sample(1, seed=seed[i], ...)`, and depend on row `i` only, so TF
Serving's request batching can merge concurrent requests along dimension 0.
One tiny untrained model per family (the conditional VAE and GAN with
`labels`, the DDPM with a per-row `num_steps`, the transformer with a per-row
`max_new_tokens`; the flow and the RNN forecaster take a seed only) is
exported once with `export_savedmodel` and loaded in-process.
"""

import time

import numpy as np
import pytest
import tensorflow as tf

from keras_genmodels import export, presets
from keras_genmodels.sample_signatures import SampleSignatures
from keras_genmodels.serving_limits import InputChecks, ServingLimits
from tests.contract_support import TINY, TINY_SHAPES

ROWS = 8
#: Most rows a request may send (the exports' `batch_size` limit).
LIMIT = 8
SEEDS = np.stack([np.arange(ROWS) + 5, 3 * np.arange(ROWS) + 1], axis=1).astype("int32")

#: name -> ((family, preset), extra constructor arguments, row i -> options).
FAMILIES = {
    "vae-cond": (("vae", "conv"), {"num_classes": 3}, lambda i: {"labels": i % 3}),
    "gan-cond": (("gan", "dcgan"), {"num_classes": 3}, lambda i: {"labels": (i * 2) % 3}),
    "flow": (("flow", "mlp2d"), {}, lambda i: {}),
    "diffusion": (("diffusion", "mlp2d"), {}, lambda i: {"num_steps": 2 + i % 2}),
    "rnn": (("ar", "reference"), {}, lambda i: {}),
    "transformer": (
        ("ar", "transformer-small"), {}, lambda i: {"max_new_tokens": 2 + i % 3}
    ),
}


def _build(name):
    (family, preset), extra, _ = FAMILIES[name]
    overrides = {"seed": 0, **TINY.get((family, preset), {}), **extra}
    if (family, preset) in TINY_SHAPES:
        overrides["data_shape"] = TINY_SHAPES[(family, preset)]
    return presets.build(family, preset, **overrides)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`served(name)`: `(model, export path, loaded SavedModel)`, built once."""
    base = str(tmp_path_factory.mktemp("served"))
    cache = {}

    def get(name):
        if name not in cache:
            model = _build(name)
            path = export.export_savedmodel(model, base, name=name, limits={"batch_size": LIMIT})
            cache[name] = model, path, tf.saved_model.load(path)
        return cache[name]

    return get


def _call(loaded, signature, inputs):
    fn = loaded.signatures[signature]
    outputs = fn(**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in outputs.items()}


def _requests(model, name, seeds=SEEDS):
    """The batch request, its single-row requests and Python `sample` options."""
    specs = {spec.name: spec for spec in model.sample_signature_inputs()}
    rows = [FAMILIES[name][2](i) for i in range(len(seeds))]
    batch = {"seed": seeds}
    for key, spec in specs.items():
        batch[key] = np.array([row[key] for row in rows], spec.dtype.as_numpy_dtype)
    singles = []
    for i in range(len(rows)):
        single = {"num_samples": np.int32(1), "seed": seeds[i]}
        for key, spec in specs.items():
            value = batch[key][i]
            single[key] = value if spec.shape.rank == 0 else value[None]
        singles.append(single)
    return batch, singles, rows


def _assert_same(actual, expected, message):
    """Texts equal; floats equal up to float32 rounding (TensorFlow's graph
    optimiser may fuse the ops of the loop body and of the single request
    differently, a last-bit difference)."""
    if isinstance(expected, list) or np.asarray(expected).dtype == object:
        assert list(actual) == list(expected), message
    else:
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5, err_msg=message)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_batch_of_8_equals_8_single_requests_and_python_sample(served, name):
    model, _, loaded = served(name)
    batch, singles, rows = _requests(model, name)
    assert {spec.name for spec in model.sample_batch_inputs()} == set(batch)
    output = _call(loaded, "sample_batch", batch)
    assert list(output) == [model.sample_output_name]
    samples = output[model.sample_output_name]
    assert samples.shape[0] == ROWS
    for i, (single, options) in enumerate(zip(singles, rows)):
        one = _call(loaded, "sample", single)[model.sample_output_name]
        _assert_same(samples[i : i + 1], one, f"row {i}")
        expected = model.sample(1, seed=[int(s) for s in SEEDS[i]], **options)
        _assert_same(model.sample_result(tf.constant(samples[i : i + 1])), expected, f"row {i}")


@pytest.mark.parametrize("name", list(FAMILIES))
def test_each_row_depends_on_its_own_inputs_only(served, name):
    model, _, loaded = served(name)
    batch, _, _ = _requests(model, name)
    before = _call(loaded, "sample_batch", batch)[model.sample_output_name]
    changed = dict(batch, seed=batch["seed"].copy())
    changed["seed"][3] = [999, 7]
    after = _call(loaded, "sample_batch", changed)[model.sample_output_name]
    others = [i for i in range(ROWS) if i != 3]
    np.testing.assert_array_equal(after[others], before[others])
    assert not np.array_equal(after[3], before[3])
    # Fewer rows: the same rows again (no dependence on the batch size).
    first = _call(loaded, "sample_batch", {k: v[:2] for k, v in batch.items()})
    np.testing.assert_array_equal(first[model.sample_output_name], before[:2])


def _refused(loaded, inputs, message):
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _call(loaded, "sample_batch", inputs)
    assert message in info.value.message, info.value.message


@pytest.mark.parametrize("name", list(FAMILIES))
def test_too_many_rows_and_bad_seed_rows_are_refused(served, name):
    model, _, loaded = served(name)
    batch, _, _ = _requests(model, name, seeds=np.tile(SEEDS, (2, 1))[: LIMIT + 1])
    _refused(
        loaded, batch,
        f"seed must have shape [N, 2] with 1 <= N <= {LIMIT}. Received: seed with shape [9 2]",
    )
    _refused(
        loaded, {k: v[:0] for k, v in batch.items()},
        f"seed must have shape [N, 2] with 1 <= N <= {LIMIT}. Received: seed with shape [0 2]",
    )
    batch, _, _ = _requests(model, name)
    bad = dict(batch, seed=batch["seed"].copy())
    bad["seed"][5] = [4, -3]
    _refused(
        loaded, bad,
        "Every seed row must be two ints in [0, 2**31 - 1]. Received: seed[5]=[4 -3]",
    )
    assert model.serving_limits.by_signature({"batch_size": LIMIT})["sample_batch"] == {
        "batch_size": LIMIT,
        **{k: v for k, v in model.serving_limits.resolve().items()
           if k in model.serving_limits.signatures["sample"] and k != "num_samples"},
    }


# (family, input with a row too few, another bad row, its message).
ROW_INPUTS = [
    ("gan-cond", "labels", 3, "labels must be in [0, 2]. Received: labels with values in [0, 3]"),
    (
        "diffusion", "num_steps", 11,
        "num_steps must be in [1, 10]. Received: num_steps=[2 3 2 ... 3 11 3]",
    ),
    (
        "transformer", "max_new_tokens", 1_000_000_000,
        "max_new_tokens must be in [1, 1024]. Received: max_new_tokens=[2 3 4 ... 4 1000000000 3]",
    ),
    ("transformer", "max_new_tokens", 0, "max_new_tokens must be in [1, 1024]"),
]


@pytest.mark.parametrize(
    "name, key, value, message", ROW_INPUTS, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in ROW_INPUTS]
)
def test_each_row_is_checked_against_the_limits_of_sample(served, name, key, value, message):
    model, _, loaded = served(name)
    batch, _, _ = _requests(model, name)
    short = dict(batch, **{key: batch[key][:-1]})
    _refused(
        loaded, short,
        f"seed, {key} must have the same number of rows. Received: {ROWS}, {ROWS - 1} rows",
    )
    bad = dict(batch, **{key: batch[key].copy()})
    bad[key][6] = value
    start = time.perf_counter()
    _refused(loaded, bad, message)
    # Refused before anything runs: a billion new tokens would take hours.
    assert time.perf_counter() - start < 5.0


def test_examples_cover_sample_batch_and_run_without_this_package(served):
    model, path, loaded = served("vae-cond")
    examples = model.export_examples()
    assert set(examples) == set(model.export_endpoints()) == set(loaded.signatures) - {
        "serving_default"
    }
    assert examples["sample_batch"]["seed"].tolist() == [[1, 2], [2, 3], [3, 4]]
    assert examples["sample_batch"]["labels"].tolist() == [0, 1, 2]
    # A TensorFlow-only process runs every signature twice, with equal outputs.
    outputs = export.verify_savedmodel(path, examples)
    assert outputs["sample_batch"]["samples"].shape == (3, *model.data_shape)
    model = served("diffusion")[0]
    example = model.export_examples()["sample_batch"]
    assert example["num_steps"].tolist() == [3, 3, 3]


def test_the_sampler_is_traced_once(served, monkeypatch):
    model = served("diffusion")[0]
    calls = []
    sampler = model.sample_from_seed

    def counted(*args, **kwargs):
        calls.append(kwargs)
        return sampler(*args, **kwargs)

    monkeypatch.setattr(model, "sample_from_seed", counted)
    endpoint = model.sample_batch_endpoint(model.serving_limits.resolve())
    endpoint.get_concrete_function()
    assert len(calls) == 1 and set(calls[0]) == {"num_steps"}


def test_inputs_without_a_row_dimension_are_refused_when_building():
    class FixedInput(SampleSignatures):
        def sample_signature_inputs(self):
            return [tf.TensorSpec([4], tf.float32, name="style")]

    with pytest.raises(ValueError, match=r"`style` is neither a scalar.*Received: shape \(4,\)"):
        FixedInput().sample_batch_inputs()


def test_serving_limits_add_sample_batch_to_models_with_sample():
    limits = ServingLimits({"sample": ("num_samples", "num_steps"), "step": ("batch_size",)})
    assert limits.signatures["sample_batch"] == ("batch_size", "num_steps")
    assert limits.by_signature({"batch_size": 4})["sample_batch"] == {
        "batch_size": 4, "num_steps": 1000,
    }
    assert "sample_batch" not in ServingLimits({"score": ("text",)}).signatures


def test_row_checks_check_every_row():
    checks = InputChecks()
    value = checks.per_row().count("n", tf.constant([1, 4]), 4)
    np.testing.assert_array_equal(checks.gate(value), [1, 4])
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"num_steps must be in \[1, 4\]. Received: num_steps=\[1 5 2\]",
    ):
        InputChecks().per_row().count("num_steps", tf.constant([1, 5, 2]), 4)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"expected shape \[\?\]"):
        InputChecks().per_row().count("num_steps", tf.constant([[1]]), 4)


def test_examples_are_cut_to_the_export_limits():
    from keras_genmodels.sample_signatures import fit_example

    example = {"num_samples": np.int32(3), "seed": np.array([1, 2], np.int32),
               "labels": np.array([0, 1, 2], np.int32), "num_steps": np.int32(3)}
    fitted = fit_example(example, {"num_samples": 2, "num_steps": 1})
    assert int(fitted["num_samples"]) == 2 and int(fitted["num_steps"]) == 1
    np.testing.assert_array_equal(fitted["labels"], [0, 1])
    np.testing.assert_array_equal(fitted["seed"], [1, 2])  # Not a per-sample input.
    rows = {"seed": np.ones((3, 2), np.int32), "labels": np.array([0, 1, 2], np.int32)}
    cut = fit_example(rows, {"batch_size": 1})
    assert cut["seed"].shape == (1, 2) and cut["labels"].shape == (1,)
    assert fit_example(example, {"num_samples": 8})["labels"] is example["labels"]
    text = {"prompt": np.asarray(b"def f(x):", dtype=object), "max_new_tokens": np.int32(8)}
    fitted = fit_example(text, {"prompt": 4, "max_new_tokens": 1024})
    assert fitted["prompt"].item() == b"def " and int(fitted["max_new_tokens"]) == 8
