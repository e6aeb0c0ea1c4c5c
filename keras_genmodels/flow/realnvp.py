"""RealNVP: a TensorFlow Probability bijector chain with Keras 3 couplings."""

import math
import numbers

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_genmodels.base import GenerativeModel, check_positive_int
from keras_genmodels.flow import networks as flow_networks
from keras_genmodels.serving_limits import InputChecks, ServingLimits

tfb = tfp.bijectors
tfd = tfp.distributions

PERMUTATIONS = ("reverse", "random")


class _Flow:
    """Plain holder of the TFP objects, kept out of Keras' tracking."""

    def __init__(self, bijector, distribution):
        self.bijector = bijector
        self.distribution = distribution
        self.functions = {}  # Cached `tf.function`s of the numpy methods.


def _check_event_shape(event_shape):
    if isinstance(event_shape, numbers.Integral):
        event_shape = (event_shape,)
    try:
        event_shape = tuple(int(d) for d in event_shape)
    except (TypeError, ValueError):
        event_shape = None
    if not event_shape or any(d < 1 for d in event_shape) or math.prod(event_shape) < 2:
        raise ValueError(
            "`event_shape` must be a non-empty tuple of positive ints with at "
            f"least 2 elements in all. Received: event_shape={event_shape}"
        )
    return event_shape


def _permutation(kind, size, index):
    if kind == "reverse":
        return np.arange(size - 1, -1, -1, dtype="int32")
    return np.random.default_rng([20170, index]).permutation(size).astype("int32")


