"""The prompt tokenizer, the byte-level text encoder and the U-Net's CrossAttention."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_genmodels.autoregressive.layers import CausalSelfAttention, TransformerBlock
from keras_genmodels.conditioning import text
from keras_genmodels.diffusion.layers import CrossAttention
from keras_genmodels.export import run_tflite
from keras_genmodels.serving_limits import InputChecks

MAX_BYTES = 8
LENGTH = MAX_BYTES + 1
WIDTH = 16
PROMPTS = ["a 7", "", "héllo", "seven 7!"]  # "seven 7!" has exactly MAX_BYTES bytes.


@pytest.fixture(scope="module")
def encoder():
    keras.utils.set_random_seed(0)
    return text.text_encoder(
        max_prompt_bytes=MAX_BYTES, width=WIDTH, num_layers=2, num_heads=2, mlp_ratio=2
    )


def _cross_attention_model():
    keras.utils.set_random_seed(1)
    image = keras.Input((7, 7, WIDTH), name="image")
    states = keras.Input((LENGTH, WIDTH), name="states")
    mask = keras.Input((LENGTH,), name="mask")
    output = CrossAttention(num_heads=2, groups=4, name="cross")(image, states, mask)
    return keras.Model([image, states, mask], output)


def _to_tflite(function, specs, model, path):
    """Converts one static-shape function of `model`, as `export_tflite` does."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("run", tf.function(function, input_signature=specs))
    archive.write_out(str(path.with_suffix("")), verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(path.with_suffix("")), signature_keys=["run"]
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    path.write_bytes(converter.convert())
    return str(path)


# ----------------------------------------------------------------------
# Tokenization.
# ----------------------------------------------------------------------
def test_token_ids_numpy_values():
    ids = text.prompt_token_ids(PROMPTS, MAX_BYTES)
    assert ids.dtype == np.int32 and ids.shape == (4, LENGTH)
    assert ids[0].tolist() == [1, ord("a") + 2, ord(" ") + 2, ord("7") + 2] + [0] * 5
    assert ids[1].tolist() == [text.BOS_ID] + [text.PAD_ID] * MAX_BYTES
    assert ids[2].tolist() == [1] + [b + 2 for b in "héllo".encode()] + [0, 0]
    assert ids[3].tolist() == [1] + [b + 2 for b in b"seven 7!"]
    # A NUL byte is a token (id 2), not padding; one string gives one row.
    assert text.prompt_token_ids("\x00", 2).tolist() == [[1, 2, 0]]
    assert text.VOCAB_SIZE == 258


def test_token_ids_tensorflow_match_numpy_in_a_traced_function():
    prompts = PROMPTS + ["日本", "\x00a", "x"]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def ids_of(batch):
        return text.tf_prompt_token_ids(batch, MAX_BYTES)

    np.testing.assert_array_equal(
        ids_of(tf.constant(prompts)).numpy(), text.prompt_token_ids(prompts, MAX_BYTES)
    )
    assert ids_of.get_concrete_function().structured_outputs.shape.as_list() == [
        None,
        LENGTH,
    ]
    lengths = text.tf_prompt_byte_lengths(tf.constant(prompts)).numpy()
    assert lengths.tolist() == [3, 0, 6, 8, 6, 2, 1]
    # Longer prompts are cut in TF (callers check lengths first).
    np.testing.assert_array_equal(
        text.tf_prompt_token_ids(tf.constant(["abcdefghij"]), MAX_BYTES).numpy(),
        text.prompt_token_ids(["abcdefgh"], MAX_BYTES),
    )


def test_too_long_or_non_string_prompts_raise():
    with pytest.raises(ValueError) as error:
        text.prompt_token_ids(["ok", "héllo wo"], MAX_BYTES)
    assert str(error.value) == (
        "A prompt may have at most 8 UTF-8 bytes. Received 9 bytes: prompt='héllo wo'"
    )
    with pytest.raises(ValueError, match=r"must be a string. Received: prompt=7"):
        text.prompt_token_ids(["a", 7], MAX_BYTES)
    with pytest.raises(ValueError, match="max_prompt_bytes"):
        text.prompt_token_ids("a", 0)


def test_served_prompt_checks():
    def check(prompts):
        checks = InputChecks()
        prompts = text.check_served_prompts(checks, tf.constant(prompts), 3, MAX_BYTES)
        return checks.gate(prompts).numpy()

    assert check(["a 7", "seven 7!"]).tolist() == [b"a 7", b"seven 7!"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"1 to 8 UTF-8 bytes"):
        check(["a 7", "nine bytes"])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"1 to 8 UTF-8 bytes"):
        check(["a 7", ""])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"1 <= N <= 3"):
        check(["a"] * 4)


