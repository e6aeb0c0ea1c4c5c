"""Arithmetic coding, and compressing text with a language model."""

import math

import keras
import numpy as np
import pytest

from keras_genmodels.autoregressive import (
    arithmetic_coding,
    compression,
    dynamic_evaluation,
    tokenizer,
)
from keras_genmodels.autoregressive.transformer import TransformerLM

TEXT = "def add(a, b):\n    return a + b\n\n" * 4
CONFIG = {"context_length": 16, "d_model": 16, "num_heads": 2, "num_layers": 2}


def test_arithmetic_coding_round_trip_near_the_entropy():
    rng = np.random.default_rng(0)
    distributions = rng.dirichlet(np.full(256, 0.05), size=2000)
    symbols = [int(rng.choice(256, p=p)) for p in distributions]
    encoder = arithmetic_coding.ArithmeticEncoder()
    for symbol, p in zip(symbols, distributions):
        encoder.encode(arithmetic_coding.cumulative_frequencies(p), symbol)
    data = encoder.finish()
    decoder = arithmetic_coding.ArithmeticDecoder(data)
    decoded = [
        decoder.decode(arithmetic_coding.cumulative_frequencies(p)) for p in distributions
    ]
    assert decoded == symbols
    ideal = sum(-math.log2(p[s]) for s, p in zip(symbols, distributions))
    assert ideal <= 8 * len(data) <= ideal + 16  # Two end bits, byte padding.


def test_arithmetic_coding_codes_near_impossible_symbols():
    p = np.array([1.0, 0.0, 1e-300])  # Every symbol keeps frequency >= 1.
    cumulative = arithmetic_coding.cumulative_frequencies(p)
    assert cumulative[0] == 0 and np.all(np.diff(cumulative) >= 1)
    assert cumulative[-1] <= 2**arithmetic_coding.FREQUENCY_BITS
    symbols = [0, 1, 2, 2, 0, 1] * 10
    encoder = arithmetic_coding.ArithmeticEncoder()
    for s in symbols:
        encoder.encode(cumulative, s)
    decoder = arithmetic_coding.ArithmeticDecoder(encoder.finish())
    assert [decoder.decode(cumulative) for _ in symbols] == symbols


def test_arithmetic_coding_rejects_bad_input():
    with pytest.raises(ValueError, match="non-negative and not all zero"):
        arithmetic_coding.cumulative_frequencies([0.5, -0.1])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        arithmetic_coding.cumulative_frequencies([])
    with pytest.raises(ValueError, match="between 1 and 30. Received: 31"):
        arithmetic_coding.cumulative_frequencies([1.0], frequency_bits=31)
    encoder = arithmetic_coding.ArithmeticEncoder()
    with pytest.raises(ValueError, match=r"in \[0, 2\). Received: 2"):
        encoder.encode(arithmetic_coding.cumulative_frequencies([1.0, 1.0]), 2)
    encoder.finish()
    with pytest.raises(RuntimeError, match="finished"):
        encoder.encode(arithmetic_coding.cumulative_frequencies([1.0, 1.0]), 0)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(1)
    return TransformerLM(seed=0, **CONFIG)


@pytest.mark.parametrize("learning_rate, stride", [(0.0, None), (0.3, 5), (0.3, 15)])
def test_compression_round_trip_and_size(model, learning_rate, stride):
    before = model.get_weights()
    data = compression.compress(model, TEXT, learning_rate, stride)
    decoded = compression.decompress(model, data, learning_rate, stride)
    assert tokenizer.decode(decoded) == TEXT
    # The size is the model's code length (plus a 4-byte header and the
    # coder's end bits and padding).
    nats = dynamic_evaluation.dynamic_nll(model, TEXT, learning_rate, stride)
    bits = nats.sum() / math.log(2) + 32
    assert bits <= 8 * len(data) <= bits + 16
    for expected, restored in zip(before, model.get_weights()):
        np.testing.assert_array_equal(expected, restored)


def test_learning_while_coding_makes_a_repetitive_text_smaller(model):
    static = compression.compress(model, TEXT, 0.0)
    dynamic = compression.compress(model, TEXT, 0.3, stride=5)
    assert len(dynamic) < 0.8 * len(static)


def test_compression_rejects_bad_input(model):
    with pytest.raises(ValueError, match="empty text"):
        compression.compress(model, "")
    with pytest.raises(ValueError, match="4-byte length. Received 2 bytes"):
        compression.decompress(model, b"ab")
    with pytest.raises(ValueError, match="stride=16"):
        compression.compress(model, TEXT, 0.1, stride=16)
