"""The text-conditional DDPM: cross-attention to prompts, captioned training
batches, guided sampling from prompts, its signatures and its errors.

One tiny model (8x8 images, a one-block text encoder of width 8) is fitted
once to two classes of toy images (digit 0 lit on the left, digit 1 on the
right), captioned by `data.captions.DIGITS`. Its signatures are checked as
the functions an export writes (`export_endpoints`, in process) and its TF
Lite file against them; `tests/test_contract.py` writes the SavedModel of
`unet-mnist-text` and checks its `sample` in a TensorFlow-only process, its
TF Lite signatures against the SavedModel's and its `.keras` samples.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_genmodels import export
from keras_genmodels.conditioning.text import PAD_ID, prompt_token_ids
from keras_genmodels.data import captions
from keras_genmodels.diffusion.ddpm import DDPM
from keras_genmodels.diffusion.presets import (
    build_unet_mnist,
    build_unet_mnist_cond,
    build_unet_mnist_text,
)

pytestmark = pytest.mark.xdist_group("test_text_conditional_ddpm")

NET = dict(
    data_shape=(8, 8, 1), base_filters=8, channel_multipliers=(1, 2),
    attention_resolutions=(), timesteps=20, sampling_steps=4, schedule="cosine",
)
TEXT = dict(text_width=8, text_layers=1, text_heads=2, cross_attention_resolutions=(4,))
L = 33  # max_prompt_bytes + 1


def _images(labels):
    """Toy digits: 0 lit on the left half (0.9, the rest 0.1), 1 on the right."""
    left = np.zeros((1, 8, 8, 1), "float32")
    left[:, :, :4] = 1.0
    images = np.where(labels[:, None, None, None] == 0, left, 1.0 - left) * 0.8 + 0.1
    return images.astype("float32")


def _dataset(n=128):
    labels = np.arange(n) % 2
    return tf.data.Dataset.from_tensor_slices((_images(labels), labels))


def _texts(ids):
    """The prompts of token ids `[N, L]`."""
    ids = np.asarray(ids)
    return [bytes((row[1:][row[1:] != PAD_ID] - 2).tolist()).decode() for row in ids]


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    model = build_unet_mnist_text(p_uncond=0.25, seed=0, **NET, **TEXT)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=False)
    before = [w.numpy().copy() for w in model.text_encoder.weights]
    history = model.fit(model.prepare_dataset(_dataset(), 32), epochs=4, verbose=0)
    return model, before, history.history["loss"]


@pytest.fixture(scope="module")
def served(trained, tmp_path_factory):
    """The SavedModel's signatures (as functions) and the TF Lite file."""
    model, _, _ = trained
    lite = str(tmp_path_factory.mktemp("text-export") / "text.tflite")
    export.export_tflite(model, lite, batch_size=2)
    return model.export_endpoints({"batch_size": 8}), lite


# ----------------------------------------------------------------------
# The network.
# ----------------------------------------------------------------------
def test_cross_attention_adds_exactly_its_weights_and_the_encoder_its_own():
    text = build_unet_mnist_text(**NET, **TEXT)
    plain = build_unet_mnist(**NET)
    names = [layer.name for layer in text.network.layers if "cross_attn" in layer.name]
    assert names == ["down_1_0_cross_attn", "middle_cross_attn", "up_1_0_cross_attn",
                     "up_1_1_cross_attn"]
    c, w, e = 16, 8, 32  # Channels at 4x4, context width, time embedding.
    # GroupNorm, query and output projections (C x C), key and value (W x C).
    cross = 2 * c + 2 * (c * c + c) + 2 * (w * c + c)
    # Four attention-pooled token states (a score per head) into the time
    # embedding.
    pooled = (w * 4 + 4) + (4 * w * e + e)
    extra = text.network.count_params() - plain.network.count_params()
    assert extra == 4 * cross + pooled == 4_548
    mean = build_unet_mnist_text(pooled_context="mean", **NET, **TEXT)
    assert mean.network.count_params() == plain.network.count_params() + 4 * cross + w * e + e
    unpooled = build_unet_mnist_text(pooled_context=None, **NET, **TEXT)
    assert unpooled.network.count_params() == plain.network.count_params() + 4 * cross
    block = 4 * w + (3 * w * w + 3 * w) + (w * w + w) + (4 * w * w + 4 * w) + (4 * w * w + w)
    assert text.text_encoder.count_params() == (258 + L) * w + block + 2 * w == 3_216
    # The model holds the network, the encoder and their EMA twins.
    assert text.count_params() == 2 * (
        text.network.count_params() + text.text_encoder.count_params()
    )
    # The unconditional network is unchanged by the text options.
    assert plain.network.count_params() == build_unet_mnist(
        **NET, cross_attention_resolutions=(4,)
    ).network.count_params()