# ----------------------------------------------------------------------
# The encoder.
# ----------------------------------------------------------------------
def test_encoder_parameter_count(encoder):
    w, r, n = WIDTH, 2, 2
    embeddings = (258 + LENGTH) * w
    # 2 layer norms, qkv, output projection, two MLP layers.
    block = 4 * w + (3 * w * w + 3 * w) + (w * w + w) + (r * w * w + r * w) + (r * w * w + w)
    assert encoder.count_params() == embeddings + n * block + 2 * w == 8_752
    assert text.text_encoder().count_params() == 118_720  # The default config.


def test_encoder_shapes_mask_and_zero_padding(encoder):
    states, mask = encoder(text.prompt_token_ids(PROMPTS, MAX_BYTES))
    assert states.shape == (4, LENGTH, WIDTH) and mask.shape == (4, LENGTH)
    assert mask.dtype == "float32"
    np.testing.assert_array_equal(mask.numpy().sum(1), [4, 1, 7, 9])
    padded = mask.numpy() == 0
    assert np.all(states.numpy()[padded] == 0)
    assert np.all(np.abs(states.numpy()[~padded]).sum(-1) > 0)


def test_padding_does_not_change_the_states_of_real_tokens(encoder):
    ids = text.prompt_token_ids(["a 7", "héllo"], MAX_BYTES)
    states, _ = encoder(ids)
    for row, real in ((0, 4), (1, 7)):
        unpadded, _ = encoder(ids[row : row + 1, :real])
        np.testing.assert_allclose(unpadded[0], states[row, :real], atol=1e-5)
    # The mask is what makes this so: without it the blocks attend to the pads.
    x, mask = encoder.get_layer("embedding")(ids)
    block = encoder.get_layer("block_0")
    masked, unmasked = block(x, padding_mask=mask), block(x)
    assert np.abs(masked[0, :4] - unmasked[0, :4]).max() > 1e-3


def test_encoder_is_bidirectional(encoder):
    # The last byte changes the first tokens' states (a causal encoder would not).
    states, _ = encoder(text.prompt_token_ids(["a 7", "a 8"], MAX_BYTES))
    assert np.abs(states[0, 0] - states[1, 0]).max() > 1e-3


def test_causal_blocks_are_unchanged_by_the_encoder_option():
    x = keras.random.normal((1, 5, 8), seed=0)
    block = TransformerBlock(2, mlp_ratio=2)
    y = block(x).numpy()
    changed = block(tf.concat([x[:, :3], -x[:, 3:]], axis=1)).numpy()
    np.testing.assert_allclose(y[:, :3], changed[:, :3], atol=1e-6)  # Still causal.
    assert block.get_config()["causal"] is True
    encoder_block = TransformerBlock.from_config({**block.get_config(), "causal": False})
    encoder_block.build(x.shape)
    encoder_block.set_weights(block.get_weights())
    # Without a mask the encoder block attends everywhere; the last query agrees.
    np.testing.assert_allclose(encoder_block(x).numpy()[:, -1], y[:, -1], atol=1e-5)
    with pytest.raises(ValueError, match="needs a causal layer"):
        CausalSelfAttention(2, causal=False).step(None, None, None, 0)


