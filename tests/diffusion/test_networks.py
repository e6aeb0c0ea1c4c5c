"""The noise-prediction networks and the time embedding."""

import keras
import numpy as np
import pytest

from keras_genmodels.diffusion.layers import (
    AttentionPooling,
    FastGroupNormalization,
    SinusoidalEmbedding,
)
from keras_genmodels.diffusion.mlp import mlp_denoiser
from keras_genmodels.diffusion.unet import unet


def test_sinusoidal_embedding_values_and_config():
    layer = SinusoidalEmbedding(4, max_period=100.0)
    out = keras.ops.convert_to_numpy(layer(np.array([0, 3], "int32")))
    frequencies = np.array([1.0, 0.1])
    expected = np.concatenate([np.sin(3 * frequencies), np.cos(3 * frequencies)])
    np.testing.assert_allclose(out[0], [0, 0, 1, 1], atol=1e-7)
    np.testing.assert_allclose(out[1], expected, rtol=1e-5)
    clone = SinusoidalEmbedding.from_config(layer.get_config())
    assert clone.dim == 4 and clone.max_period == 100.0


def test_sinusoidal_embedding_rejects_odd_dim():
    with pytest.raises(ValueError, match="dim=3"):
        SinusoidalEmbedding(3)


@pytest.mark.parametrize(
    "shape, groups, offset",
    [
        ((3, 7, 7, 16), 4, 0.0),
        ((2, 5, 6, 12), 12, 0.0),
        ((2, 9, 8), 2, 0.0),
        ((2, 4, 4, 8), 2, 20.0),
    ],
)
def test_fast_group_normalization_matches_keras(shape, groups, offset):
    rng = np.random.default_rng(0)
    x = (offset + rng.standard_normal(shape) * rng.uniform(0.5, 3.0, shape[-1])).astype("float32")
    reference = keras.layers.GroupNormalization(groups)
    fast = FastGroupNormalization(groups)
    reference.build(shape)
    fast.build(shape)
    gamma = rng.standard_normal(shape[-1]).astype("float32")
    beta = rng.standard_normal(shape[-1]).astype("float32")
    for layer in (reference, fast):
        layer.set_weights([gamma, beta])
    expected = keras.ops.convert_to_numpy(reference(x))
    # A mean 20x the spread costs a few float32 digits in E[x^2] - E[x]^2.
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(fast(x)), expected, atol=1e-5 if offset == 0 else 2e-4
    )
    restored = FastGroupNormalization.from_config(fast.get_config())
    assert restored.groups == groups and restored.epsilon == fast.epsilon


def test_fast_group_normalization_other_axis_falls_back_to_keras():
    x = np.random.default_rng(1).standard_normal((2, 8, 5, 5)).astype("float32")
    fast, reference = FastGroupNormalization(4, axis=1), keras.layers.GroupNormalization(4, axis=1)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(fast(x)), keras.ops.convert_to_numpy(reference(x)), atol=1e-5
    )


def test_mlp_denoiser_parameter_count_and_shape():
    network = mlp_denoiser(data_shape=(2,), hidden_units=256, num_layers=3, embedding_dim=64)
    # time MLP 64*256+256 + 256*256+256, input 2*256+256, 3 hidden 256*256+256,
    # output 256*2+2.
    expected = (64 * 256 + 256) + (256 * 256 + 256) + (2 * 256 + 256)
    expected += 3 * (256 * 256 + 256) + (256 * 2 + 2)
    assert network.count_params() == expected == 281_090
    out = network([np.zeros((5, 2), "float32"), np.arange(5, dtype="int32")])
    assert tuple(out.shape) == (5, 2)


@pytest.mark.parametrize("data_shape", [(28, 28, 1), (0,)])
def test_mlp_denoiser_takes_one_positive_vector_size(data_shape):
    with pytest.raises(ValueError, match="data_shape"):
        mlp_denoiser(data_shape=data_shape)


def _conv(k, cin, cout):
    return k * k * cin * cout + cout