def test_cross_attention_reads_the_context_and_ignores_its_padding():
    keras.utils.set_random_seed(1)
    network = build_unet_mnist_text(pooled_context=None, **NET, **TEXT).network
    rng = np.random.default_rng(0)
    x_t = tf.constant(rng.standard_normal((2, 8, 8, 1)), tf.float32)
    t = tf.constant([5, 15])
    context = rng.standard_normal((2, L, 8)).astype("float32")
    mask = np.zeros((2, L), "float32")
    mask[:, :4] = 1.0

    def predict(context, mask):
        return network([x_t, t, tf.constant(context), tf.constant(mask)]).numpy()

    base = predict(context, mask)
    other = context.copy()
    other[:, 2] += 1.0  # A real token's state.
    assert np.abs(predict(other, mask) - base).max() > 1e-4
    padded = context.copy()
    padded[:, 4:] = 100.0  # States behind the mask.
    np.testing.assert_allclose(predict(padded, mask), base, atol=1e-5)
    np.testing.assert_allclose(predict(context[:, :4], mask[:, :4]), base, atol=1e-5)


def test_the_prediction_reads_the_prompt_and_ignores_the_padding(trained):
    model, _, _ = trained
    rng = np.random.default_rng(2)
    x_t = tf.constant(rng.standard_normal((2, 8, 8, 1)), tf.float32)
    t = tf.constant([5, 15])
    seven = prompt_token_ids(["the digit seven"] * 2)
    zero = prompt_token_ids(["the digit zero"] * 2)
    states, mask = model.encode_prompt(tf.constant(seven))
    guided = model.predict_noise(x_t, t, guidance_scale=2.0, states=states, mask=mask)
    other = model.predict_noise(
        x_t, t, guidance_scale=2.0, states=model.encode_prompt(zero)[0],
        mask=model.encode_prompt(zero)[1],
    )
    assert np.abs(guided - other).max() > 1e-4
    # Padded positions: cut away, or filled with garbage states, change nothing.
    length = len("the digit seven") + 1
    cut = model.ema_network([x_t, t, states[:, :length], mask[:, :length]])
    garbage = tf.where(mask[..., None] > 0, states, 100.0)
    full = model.ema_network([x_t, t, garbage, mask])
    np.testing.assert_allclose(cut, full, atol=1e-5)
    # At guidance 0 the prompt is ignored: the empty prompt's prediction.
    unguided = [
        model.predict_noise(x_t, t, guidance_scale=0.0, states=s, mask=m)
        for s, m in (model.encode_prompt(seven), model.encode_prompt(zero))
    ]
    np.testing.assert_allclose(unguided[0], unguided[1], atol=1e-6)


# ----------------------------------------------------------------------
# Training data.
# ----------------------------------------------------------------------
def _label_captions(model, shuffle, epochs=1):
    batches = model.prepare_dataset(_dataset(40), 8, shuffle=shuffle)
    pairs = []
    for _ in range(epochs):
        for images, ids in batches:
            labels = np.where(images.numpy()[:, 0, 0, 0] > 0.5, 0, 1)
            pairs += list(zip(labels, _texts(ids)))
    return pairs


def test_labels_are_captioned_with_training_or_held_out_templates():
    model = build_unet_mnist_text(seed=3, **NET, **TEXT)
    train = [set(row) for row in captions.DIGITS.captions("train")]
    held_out = [set(row) for row in captions.DIGITS.captions("test")]
    pairs = _label_captions(model, shuffle=True, epochs=3)
    assert all(text in train[label] for label, text in pairs)
    assert len({text for _, text in pairs}) > 10  # Templates vary (and by epoch).
    evaluation = _label_captions(model, shuffle=False, epochs=2)
    assert all(text in held_out[label] for label, text in evaluation)
    assert evaluation[:40] == evaluation[40:]  # The same captions on every pass.
    assert _label_captions(build_unet_mnist_text(seed=3, **NET, **TEXT), False) == (
        evaluation[:40]
    )


