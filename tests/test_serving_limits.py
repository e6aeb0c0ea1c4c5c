"""Served signatures refuse, in the graph, what they cannot answer.

TF Serving passes a request's tensors straight into a signature (so do the
loaded signatures here: neither checks shapes). Every client-controlled size
is checked against a limit fixed at export and every input against its shape
and range, with INVALID_ARGUMENT naming the input. One tiny model per family
is exported and loaded once; the GAN's cases are in tests/gan/test_export.py.
"""

import os
import time

import numpy as np
import pytest
import tensorflow as tf

import keras_genmodels
from keras_genmodels import export, serving_limits
from keras_genmodels.autoregressive.rnn import RNNAutoregressive
from keras_genmodels.autoregressive.rnn_lm import RNNLanguageModel
from keras_genmodels.autoregressive.transformer import TransformerLM

T = 20  # Diffusion steps of the tiny DDPM.
SEED = np.array([1, 2], np.int32)
BUILDERS = {
    "vae": lambda: keras_genmodels.build("vae", "reference", hidden_units=8, seed=0),
    "flow": lambda: keras_genmodels.build("flow", "reference", hidden_units=(4,), seed=0),
    "diffusion": lambda: keras_genmodels.build(
        "diffusion", "mlp2d", timesteps=T, hidden_units=8, num_layers=1, seed=0
    ),
    "rnn": lambda: RNNAutoregressive("simple_rnn", units=4, sequence_length=5, seed=0),
    "rnn-text": lambda: RNNLanguageModel(
        "gru", units=4, sequence_length=5, embedding_dim=4, seed=0
    ),
    "transformer": lambda: TransformerLM(
        context_length=8, d_model=8, num_heads=2, num_layers=1, seed=0
    ),
}
# The VAE is exported with limits of its own; the others with their defaults.
VAE_LIMITS = {"num_samples": 64, "batch_size": 32}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`served(family)`: `(model, export path, loaded SavedModel)`, built once."""
    base = str(tmp_path_factory.mktemp("served"))
    cache = {}

    def get(family):
        if family not in cache:
            model = BUILDERS[family]()
            limits = VAE_LIMITS if family == "vae" else None
            path = export.export_savedmodel(model, base, limits=limits)
            cache[family] = model, path, tf.saved_model.load(path)
        return cache[family]

    return get


def _call(loaded, signature, inputs):
    fn = loaded.signatures[signature]
    return fn(**{k: tf.constant(v) for k, v in inputs.items()})


# (family, signature, normal request, the same with one size far too large).
OVERSIZED = [
    ("vae", "sample", {"num_samples": np.int32(3), "seed": SEED}, "num_samples"),
    ("flow", "sample", {"num_samples": np.int32(3), "seed": SEED}, "num_samples"),
    (
        "diffusion", "sample",
        {"num_samples": np.int32(2), "seed": SEED, "num_steps": np.int32(2)}, "num_samples",
    ),
    (
        "diffusion", "sample",
        {"num_samples": np.int32(2), "seed": SEED, "num_steps": np.int32(2)}, "num_steps",
    ),
    ("rnn", "sample", {"num_samples": np.int32(2), "seed": SEED}, "num_samples"),
    (
        "rnn", "forecast",
        {"history": np.zeros((1, 6), np.float32), "steps": np.int32(3)}, "steps",
    ),
    (
        "rnn-text", "generate",
        {"prompt": np.array(b"ab"), "max_new_tokens": np.int32(4),
         "temperature": np.float32(1.0), "top_k": np.int32(0), "seed": SEED},
        "max_new_tokens",
    ),
    (
        "transformer", "generate",
        {"prompt": np.array(b"ab"), "max_new_tokens": np.int32(4),
         "temperature": np.float32(0.0), "top_k": np.int32(0), "seed": SEED},
        "max_new_tokens",
    ),
    (
        "rnn-text", "sample",
        {"num_samples": np.int32(2), "seed": SEED, "max_new_tokens": np.int32(3)},
        "max_new_tokens",
    ),
    (
        "transformer", "sample",
        {"num_samples": np.int32(2), "seed": SEED, "max_new_tokens": np.int32(3)},
        "num_samples",
    ),
]


@pytest.mark.parametrize(
    "family, signature, normal, size", OVERSIZED, ids=[f"{c[0]}-{c[3]}" for c in OVERSIZED]
)
def test_oversized_request_is_refused_fast_then_a_normal_one_answered(
    served, family, signature, normal, size
):
    model, _, loaded = served(family)
    limit = serving_limits.signature_limits(model, VAE_LIMITS if family == "vae" else None)
    limit = limit[signature][size]
    request = dict(normal, **{size: np.int32(1_000_000_000)})
    start = time.perf_counter()
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _call(loaded, signature, request)
    # Refused before the loop ran: a billion tokens, samples or steps would
    # take days; the bound is loose because the CI machine is shared.
    assert time.perf_counter() - start < 60.0
    assert f"{size} must be in [1, {limit}]. Received: {size}=1000000000" in info.value.message
    outputs = _call(loaded, signature, normal)
    assert all(np.all(np.isfinite(v.numpy())) for v in outputs.values() if v.dtype.is_floating)


def _text(**changes):
    request = {"prompt": np.array(b"ab"), "max_new_tokens": np.int32(2),
               "temperature": np.float32(1.0), "top_k": np.int32(0), "seed": SEED}
    return dict(request, **changes)


def _points(rows, width=2, value=0.0):
    return np.full((rows, width), value, np.float32)


# (family, signature, request, pattern of the error message).
REFUSED = [
    ("vae", "sample", {"num_samples": np.int32(65), "seed": SEED},
     r"num_samples must be in \[1, 64\]"),
    ("vae", "sample", {"num_samples": np.int32(0), "seed": SEED}, r"Received: num_samples=0"),
    ("vae", "sample", {"num_samples": np.int32(-3), "seed": SEED}, r"Received: num_samples=-3"),
    ("vae", "sample", {"num_samples": np.array([3, 4], np.int32), "seed": SEED},
     r"num_samples \[2\] is not compatible with expected shape \[\]"),
    ("vae", "sample", {"num_samples": np.int32(3), "seed": np.array([1, -2], np.int32)},
     r"seed must be two ints in \[0, 2\*\*31 - 1\]. Received: seed=\[1 -2\]"),
    ("vae", "sample", {"num_samples": np.int32(3), "seed": np.array([1, 2, 3], np.int32)},
     r"seed \[3\] is not compatible"),
    ("vae", "encode", {"images": np.zeros((33, 28, 28, 1), np.float32)},
     r"images must have shape \[N, 28, 28, 1\] with 1 <= N <= 32. Received: images with "
     r"shape \[33 28 28 1\]"),
    ("vae", "encode", {"images": np.zeros((0, 28, 28, 1), np.float32)}, r"shape \[0 28 28 1\]"),
    ("vae", "encode", {"images": np.full((1, 28, 28, 1), 255.0, np.float32)},
     r"images must be in \[0.0, 1.0\]"),
    ("vae", "encode", {"images": np.zeros((1, 28, 28, 3), np.float32)},
     r"images \[1,28,28,3\] is not compatible"),
    ("vae", "decode", {"latents": _points(1, 3)}, r"latents \[1,3\] is not compatible"),
    ("vae", "decode", {"latents": _points(1, value=np.nan)}, r"latents must be finite"),
    # The 2-D flow answered 3 values per row, ignoring the third.
    ("flow", "log_prob", {"x": _points(2, 3)}, r"x \[2,3\] is not compatible with expected "
     r"shape \[\?,2\]"),
    ("flow", "encode", {"x": _points(2, 3)}, r"x \[2,3\] is not compatible"),
    ("flow", "encode", {"x": np.zeros(4, np.float32)}, r"x \[4\] is not compatible"),
    ("flow", "log_prob", {"x": _points(1025)}, r"x must have shape \[N, 2\] with 1 <= N <= 1024"),
    ("flow", "decode", {"latents": _points(1, value=np.inf)}, r"latents must be finite"),
    # num_steps 0, negative or 1e9 used to be clamped silently.
    ("diffusion", "sample", {"num_samples": np.int32(2), "seed": SEED, "num_steps": np.int32(0)},
     rf"num_steps must be in \[1, {T}\]. Received: num_steps=0"),
    ("diffusion", "sample", {"num_samples": np.int32(2), "seed": SEED, "num_steps": np.int32(-4)},
     r"Received: num_steps=-4"),
    ("diffusion", "sample",
     {"num_samples": np.int32(2), "seed": SEED, "num_steps": np.int32(T + 1)},
     rf"Received: num_steps={T + 1}"),
    ("diffusion", "predict_noise", {"x_t": _points(1), "t": np.array([T], np.int32)},
     rf"t must be in \[0, {T - 1}\]. Received: t with values in \[{T}, {T}\]"),
    ("diffusion", "predict_noise", {"x_t": _points(1), "t": np.array([-1], np.int32)},
     r"t must be in"),
    ("diffusion", "predict_noise", {"x_t": _points(3), "t": np.array([1, 2], np.int32)},
     r"x_t, t must have the same number of rows. Received: 3, 2 rows"),
    ("diffusion", "denoise_step",
     {"x_t": _points(2), "t": np.array([1, 2], np.int32), "noise": _points(1)},
     r"x_t, t, noise must have the same number of rows"),
    # forecast(steps=0 or -3) returned the history itself.
    ("rnn", "forecast", {"history": _points(1, 6), "steps": np.int32(0)},
     r"steps must be in \[1, 1024\]. Received: steps=0"),
    ("rnn", "forecast", {"history": _points(1, 6), "steps": np.int32(-3)}, r"steps=-3"),
    ("rnn", "forecast", {"history": _points(1, 0), "steps": np.int32(2)},
     r"history must have 1 to 4096 values per row. Received: history with 0 values"),
    ("rnn", "forecast", {"history": _points(1, 4097), "steps": np.int32(2)},
     r"history with 4097 values per row"),
    ("rnn", "forecast", {"history": _points(1025, 6), "steps": np.int32(2)},
     r"history must have shape \[N, \?\] with 1 <= N <= 1024"),
    ("rnn", "forecast", {"history": _points(1, 6, np.nan), "steps": np.int32(2)},
     r"history must be finite"),
    ("rnn", "step", {"x": _points(2, 1), "state": _points(3, 4)},
     r"x, state must have the same number of rows"),
    ("rnn-text", "generate", _text(max_new_tokens=np.int32(0)),
     r"max_new_tokens must be in \[1, 1024\]. Received: max_new_tokens=0"),
    ("rnn-text", "generate", _text(temperature=np.float32(-1.0)),
     r"temperature must be a finite number in \[0.0, inf\]. Received: temperature=-1"),
    ("rnn-text", "generate", _text(temperature=np.float32(np.nan)),
     r"Received: temperature=nan"),
    ("rnn-text", "generate", _text(top_k=np.int32(-1)),
     r"top_k must be in \[0, 256\]. Received: top_k=-1"),
    ("rnn-text", "generate", _text(top_k=np.int32(257)), r"top_k=257"),
    ("rnn-text", "generate", _text(prompt=np.array(b"a" * 16385)),
     r"prompt must have 0 to 16384 bytes. Received: prompt with 16385 bytes"),
    ("rnn-text", "generate", _text(prompt=np.array([b"a", b"b"])),
     r"prompt \[2\] is not compatible"),
    # score("") answered 0 bits/char.
    ("rnn-text", "score", {"text": np.array(b"")},
     r"text must have 1 to 16384 bytes. Received: text with 0 bytes"),
    ("rnn-text", "step", {"x": np.array([256], np.int32), "state": _points(1, 4)},
     r"x must be in \[0, 255\]"),
    # next_token_logits with length 0 or beyond the context gave zero logits.
    ("transformer", "next_token_logits",
     {"tokens": np.zeros((1, 8), np.int32), "length": np.array([0], np.int32)},
     r"length must be in \[1, 8\]. Received: length with values in \[0, 0\]"),
    ("transformer", "next_token_logits",
     {"tokens": np.zeros((1, 8), np.int32), "length": np.array([9], np.int32)},
     r"length with values in \[9, 9\]"),
    ("transformer", "next_token_logits",
     {"tokens": np.full((1, 8), 300, np.int32), "length": np.array([3], np.int32)},
     r"tokens must be in \[0, 255\]"),
    ("transformer", "next_token_logits",
     {"tokens": np.zeros((65, 8), np.int32), "length": np.ones(65, np.int32)},
     r"tokens must have shape \[N, 8\] with 1 <= N <= 64"),
    ("transformer", "next_token_logits",
     {"tokens": np.zeros((2, 8), np.int32), "length": np.ones(3, np.int32)},
     r"tokens, length must have the same number of rows"),
    ("transformer", "score", {"text": np.array(b"")}, r"text must have 1 to 16384 bytes"),
    ("transformer", "generate", _text(seed=np.array([-1, 0], np.int32)),
     r"seed must be two ints"),
]


@pytest.mark.parametrize(
    "family, signature, request_inputs, message",
    REFUSED,
    ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(REFUSED)],
)
def test_bad_request_is_refused_naming_the_input(
    served, family, signature, request_inputs, message
):
    _, _, loaded = served(family)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        _call(loaded, signature, request_inputs)


def test_examples_and_edge_values_are_answered(served):
    for family in BUILDERS:
        model, _, loaded = served(family)
        for signature, inputs in model.signature_examples().items():
            _call(loaded, signature, inputs)
    _, _, loaded = served("vae")
    assert _call(loaded, "sample", {"num_samples": np.int32(64), "seed": SEED})[
        "samples"
    ].shape[0] == 64
    _, _, loaded = served("rnn-text")
    text = _call(loaded, "generate", _text(prompt=np.array(b""), top_k=np.int32(256)))
    assert text["text"].numpy()  # An empty prompt starts from the start token.
    _, _, loaded = served("transformer")
    out = _call(loaded, "next_token_logits",
                {"tokens": np.zeros((1, 8), np.int32), "length": np.array([8], np.int32)})
    assert np.any(out["logits"].numpy() != 0.0)


def test_default_export_names_differ_per_model_kind(served):
    names = {family: os.path.basename(os.path.dirname(served(family)[1])) for family in BUILDERS}
    assert names == {
        "vae": "vae",
        "flow": "flow-points",
        "diffusion": "diffusion-points",
        "rnn": "ar-rnn",
        "rnn-text": "ar-rnn-text",
        "transformer": "ar-transformer",
    }


def test_signature_limits_table(served):
    assert serving_limits.signature_limits(served("vae")[0]) == {
        "decode": {"batch_size": 1024},
        "encode": {"batch_size": 1024},
        "sample": {"num_samples": 1024},
        "sample_batch": {"batch_size": 1024},
    }
    ddpm = served("diffusion")[0]
    assert serving_limits.signature_limits(ddpm, {"num_steps": 5})["sample"] == {
        "num_samples": 1024, "num_steps": 5,
    }
    lm = served("transformer")[0]
    assert serving_limits.signature_limits(lm) == {
        "decode": {"batch_size": 64},
        "prefill": {"batch_size": 64},
        "generate": {"max_new_tokens": 1024, "prompt": 16384},
        "next_token_logits": {"batch_size": 64},
        "sample": {"max_new_tokens": 1024, "num_samples": 64},
        "sample_batch": {"batch_size": 64, "max_new_tokens": 1024},
        "score": {"text": 16384},
    }


def test_bad_limits_are_refused_before_anything_is_written(served, tmp_path):
    vae = served("vae")[0]
    with pytest.raises(ValueError, match=r"accept \['batch_size', 'num_samples'\]"):
        export.export_savedmodel(vae, str(tmp_path), limits={"max_samples": 3})
    for bad in (0, -1, True, 2.5, 2**31):
        with pytest.raises(ValueError, match="num_samples"):
            export.export_savedmodel(vae, str(tmp_path), limits={"num_samples": bad})
    with pytest.raises(ValueError, match=rf"num_steps` must be at most {T}"):
        export.export_savedmodel(served("diffusion")[0], str(tmp_path), limits={"num_steps": T + 1})
    assert os.listdir(tmp_path) == []
