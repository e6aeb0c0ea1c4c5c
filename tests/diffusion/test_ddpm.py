"""The DDPM model: training, EMA, sampling, round trips and exports."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_genmodels
from keras_genmodels import data, export
from keras_genmodels.diffusion.ddpm import DDPM
from keras_genmodels.diffusion.mlp import mlp_denoiser
from keras_genmodels.diffusion.unet import unet
from keras_genmodels.presets import build, get_preset

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


def test_lazy_public_name_and_default_preset():
    assert keras_genmodels.DDPM is DDPM
    name, preset = get_preset("diffusion")
    assert name == "unet-mnist" and preset.data_shape_argument == "data_shape"


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


def test_ema_is_not_trainable_and_updates_with_the_formula():
    keras.utils.set_random_seed(0)
    model = DDPM(mlp_denoiser(2, 16, 1, 8), timesteps=T, ema_decay=0.9)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    assert len(model.trainable_variables) == len(model.network.trainable_variables)
    before = [w.numpy() for w in model.ema_network.weights]
    np.testing.assert_array_equal(before[0], model.network.weights[0].numpy())
    model.fit(np.ones((8, 2), "float32"), batch_size=8, epochs=1, verbose=0)
    # After optimizer step 1 the decay is min(0.9, 2 / 11).
    decay = 2.0 / 11.0
    for ema, old, new in zip(model.ema_network.weights, before, model.network.weights):
        np.testing.assert_allclose(
            ema.numpy(), decay * old + (1 - decay) * new.numpy(), rtol=1e-5, atol=1e-7
        )


def test_sampling_shapes_ranges_and_seeds(points_model, image_model):
    model, _ = points_model
    assert model.data_kind == "points" and image_model.data_kind == "image"
    a = model.sample(16, seed=3)
    assert a.shape == (16, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, model.sample(16, seed=3))
    assert not np.array_equal(a, model.sample(16, seed=4))
    images = image_model.sample(3, seed=0)
    assert images.shape == (3, 8, 8, 1)
    assert images.min() >= 0.0 and images.max() <= 1.0
    ddim = model.sample(8, num_steps=5, method="ddim", seed=1)
    np.testing.assert_array_equal(ddim, model.sample(8, num_steps=5, method="ddim", seed=1))
    stochastic = model.sample(8, num_steps=5, method="ddim", eta=1.0, seed=1)
    assert not np.allclose(ddim, stochastic)


def test_sample_functions_are_cached(points_model):
    model, _ = points_model
    model.sample(4, num_steps=4, method="ddim", seed=0)
    fn = model._sample_fns[("ddim", 4, 0.0)]
    model.sample(6, num_steps=4, method="ddim", seed=1)
    assert model._sample_fns[("ddim", 4, 0.0)] is fn
    assert fn.experimental_get_tracing_count() == 1


def test_xla_compiled_steps_match_the_default_loop(points_model):
    model, _ = points_model
    # Respaced ancestral sampling compiles both branches of the step's
    # `tf.cond` (the DDPM step and the DDIM step); one XLA compile keeps it cheap.
    plain = model.sample(8, num_steps=6, method="ddpm", seed=2)
    xla = model.sample(8, num_steps=6, method="ddpm", seed=2, jit_compile=True)
    np.testing.assert_allclose(xla, plain, rtol=1e-4, atol=1e-4)
    assert ("ddpm", 6, 0.0, "xla") in model._sample_fns


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
    network = mlp_denoiser(2, 8, 1, 8)
    with pytest.raises(ValueError, match="schedule"):
        DDPM(network, schedule="sigmoid")
    with pytest.raises(ValueError, match="ema_decay"):
        DDPM(network, ema_decay=1.0)
    with pytest.raises(ValueError, match="sampling_steps"):
        DDPM(network, timesteps=10, sampling_steps=11)
    x = keras.Input((2,))
    t = keras.Input((), dtype="int32")
    wrong = keras.Model([x, t], keras.layers.Dense(3)(x))
    with pytest.raises(ValueError, match="shaped like its input"):
        DDPM(wrong)


def test_keras_round_trip_keeps_ema_weights(points_model, tmp_path):
    model, _ = points_model
    path = str(tmp_path / "ddpm.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, DDPM) and loaded.timesteps == T
    for a, b in zip(model.ema_network.weights, loaded.ema_network.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not all(
        np.array_equal(a.numpy(), b.numpy())
        for a, b in zip(model.ema_network.weights, model.network.weights)
    )
    np.testing.assert_array_equal(model.sample(32, seed=5), loaded.sample(32, seed=5))


def test_evaluation_metrics_for_points(points_model):
    model, _ = points_model
    test = data.load("moons:num=600", "test")
    metrics = model.evaluation_metrics(test, dataset_name="moons:num=600", num_samples=300)
    assert metrics["num_samples"] == 300 and metrics["num_examples"] == 600
    assert metrics["sliced_wasserstein_data"] > 0
    assert metrics["sliced_wasserstein_ratio"] == pytest.approx(
        metrics["sliced_wasserstein"] / metrics["sliced_wasserstein_data"]
    )
    # The reference comes from a fresh draw when the split is too small.
    small = model.evaluation_metrics(
        data.load("moons:num=200", "test"), dataset_name="moons", num_samples=200
    )
    assert small["num_samples"] == 200


def test_evaluation_metrics_for_images(image_model):
    images = np.random.default_rng(1).uniform(size=(10, 8, 8, 1)).astype("float32")
    metrics = image_model.evaluation_metrics(tf.data.Dataset.from_tensor_slices(images))
    assert set(metrics) == {"test_loss", "num_examples"} and metrics["num_examples"] == 10
    again = image_model.evaluation_metrics(tf.data.Dataset.from_tensor_slices(images))
    assert again["test_loss"] == metrics["test_loss"]


@pytest.fixture(scope="module")
def exported(points_model, tmp_path_factory):
    model, _ = points_model
    base = tmp_path_factory.mktemp("savedmodels")
    return model, export.export_and_verify(model, str(base), name="ddpm2d")


@pytest.fixture(scope="module")
def loaded(exported):
    """The points model's SavedModel, loaded once in this process."""
    _, report = exported
    return tf.saved_model.load(report["savedmodel"])


