"""The class-conditional DDPM: label dropout, classifier-free guidance, its
signatures and its errors.

Seeded sampling, `.keras` round trips, the served `sample` (with labels and
guidance) in a TensorFlow-only process and the TF Lite guided step are
checked for `unet-mnist-cond` by `tests/test_contract.py`.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_genmodels.diffusion.guidance import ClassConditioning, drop_condition, guided_noise
from keras_genmodels.diffusion.presets import build_unet_mnist, build_unet_mnist_cond

pytestmark = pytest.mark.xdist_group("test_conditional_ddpm")

TINY = dict(
    data_shape=(8, 8, 1), base_filters=8, channel_multipliers=(1, 2),
    attention_resolutions=(), timesteps=20, sampling_steps=4, schedule="cosine",
)


def _fit(p_uncond, epochs):
    """A tiny class-conditional U-Net DDPM fitted to two classes of toy images
    (class 0 lit on the left, class 1 on the right); returns it, its label
    table before training and its loss history."""
    keras.utils.set_random_seed(0)
    model = build_unet_mnist_cond(num_classes=2, p_uncond=p_uncond, seed=0, **TINY)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=False)
    table = model.network.get_layer("label_embedding").embeddings.numpy().copy()
    labels = np.arange(128) % 2
    left = np.zeros((1, 8, 8, 1), "float32")
    left[:, :, :4] = 1.0
    images = np.where(labels[:, None, None, None] == 0, left, 1.0 - left) * 0.8 + 0.1
    dataset = tf.data.Dataset.from_tensor_slices((images.astype("float32"), labels))
    history = model.fit(model.prepare_dataset(dataset, 32), epochs=epochs, verbose=0)
    return model, table, history.history["loss"]


@pytest.fixture(scope="module")
def trained():
    model, table, losses = _fit(p_uncond=0.25, epochs=6)
    return model, table, losses


def test_label_embedding_adds_exactly_its_table():
    conditional = build_unet_mnist(num_classes=10, **TINY).network.count_params()
    plain = build_unet_mnist(**TINY).network.count_params()
    # 10 classes plus "no label", each a vector of the time embedding (4 * 8).
    assert conditional - plain == 11 * 32


def test_training_learns_the_labels_and_drops_them_with_p_uncond(trained):
    model, before, losses = trained
    assert losses[-1] < 0.6 * losses[0]
    after = model.network.get_layer("label_embedding").embeddings.numpy()
    # Both classes and the "no label" row (index 2) were trained ...
    assert np.all(np.abs(after - before).max(axis=1) > 1e-3)
    # ... but without label dropout the "no label" row is never seen.
    never_dropped, before_0, _ = _fit(p_uncond=0.0, epochs=1)
    after_0 = never_dropped.network.get_layer("label_embedding").embeddings.numpy()
    assert np.abs(after_0[:2] - before_0[:2]).max() > 1e-3
    np.testing.assert_array_equal(after_0[2], before_0[2])


def test_guidance_mixes_the_two_predictions_of_one_call(trained):
    model, _, _ = trained
    rng = np.random.default_rng(1)
    x_t = tf.constant(rng.standard_normal((3, 8, 8, 1)), tf.float32)
    t = tf.constant([3, 10, 19], tf.int32)
    labels = tf.constant([0, 1, 1], tf.int32)
    null = tf.fill([3], 2)
    cond = model.ema_network([x_t, t, labels]).numpy()
    uncond = model.ema_network([x_t, t, null]).numpy()
    for w in (0.0, 1.0, 3.0):
        guided = model.predict_noise(x_t, t, labels, w).numpy()
        np.testing.assert_allclose(guided, uncond + w * (cond - uncond), atol=1e-5)
    per_row = guided_noise(
        model.ema_network, x_t, t, [labels], [null], tf.constant([0.0, 1.0, 3.0])
    ).numpy()
    np.testing.assert_allclose(per_row[0], uncond[0], atol=1e-5)
    np.testing.assert_allclose(per_row[1], cond[1], atol=1e-5)


def test_label_dropout_replaces_labels_by_the_null_class():
    conditioning = ClassConditioning(10)
    labels = tf.constant([3, 4, 5, 6])
    keep = tf.constant([True, False, True, False])
    np.testing.assert_array_equal(drop_condition(conditioning, labels, keep), [3, 10, 5, 10])
    # Rows of prompt ids are dropped whole.
    ids = tf.constant([[1, 2], [3, 4]])
    dropped = drop_condition(conditioning, ids, tf.constant([False, True]))
    np.testing.assert_array_equal(dropped, [[10, 10], [3, 4]])


def test_sample_labels_are_tensor_options_and_checked(trained):
    model, _, _ = trained
    a = model.sample(4, seed=3, labels=[0, 1, 0, 1], num_steps=4)
    b = model.sample(4, seed=3, labels=[0, 1, 0, 0], num_steps=4)
    np.testing.assert_array_equal(a[:3], b[:3])
    assert not np.array_equal(a[3], b[3])
    np.testing.assert_array_equal(model.sample(4, seed=3, num_steps=4), a)  # 0, 1, 0, 1
    with pytest.raises(ValueError, match=r"one entry per sample \(4\).*Received 2 labels"):
        model.sample(4, labels=[0, 1])
    with pytest.raises(ValueError, match=r"lie in \[0, 2\)\. Received: 2 in labels=\[0, 2\]"):
        model.sample(2, labels=[0, 2])
    with pytest.raises(ValueError, match=r"not conditioned on `prompt`.*Received: prompt='a 7'"):
        model.sample(2, prompt="a 7")
    with pytest.raises(ValueError, match=r"guidance_scale=-0.5"):
        model.sample(2, guidance_scale=-0.5)


def test_unconditional_ddpm_refuses_labels_and_guidance():
    model = build_unet_mnist(**TINY)
    assert model.conditioning == () and not model.uses_labels
    with pytest.raises(ValueError, match=r"not conditioned on `labels`.*Received: labels=3"):
        model.sample(2, labels=3)
    with pytest.raises(ValueError, match=r"not conditioned on `guidance_scale`.*=2.0"):
        model.sample(2, guidance_scale=2.0)


def test_served_signatures_take_labels_and_guidance(trained):
    # The written SavedModel, in a process without this package, and the TF
    # Lite guided step are checked by tests/test_contract.py; here the
    # signature functions themselves.
    model, _, _ = trained
    assert model.default_export_name == "diffusion-cond"
    served = model.export_endpoints()
    out = served["sample"](
        num_samples=tf.constant(2), seed=tf.constant([5, 6]), labels=tf.constant([1, 0]),
        guidance_scale=tf.constant(3.0), num_steps=tf.constant(4),
    )["samples"].numpy()
    expected = model.sample(2, seed=[5, 6], labels=[1, 0], guidance_scale=3.0, num_steps=4)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    x_t = np.zeros((2, 8, 8, 1), np.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"labels must be in \[0, 1\]"):
        served["denoise_step"](
            x_t=tf.constant(x_t), t=tf.constant([1, 1]), noise=tf.constant(x_t),
            labels=tf.constant([0, 2]), guidance_scale=tf.constant(1.0),
        )
    with pytest.raises(tf.errors.InvalidArgumentError, match="guidance_scale must be a finite"):
        served["predict_noise"](
            x_t=tf.constant(x_t), t=tf.constant([1, 1]), labels=tf.constant([0, 1]),
            guidance_scale=tf.constant(np.nan, tf.float32),
        )
