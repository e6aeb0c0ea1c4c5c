"""TransformerLM's static key/value cache: `prefill` / `decode` and the LiteRT loop.

Logits are compared with an absolute tolerance of 1e-4 (float32; the
differences measured are ~1e-6). Greedy bytes must be identical.
"""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_genmodels import export
from keras_genmodels.autoregressive import kv_cache, tokenizer
from keras_genmodels.autoregressive.transformer import TransformerLM
from keras_genmodels.litert import text as litert_text

pytestmark = pytest.mark.xdist_group("test_kv_cache")

CONFIG = {"context_length": 16, "d_model": 16, "num_heads": 2, "num_layers": 2}
ATOL = 1e-4


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    return TransformerLM(seed=3, **CONFIG)


@pytest.fixture(scope="module")
def tflite(model, tmp_path_factory):
    return export.export_tflite(model, str(tmp_path_factory.mktemp("kv") / "lm.tflite"))


@pytest.fixture(scope="module")
def lite(tflite):
    return litert_text.CachedTextModel(tflite)


def _tokens(rows, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (rows, CONFIG["context_length"])).astype("int32")


def test_cache_shape_and_signatures(model, tflite, lite):
    assert kv_cache.cache_shape(model, 1) == [1, 2, 2, 2, 16, 8]
    assert lite.cache_shape == (1, 2, 2, 2, 16, 8)
    assert (lite.context_length, lite.vocab_size) == (16, 256)
    assert export.tflite_signatures(tflite) == ["decode", "next_token_logits", "prefill"]


def test_decode_matches_the_full_pass_at_every_position(model):
    tokens = _tokens(2)
    full = model(tokens).numpy()
    lengths = np.array([3, 7], np.int32)
    logits, cache = kv_cache.prefill(model, tokens, lengths)
    np.testing.assert_allclose(logits, full[[0, 1], lengths - 1], atol=ATOL, rtol=0)
    # Slots at and after each row's length are zero.
    assert not np.any(cache.numpy()[0, :, :, :, 3:]) and np.any(cache.numpy()[0, :, :, :, 2])
    positions = lengths.copy()
    while positions.min() < CONFIG["context_length"]:
        # Rows at different positions; a finished row re-feeds its last slot.
        positions = np.minimum(positions, CONFIG["context_length"] - 1)
        logits, cache = kv_cache.decode(model, tokens[[0, 1], positions], positions, cache)
        np.testing.assert_allclose(logits, full[[0, 1], positions], atol=ATOL, rtol=0)
        positions = positions + 1


def test_tflite_decode_matches_the_full_pass_at_every_position(model, lite):
    tokens = _tokens(1, seed=1)
    full = model(tokens).numpy()[0]
    for length in (1, 9, 16):
        logits, _ = lite.prefill(tokens[0, :length])
        np.testing.assert_allclose(logits, full[length - 1], atol=ATOL, rtol=0)
    logits, cache = lite.prefill(tokens[0, :1])
    for position in range(1, CONFIG["context_length"]):
        logits, cache = lite.decode(int(tokens[0, position]), position, cache)
        np.testing.assert_allclose(logits, full[position], atol=ATOL, rtol=0)


@pytest.mark.parametrize("prompt", ["def add(a", "x" * 7 + "def add(a, b): return a"])
def test_litert_greedy_matches_generate_past_the_window(model, tflite, prompt):
    steps = 3 * CONFIG["context_length"] + 5  # Refills the window several times.
    expected = model.generate_tokens(tokenizer.encode(prompt)[None], steps, temperature=0.0)[0]
    got = litert_text.generate_tokens(tflite, tokenizer.encode(prompt), steps, temperature=0.0)
    np.testing.assert_array_equal(got, expected)
    assert litert_text.generate_text(tflite, prompt, steps, temperature=0.0) == model.generate(
        prompt, steps, temperature=0.0
    )


