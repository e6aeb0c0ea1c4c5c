"""`FlowModel`: what every normalizing flow of this family shares.

A flow here is a TensorFlow Probability bijector from a standard normal
latent `z` of `D` units to the flattened (and, for images, preprocessed)
data. This module turns such a bijector into a `GenerativeModel`: exact
log-likelihoods, dequantised training on images, `encode`/`decode`,
seeded sampling and the held-out figures. The bijector itself (its
couplings, permutations) is the subclass's job (`realnvp.RealNVP`); the
serving signatures are in `keras_genmodels.flow.serving`.
"""

import math
import numbers

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_genmodels.base import GenerativeModel, check_positive_int
from keras_genmodels.flow.serving import FlowServing

tfb = tfp.bijectors
tfd = tfp.distributions


class FlowDistribution:
    """Plain holder of the TFP objects, kept out of Keras' tracking."""

    def __init__(self, bijector, distribution):
        self.bijector = bijector
        self.distribution = distribution


def check_data_shape(data_shape):
    """Validates the shape of one example (at least 2 units in all).

    Args:
        data_shape: An int or a sequence of positive ints.

    Returns:
        The shape as a tuple of ints.
    """
    if isinstance(data_shape, numbers.Integral):
        data_shape = (data_shape,)
    try:
        data_shape = tuple(int(d) for d in data_shape)
    except (TypeError, ValueError):
        data_shape = None
    if not data_shape or any(d < 1 for d in data_shape) or math.prod(data_shape) < 2:
        raise ValueError(
            "`data_shape` must be a non-empty tuple of positive ints with at "
            f"least 2 elements in all. Received: data_shape={data_shape}"
        )
    return data_shape


def check_temperature(temperature):
    """Validates a sampling temperature: a positive, finite number."""
    try:
        value = float(temperature)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(temperature, bool) or not (value > 0 and math.isfinite(value)):
        raise ValueError(
            "`temperature` must be a positive float. Received: "
            f"temperature={temperature!r}"
        )
    return value


