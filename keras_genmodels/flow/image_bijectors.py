"""TFP bijectors of the image flows, on `(N, H, W, C)` events.

- `LayerBijector`: one invertible Keras layer of `image_layers` (actnorm,
  1x1 convolution, coupling) as a bijector, data-to-latent forward;
- `Squeeze`: 2x2 space-to-depth, `(H, W, C) -> (H/2, W/2, 4C)`;
- `FactorOut`: keeps the first half of the channels as they are (they are
  latents from this scale on) and applies an inner bijector to the rest
  (the next scales), so later scales work on half the units.

All have `forward_min_event_ndims=3` and return log-determinants per
example; a `tfb.Chain` of them is the multi-scale architecture of RealNVP
and Glow.
"""

import weakref

import tensorflow as tf
import tensorflow_probability as tfp

tfb = tfp.bijectors


class _LayerHolder:
    """Keeps a Keras layer out of `tf.Module`'s attribute tracking."""

    def __init__(self, layer):
        self.layer = layer


class _Memo:
    """Values computed from a tensor, found again by that very tensor.

    TFP asks for `forward_log_det_jacobian(x)` after `forward(x)`; keeping
    what `forward` computed (keyed by the identity of `x`, checked through a
    weak reference, bounded in size) spares running the networks twice.
    """

    def __init__(self):
        self._items = {}

    def put(self, x, value):
        if len(self._items) > 256:
            self._items.clear()
        self._items[id(x)] = (weakref.ref(x), value)

    def get(self, x):
        item = self._items.get(id(x))
        if item is not None and item[0]() is x:
            return item[1]
        return None


class LayerBijector(tfb.Bijector):
    """An invertible `image_layers` layer as a TFP bijector (data to latent).

    `forward` is the layer's `forward_and_log_det` (its log-determinant is
    kept beside the output, so TFP's later `forward_log_det_jacobian` of
    the same tensor does not run the network again), `inverse` the layer's
    `inverse`.

    Args:
        layer: A built layer with `forward_and_log_det` and `inverse`.
        name: Bijector name.
    """

    def __init__(self, layer, name=None):
        parameters = dict(locals())
        self._holder = _LayerHolder(layer)
        self._log_dets = _Memo()
        super().__init__(forward_min_event_ndims=3, validate_args=False,
                         parameters=parameters, name=name or layer.name)

    @property
    def layer(self):
        return self._holder.layer

    def _forward(self, x):
        y, log_det = self.layer.forward_and_log_det(x)
        self._log_dets.put(x, log_det)
        return y

    def _inverse(self, y):
        return self.layer.inverse(y)

    def _forward_log_det_jacobian(self, x):
        log_det = self._log_dets.get(x)
        if log_det is not None:
            return log_det
        return self.layer.forward_and_log_det(x)[1]


class Squeeze(tfb.Bijector):
    """2x2 space-to-depth: `(H, W, C) -> (H/2, W/2, 4C)`, volume preserving."""

    def __init__(self, name="squeeze"):
        parameters = dict(locals())
        super().__init__(forward_min_event_ndims=3, validate_args=False,
                         is_constant_jacobian=True, parameters=parameters, name=name)

    def _forward(self, x):
        return tf.nn.space_to_depth(x, 2)

    def _inverse(self, y):
        return tf.nn.depth_to_space(y, 2)

    def _forward_log_det_jacobian(self, x):
        return tf.zeros(tf.shape(x)[:-3])

    def _forward_event_shape(self, shape):
        h, w, c = shape[-3:]
        return shape[:-3].concatenate([h // 2 if h else None, w // 2 if w else None,
                                       4 * c if c else None])

    def _inverse_event_shape(self, shape):
        h, w, c = shape[-3:]
        return shape[:-3].concatenate([2 * h if h else None, 2 * w if w else None,
                                       c // 4 if c else None])

    def _forward_event_shape_tensor(self, shape):
        return tf.concat([shape[:-3], shape[-3:-1] // 2, 4 * shape[-1:]], 0)

    def _inverse_event_shape_tensor(self, shape):
        return tf.concat([shape[:-3], shape[-3:-1] * 2, shape[-1:] // 4], 0)


class FactorOut(tfb.Bijector):
    """Passes the first `C // 2` channels and maps the rest with `inner`.

    `y = concat(x[..., :C//2], inner(x[..., C//2:]))`; the log-determinant
    is `inner`'s. `inner` must keep its input's shape (a multi-scale level
    that squeezes restores the shape at its end).

    Args:
        inner: A shape-preserving bijector on `(H, W, C - C//2)` events.
        name: Bijector name.
    """

    def __init__(self, inner, name="factor_out"):
        parameters = dict(locals())
        self._inner = inner
        self._rests = _Memo()
        super().__init__(forward_min_event_ndims=3, validate_args=False,
                         parameters=parameters, name=name)

    def _split(self, x):
        half = x.shape[-1] // 2
        return x[..., :half], x[..., half:]

    def _forward(self, x):
        kept, rest = self._split(x)
        self._rests.put(x, rest)
        return tf.concat([kept, self._inner.forward(rest)], axis=-1)

    def _inverse(self, y):
        kept, rest = self._split(y)
        return tf.concat([kept, self._inner.inverse(rest)], axis=-1)

    def _forward_log_det_jacobian(self, x):
        rest = self._rests.get(x)
        if rest is None:
            rest = self._split(x)[1]
        return self._inner.forward_log_det_jacobian(rest, event_ndims=3)