def test_litert_calls_and_top_k_one(model, lite):
    steps = 40
    lite.calls = 0
    greedy = litert_text.generate_tokens(lite, [100, 101], steps, temperature=0.0)
    # One prefill, one decode per token after the first, one prefill per refill
    # (the window fills at 16 bytes, then every 8).
    assert lite.calls == 1 + (steps - 1) + 4
    top_one = litert_text.generate_tokens(lite, [100, 101], steps, temperature=0.7, top_k=1, seed=5)
    np.testing.assert_array_equal(top_one, greedy)
    sampled = [
        litert_text.generate_text(lite, "ab", 30, temperature=1.0, seed=s) for s in (1, 1, 2)
    ]
    assert sampled[0] == sampled[1] != sampled[2]
    assert litert_text.generate_text(lite, "", 5, temperature=0.0) == model.generate(
        "", 5, temperature=0.0
    )


def test_litert_module_imports_no_tensorflow(tflite):
    script = textwrap.dedent(
        f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("text", {litert_text.__file__!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        out = module.generate_text({tflite!r}, "def ", 20, temperature=0.0)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in
                       ("tensorflow", "keras", "tf_keras", "keras_genmodels"))
        print(repr(out)); print(heavy)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text_line, modules_line = proc.stdout.strip().splitlines()[-2:]
    assert modules_line == "[]"
    assert len(eval(text_line).encode("utf-8", "surrogatepass")) >= 1


def test_bad_litert_inputs(lite):
    _, cache = lite.prefill([1, 2, 3])
    with pytest.raises(ValueError, match=r"`position` must be in \[0, 15\]. Received: position=16"):
        lite.decode(4, 16, cache)
    with pytest.raises(ValueError, match=r"`position` must be in \[0, 15\]. Received: position=-1"):
        lite.decode(4, -1, cache)
    with pytest.raises(ValueError, match=r"`token` must be in \[0, 255\]. Received: token=256"):
        lite.decode(256, 3, cache)
    with pytest.raises(
        ValueError,
        match=r"shape \(1, 2, 2, 2, 16, 8\), as `prefill` and `decode` return it. "
        r"Received: float32 array of shape \(1, 2, 2, 2, 8, 8\)",
    ):
        lite.decode(4, 3, cache[:, :, :, :, :8])
    with pytest.raises(ValueError, match="float32 array .* Received: float64"):
        lite.decode(4, 3, cache.astype("float64"))
    with pytest.raises(ValueError, match="1 to 16 ids .* Received: 17 ids"):
        lite.prefill(list(range(17)))
    with pytest.raises(ValueError, match=r"ids in \[0, 255\]. Received: values in \[0, 300\]"):
        lite.prefill([0, 300])
    with pytest.raises(ValueError, match="must be >= 1. Received: max_new_tokens=0"):
        litert_text.generate_text(lite, "a", 0)
    with pytest.raises(ValueError, match="temperature"):
        litert_text.generate_text(lite, "a", 3, temperature=-1.0)
    with pytest.raises(ValueError, match="`prompt` must be a str"):
        litert_text.generate_text(lite, b"a", 3)


def test_served_decode_checks_its_inputs(model):
    endpoints = model.serving_endpoints()
    decode = endpoints["decode"]
    tokens = _tokens(2)
    out = endpoints["prefill"](tokens=tf.constant(tokens), length=tf.constant([4, 16]))
    np.testing.assert_allclose(
        out["logits"], model(tokens).numpy()[[0, 1], [3, 15]], atol=ATOL, rtol=0
    )
    cache = out["cache"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"position must be in \[0, 15\]"):
        decode(token=tf.constant([1, 2]), position=tf.constant([4, 16]), cache=cache)
    with pytest.raises(tf.errors.InvalidArgumentError, match="same number of rows"):
        decode(token=tf.constant([1]), position=tf.constant([4]), cache=cache)
    # A cache of another shape does not even bind to the signature (TF
    # Serving answers INVALID_ARGUMENT).
    with pytest.raises(TypeError, match=r"cache: TensorSpec\(shape=\(None, 2, 2, 2, 16, 8\)"):
        decode(token=tf.constant([1, 2]), position=tf.constant([4, 5]), cache=cache[:, :, :, :, :8])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"length must be in \[1, 16\]"):
        endpoints["prefill"](tokens=tf.constant(tokens), length=tf.constant([0, 3]))
