"""The DDPM model: training, the EMA, its samplers and its own figures.

Seeded sampling, `.keras` round trips, the SavedModel's `sample` and TF
Lite parity are checked for every preset by `tests/test_contract.py`.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_genmodels
from keras_genmodels import data
from keras_genmodels.diffusion import DDPM as PACKAGE_DDPM
from keras_genmodels.diffusion.ddpm import DDPM
from keras_genmodels.diffusion.layers import SinusoidalEmbedding
from keras_genmodels.diffusion.mlp import mlp_denoiser
from keras_genmodels.diffusion.unet import unet
from keras_genmodels.presets import build, get_preset

# Its module-scoped models are built once: one worker runs the module.
pytestmark = pytest.mark.xdist_group("test_ddpm")

T = 20  # Short processes keep the tests fast.


@pytest.fixture(scope="module")
def points_model():
    """An `mlp2d` DDPM trained briefly on moons, with its loss history."""
    keras.utils.set_random_seed(0)
    model = build("diffusion", "mlp2d", timesteps=T, hidden_units=64, seed=0)
    model.jit_compile = False  # An XLA compile of the step costs more than 8 epochs.
    train = model.prepare_dataset(data.load("moons:num=2048", "train"), 256)
    history = model.fit(train, epochs=8, verbose=0)
    return model, history.history["loss"]


@pytest.fixture(scope="module")
def image_model():
    """A tiny U-Net DDPM on 8x8 images, trained for two steps."""
    keras.utils.set_random_seed(0)
    network = unet(
        (8, 8, 1), base_filters=8, channel_multipliers=(1, 2), attention_resolutions=(4,),
        groups=4,
    )
    model = DDPM(network, timesteps=T, schedule="cosine", sampling_steps=5,
                 sampling_method="ddim", seed=0)
    # Without XLA: compiling the U-Net's train step took minutes on 2 cores.
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    images = np.random.default_rng(0).uniform(size=(32, 8, 8, 1)).astype("float32")
    model.fit(images, batch_size=16, epochs=1, verbose=0)
    return model


def test_public_names_registration_and_default_preset():
    assert keras_genmodels.DDPM is DDPM is PACKAGE_DDPM
    assert keras.saving.get_registered_name(DDPM) == "keras_genmodels>DDPM"
    name, preset = get_preset("diffusion")
    assert name == "unet-mnist"
    for preset_name in ("mlp2d", "unet-mnist", "unet-32"):
        assert get_preset("diffusion", preset_name)[1].adapts_to_data_shape


def test_loss_falls_and_only_loss_is_tracked(points_model):
    model, losses = points_model
    assert [m.name for m in model.metrics] == ["loss"]
    assert losses[-1] < 0.8 * losses[0]


def test_call_is_the_trained_network(points_model):
    model, _ = points_model
    x = np.random.default_rng(0).standard_normal((4, 2)).astype("float32")
    t = np.array([0, 1, 2, 3], "int32")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model([x, t])),
        keras.ops.convert_to_numpy(model.network([x, t])),
    )


def test_config_is_the_declared_arguments(image_model):
    config = image_model.get_config()
    assert {k: config[k] for k in DDPM.config_arguments} == {
        "timesteps": T, "schedule": "cosine", "ema_decay": 0.999, "sampling_steps": 5,
        "sampling_method": "ddim", "clip_denoised": True, "num_classes": None,
        "p_uncond": 0.1, "guidance_scale": 1.0,
    }
    restored = DDPM.from_config(config)
    assert restored.data_shape == (8, 8, 1) and restored.process.clip_range == 1.0


def _batch_norm_network():
    """`[x_t, t] -> noise` with non-trainable weights (batch-norm statistics)."""
    x_t = keras.Input((2,))
    t = keras.Input((), dtype="int32")
    h = keras.layers.Concatenate()([x_t, SinusoidalEmbedding(4)(t)])
    h = keras.layers.Dense(2)(h)
    return keras.Model([x_t, t], keras.layers.BatchNormalization(momentum=0.5)(h))


def test_ema_warm_up_values_after_two_steps():
    keras.utils.set_random_seed(0)
    model = DDPM(_batch_norm_network(), timesteps=T, ema_decay=0.2, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
    assert len(model.trainable_variables) == len(model.network.trainable_variables)
    assert any(not w.trainable for w in model.network.weights)
    weights = [[w.numpy() for w in model.network.weights]]
    np.testing.assert_array_equal(
        [w.numpy() for w in model.ema_network.weights][0], weights[0][0]
    )
    x = np.random.default_rng(0).standard_normal((8, 2)).astype("float32")
    for _ in range(2):
        model.train_on_batch(x)
        weights.append([w.numpy() for w in model.network.weights])
    # Optimizer step n uses min(ema_decay, (1 + n) / (10 + n)): 2/11 after
    # step 1 (the warm-up), then 0.2 (ema_decay caps 3/12); batch-norm
    # statistics are averaged like the trained weights.
    d1, d2 = 2.0 / 11.0, 0.2
    moved = set()
    for i, ema in enumerate(model.ema_network.weights):
        w0, w1, w2 = (step[i].astype("float64") for step in weights)
        if not np.allclose(w2, w1):
            moved.add(ema.path.split("/")[-1])
        expected = d2 * (d1 * w0 + (1 - d1) * w1) + (1 - d2) * w2
        np.testing.assert_allclose(ema.numpy(), expected, rtol=1e-6, atol=1e-7)
    assert {"kernel", "gamma", "moving_mean", "moving_variance"} <= moved


def test_sample_takes_the_seed_second_and_options_by_keyword(points_model):
    model, _ = points_model
    np.testing.assert_array_equal(model.sample(3, 0), model.sample(3, seed=0))
    with pytest.raises(TypeError):
        model.sample(3, 0, 5)


def test_sampling_shapes_ranges_and_samplers(points_model, image_model):
    model, _ = points_model
    assert model.data_kind == "points" and image_model.data_kind == "image"
    a = model.sample(16, seed=3)
    assert a.shape == (16, 2) and a.dtype == np.float32
    images = image_model.sample(3, seed=0)
    assert images.shape == (3, 8, 8, 1)
    assert images.min() >= 0.0 and images.max() <= 1.0
    ddim = model.sample(8, seed=1, num_steps=5, method="ddim")
    np.testing.assert_array_equal(ddim, model.sample(8, seed=1, num_steps=5, method="ddim"))
    stochastic = model.sample(8, seed=1, num_steps=5, method="ddim", eta=1.0)
    assert not np.allclose(ddim, stochastic)
    # Respaced ancestral sampling is DDIM with eta = 1.
    np.testing.assert_allclose(
        model.sample(8, seed=1, num_steps=5, method="ddpm"), stochastic, atol=1e-4
    )


def test_default_sampler_is_the_served_one():
    """`method=None`: ancestral at T steps, `sampling_method` below, as served."""
    keras.utils.set_random_seed(0)
    model = build("diffusion", "mlp2d", timesteps=T, hidden_units=8, num_layers=1,
                  sampling_method="ddim", seed=0)
    served = model.serving_endpoints()["sample"]
    seed = [4, 5]
    for steps, method in [(T, "ddpm"), (6, "ddim")]:
        expected = model.sample(3, seed=seed, num_steps=steps, method=method)
        np.testing.assert_array_equal(model.sample(3, seed=seed, num_steps=steps), expected)
        out = served(num_samples=tf.constant(3), seed=tf.constant(seed),
                     num_steps=tf.constant(steps))["samples"].numpy()
        np.testing.assert_allclose(out, expected, atol=1e-6)
    assert not np.allclose(
        model.sample(3, seed=seed, num_steps=T, method="ddim"),
        model.sample(3, seed=seed, num_steps=T),
    )


def _sample_function(model, **options):
    static, _ = model.sample_options(1, **options)
    return model.traced_function(("sample",) + tuple(sorted(static.items())), None)


def test_one_trace_serves_every_batch_and_seed(points_model):
    model, _ = points_model
    model.sample(4, seed=0, num_steps=4, method="ddim")
    fn = _sample_function(model, num_steps=4, method="ddim")
    model.sample(6, seed=1, num_steps=4, method="ddim")
    assert _sample_function(model, num_steps=4, method="ddim") is fn
    assert fn.experimental_get_tracing_count() == 1
    # The default options name the same function as the options they resolve to.
    model.sample(2, seed=2)
    assert _sample_function(model) is _sample_function(model, num_steps=T, method="ddpm")


def test_xla_compiled_steps_match_the_default_loop(points_model):
    model, _ = points_model
    # Respaced ancestral sampling compiles both branches of the step's
    # `tf.cond` (the DDPM step and the DDIM step); one XLA compile keeps it cheap.
    plain = model.sample(8, seed=2, num_steps=6, method="ddpm")
    xla = model.sample(8, seed=2, num_steps=6, method="ddpm", jit_compile=True)
    np.testing.assert_allclose(xla, plain, rtol=1e-4, atol=1e-4)
    assert _sample_function(model, num_steps=6, method="ddpm", jit_compile=True) is not (
        _sample_function(model, num_steps=6, method="ddpm")
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "euler"}, "method"),
        ({"num_steps": T + 1}, "at most timesteps"),
        ({"num_steps": 0}, "num_steps"),
        ({"eta": -1.0}, "eta"),
        ({"seed": -5}, "seed"),
    ],
)
def test_sample_rejects_bad_arguments(points_model, kwargs, message):
    model, _ = points_model
    with pytest.raises(ValueError, match=message):
        model.sample(2, **kwargs)


def test_constructor_rejects_bad_arguments():
    network = mlp_denoiser((2,), 8, 1, 8)
    with pytest.raises(ValueError, match="schedule"):
        DDPM(network, schedule="sigmoid")
    with pytest.raises(ValueError, match="ema_decay"):
        DDPM(network, ema_decay=1.0)
    with pytest.raises(ValueError, match="sampling_steps"):
        DDPM(network, timesteps=10, sampling_steps=11)
    with pytest.raises(ValueError, match="sampling_method"):
        DDPM(network, sampling_method="euler")
    x = keras.Input((2,))
    t = keras.Input((), dtype="int32")
    wrong = keras.Model([x, t], keras.layers.Dense(3)(x))
    with pytest.raises(ValueError, match="shaped like its input"):
        DDPM(wrong)


def test_signatures_and_export_names(points_model, image_model):
    model, _ = points_model
    served = {"sample", "predict_noise", "denoise_step", "solver_step", "sample_loop"}
    assert set(model.serving_endpoints()) == served
    assert set(model.tflite_endpoints()) == {"denoise_step", "solver_step"}
    assert set(model.signature_examples()) == served
    assert model.sample_signature_example()["num_steps"] == 3
    assert model.default_export_name == "diffusion-points"
    assert image_model.default_export_name == "diffusion"
    step = model.tflite_endpoints()["denoise_step"]
    x_t = tf.constant([[0.5, -1.0]])
    t, noise = tf.constant([7]), tf.constant([[0.1, 0.2]])
    expected = model.process.ddpm_step(x_t, t, model.predict_noise(x_t, t), noise)
    np.testing.assert_allclose(step(x_t, t, noise)["x_prev"].numpy(), expected.numpy(), atol=1e-6)


def test_evaluation_metrics_for_points(points_model):
    model, _ = points_model
    test = data.load("moons:num=600", "test")
    metrics = model.evaluation_metrics(test, dataset_name="moons:num=600", num_samples=300)
    assert metrics["num_samples"] == 300 and metrics["num_examples"] == 600
    assert metrics["num_test_points"] == 300
    assert metrics["sliced_wasserstein_data"] > 0
    assert metrics["sliced_wasserstein_ratio"] == pytest.approx(
        metrics["sliced_wasserstein"] / metrics["sliced_wasserstein_data"]
    )
    # The reference comes from a fresh draw of the toy set when the split is
    # too small, and from the split's second half when the name is no toy set.
    small = data.load("moons:num=200", "test")
    toy = model.evaluation_metrics(small, dataset_name="moons", num_samples=200)
    assert toy["num_samples"] == 200 and toy["num_test_points"] == 200
    halves = model.evaluation_metrics(small, dataset_name="points.csv", num_samples=200)
    assert halves["num_samples"] == 100 and halves["num_test_points"] == 100


def test_evaluation_metrics_for_images(image_model):
    images = np.random.default_rng(1).uniform(size=(10, 8, 8, 1)).astype("float32")
    metrics = image_model.evaluation_metrics(tf.data.Dataset.from_tensor_slices(images))
    assert set(metrics) == {"test_loss", "num_examples"} and metrics["num_examples"] == 10
    again = image_model.evaluation_metrics(tf.data.Dataset.from_tensor_slices(images))
    assert again["test_loss"] == metrics["test_loss"]
