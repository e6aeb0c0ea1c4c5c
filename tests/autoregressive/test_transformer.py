"""TransformerLM: parameters, training, cached generation, scoring and exports.

The contract checks (seeded samples, `.keras` round trips, served == Python
samples, TF Lite parity) are in tests/test_contract.py.
"""

import json
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_genmodels import build, export
from keras_genmodels.autoregressive import dynamic_evaluation, tokenizer
from keras_genmodels.autoregressive.transformer import TransformerLM

# Its module-scoped models are built once: one worker runs the module.
pytestmark = pytest.mark.xdist_group("test_transformer")

TEXT = "def add(a, b):\n    return a + b\n\n" * 40
CONFIG = {"context_length": 16, "d_model": 16, "num_heads": 2, "num_layers": 2}


def _param_count(vocab, context, d, layers, ratio=4):
    block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (ratio * d * d + ratio * d)
    block += ratio * d * d + d
    return vocab * d + context * d + layers * block + 2 * d + d * vocab + vocab


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    model = TransformerLM(seed=0, **CONFIG)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    dataset = model.prepare_dataset(tokenizer.encode(TEXT), 16)
    before = model.evaluate(dataset, verbose=0, return_dict=True)["loss"]
    history = model.fit(dataset, epochs=10, verbose=0)
    return model, before, history.history["loss"]


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    model = trained[0]
    base = tmp_path_factory.mktemp("sm")
    savedmodel = export.export_savedmodel(model, str(base), name="lm")
    tflite = export.export_tflite(model, str(base / "lm.tflite"))
    return model, {"savedmodel": savedmodel, "tflite": tflite}


def test_parameter_counts():
    model = TransformerLM(**CONFIG)
    assert model.count_params() == _param_count(256, 16, 16, 2) == 15_296
    assert build("ar", "transformer-small").count_params() == 875_520
    assert _param_count(256, 512, 512, 8) == 25_744_640


def test_loss_falls(trained):
    _, before, losses = trained
    assert losses[-1] < 0.5 * before
    assert losses[-1] < losses[0]


def test_dataset_windows():
    model = TransformerLM(**CONFIG)
    ids = np.arange(100, dtype="int32") % 256
    batches = list(model.prepare_dataset(ids, 4, shuffle=False))
    x, y = batches[0]
    assert x.shape == (4, 16) and y.shape == (4, 16)
    np.testing.assert_array_equal(x.numpy()[:, 1:], y.numpy()[:, :-1])
    np.testing.assert_array_equal(x.numpy()[1], ids[16:32])
    assert sum(len(b[0]) for b in batches) == (100 - 17) // 16 + 1
    with pytest.raises(ValueError, match="context_length \\+ 1 = 17"):
        model.prepare_dataset(ids[:10], 4)


def test_cached_steps_match_the_full_pass(trained):
    model = trained[0]
    tokens = tf.constant(tokenizer.encode(TEXT[:16])[None])
    full = model(tokens).numpy()
    logits, caches = model._fill_cache(tokens[:, :4])
    np.testing.assert_allclose(logits.numpy(), full[:, 3], atol=1e-5)
    for position in range(4, 16):
        logits, caches = model._cache_step(tokens[:, position], caches, tf.constant(position))
        np.testing.assert_allclose(logits.numpy(), full[:, position], atol=1e-5)


def test_decoding_strategies_give_the_same_tokens(trained):
    model = trained[0]
    prompt = tokenizer.encode("def ")[None]
    for kwargs in ({"temperature": 0.0}, {"temperature": 1.0, "seed": 5, "top_k": 5}):
        cached = model.generate_tokens(prompt, 12, **kwargs)  # XLA-compiled loop.
        for strategy, jit_compile in (
            ("cached", False), ("prefix", False), ("full_window", False), ("full_window", True)
        ):
            other = model.generate_tokens(
                prompt, 12, strategy=strategy, jit_compile=jit_compile, **kwargs
            )
            np.testing.assert_array_equal(cached, other, err_msg=f"{strategy} {jit_compile}")