# ----------------------------------------------------------------------
# CrossAttention.
# ----------------------------------------------------------------------
def test_cross_attention_shape_and_mask():
    model = _cross_attention_model()
    rng = np.random.default_rng(0)
    image = rng.normal(size=(2, 7, 7, WIDTH)).astype("float32")
    states = rng.normal(size=(2, LENGTH, WIDTH)).astype("float32")
    mask = np.zeros((2, LENGTH), "float32")
    mask[0, :3] = 1
    mask[1, :1] = 1
    output = model([image, states, mask]).numpy()
    assert output.shape == image.shape
    changed = states.copy()
    changed[0, 3:] = 100.0
    changed[1, 1:] = -50.0
    np.testing.assert_allclose(model([image, changed, mask]).numpy(), output, atol=1e-6)
    changed[0, 1] += 1.0  # A real token: row 0 changes, row 1 does not.
    moved = model([image, changed, mask]).numpy()
    assert np.abs(moved[0] - output[0]).max() > 1e-3
    np.testing.assert_allclose(moved[1], output[1], atol=1e-6)
    # A real query path and a residual: the output is not the input.
    assert np.abs(output - image).max() > 1e-3


def test_cross_attention_validates_channels():
    with pytest.raises(ValueError, match=r"channels=12, num_heads=1, groups=8"):
        CrossAttention(groups=8)(np.zeros((1, 7, 7, 12)), np.zeros((1, 3, 4)))
    with pytest.raises(ValueError, match="num_heads"):
        CrossAttention(num_heads=0)


# ----------------------------------------------------------------------
# TF Lite and serialization.
# ----------------------------------------------------------------------
def test_encoder_and_cross_attention_lower_to_tflite_builtins(encoder, tmp_path):
    ids = text.prompt_token_ids(["a 7", ""], MAX_BYTES)

    def encode_prompt(token_ids):
        states, mask = encoder(token_ids)
        return {"states": states, "mask": mask}

    specs = [tf.TensorSpec([2, LENGTH], tf.int32)]
    path = _to_tflite(encode_prompt, specs, encoder, tmp_path / "e.tflite")
    lite = run_tflite(path, "run", {"token_ids": ids})
    expected = encode_prompt(ids)
    np.testing.assert_allclose(lite["states"], expected["states"], atol=1e-4)
    np.testing.assert_array_equal(lite["mask"], expected["mask"])

    model = _cross_attention_model()

    def attend(image, states, mask):
        return {"output": model([image, states, mask])}

    specs = [
        tf.TensorSpec([2, 7, 7, WIDTH], tf.float32),
        tf.TensorSpec([2, LENGTH, WIDTH], tf.float32),
        tf.TensorSpec([2, LENGTH], tf.float32),
    ]
    path = _to_tflite(attend, specs, model, tmp_path / "a.tflite")
    inputs = {
        "image": np.random.default_rng(1).normal(size=(2, 7, 7, WIDTH)),
        "states": expected["states"].numpy(),
        "mask": expected["mask"].numpy(),
    }
    lite = run_tflite(path, "run", inputs)
    np.testing.assert_allclose(
        lite["output"], attend(*[tf.constant(v, tf.float32) for v in inputs.values()])["output"],
        atol=1e-4,
    )


def test_keras_round_trip(encoder, tmp_path):
    image = keras.Input((7, 7, WIDTH), name="image")
    token_ids = keras.Input((LENGTH,), dtype="int32", name="token_ids")
    states, mask = encoder(token_ids)
    output = CrossAttention(num_heads=2, groups=4, name="cross")(image, states, mask)
    model = keras.Model([image, token_ids], output)
    inputs = [
        np.random.default_rng(2).normal(size=(2, 7, 7, WIDTH)).astype("float32"),
        text.prompt_token_ids(["a 7", ""], MAX_BYTES),
    ]
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(loaded(inputs).numpy(), model(inputs).numpy())
    block = loaded.get_layer("text_encoder").get_layer("block_0")
    assert isinstance(block, TransformerBlock) and block.get_config()["causal"] is False
    assert isinstance(loaded.get_layer("cross"), CrossAttention)