@keras.saving.register_keras_serializable(package="keras_genmodels")
class RealNVP(GenerativeModel):
    """RealNVP normalizing flow with exact log-likelihoods.

    A `tfp.bijectors.Chain` of `tfp.bijectors.RealNVP` affine couplings
    alternating with fixed `tfp.bijectors.Permute`s maps a standard normal
    latent `z` (a `tfp.distributions.MultivariateNormalDiag`) to the data.
    Each coupling keeps the first `num_masked` units `x_a` and transforms
    the rest, `y_b = x_b * exp(s(x_a)) + t(x_a)`, with `(t, s)` from a Keras
    `CouplingNetwork` owned by this model (so its variables are in
    `trainable_variables`). The log-likelihood is exact:

    `log p(x) = log N(f^{-1}(x); 0, I) + log |det d f^{-1}(x) / dx|`.

    Images (`logit_alpha` set) are modelled as in the RealNVP paper: pixels
    `x` in [0, 1] with `num_levels` levels are dequantised,
    `y = (x * (num_levels - 1) + u) / num_levels` with `u ~ U[0, 1)`, and
    the flow models `logit(alpha + (1 - 2 alpha) y)`; the Jacobian of that
    map is part of the chain, so
    `bits/dim = (-log p(y) + D log(num_levels)) / (D log 2)` is the figure
    published papers report. For images, `log_prob` returns the
    log-probability of the quantised image estimated at the bin centre,
    `log p(y_c) - D log(num_levels)` with `y_c = (x (L - 1) + 1/2) / L`.

    References:
        Dinh, Sohl-Dickstein and Bengio, "Density estimation using Real NVP",
        ICLR 2017.
        Theis, van den Oord and Bethge, "A note on the evaluation of
        generative models", ICLR 2016 (dequantisation).

    Args:
        event_shape: Shape of one example, e.g. `(2,)` or `(28, 28, 1)`;
            events are flattened to `D` units.
        num_coupling_layers: Number of affine couplings.
        hidden_units: Int or tuple, hidden widths of each coupling network.
        num_masked: Units each coupling leaves unchanged (default `D // 2`).
        permutation: `"reverse"` or `"random"` (fixed, seeded) permutation
            between couplings.
        activation: Hidden activation of the coupling networks.
        logit_alpha: `alpha` of the logit transform in (0, 0.5), or `None`
            for real-valued data (no preprocessing).
        num_levels: Quantisation levels of the data (256 for 8-bit images);
            required with `logit_alpha`.
        coupling_networks: Optional list of `num_coupling_layers` built
            `CouplingNetwork`s (used by `from_config`); built from
            `hidden_units` when `None`.
        seed: Optional int seed of the dequantisation noise and of unseeded
            `sample` calls.
        **kwargs: Passed to `keras.Model`.

    Call arguments:
        x: `(batch, *event_shape)` float data.

    Returns (of `call`):
        `(batch,)` float32 `log_prob(x)`.

    Example:

    ```python
    flow = RealNVP(event_shape=(2,), num_coupling_layers=8, hidden_units=64)
    flow.compile(optimizer="adam")
    flow.fit(points, epochs=10, batch_size=256)
    flow.sample(100, seed=0).shape  # (100, 2)
    ```
    """

    def __init__(
        self,
        event_shape,
        num_coupling_layers=8,
        hidden_units=(64, 64),
        num_masked=None,
        permutation="reverse",
        activation="relu",
        logit_alpha=None,
        num_levels=None,
        coupling_networks=None,
        seed=None,
        **kwargs,
    ):
        kwargs.setdefault("name", "realnvp")
        super().__init__(seed=seed, **kwargs)
        self.event_shape = _check_event_shape(event_shape)
        self.event_size = math.prod(self.event_shape)
        self.num_coupling_layers = check_positive_int(
            num_coupling_layers, "num_coupling_layers"
        )
        self.hidden_units = flow_networks._check_units(hidden_units)
        if num_masked is None:
            num_masked = self.event_size // 2
        if isinstance(num_masked, bool) or not isinstance(num_masked, numbers.Integral) or (
            not 1 <= num_masked < self.event_size
        ):
            raise ValueError(
                f"`num_masked` must be an int in [1, {self.event_size - 1}]. "
                f"Received: num_masked={num_masked}"
            )
        self.num_masked = int(num_masked)
        if permutation not in PERMUTATIONS:
            raise ValueError(
                f"`permutation` must be one of {PERMUTATIONS}. Received: "
                f"permutation={permutation!r}"
            )
        self.permutation = permutation
        self.activation = activation
        if logit_alpha is not None:
            if not 0.0 < logit_alpha < 0.5:
                raise ValueError(
                    "`logit_alpha` must be in (0, 0.5) or None. Received: "
                    f"logit_alpha={logit_alpha}"
                )
            if num_levels is None:
                raise ValueError(
                    "`num_levels` (e.g. 256) is required with `logit_alpha`. "
                    f"Received: num_levels={num_levels}"
                )
        if num_levels is not None:
            num_levels = check_positive_int(num_levels, "num_levels")
            if num_levels < 2 or logit_alpha is None:
                raise ValueError(
                    "`num_levels` must be an int >= 2 and used with "
                    f"`logit_alpha`. Received: num_levels={num_levels}, "
                    f"logit_alpha={logit_alpha}"
                )
        self.logit_alpha = None if logit_alpha is None else float(logit_alpha)
        self.num_levels = num_levels
        if coupling_networks is None:
            coupling_networks = flow_networks.coupling_networks(
                self.event_size,
                self.num_coupling_layers,
                self.num_masked,
                self.hidden_units,
                activation,
            )
        elif len(coupling_networks) != self.num_coupling_layers:
            raise ValueError(
                f"Expected {self.num_coupling_layers} coupling networks. "
                f"Received: {len(coupling_networks)}"
            )
        for net in coupling_networks:
            if not net.built:
                net.build((None, self.num_masked))
        self.coupling_networks = list(coupling_networks)
        self._flow = self._make_flow()
        # Images are sampled and drawn as images, vectors as points.
        self.data_kind = "image" if self.is_image else "points"
        # log_prob sums D terms in float32: scale the TF Lite tolerance.
        self.tflite_tolerance = 1e-4 * max(1.0, self.event_size / 64.0)
        self.add_loss_trackers("loss", "bits_per_dim")
        self.build((None, *self.event_shape))

    @property
    def is_image(self):
        """Whether the data are quantised images (logit preprocessing on)."""
        return self.logit_alpha is not None

    def _make_flow(self):
        forward = []  # Bijectors in latent -> data order.
        for i, net in enumerate(self.coupling_networks):
            if i:
                forward.append(
                    tfb.Permute(
                        _permutation(self.permutation, self.event_size, i),
                        name=f"permute_{i}",
                    )
                )
            forward.append(
                tfb.RealNVP(
                    num_masked=self.num_masked,
                    shift_and_log_scale_fn=self._coupling_fn(net),
                    name=f"real_nvp_{i}",
                )
            )
        if self.is_image:
            # u -> sigmoid(u) -> (sigmoid(u) - alpha) / (1 - 2 alpha) = y.
            alpha = self.logit_alpha
            forward += [
                tfb.Sigmoid(),
                tfb.Shift(np.float32(-alpha)),
                tfb.Scale(np.float32(1.0 / (1.0 - 2.0 * alpha))),
            ]
        bijector = tfb.Chain(forward[::-1], name="realnvp_chain")
        base = tfd.MultivariateNormalDiag(
            loc=np.zeros(self.event_size, "float32"), name="base"
        )
        return _Flow(bijector, tfd.TransformedDistribution(base, bijector))

    @staticmethod
    def _coupling_fn(net):
        def shift_and_log_scale_fn(x_masked, output_units, **condition_kwargs):
            shift, log_scale = net(x_masked, output_units=output_units)
            # The coupling networks may compute in bfloat16/float16 under a
            # mixed policy; the bijector chain, its log-determinants and the
            # log-likelihood stay in float32: a sum of D log-scales loses
            # whole nats in bfloat16's 8-bit mantissa.
            return tf.cast(shift, "float32"), tf.cast(log_scale, "float32")

        return shift_and_log_scale_fn

    @property
    def bijector(self):
        """The `tfb.Chain` from latents `(N, D)` to flattened data `(N, D)`."""
        return self._flow.bijector

    @property
    def distribution(self):
        """The `tfd.TransformedDistribution` over flattened (preprocessed) data."""
        return self._flow.distribution

    def build(self, input_shape=None):
        # The coupling networks are built in __init__.
        self.built = True

    # ------------------------------------------------------------------
    # Pure-TF core, shared by the methods, training and the exports.
    # ------------------------------------------------------------------
    def _flatten(self, x):
        # `tf.identity` gives TFP's bijector cache a fresh key on every call,
        # so results computed with older weights are never reused.
        return tf.identity(tf.reshape(tf.cast(x, "float32"), [-1, self.event_size]))

    def _bin_centre(self, x, noise=None):
        levels = float(self.num_levels)
        offset = 0.5 if noise is None else noise
        return (x * (levels - 1.0) + offset) / levels

    def _log_prob_tf(self, x, noise=None):
        """`(N,)` log-likelihoods of `x` (`(N, *event_shape)`)."""
        y = self._flatten(x)
        if not self.is_image:
            return self.distribution.log_prob(y)
        y = self._bin_centre(y, None if noise is None else self._flatten(noise))
        return self.distribution.log_prob(y) - self.event_size * math.log(self.num_levels)

    def _encode_tf(self, x):
        y = self._flatten(x)
        if self.is_image:
            y = self._bin_centre(y)
        return self.bijector.inverse(y)

    def _decode_tf(self, latents):
        y = self.bijector.forward(tf.identity(tf.cast(latents, "float32")))
        if self.is_image:
            levels = float(self.num_levels)
            y = tf.clip_by_value((y * levels - 0.5) / (levels - 1.0), 0.0, 1.0)
        return tf.reshape(y, [-1, *self.event_shape])

    def _sample_from_seed(self, num_samples, seed, temperature=1.0):
        latents = tf.random.stateless_normal(
            tf.stack([num_samples, self.event_size]), seed=seed
        )
        return self._decode_tf(latents * temperature)

    def call(self, x, training=False):
        return self._log_prob_tf(x)

    def compute_losses(self, data, training=False):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        x = tf.cast(x, "float32")
        noise = None
        if self.is_image:
            noise = self.batch_noise(tf.shape(x), "uniform")
        loss = -tf.reduce_mean(self._log_prob_tf(x, noise))
        return {"loss": loss, "bits_per_dim": loss / (self.event_size * math.log(2.0))}

    # ------------------------------------------------------------------
    # Inference (numpy in, numpy out).
    # ------------------------------------------------------------------
    def _function(self, name, fn):
        functions = self._flow.functions
        if name not in functions:
            functions[name] = tf.function(fn, reduce_retracing=True)
        return functions[name]

    def _check_data(self, x, argument="x"):
        x = np.asarray(x, dtype="float32")
        if x.ndim < 1 or x.shape[1:] != self.event_shape:
            raise ValueError(
                f"`{argument}` must have shape (N, {', '.join(map(str, self.event_shape))}). "
                f"Received: shape {x.shape}"
            )
        return x

    def log_prob(self, x):
        """Exact log-likelihood of each example, in nats.

        Args:
            x: `(N, *event_shape)` array. For images, pixels in [0, 1].

        Returns:
            `(N,)` float32 numpy array: `log p(x)` for real-valued data; for
            images, the log-probability of the quantised image at the bin
            centre (`bits/dim = -log_prob / (D log 2)`).
        """
        x = self._check_data(x)
        return self._function("log_prob", self._log_prob_tf)(x).numpy()

    def encode(self, x):
        """Maps data to latents, `z = f^{-1}(x)` (bin centres for images).

        Args:
            x: `(N, *event_shape)` array.

        Returns:
            `(N, D)` float32 numpy latents.
        """
        x = self._check_data(x)
        return self._function("encode", self._encode_tf)(x).numpy()

    def decode(self, latents):
        """Maps latents to data, `x = f(z)`; images are clipped to [0, 1].

        Args:
            latents: `(N, D)` array.

        Returns:
            `(N, *event_shape)` float32 numpy array.
        """
        latents = np.asarray(latents, dtype="float32")
        if latents.ndim != 2 or latents.shape[-1] != self.event_size:
            raise ValueError(
                f"`latents` must have shape (N, {self.event_size}). Received: "
                f"shape {latents.shape}"
            )
        return self._function("decode", self._decode_tf)(latents).numpy()

    def sample(self, num_samples, seed=None, temperature=1.0):
        """Draws `x = f(temperature * z)` with `z ~ N(0, I)`.

        Args:
            num_samples: Positive int.
            seed: `None`, an int or a pair of ints; with `temperature=1` the
                exported `sample` signature gives the same samples for the
                same seed pair.
            temperature: Positive float scaling the latent's standard
                deviation (below 1 gives cleaner, less varied samples).

        Returns:
            `(num_samples, *event_shape)` float32 numpy array (images in
            [0, 1]).
        """
        num_samples = check_positive_int(num_samples, "num_samples")
        if not temperature > 0:
            raise ValueError(
                f"`temperature` must be positive. Received: temperature={temperature}"
            )
        fn = self._function("sample", self._sample_from_seed)
        return fn(
            tf.constant(num_samples, tf.int32),
            self.resolve_seed(seed),
            tf.constant(temperature, tf.float32),
        ).numpy()

    # ------------------------------------------------------------------
    # Evaluation.
    # ------------------------------------------------------------------
    def evaluation_metrics(self, dataset, dataset_name=None, batch_size=500, seed=0,
                           **kwargs):
        """Held-out negative log-likelihood and bits/dim.

        For images the test images are dequantised with seeded uniform noise
        (the figure papers report). For a 2-D toy set named by
        `dataset_name` (e.g. `"ring8:sigma=0.1"`), the true entropy is
        estimated on the same points with the set's true density,
        `H = -mean log p_true(x)`, so `test_nll - true_entropy` is the
        model's KL divergence from the data (up to sampling error).

        Args:
            dataset: Unbatched test-split dataset (labels are ignored).
            dataset_name: The data set's name, as given to
                `keras_genmodels.data.load`.
            batch_size: Examples per batch.
            seed: Int seed of the dequantisation noise.
            **kwargs: Ignored (other families' options).

        Returns:
            Dict with `test_nll` (nats per example), `bits_per_dim` (its
            mean per dimension), `median_bits_per_dim`, `num_examples`
            and, for toy sets, `true_entropy` and `nll_minus_entropy`.
        """
        from keras_genmodels import progress

        fn = self._function("log_prob_noise", self._log_prob_tf)
        noun = "test images" if self.is_image else "test examples"
        log_probs, points = [], []
        batches = progress.track_test_batches(
            self, dataset, batch_size, "Flow log-likelihood (bits/dim)", noun
        )
        for i, batch in enumerate(batches):
            batch = tf.cast(batch, "float32")
            noise = None
            if self.is_image:
                noise = tf.random.stateless_uniform(tf.shape(batch), seed=[seed, i])
            log_probs.append(fn(batch, noise).numpy().astype("float64"))
            if not self.is_image:
                points.append(batch.numpy())
        log_probs = np.concatenate(log_probs)
        nll = float(-log_probs.mean())
        to_bits = 1.0 / (self.event_size * math.log(2.0))
        metrics = {
            "test_nll": nll,
            "bits_per_dim": nll * to_bits,
            # A few test examples unlike any training one can dominate the
            # mean (small image sets); the median shows the typical example.
            "median_bits_per_dim": float(-np.median(log_probs)) * to_bits,
            "num_examples": int(len(log_probs)),
        }
        toy = _toy_set(dataset_name) if self.event_shape == (2,) else None
        if toy is not None:
            entropy = float(-toy.log_prob(np.concatenate(points)).mean())
            metrics["true_entropy"] = entropy
            metrics["nll_minus_entropy"] = nll - entropy
        return metrics

    # ------------------------------------------------------------------
    # Export.
    # ------------------------------------------------------------------
    @property
    def default_export_name(self):
        """Default model name of an export: `flow` for images,
        `flow-points` for vectors (different signature shapes)."""
        return "flow" if self.is_image else "flow-points"

    @property
    def serving_limits(self):
        """The limits the serving signatures enforce (`ServingLimits`)."""
        return ServingLimits(
            {
                "sample": ("num_samples",),
                "log_prob": ("batch_size",),
                "encode": ("batch_size",),
                "decode": ("batch_size",),
            }
        )

    def _data_spec(self, batch_size):
        return tf.TensorSpec((batch_size, *self.event_shape), tf.float32, name="x")

    def _checked_data(self, x, limit):
        """`x` behind its checks: the shape, `limit` rows, and values in
        `[0, 1]` (images) or finite (vectors)."""
        checks = InputChecks()
        shape = [None, *self.event_shape]
        if self.is_image:
            x = checks.batch("x", x, shape, limit, low=0.0, high=1.0)
        else:
            x = checks.batch("x", x, shape, limit, finite=True)
        return checks.gate(x)

    def _log_prob_endpoint(self, batch_size, limit=None):
        """`log_prob`; with a row `limit` (serving) its input is checked."""
        @tf.function(input_signature=[self._data_spec(batch_size)])
        def log_prob(x):
            if limit is not None:
                x = self._checked_data(x, limit)
            return {"log_prob": self._log_prob_tf(x)}

        return log_prob

    def _decode_endpoint(self, batch_size, limit=None):
        """`decode`; with a row `limit` (serving) its input is checked."""
        shape = [batch_size, self.event_size]

        @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, name="latents")])
        def decode(latents):
            if limit is not None:
                checks = InputChecks()
                latents = checks.batch("latents", latents, shape, limit, finite=True)
                latents = checks.gate(latents)
            return {"samples": self._decode_tf(latents)}

        return decode

    def serving_endpoints(self, limits=None):
        """The `sample`, `log_prob`, `encode` and `decode` signatures.

        Args:
            limits: Optional `{limit name: int}` replacing the defaults of
                `serving_limits`.
        """
        limits = self.serving_limits.resolve(limits)
        rows = limits["batch_size"]

        @tf.function(
            input_signature=[
                tf.TensorSpec([], tf.int32, name="num_samples"),
                tf.TensorSpec([2], tf.int32, name="seed"),
            ]
        )
        def sample(num_samples, seed):
            checks = InputChecks()
            num_samples = checks.count("num_samples", num_samples, limits["num_samples"])
            seed = checks.seed(seed)
            return {"samples": self._sample_from_seed(*checks.gate(num_samples, seed))}

        @tf.function(input_signature=[self._data_spec(None)])
        def encode(x):
            return {"latents": self._encode_tf(self._checked_data(x, rows))}

        return {
            "sample": sample,
            "log_prob": self._log_prob_endpoint(None, rows),
            "encode": encode,
            "decode": self._decode_endpoint(None, rows),
        }

    def tflite_endpoints(self, batch_size=1):
        return {
            "decode": self._decode_endpoint(batch_size),
            "log_prob": self._log_prob_endpoint(batch_size),
        }

    def signature_examples(self, batch_size=1):
        rng = np.random.default_rng(0)
        latents = (0.7 * rng.standard_normal((batch_size, self.event_size))).astype(
            "float32"
        )
        # Data the model finds plausible, so log_prob stays in a sane range.
        x = self.decode(latents)
        if self.is_image:
            levels = self.num_levels - 1
            x = (np.round(x * levels) / levels).astype("float32")
        return {
            "sample": {"num_samples": np.int32(3), "seed": np.array([1, 2], np.int32)},
            "log_prob": {"x": x},
            "encode": {"x": x},
            "decode": {"latents": latents},
        }

    # ------------------------------------------------------------------
    # Serialization.
    # ------------------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "event_shape": list(self.event_shape),
                "num_coupling_layers": self.num_coupling_layers,
                "hidden_units": list(self.hidden_units),
                "num_masked": self.num_masked,
                "permutation": self.permutation,
                "activation": self.activation,
                "logit_alpha": self.logit_alpha,
                "num_levels": self.num_levels,
                "coupling_networks": [
                    keras.saving.serialize_keras_object(n) for n in self.coupling_networks
                ],
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["coupling_networks"] = [
            keras.saving.deserialize_keras_object(n) for n in config["coupling_networks"]
        ]
        return cls(**config)


def _toy_set(name):
    """The parsed toy set for a data set name, or `None` if it is not one."""
    if not isinstance(name, str):
        return None
    from keras_genmodels.data import toy2d
    from keras_genmodels.data.errors import DataError

    try:
        return toy2d.parse(name)[0]
    except DataError:
        return None
