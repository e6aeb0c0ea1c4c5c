"""The phone loop: the TF Lite `solver_step` run by `keras_genmodels.litert.diffusion`
against the SavedModel's `sample_loop` and `model.sample(method="dpmpp_2m")`.

Tolerance: the TF Lite loop's images (in `[0, 1]`) are within 1e-3 (max
absolute difference) of the SavedModel loop's on the same start noise; one
`solver_step` call is within the model's `tflite_tolerance` (1e-4) of its
SavedModel twin (`export.compare_tflite`, as `export_and_verify` runs it).
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_genmodels import export
from keras_genmodels.diffusion.ddpm import DDPM
from keras_genmodels.litert import diffusion as litert_diffusion

pytestmark = pytest.mark.xdist_group("test_diffusion_phone_loop")

SHAPE = (4, 4, 1)
TIMESTEPS = 50
LOOP_STEPS = 20  # The default exported step count.
MODULE_FILE = litert_diffusion.__file__


def _model(num_classes=None):
    """An untrained image DDPM whose network predicts `x_t` plus a small
    learned-looking term (of `t`, and of the label): close to the noise of
    data near 0, so its samples stay mostly inside `(0, 1)` and the
    comparisons mean something. Seconds to build and export."""
    keras.utils.set_random_seed(0)
    x = keras.Input(SHAPE)
    t = keras.Input((), dtype="int32")
    inputs, features = [x, t], [
        keras.layers.Flatten()(x), keras.layers.Embedding(TIMESTEPS, 8)(t)
    ]
    if num_classes is not None:
        labels = keras.Input((), dtype="int32")
        inputs.append(labels)
        features.append(
            keras.layers.Embedding(num_classes + 1, 8, embeddings_initializer="normal")(labels)
        )
    hidden = keras.layers.Dense(16, activation="tanh")(keras.layers.Concatenate()(features))
    small = keras.layers.Dense(
        int(np.prod(SHAPE)), kernel_initializer=keras.initializers.RandomNormal(stddev=0.2)
    )(hidden)
    eps = keras.layers.Add()([x, keras.layers.Reshape(SHAPE)(small)])
    network = keras.Model(inputs, eps)
    return DDPM(network, timesteps=TIMESTEPS, num_classes=num_classes, seed=0)


class Exported:
    def __init__(self, model, workdir):
        self.model = model
        self.savedmodel = export.export_savedmodel(model, str(workdir), name="loop")
        self.tflite = export.export_tflite(model, str(workdir / "loop.tflite"))
        self.loaded = tf.saved_model.load(self.savedmodel)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return Exported(_model(), tmp_path_factory.mktemp("phone-loop"))


@pytest.fixture(scope="module")
def exported_conditional(tmp_path_factory):
    return Exported(_model(num_classes=3), tmp_path_factory.mktemp("phone-loop-cond"))


def _noise(rows, seed=0):
    return np.random.default_rng(seed).standard_normal((rows, *SHAPE)).astype("float32")


def test_the_tflite_loop_of_20_calls_matches_the_savedmodel_loop(exported):
    assert exported.model.exported_loop_steps == LOOP_STEPS
    noise = _noise(3)
    images, calls = litert_diffusion.diffusion_sample(exported.tflite, noise)
    assert calls == 3 * LOOP_STEPS  # 20 calls per image (a static batch of 1).
    served = exported.loaded.signatures["sample_loop"](x_T=tf.constant(noise))["samples"]
    assert images.shape == served.shape == (3, 4, 4, 1)
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert 0.3 < np.mean((images > 0) & (images < 1))  # Mostly not clipped.
    np.testing.assert_allclose(images, served.numpy(), rtol=0, atol=1e-3)
    # Another noise, another sample: the loop runs on its input.
    other, _ = litert_diffusion.diffusion_sample(exported.tflite, _noise(3, seed=1))
    assert np.abs(other - images).max() > 0.1


def test_the_savedmodel_loop_is_model_sample_on_the_seeds_noise(exported):
    model = exported.model
    x_T = tf.random.stateless_normal([3, *SHAPE], seed=[1, 2])
    served = exported.loaded.signatures["sample_loop"](x_T=x_T)["samples"].numpy()
    expected = model.sample(3, seed=[1, 2], method="dpmpp_2m", num_steps=LOOP_STEPS)
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-5)


def test_solver_step_matches_its_savedmodel_twin_in_export_verification(exported):
    model = exported.model
    differences = export.compare_tflite(
        exported.tflite, exported.savedmodel, model.signature_examples(batch_size=1),
        atol=model.tflite_tolerance,
    )
    assert set(differences) == {"denoise_step", "solver_step"}
    example = model.signature_examples()["solver_step"]
    assert example["step"] == LOOP_STEPS // 2  # A second-order call.
    twin = exported.loaded.signatures["solver_step"](
        **{k: tf.constant(v) for k, v in example.items()}
    )
    assert int(twin["remaining"]) == LOOP_STEPS - 1 - LOOP_STEPS // 2


def test_served_solver_step_checks_its_step(exported):
    example = exported.model.signature_examples()["solver_step"]
    inputs = {k: tf.constant(v) for k, v in example.items()}
    inputs["step"] = tf.constant(LOOP_STEPS)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"step must be in \[0, 19\]"):
        exported.loaded.signatures["solver_step"](**inputs)


def test_a_conditional_model_runs_the_same_loop_with_labels_and_guidance(
    exported_conditional,
):
    model = exported_conditional.model
    noise, labels = _noise(2), np.array([0, 2], "int32")
    images, calls = litert_diffusion.diffusion_sample(
        exported_conditional.tflite, noise, labels=labels, guidance_scale=2.5
    )
    assert calls == 2 * LOOP_STEPS
    served = exported_conditional.loaded.signatures["sample_loop"](
        x_T=tf.constant(noise), labels=tf.constant(labels),
        guidance_scale=tf.constant(2.5),
    )["samples"].numpy()
    np.testing.assert_allclose(images, served, rtol=0, atol=1e-3)
    relabelled, _ = litert_diffusion.diffusion_sample(
        exported_conditional.tflite, noise, labels=[1, 1], guidance_scale=2.5
    )
    assert np.abs(relabelled - images).max() > 1e-2
    expected = model.sample(
        2, seed=[1, 2], labels=[0, 2], guidance_scale=2.5, method="dpmpp_2m",
        num_steps=LOOP_STEPS,
    )
    x_T = tf.random.stateless_normal([2, *SHAPE], seed=[1, 2])
    from_seed = exported_conditional.loaded.signatures["sample_loop"](
        x_T=x_T, labels=tf.constant(labels), guidance_scale=tf.constant(2.5)
    )["samples"].numpy()
    np.testing.assert_allclose(from_seed, expected, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="guidance_scale"):
        litert_diffusion.diffusion_sample(exported_conditional.tflite, noise, labels=labels)


def test_the_litert_module_runs_without_tensorflow(exported, tmp_path):
    """The module, loaded from its file (so not through the package's
    `__init__`), imports neither TensorFlow nor Keras, even while sampling."""
    noise_file, out_file = tmp_path / "noise.npy", tmp_path / "out.npy"
    noise = _noise(2)
    np.save(noise_file, noise)
    script = f"""