class FlowModel(FlowServing, GenerativeModel):
    """A bijector from `N(0, I)` latents to data, with exact likelihoods.

    Subclasses build the bijector (latents `(N, D)` to flattened data
    `(N, D)`, in latent-to-data order) and pass it to `set_flow`; this class
    adds the image preprocessing and everything computed from the flow.

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
        data_shape: Shape of one example, e.g. `(2,)` or `(28, 28, 1)`;
            examples are flattened to `D` units.
        logit_alpha: `alpha` of the logit transform in (0, 0.5), or `None`
            for real-valued data (no preprocessing).
        num_levels: Quantisation levels of the data (256 for 8-bit images);
            required with `logit_alpha`.
        seed: Optional int seed of the dequantisation noise and of unseeded
            `sample` calls.
        **kwargs: Passed to `keras.Model`.

    Call arguments:
        x: `(batch, *data_shape)` float data.

    Returns (of `call`):
        `(batch,)` float32 `log_prob(x)`.
    """

    def __init__(self, data_shape, logit_alpha=None, num_levels=None, seed=None,
                 **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.data_shape = check_data_shape(data_shape)
        self.data_size = math.prod(self.data_shape)
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
        # Images are sampled and drawn as images, vectors as points.
        self.data_kind = "image" if self.is_image else "points"
        # log_prob sums D terms in float32: scale the TF Lite tolerance.
        self.tflite_tolerance = 1e-4 * max(1.0, self.data_size / 64.0)
        self.add_loss_trackers("loss", "bits_per_dim")

    @property
    def is_image(self):
        """Whether the data are quantised images (logit preprocessing on)."""
        return self.logit_alpha is not None

    def set_flow(self, bijectors, name):
        """Sets the flow from its bijectors, in latent-to-data order.

        For images the logit preprocessing is appended, and the base
        distribution is `MultivariateNormalDiag` with zero mean over `D`
        units.

        Args:
            bijectors: List of TFP bijectors on `(N, D)` tensors.
            name: Name of the resulting `tfb.Chain`.
        """
        forward = list(bijectors)
        if self.is_image:
            # u -> sigmoid(u) -> (sigmoid(u) - alpha) / (1 - 2 alpha) = y.
            alpha = self.logit_alpha
            forward += [
                tfb.Sigmoid(),
                tfb.Shift(np.float32(-alpha)),
                tfb.Scale(np.float32(1.0 / (1.0 - 2.0 * alpha))),
            ]
        bijector = tfb.Chain(forward[::-1], name=name)
        base = tfd.MultivariateNormalDiag(
            loc=np.zeros(self.data_size, "float32"), name="base"
        )
        self._flow = FlowDistribution(bijector, tfd.TransformedDistribution(base, bijector))

    @property
    def bijector(self):
        """The `tfb.Chain` from latents `(N, D)` to flattened data `(N, D)`."""
        return self._flow.bijector

    @property
    def distribution(self):
        """The `tfd.TransformedDistribution` over flattened (preprocessed) data."""
        return self._flow.distribution

    # ------------------------------------------------------------------
    # Pure-TF core, shared by the methods, training and the exports.
    # ------------------------------------------------------------------
    def _flatten(self, x):
        # `tf.identity` gives TFP's bijector cache a fresh key on every call,
        # so results computed with older weights are never reused.
        return tf.identity(tf.reshape(tf.cast(x, "float32"), [-1, self.data_size]))

    def _bin_centre(self, x, noise=None):
        levels = float(self.num_levels)
        offset = 0.5 if noise is None else noise
        return (x * (levels - 1.0) + offset) / levels

    def log_prob_tensor(self, x, noise=None):
        """`(N,)` log-likelihoods of `x` (`(N, *data_shape)`), in TensorFlow.

        Args:
            x: Data tensor.
            noise: For images, dequantisation noise in [0, 1) of `x`'s
                shape; `None` evaluates at the bin centres.
        """
        y = self._flatten(x)
        if not self.is_image:
            return self.distribution.log_prob(y)
        y = self._bin_centre(y, None if noise is None else self._flatten(noise))
        return self.distribution.log_prob(y) - self.data_size * math.log(self.num_levels)

    def encode_tensor(self, x):
        """`(N, D)` latents of `x` (bin centres for images), in TensorFlow."""
        y = self._flatten(x)
        if self.is_image:
            y = self._bin_centre(y)
        return self.bijector.inverse(y)

    def decode_tensor(self, latents):
        """`(N, *data_shape)` data of `(N, D)` latents, in TensorFlow."""
        y = self.bijector.forward(tf.identity(tf.cast(latents, "float32")))
        if self.is_image:
            levels = float(self.num_levels)
            y = tf.clip_by_value((y * levels - 0.5) / (levels - 1.0), 0.0, 1.0)
        return tf.reshape(y, [-1, *self.data_shape])

    def sample_from_seed(self, num_samples, seed, temperature=1.0):
        """Decodes `temperature * z` with `z ~ N(0, I)` drawn from `seed`.

        The exported `sample` signature runs this with `temperature=1.0`.
        """
        latents = tf.random.stateless_normal(
            tf.stack([num_samples, self.data_size]), seed=seed
        )
        return self.decode_tensor(latents * temperature)

    def call(self, x, training=False):
        return self.log_prob_tensor(x)

    def compute_losses(self, data, training=False):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        x = tf.cast(x, "float32")
        noise = None
        if self.is_image:
            noise = self.batch_noise(tf.shape(x), "uniform")
        loss = -tf.reduce_mean(self.log_prob_tensor(x, noise))
        return {"loss": loss, "bits_per_dim": loss / (self.data_size * math.log(2.0))}

    # ------------------------------------------------------------------
    # Inference (numpy in, numpy out).
    # ------------------------------------------------------------------
    def _traced(self, name, fn):
        return self.traced_function((name,), fn, reduce_retracing=True)

    def _check_data(self, x, argument="x"):
        x = np.asarray(x, dtype="float32")
        if x.ndim < 1 or x.shape[1:] != self.data_shape:
            raise ValueError(
                f"`{argument}` must have shape (N, {', '.join(map(str, self.data_shape))}). "
                f"Received: shape {x.shape}"
            )
        return x

    def log_prob(self, x):
        """Exact log-likelihood of each example, in nats.

        Args:
            x: `(N, *data_shape)` array. For images, pixels in [0, 1].

        Returns:
            `(N,)` float32 numpy array: `log p(x)` for real-valued data; for
            images, the log-probability of the quantised image at the bin
            centre (`bits/dim = -log_prob / (D log 2)`).
        """
        x = self._check_data(x)
        return self._traced("log_prob", self.log_prob_tensor)(x).numpy()

    def encode(self, x):
        """Maps data to latents, `z = f^{-1}(x)` (bin centres for images).

        Args:
            x: `(N, *data_shape)` array.

        Returns:
            `(N, D)` float32 numpy latents.
        """
        x = self._check_data(x)
        return self._traced("encode", self.encode_tensor)(x).numpy()

    def decode(self, latents):
        """Maps latents to data, `x = f(z)`; images are clipped to [0, 1].

        Args:
            latents: `(N, D)` array.

        Returns:
            `(N, *data_shape)` float32 numpy array.
        """
        latents = np.asarray(latents, dtype="float32")
        if latents.ndim != 2 or latents.shape[-1] != self.data_size:
            raise ValueError(
                f"`latents` must have shape (N, {self.data_size}). Received: "
                f"shape {latents.shape}"
            )
        return self._traced("decode", self.decode_tensor)(latents).numpy()

    def sample(self, num_samples, seed=None, *, temperature=1.0, **conditioning):
        """Draws `x = f(temperature * z)` with `z ~ N(0, I)`.

        Args:
            num_samples: Positive int.
            seed: `None`, an int or a pair of ints. The exported `sample`
                signature (which has no temperature input) gives what
                `sample(num_samples, seed, temperature=1.0)` gives for the
                same seed pair.
            temperature: Positive float scaling the latent's standard
                deviation (below 1 gives cleaner, less varied samples). A
                tensor input of the traced sampler: changing it does not
                retrace.
            **conditioning: Refused with a `ValueError` (an unconditional
                flow takes no `labels`, `prompt` or `guidance_scale`).

        Returns:
            `(num_samples, *data_shape)` float32 numpy array (images in
            [0, 1]).
        """
        return super().sample(num_samples, seed, temperature=temperature, **conditioning)

    def sample_options(self, num_samples, temperature=1.0):
        temperature = check_temperature(temperature)
        return {}, {"temperature": tf.constant(temperature, tf.float32)}

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
        from keras_genmodels.evaluation import registry

        fn = self._traced("log_prob", self.log_prob_tensor)
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
        to_bits = 1.0 / (self.data_size * math.log(2.0))
        metrics = {
            "test_nll": nll,
            "bits_per_dim": nll * to_bits,
            # A few test examples unlike any training one can dominate the
            # mean (small image sets); the median shows the typical example.
            "median_bits_per_dim": float(-np.median(log_probs)) * to_bits,
            "num_examples": int(len(log_probs)),
        }
        toy = registry.toy_set(dataset_name) if self.data_shape == (2,) else None
        if toy is not None:
            entropy = float(-toy.log_prob(np.concatenate(points)).mean())
            metrics["true_entropy"] = entropy
            metrics["nll_minus_entropy"] = nll - entropy
        return metrics
