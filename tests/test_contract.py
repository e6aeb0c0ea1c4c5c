"""The `GenerativeModel` contract, checked for every registered preset.

Each preset (`keras_genmodels.presets.list_presets()`, made tiny by
`contract_support.TINY`) is built and trained once per module (per xdist
worker), then:

- two `fit` steps on `prepare_dataset` batches give finite losses and move
  the weights;
- `sample` repeats with the same seed and differs with another;
- the `.keras` file loads with `safe_mode=True` into equal weights and equal
  samples;
- the exported `sample` signature, run by a process that imports only
  TensorFlow, equals `sample(num_samples, seed=seed, **extras)` for the
  model's `sample_signature_example()`;
- every TF Lite signature, run by LiteRT, matches its SavedModel twin within
  the model's `tflite_tolerance`.

A newly registered preset gets every check; a large one needs a `TINY` entry
to keep the checks fast.
"""

import keras
import numpy as np
import pytest

from keras_genmodels import export
from tests import contract_support
from tests.contract_support import TensorFlowOnlyProcess

PRESETS = contract_support.all_presets()
SEED = [1, 2]
OTHER_SEED = [3, 4]


class _BatchLogs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = []

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append({k: float(v) for k, v in (logs or {}).items()})


class Trained:
    """One tiny preset, trained two steps, and its exports (made on demand)."""

    def __init__(self, family, preset, workdir):
        self.family, self.preset, self.workdir = family, preset, workdir
        self.model = contract_support.build_tiny(family, preset)
        before = [np.array(v) for v in self.model.trainable_variables]
        self.logs = _BatchLogs()
        self.fit_error = None
        batches = self.model.prepare_dataset(
            contract_support.synthetic_dataset(self.model), contract_support.BATCH_SIZE
        )
        try:
            self.model.fit(
                batches.repeat(), steps_per_epoch=2, epochs=1, verbose=0,
                callbacks=[self.logs],
            )
        except Exception as error:  # noqa: BLE001 - reported by the fit check.
            self.fit_error = error
        self.moved = any(
            not np.array_equal(old, np.array(new))
            for old, new in zip(before, self.model.trainable_variables)
        )
        self._savedmodel = None
        self._tflite = None

    @property
    def savedmodel(self):
        if self._savedmodel is None:
            self._savedmodel = export.export_savedmodel(
                self.model, str(self.workdir / "savedmodels"), name="model"
            )
        return self._savedmodel

    @property
    def tflite(self):
        if self._tflite is None:
            self._tflite = export.export_tflite(
                self.model, str(self.workdir / "model.tflite"), batch_size=1
            )
        return self._tflite


@pytest.fixture(scope="module")
def tf_only(tmp_path_factory):
    """The module's process that imports only TensorFlow."""
    process = TensorFlowOnlyProcess(str(tmp_path_factory.mktemp("tf-only")))
    yield process
    process.close()


@pytest.fixture(
    scope="module",
    params=[
        # One xdist group per preset: under `--dist loadgroup` one worker
        # trains and exports each preset once for its five checks.
        pytest.param(case, id=f"{case[0]}/{case[1]}", marks=pytest.mark.xdist_group(
            f"contract-{case[0]}-{case[1]}"
        ))
        for case in PRESETS
    ],
)
def trained(request, tmp_path_factory, tf_only):
    # `tf_only` first: its TensorFlow import overlaps the first training.
    family, preset = request.param
    keras.utils.set_random_seed(1234)
    return Trained(family, preset, tmp_path_factory.mktemp(f"{family}-{preset}"))


def _assert_same_samples(actual, expected, atol=0.0):
    if isinstance(expected, list):
        assert actual == expected
    else:
        np.testing.assert_allclose(actual, expected, rtol=0, atol=atol)


def test_two_fit_steps_give_finite_losses(trained):
    if trained.fit_error is not None:
        raise trained.fit_error
    assert len(trained.logs.batches) == 2
    for logs in trained.logs.batches:
        assert logs, "fit logged no loss"
        bad = {name: value for name, value in logs.items() if not np.isfinite(value)}
        assert not bad, f"non-finite training logs: {bad}"
    assert trained.moved, "two training steps left every trainable weight unchanged"


def test_sample_repeats_with_its_seed_and_differs_with_another(trained):
    model = trained.model
    first = model.sample(3, seed=SEED)
    again = model.sample(3, seed=SEED)
    other = model.sample(3, seed=OTHER_SEED)
    if model.data_kind == "text":
        assert isinstance(first, list) and len(first) == 3
        assert all(isinstance(text, str) for text in first)
        assert first == again
        assert first != other
    else:
        assert isinstance(first, np.ndarray) and first.shape[0] == 3
        if model.data_kind in ("image", "points"):
            assert first.shape == (3, *model.data_shape)
        assert np.all(np.isfinite(first))
        np.testing.assert_array_equal(first, again)
        assert not np.array_equal(first, other)


def test_keras_file_loads_safely_with_equal_weights_and_samples(trained, tmp_path):
    model = trained.model
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is type(model)
    assert [v.path for v in loaded.weights] == [v.path for v in model.weights]
    for saved, restored in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(np.array(restored), np.array(saved), err_msg=saved.path)
    _assert_same_samples(loaded.sample(3, seed=SEED), model.sample(3, seed=SEED))


def test_savedmodel_sample_in_tensorflow_only_process_equals_sample(trained, tf_only):
    model = trained.model
    example = model.sample_signature_example()
    assert {"num_samples", "seed"} <= set(example)
    served = tf_only.call(trained.savedmodel, "sample", example)
    assert list(served) == [model.sample_output_name]
    extras = contract_support.python_options(
        {k: v for k, v in example.items() if k not in ("num_samples", "seed")}
    )
    expected = model.sample(
        int(example["num_samples"]), seed=[int(s) for s in example["seed"]], **extras
    )
    samples = served[model.sample_output_name]
    if model.data_kind == "text":
        samples = [text.decode("utf-8") for text in samples.reshape(-1)]
    _assert_same_samples(samples, expected, atol=1e-5)


def test_tflite_signatures_match_their_savedmodel_twins(trained, tf_only):
    model = trained.model
    lite_signatures = export.tflite_signatures(trained.tflite)
    assert lite_signatures, "the TF Lite file has no signature"
    assert set(lite_signatures) <= set(tf_only.signatures(trained.savedmodel))
    examples = model.signature_examples(batch_size=1)
    for signature in lite_signatures:
        inputs = examples[signature]
        lite = export.run_tflite(trained.tflite, signature, inputs)
        twin = tf_only.call(trained.savedmodel, signature, inputs)
        assert set(lite) == set(twin), signature
        for name, expected in twin.items():
            assert lite[name].shape == expected.shape, (signature, name)
            np.testing.assert_allclose(
                lite[name], expected, rtol=0, atol=model.tflite_tolerance,
                err_msg=f"{signature}/{name}",
            )