def test_generation_is_learned_seeded_and_compiled_once(trained):
    model = trained[0]
    greedy = model.generate("def add(a, b):\n", max_new_tokens=15, temperature=0.0)
    assert greedy == model.generate("def add(a, b):\n", max_new_tokens=15, temperature=0.0)
    assert len(greedy) == 15 and greedy.startswith(" ")
    a = model.generate("def", 40, temperature=1.0, top_p=0.9, seed=3)
    assert a == model.generate("def", 40, temperature=1.0, top_p=0.9, seed=3)
    assert a != model.generate("def", 40, temperature=1.0, top_p=0.9, seed=4)
    # Longer than the context: the cache is refilled from the last half.
    long = model.generate("", 50, temperature=0.5, seed=1)
    assert len(long.encode("utf-8", errors="replace")) >= 40
    samples = model.sample(3, seed=2, max_new_tokens=20)
    assert len(samples) == 3 and all(isinstance(s, str) for s in samples)
    generate_fn = model._traced_functions_cache[("generate", "cached", True)]
    assert generate_fn.experimental_get_tracing_count() == 1


def test_bits_per_char_and_metrics(trained):
    model = trained[0]
    bpc = model.bits_per_char(TEXT[:200])
    assert bpc == pytest.approx(float(model._bits_per_char(tf.constant(TEXT[:200]))), rel=1e-5)
    assert bpc < 2.0  # The repeated snippet is learned.
    metrics = model.evaluation_metrics(
        tf.data.Dataset.from_tensor_slices(tokenizer.encode(TEXT[:300]))
    )
    assert metrics["num_chars"] == 300 and metrics["bits_per_char"] < 2.0
    assert metrics["dynamic_learning_rate"] == dynamic_evaluation.DEFAULT_LEARNING_RATE
    assert metrics["dynamic_bits_per_char"] == pytest.approx(
        model.dynamic_bits_per_char(TEXT[:300]), rel=1e-6
    )
    json.dumps(metrics)
    static_only = model.evaluation_metrics(
        tf.data.Dataset.from_tensor_slices(tokenizer.encode(TEXT[:300])),
        dynamic_learning_rate=None,
    )
    assert "dynamic_bits_per_char" not in static_only


def test_dynamic_evaluation_at_rate_zero_is_the_static_score(trained):
    model = trained[0]
    for n in (1, 15, 16, 17, 200):
        static = model.bits_per_char(TEXT[:n])
        dynamic = model.dynamic_bits_per_char(TEXT[:n], learning_rate=0.0)
        assert dynamic == pytest.approx(static, rel=1e-5)
    for n in (1, 16, 17, 40):  # Every byte scored once, whatever the stride.
        for stride in (1, 5, 15):
            nats = dynamic_evaluation.dynamic_nll(model, TEXT[:n], 0.0, stride)
            assert nats.shape == (n,) and np.all(np.isfinite(nats))


def test_dynamic_evaluation_is_causal_and_restores_the_weights(trained):
    model = trained[0]
    before = model.get_weights()
    text = tokenizer.encode(TEXT[:120])
    changed = text.copy()
    changed[90:] = tokenizer.encode("x" * 30)
    nats = dynamic_evaluation.dynamic_nll(model, text, learning_rate=0.3, stride=5)
    other = dynamic_evaluation.dynamic_nll(model, changed, learning_rate=0.3, stride=5)
    # A byte's score depends only on the bytes before it: a code length.
    np.testing.assert_allclose(nats[:90], other[:90], rtol=1e-5)
    assert not np.allclose(nats[90:], other[90:])
    # The first window (15 bytes) is scored before any update; later bytes
    # are scored by weights that have learned from the segments before them.
    static = dynamic_evaluation.dynamic_nll(model, text, learning_rate=0.0, stride=5)
    np.testing.assert_allclose(nats[:15], static[:15], rtol=1e-5)
    assert not np.allclose(nats[15:], static[15:], rtol=1e-3)
    for expected, restored in zip(before, model.get_weights()):
        np.testing.assert_array_equal(expected, restored)


def test_dynamic_evaluation_learns_from_what_it_has_read():
    keras.utils.set_random_seed(1)
    model = TransformerLM(seed=0, **CONFIG)  # Untrained: about 8 bits a byte.
    phrase = np.random.default_rng(0).integers(0, 256, 24)
    tokens = np.tile(phrase, 12)  # 24 random bytes, read 12 times.
    static = model.bits_per_char(tokens)
    assert static > 7.5
    # Measured 3.92 bits/char: the repeats are learned while reading.
    assert model.dynamic_bits_per_char(tokens, learning_rate=0.3, stride=4) < static - 3