def test_caption_pairs_are_used_as_they_are_and_checked():
    model = build_unet_mnist_text(**NET, **TEXT)
    texts = ["a small seven", "", "nine"]
    pairs = tf.data.Dataset.from_tensor_slices((_images(np.zeros(3, int)), texts))
    _, ids = next(iter(model.prepare_dataset(pairs, 3, shuffle=False)))
    assert _texts(ids) == texts and ids.shape == (3, L) and ids.dtype == tf.int32
    long = tf.data.Dataset.from_tensor_slices((_images(np.zeros(1, int)), ["x" * 33]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="at most 32 UTF-8 bytes"):
        next(iter(model.prepare_dataset(long, 1)))
    with pytest.raises(ValueError, match=r"\(image, caption\) or \(image, label\) pairs"):
        model.prepare_dataset(tf.data.Dataset.from_tensor_slices(_images(np.zeros(2))), 2)


def test_training_lowers_the_loss_and_averages_the_encoder(trained):
    model, before, losses = trained
    assert losses[-1] < 0.6 * losses[0]
    live = [w.numpy() for w in model.text_encoder.weights]
    average = [w.numpy() for w in model.ema_text_encoder.weights]
    assert max(np.abs(a - b).max() for a, b in zip(live, before)) > 1e-3
    assert max(np.abs(a - b).max() for a, b in zip(average, before)) > 1e-4
    assert max(np.abs(a - b).max() for a, b in zip(average, live)) > 1e-5
    figures = model.evaluation_metrics(_dataset(32), batch_size=16)
    assert figures["num_examples"] == 32 and np.isfinite(figures["test_loss"])


# ----------------------------------------------------------------------
# Sampling.
# ----------------------------------------------------------------------
def test_sample_takes_prompts_as_tensor_options(trained):
    model, _, _ = trained
    a = model.sample(3, seed=4, prompt="the digit one")
    assert a.shape == (3, 8, 8, 1) and a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(model.sample(3, seed=4, prompt=["the digit one"] * 3), a)
    np.testing.assert_array_equal(
        model.sample(3, seed=4, prompt=np.array([b"the digit one"] * 3)), a
    )
    b = model.sample(3, seed=4, prompt=["the digit one", "the digit one", "zero"])
    np.testing.assert_array_equal(b[:2], a[:2])
    assert not np.array_equal(b[2], a[2])
    assert not np.array_equal(model.sample(3, seed=5, prompt="the digit one"), a)
    assert len(model._traced_functions_cache) == 1  # No retrace per prompt.
    # No prompt: the default prompts, cycled.
    assert model.default_prompts[:2] == ("a handwritten 0", "a handwritten 1")
    np.testing.assert_array_equal(
        model.sample(3, seed=4),
        model.sample(3, seed=4, prompt=["a handwritten 0", "a handwritten 1",
                                        "a handwritten 2"]),
    )


def test_bad_prompts_and_conditioning_are_refused(trained):
    model, _, _ = trained
    with pytest.raises(ValueError, match=r"must not be empty.*Received: prompt=''"):
        model.sample(2, prompt="")
    with pytest.raises(ValueError, match=r"at most 32 UTF-8 bytes. Received 33 bytes"):
        model.sample(2, prompt="x" * 33)
    with pytest.raises(ValueError, match=r"list of 3 \(one per sample\). Received 2 prompts"):
        model.sample(3, prompt=["one", "two"])
    with pytest.raises(ValueError, match=r"must be UTF-8.*Received: prompt=b'\\xff'"):
        model.sample(1, prompt=[b"\xff"])
    with pytest.raises(ValueError, match=r"not conditioned on `labels`.*Received: labels=3"):
        model.sample(2, labels=3)
    with pytest.raises(ValueError, match=r"guidance_scale=-1"):
        model.sample(2, prompt="one", guidance_scale=-1)
    cond = build_unet_mnist_cond(num_classes=2, **NET)
    with pytest.raises(ValueError, match=r"not conditioned on `prompt`.*Received: prompt='one'"):
        cond.sample(2, prompt="one")
    with pytest.raises(ValueError, match="class labels or on text, not both"):
        DDPM(model.network, num_classes=2, text_encoder=model.text_encoder)
    with pytest.raises(ValueError, match=r"inputs \[x_t, t, context, context_mask\]"):
        DDPM(cond.network, text_encoder=model.text_encoder)


# ----------------------------------------------------------------------
# Saving and exports.
# ----------------------------------------------------------------------
def test_keras_file_round_trip(trained, tmp_path):
    model, _, _ = trained
    path = str(tmp_path / "text.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.conditioning == ("prompt", "guidance_scale") and loaded.uses_labels
    assert loaded.default_prompts == model.default_prompts and loaded.num_classes == 10
    assert loaded.get_config()["num_classes"] is None
    assert [v.path for v in loaded.weights] == [v.path for v in model.weights]
    for saved, restored in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(np.array(restored), np.array(saved), err_msg=saved.path)
    ids = tf.constant(prompt_token_ids(["one", "zero"]))
    np.testing.assert_array_equal(loaded.encode_prompt(ids)[0], model.encode_prompt(ids)[0])
    # A config written before text conditioning (no `text_encoder`) still loads.
    config = build_unet_mnist(**NET).get_config()
    del config["text_encoder"]
    assert DDPM.from_config(config).text_encoder is None


def test_served_sample_equals_python_sample(trained, served):
    model, _, _ = trained
    signatures, _ = served
    assert model.default_export_name == "diffusion-text"
    assert set(signatures) == {
        "sample", "sample_batch", "encode_prompt", "predict_noise", "denoise_step",
        "solver_step", "sample_loop",
    }
    assert set(model.export_examples()) == set(signatures)

    def sample(prompt, num_samples=3, guidance=2.5):
        return signatures["sample"](
            num_samples=tf.constant(num_samples), seed=tf.constant([5, 6]),
            prompt=tf.constant(prompt), guidance_scale=tf.constant(guidance),
            num_steps=tf.constant(4),
        )["samples"].numpy()

    expected = model.sample(3, seed=[5, 6], prompt="one", guidance_scale=2.5, num_steps=4)
    np.testing.assert_allclose(sample(["one"]), expected, atol=1e-6)
    texts = ["one", "zero", "the digit one"]
    expected = model.sample(3, seed=[5, 6], prompt=texts, guidance_scale=2.5, num_steps=4)
    np.testing.assert_allclose(sample(texts), expected, atol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"1 to 32 UTF-8 bytes"):
        sample(["one", "", "two"])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Received: 2 prompts for 3"):
        sample(["one", "two"])
    # sample_batch: row i is sample(1, seed[i], prompt[i]).
    seeds = np.array([[1, 2], [3, 4]], np.int32)
    rows = signatures["sample_batch"](
        seed=tf.constant(seeds), prompt=tf.constant(["one", "zero"]),
        guidance_scale=tf.constant([2.0, 0.5]), num_steps=tf.constant([4, 3]),
    )["samples"].numpy()
    for i, (prompt, w, steps) in enumerate([("one", 2.0, 4), ("zero", 0.5, 3)]):
        one = model.sample(1, seed=seeds[i], prompt=prompt, guidance_scale=w, num_steps=steps)
        np.testing.assert_allclose(rows[i : i + 1], one, atol=1e-5)


def test_encode_prompt_and_guided_step_signatures(trained, served):
    model, _, _ = trained
    signatures, _ = served
    ids = prompt_token_ids(["one", "the digit zero"])
    encoded = signatures["encode_prompt"](token_ids=tf.constant(ids))
    states, mask = model.encode_prompt(tf.constant(ids))
    np.testing.assert_allclose(encoded["states"], states, atol=1e-6)
    np.testing.assert_array_equal(encoded["mask"], mask)
    rng = np.random.default_rng(3)
    x_t = tf.constant(rng.standard_normal((2, 8, 8, 1)), tf.float32)
    noise = tf.constant(rng.standard_normal((2, 8, 8, 1)), tf.float32)
    t = tf.constant([3, 17])
    step = signatures["denoise_step"](
        x_t=x_t, t=t, noise=noise,
        states=states, mask=mask, guidance_scale=tf.constant(2.0),
    )["x_prev"]
    eps = model.predict_noise(x_t, t, guidance_scale=2.0, states=states, mask=mask)
    np.testing.assert_allclose(step, model.process.ddpm_step(x_t, t, eps, noise), atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"token_ids must be in \[0, 257\]"):
        signatures["encode_prompt"](token_ids=tf.constant(ids + 300))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"mask must be in \[0.0, 1.0\]"):
        signatures["predict_noise"](
            x_t=x_t, t=t, states=states, mask=mask * 2,
            guidance_scale=tf.constant(1.0),
        )


def test_tflite_encode_prompt_and_guided_step_match_the_savedmodel(trained, served):
    model, _, _ = trained
    signatures, lite = served
    assert set(export.tflite_signatures(lite)) == {"encode_prompt", "denoise_step", "solver_step"}
    examples = model.signature_examples(batch_size=2)
    assert _texts(examples["encode_prompt"]["token_ids"]) == list(model.default_prompts[:2])
    for name in ("encode_prompt", "denoise_step"):
        inputs = examples[name]
        ours = export.run_tflite(lite, name, inputs)
        theirs = signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
        for key, value in theirs.items():
            np.testing.assert_allclose(ours[key], value, atol=model.tflite_tolerance,
                                       err_msg=f"{name}/{key}")
    # The example's states are a real prompt's encoding.
    np.testing.assert_allclose(
        examples["denoise_step"]["states"],
        export.run_tflite(lite, "encode_prompt", examples["encode_prompt"])["states"],
        atol=1e-5,
    )
