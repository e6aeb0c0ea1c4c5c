"""Denoising diffusion probabilistic models (Ho et al., 2020) with an EMA."""

import keras
import numpy as np
import tensorflow as tf

from keras_genmodels.base import GenerativeModel, check_positive_int
from keras_genmodels.diffusion.gaussian import GaussianDiffusion
from keras_genmodels.diffusion.schedules import SCHEDULES
from keras_genmodels.evaluation.sliced_wasserstein import sliced_wasserstein
from keras_genmodels.serving_limits import InputChecks, ServingLimits

_METHODS = ("ddpm", "ddim")


@keras.saving.register_keras_serializable(package="keras_genmodels")
class DDPM(GenerativeModel):
    """A DDPM: a noise-prediction network trained on the Gaussian process.

    Training draws `t ~ U{0, ..., T-1}` and `eps ~ N(0, I)` per example and
    minimises the simple loss of Ho et al. (2020):

    `loss = E || eps - eps_theta(sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, t) ||^2`

    An exponential moving average of the network's weights
    (`ema_network`, updated after every optimizer step, saved with the model)
    is what `sample` and the exports use. Images in `[0, 1]` are mapped to
    `[-1, 1]` for the process and back when sampling; vectors (2-D points)
    are used as they are.

    References:
        Ho, Jain and Abbeel, "Denoising Diffusion Probabilistic Models",
        NeurIPS 2020.
        Song, Meng and Ermon, "Denoising Diffusion Implicit Models", ICLR 2021.
        Nichol and Dhariwal, "Improved Denoising Diffusion Probabilistic
        Models", ICML 2021.

    Args:
        network: Functional `keras.Model` with inputs `[x_t, t]` (`t`: int32
            `(batch,)`) predicting the noise, shaped like `x_t`: e.g.
            `diffusion.unet.unet()` or `diffusion.mlp.mlp_denoiser()`.
        timesteps: T, the number of diffusion steps.
        schedule: `"linear"` or `"cosine"`.
        ema_decay: Decay of the weight EMA, in `[0, 1)`. The decay used at
            optimizer step `n` is `min(ema_decay, (1 + n) / (10 + n))`, so
            the average follows the weights closely early in training.
        sampling_steps: Default number of reverse steps of `sample`
            (`None`: T).
        sampling_method: Default sampler of `sample`, `"ddpm"` or `"ddim"`.
        clip_denoised: Whether predicted `x_0` is clipped to `[-1, 1]` while
            sampling; `None` means yes for images, no for vectors.
        seed: Optional int seed of the training noise.
        **kwargs: Passed to `keras.Model`.

    Call arguments:
        inputs: `[x_t, t]`: noisy data `(batch, ...)` in the process's
            scale and int32 timesteps `(batch,)`.
        training: Whether the network runs in training mode.

    Returns (of `call`):
        The predicted noise of the trained (non-EMA) network.

    Example:

    ```python
    from keras_genmodels.diffusion import mlp
    model = DDPM(mlp.mlp_denoiser(data_dim=2), timesteps=1000)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(points, batch_size=256, epochs=10)
    model.sample(2000, seed=0).shape  # (2000, 2)
    model.sample(16, num_steps=50, method="ddim", seed=0)
    ```
    """

    def __init__(
        self,
        network,
        timesteps=1000,
        schedule="linear",
        ema_decay=0.999,
        sampling_steps=None,
        sampling_method="ddpm",
        clip_denoised=None,
        seed=None,
        **kwargs,
    ):
        kwargs.setdefault("name", "ddpm")
        super().__init__(seed=seed, **kwargs)
        if not isinstance(network, keras.Model) or len(network.inputs) != 2:
            raise ValueError(
                "`network` must be a functional keras.Model with inputs [x_t, t]. "
                f"Received: network={network!r}"
            )
        data_shape = tuple(int(d) for d in network.inputs[0].shape[1:])
        if tuple(network.outputs[0].shape[1:]) != data_shape:
            raise ValueError(
                "The network must predict noise shaped like its input. Received: "
                f"input shape {data_shape}, output shape "
                f"{tuple(network.outputs[0].shape[1:])}"
            )
        if len(data_shape) not in (1, 3):
            raise ValueError(
                "The network's input must be vectors (batch, d) or images "
                f"(batch, H, W, C). Received: input shape {data_shape}"
            )
        if schedule not in SCHEDULES:
            raise ValueError(
                f"`schedule` must be one of {sorted(SCHEDULES)}. "
                f"Received: schedule={schedule!r}"
            )
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"`ema_decay` must be in [0, 1). Received: ema_decay={ema_decay}")
        timesteps = check_positive_int(timesteps, "timesteps")
        if sampling_steps is not None:
            sampling_steps = self._check_steps(sampling_steps, timesteps, "sampling_steps")
        if sampling_method not in _METHODS:
            raise ValueError(
                f"`sampling_method` must be one of {_METHODS}. "
                f"Received: sampling_method={sampling_method!r}"
            )
        self.network = network
        self.ema_network = keras.models.clone_model(network)
        self.ema_network.set_weights(network.get_weights())
        self.ema_network.trainable = False
        self.data_shape = data_shape
        self.data_kind = "image" if len(data_shape) == 3 else "points"
        self.timesteps = timesteps
        self.schedule = schedule
        self.ema_decay = float(ema_decay)
        self.sampling_steps = sampling_steps
        self.sampling_method = sampling_method
        if clip_denoised is None:
            clip_denoised = self.data_kind == "image"
        self.clip_denoised = bool(clip_denoised)
        self.process = GaussianDiffusion(
            timesteps, schedule, clip_range=1.0 if self.clip_denoised else None
        )
        self.add_loss_trackers("loss")
        self._sample_fns = {}
        self.build(None)

    @staticmethod
    def _check_steps(num_steps, timesteps, name="num_steps"):
        num_steps = check_positive_int(num_steps, name)
        if num_steps > timesteps:
            raise ValueError(
                f"`{name}` must be at most timesteps={timesteps}. "
                f"Received: {name}={num_steps}"
            )
        return num_steps

    def build(self, input_shape=None):
        # The networks are built functional models.
        self.built = True

    def call(self, inputs, training=False):
        x_t, t = inputs
        return self.network([x_t, t], training=training)

    # ------------------------------------------------------------------
    # Training.
    # ------------------------------------------------------------------
    def to_process_space(self, data):
        """Maps data to the process's scale (images `[0, 1] -> [-1, 1]`)."""
        data = tf.cast(data, "float32")
        return data * 2.0 - 1.0 if self.data_kind == "image" else data

    def from_process_space(self, x):
        """Maps process-scale samples back (images to `[0, 1]`, clipped)."""
        if self.data_kind == "image":
            return tf.clip_by_value((x + 1.0) / 2.0, 0.0, 1.0)
        return x

    def compute_losses(self, data, training=False):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        x_0 = self.to_process_space(x)
        batch = tf.shape(x_0)[:1]
        # Global-batch draws (`batch_noise`): a mirrored step sees the noise of
        # the one-device step. The noise, `q_sample`'s schedule products and
        # the MSE stay float32 under a mixed policy (bfloat16 rounds
        # `sqrt(1 - alpha_bar_t)` near t = 0 to 0); only the network is mixed.
        t = self.batch_noise(batch, "integer", "int32", maxval=self.timesteps)
        noise = self.batch_noise(tf.shape(x_0))
        return {"loss": self._noise_loss(x_0, t, noise, training)}

    def _noise_loss(self, x_0, t, noise, training=False):
        x_t = self.process.q_sample(x_0, t, noise)
        predicted = tf.cast(self.network([x_t, t], training=training), "float32")
        return tf.reduce_mean(tf.square(predicted - noise))

    def after_train_step(self):
        step = tf.cast(self.optimizer.iterations, "float32")
        decay = tf.minimum(self.ema_decay, (1.0 + step) / (10.0 + step))
        for ema_weight, weight in zip(self.ema_network.weights, self.network.weights):
            ema_weight.assign(
                decay * ema_weight + (1.0 - decay) * tf.cast(weight, ema_weight.dtype)
            )

    # ------------------------------------------------------------------
    # Sampling.
    # ------------------------------------------------------------------
    def predict_noise(self, x_t, t):
        """The EMA network's noise prediction, float32 (pure TF)."""
        return tf.cast(self.ema_network([x_t, t], training=False), "float32")

    def _sample_loop(self, num_samples, seed, num_steps, method, eta, jit_compile=False):
        shape = tf.concat([tf.reshape(num_samples, [1]), self.data_shape], 0)
        x = self.process.sample(
            self.predict_noise, shape, seed, num_steps, method=method, eta=eta,
            jit_compile=jit_compile,
        )
        return self.from_process_space(x)

    def _sample_from_seed(self, num_samples, seed, num_steps=None):
        """The serving sampler: ancestral DDPM with T steps; below T the
        model's `sampling_method`: `"ddpm"` is the respaced ancestral sampler
        (DDIM with eta = 1), `"ddim"` is DDIM with eta = 0. The same seed and
        step count give what `sample(n, num_steps, seed=seed)` gives.

        Args:
            num_samples: int32 scalar.
            seed: int32 `[2]`.
            num_steps: int32 scalar, clipped to `[1, T]`; `None` means T.

        Returns:
            float32 samples (images in `[0, 1]`).
        """
        num_samples = tf.cast(num_samples, tf.int32)
        if num_steps is None:
            num_steps = self.timesteps
        num_steps = tf.clip_by_value(tf.cast(num_steps, tf.int32), 1, self.timesteps)
        if self.sampling_method == "ddpm":
            return self._sample_loop(num_samples, seed, num_steps, "ddpm", 0.0)
        return tf.cond(
            num_steps >= self.timesteps,
            lambda: self._sample_loop(num_samples, seed, num_steps, "ddpm", 0.0),
            lambda: self._sample_loop(num_samples, seed, num_steps, "ddim", 0.0),
        )

    def sample(
        self, num_samples, num_steps=None, method=None, eta=0.0, seed=None, jit_compile=False
    ):
        """Runs the reverse process with the EMA network, in one compiled loop.

        The loop is a `tf.while_loop` inside a `tf.function` built once per
        `(method, num_steps, eta, jit_compile)` and reused (one trace for any
        `num_samples` and seed). With the default `method` and `eta` the
        result equals the exported `sample` signature's for the same seed and
        step count.

        Args:
            num_samples: Positive int.
            num_steps: Reverse steps in `[1, T]`; `None` uses
                `sampling_steps` (T if that is `None`).
            method: `"ddpm"` (ancestral; respaced when `num_steps < T`) or
                `"ddim"`; `None` uses `sampling_method`.
            eta: DDIM noise scale (0 is deterministic given `x_T`).
            seed: `None`, an int or a pair of ints.
            jit_compile: Whether each reverse step (network and update) runs
                as one XLA cluster. On the 2-core development CPU (quiet) it
                sped the `unet-mnist` loop up 2.4x at 1 image, 1.5x at 8 and
                1.1x at 16 and the MLP's 1.1-1.2x, but was 10% slower at 64
                images (the grid the command writes) and its first call
                compiles for seconds, so it is off by default. Samples then
                match the default to float32 rounding, not bit for bit.
                Exports never use XLA (TF Serving disables XLA:CPU by default).

        Returns:
            numpy float32: images `(n, H, W, C)` in `[0, 1]`, or points
            `(n, d)`.
        """
        num_samples = check_positive_int(num_samples, "num_samples")
        method = self.sampling_method if method is None else method
        if method not in _METHODS:
            raise ValueError(
                f"`method` must be one of {_METHODS}. Received: method={method!r}"
            )
        if num_steps is None:
            num_steps = self.sampling_steps or self.timesteps
        num_steps = self._check_steps(num_steps, self.timesteps)
        if eta < 0:
            raise ValueError(f"`eta` must be non-negative. Received: eta={eta}")
        key = (method, num_steps, float(eta)) + (("xla",) if jit_compile else ())
        if key not in self._sample_fns:

            def fn(n, seed, method=method, num_steps=num_steps, eta=float(eta)):
                return self._sample_loop(
                    n, seed, tf.constant(num_steps), method, eta, bool(jit_compile)
                )

            # No Python control flow depends on tensors here; without autograph
            # nothing is converted (or cached by code object) at trace time.
            self._sample_fns[key] = tf.function(fn, autograph=False)
        seed = self.resolve_seed(seed)
        return self._sample_fns[key](tf.constant(num_samples, tf.int32), seed).numpy()

    # ------------------------------------------------------------------
    # Evaluation.
    # ------------------------------------------------------------------
    def evaluation_metrics(
        self,
        dataset,
        dataset_name=None,
        num_samples=2000,
        num_steps=None,
        batch_size=256,
        seed=0,
        **kwargs,
    ):
        """Held-out figures: sliced Wasserstein for points, noise MSE always.

        For points, `num_samples` model samples are compared with the first
        `num_samples` test points, and the reference figure is the same
        distance between two independent draws of data: the next
        `num_samples` test points (or, if the split is too small, a fresh
        draw of `num_samples` points of the named 2-D set, compared with all
        the test points there are). Without a named 2-D set, a split with
        fewer than `2 * num_samples` points is cut into two halves, the
        first compared with as many model samples, the second the reference.

        Args:
            dataset: Unbatched test-split dataset (labels are ignored).
            dataset_name: The data set's name (used for the 2-D reference).
            num_samples: Samples compared for points.
            num_steps: Reverse steps of the samples (`None`: the default).
            batch_size: Batch size of the loss evaluation.
            seed: Int seed of the samples, timesteps and noise.
            **kwargs: Ignored (options of other families).

        Returns:
            Dict of floats: `test_loss` (noise MSE at uniform random `t`),
            and for points `sliced_wasserstein`, `sliced_wasserstein_data`,
            `sliced_wasserstein_ratio`, `num_samples` (model samples drawn)
            and `num_test_points` (test points they are compared with).
        """
        from keras_genmodels import progress

        losses, count = [], 0
        batches = progress.track_test_batches(
            self, dataset, batch_size, "Diffusion noise-prediction loss"
        )
        for i, batch in enumerate(batches):
            x_0 = self.to_process_space(batch)
            n = tf.shape(x_0)[0]
            t = tf.random.stateless_uniform(
                [n], [seed, 2 * i], 0, self.timesteps, dtype=tf.int32
            )
            noise = tf.random.stateless_normal(tf.shape(x_0), [seed, 2 * i + 1])
            loss = self._noise_loss(x_0, t, noise)
            losses.append(float(loss) * int(n))
            count += int(n)
        metrics = {"test_loss": sum(losses) / count, "num_examples": count}
        if self.data_kind == "points":
            metrics.update(
                self._sliced_wasserstein_metrics(
                    dataset, dataset_name, num_samples, num_steps, seed
                )
            )
        return metrics

    def _sliced_wasserstein_metrics(self, dataset, dataset_name, num_samples, num_steps, seed):
        points = np.concatenate(
            [np.asarray(b) for b in self.prepare_dataset(dataset, 4096, shuffle=False)]
        )
        test = points[:num_samples]
        reference = points[num_samples : 2 * num_samples]
        if len(reference) < num_samples and dataset_name:
            from keras_genmodels.data import toy2d

            try:
                toy, _ = toy2d.parse(dataset_name)
            except ValueError:
                toy = None
            if toy is not None:
                reference, _ = toy.sample(num_samples, seed=seed + 1000)
        if len(reference) < len(test):  # Fall back to two halves of the split.
            half = len(points) // 2
            if half == 0:
                raise ValueError(
                    "The sliced Wasserstein figures need at least 2 test points "
                    "(one half compared with the samples, the other as the data "
                    f"reference) or a named 2-D set. Received: {len(points)} test "
                    f"point(s), dataset_name={dataset_name!r}"
                )
            test, reference = points[:half], points[half : 2 * half]
        # As many samples as reference points: both distances to `test` then
        # compare equally many points with it.
        from keras_genmodels import progress

        steps = num_steps or self.sampling_steps or self.timesteps
        bar = progress.Progress(
            1,
            f"Sampling {len(reference):,} points ({steps} reverse steps) for the "
            "sliced Wasserstein distance",
            "sampling call",
        )
        samples = self.sample(len(reference), num_steps=num_steps, seed=seed)
        bar.advance(1)
        model_distance = sliced_wasserstein(samples, test, seed=seed)
        data_distance = sliced_wasserstein(reference, test, seed=seed)
        return {
            "sliced_wasserstein": model_distance,
            "sliced_wasserstein_data": data_distance,
            "sliced_wasserstein_ratio": model_distance / data_distance,
            "num_samples": int(len(samples)),
            "num_test_points": int(len(test)),
        }

    # ------------------------------------------------------------------
    # Export.
    # ------------------------------------------------------------------
    @property
    def default_export_name(self):
        """Default model name of an export: `diffusion` for images,
        `diffusion-points` for vectors (different signature shapes)."""
        return "diffusion" if self.data_kind == "image" else "diffusion-points"

    @property
    def serving_limits(self):
        """The limits the serving signatures enforce (`ServingLimits`).

        Image models default to 256 samples or rows per request (a U-Net
        pass per reverse step); `num_steps` is at most T.
        """
        size = 256 if self.data_kind == "image" else 1024
        return ServingLimits(
            {
                "sample": ("num_samples", "num_steps"),
                "predict_noise": ("batch_size",),
                "denoise_step": ("batch_size",),
            },
            defaults={"num_samples": size, "batch_size": size, "num_steps": self.timesteps},
            maxima={"num_steps": self.timesteps},
        )

    def _check_noisy_batch(self, checks, x_t, t, limit, noise=None):
        shape = [None, *self.data_shape]
        x_t = checks.batch("x_t", x_t, shape, limit, finite=True)
        t = checks.shape("t", t, [None])
        if noise is None:
            checks.same_rows(x_t=x_t, t=t)
        else:
            noise = checks.batch("noise", noise, shape, limit, finite=True)
            checks.same_rows(x_t=x_t, t=t, noise=noise)
        checks.values("t", t, 0, self.timesteps - 1)
        return checks.gate(x_t, t, noise)

    def serving_endpoints(self, limits=None):
        """The `sample`, `predict_noise` and `denoise_step` signatures.

        Every input is checked in the graph: `num_steps` must lie in
        `[1, limit]` (at most T), timesteps in `[0, T)`.

        Args:
            limits: Optional `{limit name: int}` replacing the defaults of
                `serving_limits`.
        """
        limits = self.serving_limits.resolve(limits)

        @tf.function(
            autograph=False,
            input_signature=[
                tf.TensorSpec([], tf.int32, name="num_samples"),
                tf.TensorSpec([2], tf.int32, name="seed"),
                tf.TensorSpec([], tf.int32, name="num_steps"),
            ]
        )
        def sample(num_samples, seed, num_steps):
            checks = InputChecks()
            num_samples = checks.count("num_samples", num_samples, limits["num_samples"])
            seed = checks.seed(seed)
            num_steps = checks.count("num_steps", num_steps, limits["num_steps"])
            inputs = checks.gate(num_samples, seed, num_steps)
            return {"samples": self._sample_from_seed(*inputs)}

        @tf.function(
            autograph=False,
            input_signature=[
                tf.TensorSpec([None, *self.data_shape], tf.float32, name="x_t"),
                tf.TensorSpec([None], tf.int32, name="t"),
            ]
        )
        def predict_noise(x_t, t):
            x_t, t, _ = self._check_noisy_batch(InputChecks(), x_t, t, limits["batch_size"])
            return {"noise": self.predict_noise(x_t, t)}

        return {
            "sample": sample,
            "predict_noise": predict_noise,
            "denoise_step": self._denoise_step_endpoint(None, limits["batch_size"]),
        }

    def _denoise_step_endpoint(self, batch_size, limit=None):
        """`denoise_step`; with a row `limit` (serving) its inputs are checked."""
        @tf.function(
            autograph=False,
            input_signature=[
                tf.TensorSpec([batch_size, *self.data_shape], tf.float32, name="x_t"),
                tf.TensorSpec([batch_size], tf.int32, name="t"),
                tf.TensorSpec([batch_size, *self.data_shape], tf.float32, name="noise"),
            ]
        )
        def denoise_step(x_t, t, noise):
            if limit is not None:
                x_t, t, noise = self._check_noisy_batch(InputChecks(), x_t, t, limit, noise)
            eps = self.predict_noise(x_t, t)
            return {"x_prev": self.process.ddpm_step(x_t, t, eps, noise)}

        return denoise_step

    def tflite_endpoints(self, batch_size=1):
        return {"denoise_step": self._denoise_step_endpoint(batch_size)}

    def signature_examples(self, batch_size=1):
        rng = np.random.default_rng(0)
        shape = (batch_size, *self.data_shape)
        return {
            "sample": {
                "num_samples": np.int32(2),
                "seed": np.array([1, 2], np.int32),
                "num_steps": np.int32(3),
            },
            "predict_noise": {
                "x_t": rng.standard_normal(shape).astype("float32"),
                "t": rng.integers(0, self.timesteps, batch_size).astype("int32"),
            },
            "denoise_step": {
                "x_t": rng.standard_normal(shape).astype("float32"),
                "t": rng.integers(0, self.timesteps, batch_size).astype("int32"),
                "noise": rng.standard_normal(shape).astype("float32"),
            },
        }

    # ------------------------------------------------------------------
    # Serialization.
    # ------------------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "network": keras.saving.serialize_keras_object(self.network),
                "timesteps": self.timesteps,
                "schedule": self.schedule,
                "ema_decay": self.ema_decay,
                "sampling_steps": self.sampling_steps,
                "sampling_method": self.sampling_method,
                "clip_denoised": self.clip_denoised,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)