def _res(cin, cout, emb):
    # GroupNorm has a scale and an offset per channel.
    skip = _conv(1, cin, cout) if cin != cout else 0
    first = 2 * cin + _conv(3, cin, cout) + emb * cout + cout
    return first + 2 * cout + _conv(3, cout, cout) + skip


def _attn(c):
    # GroupNorm, then query, key, value and output projections with biases.
    return 2 * c + 4 * (c * c + c)


def expected_unet_params(channels, base, mults, attn_sides, side, blocks=1):
    """Walks the U-Net's channels level by level."""
    emb = 4 * base
    total = (base * emb + emb) + (emb * emb + emb) + _conv(3, channels, base)
    skips, c = [base], base
    for level, m in enumerate(mults):
        s = side // 2**level
        for _ in range(blocks):
            total += _res(c, base * m, emb) + (_attn(base * m) if s in attn_sides else 0)
            c = base * m
            skips.append(c)
        if level != len(mults) - 1:
            total += _conv(3, c, c)
            skips.append(c)
    total += 2 * _res(c, c, emb) + _attn(c)
    for level in reversed(range(len(mults))):
        s = side // 2**level
        for _ in range(blocks + 1):
            cin = c + skips.pop()
            c = base * mults[level]
            total += _res(cin, c, emb) + (_attn(c) if s in attn_sides else 0)
        if level:
            total += _conv(3, c, c)
    return total + 2 * c + _conv(3, c, channels)


def test_unet_shapes_and_parameter_count():
    network = unet(
        (8, 8, 1), base_filters=8, channel_multipliers=(1, 2), attention_resolutions=(4,),
        groups=4,
    )
    assert network.count_params() == expected_unet_params(1, 8, (1, 2), (4,), 8)
    out = network([np.zeros((3, 8, 8, 1), "float32"), np.array([0, 5, 9], "int32")])
    assert tuple(out.shape) == (3, 8, 8, 1)
    assert any(isinstance(layer, keras.layers.MultiHeadAttention) for layer in network.layers)


def test_mnist_preset_unet_parameter_count():
    network = unet((28, 28, 1), base_filters=16, channel_multipliers=(1, 2, 4))
    expected = expected_unet_params(1, 16, (1, 2, 4), (7,), 28)
    assert network.count_params() == expected == 686_769


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"data_shape": (28, 28)}, "data_shape"),
        ({"data_shape": (30, 30, 1), "channel_multipliers": (1, 2, 2)}, "multiples of 4"),
        ({"base_filters": 12, "groups": 8}, "multiple of `groups`"),
        ({"dropout": 1.0}, "dropout"),
        ({"channel_multipliers": ()}, "channel_multipliers"),
        ({"context_width": 8, "pooled_context": True}, "pooled_context=True"),
    ],
)
def test_unet_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        unet(**kwargs)


def test_attention_pooling_weights_the_real_tokens_by_their_scores():
    layer = AttentionPooling(num_heads=2)
    rng = np.random.default_rng(0)
    states = rng.standard_normal((2, 5, 3)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], "float32")
    pooled = keras.ops.convert_to_numpy(layer(states, mask))
    assert pooled.shape == (2, 6)
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in layer.score.weights)
    for row in range(2):
        real = states[row, mask[row] > 0]
        scores = real @ kernel + bias  # (tokens, heads)
        weights = np.exp(scores - scores.max(0)) / np.exp(scores - scores.max(0)).sum(0)
        expected = (weights.T @ real).reshape(-1)  # Head-major, as the layer.
        np.testing.assert_allclose(pooled[row], expected, rtol=1e-5, atol=1e-6)
    # Whatever sits behind the mask is ignored.
    noisy = states.copy()
    noisy[0, 3:] = 1e3
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(noisy, mask)), pooled, rtol=1e-6, atol=1e-6
    )
    clone = AttentionPooling.from_config(layer.get_config())
    assert clone.num_heads == 2