import importlib.util, json, sys
import numpy as np
spec = importlib.util.spec_from_file_location("litert_diffusion", {MODULE_FILE!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
images, calls = module.diffusion_sample({exported.tflite!r}, np.load({str(noise_file)!r}))
np.save({str(out_file)!r}, images)
print(json.dumps({{"calls": calls, "modules": sorted(
    m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "keras_genmodels"))}}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"calls": 2 * LOOP_STEPS, "modules": []}
    expected, _ = litert_diffusion.diffusion_sample(exported.tflite, noise)
    np.testing.assert_array_equal(np.load(out_file), expected)


def test_litert_sample_rejects_bad_inputs(exported):
    with pytest.raises(ValueError, match=r"noise.*shape \(n, 4, 4, 1\).*\(2, 5, 5, 1\)"):
        litert_diffusion.diffusion_sample(exported.tflite, np.zeros((2, 5, 5, 1)))
    with pytest.raises(ValueError, match="unconditional"):
        litert_diffusion.diffusion_sample(exported.tflite, _noise(1), labels=[0])


def test_litert_prompt_ids_are_the_models():
    from keras_genmodels.conditioning.text import prompt_token_ids

    prompts = ["a handwritten 7", "", "é 3"]
    np.testing.assert_array_equal(
        litert_diffusion.prompt_token_ids(prompts, 17), prompt_token_ids(prompts, 16)
    )
    with pytest.raises(ValueError, match="at most 16 UTF-8 bytes"):
        litert_diffusion.prompt_token_ids(["x" * 17], 17)
