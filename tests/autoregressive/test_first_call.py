"""When `generate` XLA-compiles its token loop (`ByteLanguageModel.use_xla`).

The first call of a batch size and length bucket runs the cached loop as a
graph (no XLA compilation to pay), later calls of the bucket run it
XLA-compiled, and both give the same tokens for a seed.
"""

import keras
import numpy as np
import pytest

from keras_genmodels.autoregressive import tokenizer
from keras_genmodels.autoregressive.transformer import TransformerLM

CONFIG = {"context_length": 16, "d_model": 16, "num_heads": 2, "num_layers": 1}
KWARGS = {"temperature": 1.0, "top_k": 5, "seed": 3}


def _model():
    keras.utils.set_random_seed(0)
    return TransformerLM(seed=0, **CONFIG)


def _traces(model):
    """`{key: tracing count}` of the model's generation functions."""
    return {
        key: fn.experimental_get_tracing_count()
        for key, fn in model._traced_functions_cache.items()
    }


@pytest.fixture(scope="module")
def model():
    return _model()


def test_use_xla_buckets_by_batch_and_length():
    model = _model()
    assert model.use_xla(None, 1, 10) is False  # First call of bucket (1, 64).
    assert model.use_xla(None, 1, 64) is True  # Same bucket.
    assert model.use_xla(None, 1, 65) is False  # Bucket (1, 128).
    assert model.use_xla(None, 2, 10) is False  # Another batch size.
    assert model.use_xla(None, 1, model.xla_min_new_tokens) is True  # Pays back at once.
    assert model.use_xla(False, 1, 10) is False and model.use_xla(True, 2, 500) is True


def test_first_call_runs_a_graph_then_xla_with_the_same_tokens(model):
    prompt = tokenizer.encode("def ")[None]
    first = model.generate_tokens(prompt, 20, **KWARGS)
    assert _traces(model) == {("generate", "cached", False): 1, ("fill_cache",): 1}
    second = model.generate_tokens(prompt, 20, **KWARGS)
    # A shorter call of the same bucket reuses both traces; the prefill and
    # the window refill (20 tokens > context 16) of both loops share one.
    shorter = model.generate_tokens(prompt, 12, **KWARGS)
    assert _traces(model) == {
        ("generate", "cached", False): 1,
        ("generate", "cached", True): 1,
        ("decode_loop_xla",): 1,
        ("fill_cache",): 1,
    }
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first[:, :12], shorter)
    explicit = model.generate_tokens(prompt, 20, jit_compile=True, **KWARGS)
    np.testing.assert_array_equal(first, explicit)


def test_sample_first_call_matches_later_calls(model):
    texts = model.sample(2, seed=1, max_new_tokens=10)
    assert model.sample(2, seed=1, max_new_tokens=10) == texts
    keys = {key for key in model._traced_functions_cache if key[0] == "sample"}
    assert keys == {("sample", ("jit_compile", False)), ("sample", ("jit_compile", True))}
