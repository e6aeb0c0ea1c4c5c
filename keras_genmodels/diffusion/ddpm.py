"""Denoising diffusion probabilistic models (Ho et al., 2020) with an EMA."""

import numbers

import keras
import tensorflow as tf

from keras_genmodels.base import GenerativeModel, check_positive_int
from keras_genmodels.diffusion import evaluation
from keras_genmodels.diffusion.gaussian import GaussianDiffusion
from keras_genmodels.diffusion.schedules import SCHEDULES
from keras_genmodels.diffusion.serving import DDPMSignatures
from keras_genmodels.ema import WeightAverage, averaged_twin

METHODS = ("ddpm", "ddim")


@keras.saving.register_keras_serializable(package="keras_genmodels")
class DDPM(DDPMSignatures, GenerativeModel):
    """A DDPM: a noise-prediction network trained on the Gaussian process.

    Training draws `t ~ U{0, ..., T-1}` and `eps ~ N(0, I)` per example and
    minimises the simple loss of Ho et al. (2020):

    `loss = E || eps - eps_theta(sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, t) ||^2`

    An exponential moving average of the network's weights
    (`ema_network`, updated after every optimizer step, saved with the model)
    is what `sample` and the exports use. Images in `[0, 1]` are mapped to
    `[-1, 1]` for the process and back when sampling; vectors (2-D points)
    are used as they are. The exported signatures are described in
    `keras_genmodels.diffusion.serving`.

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
            the average follows the weights closely early in training; every
            weight (trainable or not) is averaged.
        sampling_steps: Default number of reverse steps of `sample`
            (`None`: T).
        sampling_method: Default sampler of `sample` below T steps, `"ddpm"`
            or `"ddim"`.
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
    model = DDPM(mlp.mlp_denoiser(data_shape=(2,)), timesteps=1000)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(points, batch_size=256, epochs=10)
    model.sample(2000, seed=0).shape  # (2000, 2)
    model.sample(16, seed=0, num_steps=50, method="ddim")
    ```
    """

    nested_networks = ("network",)
    config_arguments = (
        "timesteps",
        "schedule",
        "ema_decay",
        "sampling_steps",
        "sampling_method",
        "clip_denoised",
    )

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
            sampling_steps = check_steps(sampling_steps, timesteps, "sampling_steps")
        if sampling_method not in METHODS:
            raise ValueError(
                f"`sampling_method` must be one of {METHODS}. "
                f"Received: sampling_method={sampling_method!r}"
            )
        self.network = network
        self.ema_network = averaged_twin(network)
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
        self.weight_average = WeightAverage(
            network, self.ema_network, self.ema_decay, warmup=True, non_trainable="average"
        )
        self.process = GaussianDiffusion(
            timesteps, schedule, clip_range=1.0 if self.clip_denoised else None
        )
        self.add_loss_trackers("loss")
        self.build(None)

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
        return {"loss": self.noise_loss(x_0, t, noise, training)}

    def noise_loss(self, x_0, t, noise, training=False):
        """The simple loss: the trained network's noise MSE at `(x_0, t, noise)`.

        Args:
            x_0: float32 data in the process's scale.
            t: int32 timesteps `(batch,)`.
            noise: The `eps` that noises `x_0`, shaped like it.
            training: Whether the network runs in training mode.

        Returns:
            Scalar float32 mean of `(eps_theta(x_t, t) - eps)^2`.
        """
        x_t = self.process.q_sample(x_0, t, noise)
        predicted = tf.cast(self.network([x_t, t], training=training), "float32")
        return tf.reduce_mean(tf.square(predicted - noise))

    def after_train_step(self):
        self.weight_average.update(self.optimizer.iterations)

    # ------------------------------------------------------------------
    # Sampling.
    # ------------------------------------------------------------------
    def predict_noise(self, x_t, t):
        """The EMA network's noise prediction, float32 (pure TF)."""
        return tf.cast(self.ema_network([x_t, t], training=False), "float32")

    def sample(
        self, num_samples, seed=None, *, num_steps=None, method=None, eta=0.0,
        jit_compile=False,
    ):
        """Runs the reverse process with the EMA network, in one compiled loop.

        The loop is a `tf.while_loop` inside a `tf.function` traced once per
        `(num_steps, method, eta, jit_compile)` and reused for any
        `num_samples` and seed. With the default `method` the result equals
        the exported `sample` signature's for the same seed and `num_steps`.

        Args:
            num_samples: Positive int.
            seed: `None`, an int or a pair of ints.
            num_steps: Reverse steps in `[1, T]`; `None` uses
                `sampling_steps` (T if that is `None`).
            method: `"ddpm"` (ancestral; respaced when `num_steps < T`, i.e.
                DDIM with `eta = 1`) or `"ddim"`; `None` is ancestral DDPM
                at T steps and `sampling_method` below T (what the exported
                `sample` signature runs).
            eta: DDIM noise scale (0 is deterministic given `x_T`).
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
        return super().sample(
            num_samples, seed, num_steps=num_steps, method=method, eta=eta,
            jit_compile=jit_compile,
        )

    def sample_options(
        self, num_samples, num_steps=None, method=None, eta=0.0, jit_compile=False
    ):
        if method is not None and method not in METHODS:
            raise ValueError(
                f"`method` must be one of {METHODS}. Received: method={method!r}"
            )
        if num_steps is None:
            num_steps = self.sampling_steps or self.timesteps
        num_steps = check_steps(num_steps, self.timesteps)
        if eta < 0:
            raise ValueError(f"`eta` must be non-negative. Received: eta={eta}")
        static = {
            "num_steps": num_steps,
            "method": method or self.default_method(num_steps),
            "eta": float(eta),
            "jit_compile": bool(jit_compile),
        }
        return static, {}

    def default_method(self, num_steps):
        """The sampler of `method=None`: ancestral DDPM at T steps, else
        `sampling_method` (Python int `num_steps`)."""
        return "ddpm" if num_steps >= self.timesteps else self.sampling_method

    def sample_from_seed(
        self, num_samples, seed, num_steps=None, method=None, eta=0.0, jit_compile=False
    ):
        """The sampler behind `sample` and the exported `sample` signature.

        Args:
            num_samples: int32 scalar.
            seed: int32 `[2]`.
            num_steps: Python int or int32 scalar, clipped to `[1, T]`;
                `None` uses `sampling_steps` (T if that is `None`).
            method: `"ddpm"`, `"ddim"` or `None` (`default_method`; a
                `tf.cond` when `num_steps` is a tensor).
            eta: DDIM noise scale.
            jit_compile: Whether each reverse step is one XLA cluster.

        Returns:
            float32 samples (images in `[0, 1]`).
        """
        if num_steps is None:
            num_steps = self.sampling_steps or self.timesteps
        if method is None and isinstance(num_steps, numbers.Integral):
            method = self.default_method(num_steps)
        shape = tf.concat([tf.reshape(tf.cast(num_samples, tf.int32), [1]), self.data_shape], 0)
        steps = tf.clip_by_value(tf.cast(num_steps, tf.int32), 1, self.timesteps)

        def run(method):
            x = self.process.sample(
                self.predict_noise, shape, seed, steps, method=method, eta=eta,
                jit_compile=jit_compile,
            )
            return self.from_process_space(x)

        if method is not None:
            return run(method)
        if self.sampling_method == "ddpm":
            return run("ddpm")
        return tf.cond(steps >= self.timesteps, lambda: run("ddpm"), lambda: run("ddim"))

    def traced_function(self, key, fn, **function_kwargs):
        # The sampler has no Python control flow on tensors: without autograph
        # nothing is converted (or cached by code object) at trace time.
        function_kwargs.setdefault("autograph", False)
        return super().traced_function(key, fn, **function_kwargs)

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
        """Held-out figures: noise MSE always, sliced Wasserstein for points.

        See `keras_genmodels.diffusion.evaluation` for how the sliced
        Wasserstein reference is chosen.

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
            `num_examples`, and for points `sliced_wasserstein`,
            `sliced_wasserstein_data`, `sliced_wasserstein_ratio`,
            `num_samples` (model samples drawn) and `num_test_points` (test
            points they are compared with).
        """
        loss, count = evaluation.noise_prediction_loss(self, dataset, batch_size, seed)
        metrics = {"test_loss": loss, "num_examples": count}
        if self.data_kind == "points":
            metrics.update(
                evaluation.sliced_wasserstein_figures(
                    self, dataset, dataset_name, num_samples, num_steps, seed
                )
            )
        return metrics


def check_steps(num_steps, timesteps, name="num_steps"):
    """Validates a step count in `[1, timesteps]`; returns it as an int."""
    num_steps = check_positive_int(num_steps, name)
    if num_steps > timesteps:
        raise ValueError(
            f"`{name}` must be at most timesteps={timesteps}. "
            f"Received: {name}={num_steps}"
        )
    return num_steps