def test_export_report(exported):
    _, report = exported
    assert report["signatures"] == ["denoise_step", "predict_noise", "sample"]
    assert report["savedmodel"].endswith("ddpm2d/1")
    assert report["tflite_max_abs_diff"]["denoise_step"] <= 1e-4


def test_savedmodel_sample_matches_python_sample(exported, loaded):
    model, _ = exported
    sample = loaded.signatures["sample"]
    seed = np.array([7, 8], np.int32)
    # Below T the signature follows the model's sampler (mlp2d: respaced DDPM).
    assert model.sampling_method == "ddpm"
    for steps, method in [(T, "ddpm"), (4, "ddpm")]:
        out = sample(num_samples=tf.constant(5), seed=tf.constant(seed),
                     num_steps=tf.constant(steps))["samples"].numpy()
        np.testing.assert_allclose(
            out, model.sample(5, num_steps=steps, method=method, seed=seed), atol=1e-5
        )
    noise = loaded.signatures["predict_noise"](
        x_t=tf.zeros([3, 2]), t=tf.constant([0, 5, 19])
    )["noise"].numpy()
    np.testing.assert_allclose(
        noise, model.predict_noise(tf.zeros([3, 2]), tf.constant([0, 5, 19])).numpy(),
        atol=1e-6,
    )


def test_tflite_loop_of_ten_steps_matches_savedmodel(exported, loaded):
    _, report = exported
    step = loaded.signatures["denoise_step"]
    rng = np.random.default_rng(0)
    x_lite = x_tf = rng.standard_normal((1, 2)).astype("float32")
    for t in reversed(range(10)):
        noise = rng.standard_normal((1, 2)).astype("float32")
        t_in = np.array([t], np.int32)
        x_lite = export.run_tflite(
            report["tflite"], "denoise_step", {"x_t": x_lite, "t": t_in, "noise": noise}
        )["x_prev"]
        x_tf = step(x_t=tf.constant(x_tf), t=tf.constant(t_in),
                    noise=tf.constant(noise))["x_prev"].numpy()
    np.testing.assert_allclose(x_lite, x_tf, atol=1e-4)


def test_predict_request_and_rest_body(loaded):
    inputs = {"num_samples": np.int32(3), "seed": np.array([1, 2], np.int32),
              "num_steps": np.int32(4)}
    request = export.predict_request("ddpm2d", "sample", inputs)
    first = export.run_predict_request(loaded, request)["samples"]
    again = export.run_predict_request(loaded, request)["samples"]
    assert first.shape == (3, 2)
    np.testing.assert_array_equal(first, again)
    body = export.rest_request_body("sample", inputs)
    assert '"num_steps": 4' in body


def test_image_model_exports_and_round_trips(image_model, tmp_path):
    report = export.export_and_verify(image_model, str(tmp_path), name="ddpm_unet")
    assert report["tflite_max_abs_diff"]["denoise_step"] <= image_model.tflite_tolerance
    loaded = tf.saved_model.load(report["savedmodel"])
    out = loaded.signatures["sample"](
        num_samples=tf.constant(2), seed=tf.constant([1, 1]), num_steps=tf.constant(5)
    )["samples"].numpy()
    np.testing.assert_allclose(out, image_model.sample(2, seed=[1, 1]), atol=1e-5)
    path = str(tmp_path / "unet.keras")
    image_model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(restored.sample(2, seed=9), image_model.sample(2, seed=9))