def test_dynamic_evaluation_rejects_bad_arguments():
    model = TransformerLM(**CONFIG)
    with pytest.raises(ValueError, match="finite number >= 0. Received: -0.1"):
        model.dynamic_bits_per_char("abc", learning_rate=-0.1)
    with pytest.raises(TypeError, match="learning_rate.*Received: '0.1'"):
        model.dynamic_bits_per_char("abc", learning_rate="0.1")
    with pytest.raises(ValueError, match="context_length - 1 = 15. Received: stride=16"):
        model.dynamic_bits_per_char("abc", stride=16)
    with pytest.raises(TypeError, match="`stride` must be an int. Received: 2.5"):
        model.dynamic_bits_per_char("abc", stride=2.5)
    with pytest.raises(ValueError, match="empty text"):
        model.dynamic_bits_per_char("")
    one_token_windows = types.SimpleNamespace(context_length=1)  # Any causal LM.
    with pytest.raises(ValueError, match="at least 2 tokens. Received: context_length=1"):
        dynamic_evaluation.dynamic_nll(one_token_windows, "abc")


def test_export_signatures(exported):
    _, report = exported
    loaded = tf.saved_model.load(report["savedmodel"])
    names = sorted(set(loaded.signatures) - {"serving_default"})
    assert names == [
        "decode", "generate", "next_token_logits", "prefill", "sample", "sample_batch", "score",
    ]
    assert export.tflite_signatures(report["tflite"]) == [
        "decode", "next_token_logits", "prefill",
    ]


def test_savedmodel_generate_matches_python(exported):
    model, report = exported
    loaded = tf.saved_model.load(report["savedmodel"])
    request = {
        "prompt": "def add",
        "max_new_tokens": np.int32(20),
        "temperature": np.float32(0.8),
        "top_k": np.int32(10),
        "seed": np.array([4, 2], np.int32),
    }
    reply = export.run_predict_request(
        loaded, export.predict_request("lm", "generate", request)
    )
    text = np.asarray(reply["text"]).item().decode("utf-8")
    assert text == model.generate("def add", 20, temperature=0.8, top_k=10, seed=[4, 2])
    body = json.loads(export.rest_request_body("generate", request))
    assert body["inputs"]["prompt"] == "def add" and body["inputs"]["seed"] == [4, 2]
    score = loaded.signatures["score"](text=tf.constant(TEXT[:100]))["bits_per_char"]
    assert float(score) == pytest.approx(model.bits_per_char(TEXT[:100]), rel=1e-4)


def test_tflite_greedy_generation_matches_generate(exported):
    model, report = exported
    prompt = tokenizer.encode("def add(a")
    window = np.zeros((1, model.context_length), np.int32)
    window[0, : len(prompt)] = prompt
    length = len(prompt)
    new = []
    for _ in range(model.context_length - len(prompt)):
        logits = export.run_tflite(
            report["tflite"], "next_token_logits",
            {"tokens": window, "length": np.array([length], np.int32)},
        )["logits"]
        token = int(np.argmax(logits[0]))
        new.append(token)
        window[0, length] = token
        length += 1
    expected = model.generate("def add(a", max_new_tokens=len(new), temperature=0.0)
    assert tokenizer.decode(new) == expected


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"d_model": 10, "num_heads": 3}, "divisible by `num_heads`"),
        ({"context_length": 1}, "context_length"),
        ({"vocab_size": 300}, "at most 256"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TransformerLM(**{**CONFIG, **kwargs})


def test_bad_generation_arguments(trained):
    model = trained[0]
    with pytest.raises(ValueError, match="prompt"):
        model.generate(b"bytes")
    with pytest.raises(ValueError, match="temperature"):
        model.generate("a", 5, temperature=-1.0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate("a", 0)
    with pytest.raises(ValueError, match="must fit in context_length=16"):
        model.generate_tokens(np.ones((1, 10), "int32"), 10, strategy="prefix")
    with pytest.raises(ValueError, match="strategy"):
        model.generate_tokens(np.ones((1, 3), "int32"), 2, strategy="beam")
