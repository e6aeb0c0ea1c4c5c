"""The Gaussian diffusion process, apart from the network that predicts noise.

`GaussianDiffusion` holds the schedule constants and implements the forward
process `q(x_t | x_0)`, the posterior `q(x_{t-1} | x_t, x_0)` and the three
reverse samplers (ancestral DDPM, DDIM and DPM-Solver++(2M)) as pure
TensorFlow, so the same code runs in `DDPM.sample`, in the exported SavedModel
and in the TF Lite steps.
Timesteps are 0-based: `t = 0` is the first noising step, `t = T - 1` the last.
"""

import numpy as np
import tensorflow as tf

from keras_genmodels.base import check_positive_int
from keras_genmodels.diffusion import schedules

#: The reverse samplers of `GaussianDiffusion.sample`.
METHODS = ("ddpm", "ddim", "dpmpp_2m")


def _gather(values, t, ndim):
    """`values[t]` reshaped to broadcast against a rank-`ndim` batch."""
    out = tf.gather(values, tf.cast(t, tf.int32))
    return tf.reshape(out, tf.concat([tf.shape(out), tf.ones([ndim - 1], tf.int32)], 0))


class GaussianDiffusion:
    """Forward process, posterior and reverse samplers of a DDPM.

    With `alpha_t = 1 - beta_t` and `alpha_bar_t = prod_{s <= t} alpha_s`:

    - forward: `q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)`;
    - posterior: `q(x_{t-1} | x_t, x_0) = N(mu_t, beta_tilde_t I)` with
      `mu_t = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x_0
      + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t` and
      `beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t`;
    - DDIM (Song et al., 2021) from `t` to an earlier `s`:
      `x_s = sqrt(alpha_bar_s) x0_hat + sqrt(1 - alpha_bar_s - sigma^2) eps
      + sigma z`, `sigma = eta sqrt((1 - alpha_bar_s) / (1 - alpha_bar_t))
      sqrt(1 - alpha_bar_t / alpha_bar_s)`;
    - DPM-Solver++(2M) (Lu et al., 2022), a multistep solver of the
      probability-flow ODE in the data prediction `D_t = x0_hat(x_t, t)`:
      with `alpha_t = sqrt(alpha_bar_t)`, `sigma_t = sqrt(1 - alpha_bar_t)`,
      `lambda_t = log(alpha_t / sigma_t)` and `h = lambda_s - lambda_t`, one
      step from `t` to `s` is
      `x_s = (sigma_s / sigma_t) x_t + alpha_s (1 - e^{-h}) D`, where
      `D = (1 + 1 / (2 r)) D_t - 1 / (2 r) D_u` uses the previous step's
      prediction `D_u` (from `u > t`, `r = (lambda_t - lambda_u) / h`).
      Three calls take the first-order update `D = D_t` (DDIM with
      `eta = 0`): the first (no `D_u` yet), the last (from the first
      timestep into the data, where `lambda = inf`, so `r = 0`), and the
      one before it, into the first timestep `t = 0`. With the evenly
      spaced timesteps that step is the longest in `lambda` (0.5 log(1 + T
      / N) and more), `r` falls to 0.25-0.35 and the second-order
      extrapolation overshoots: on analytic Gaussian and Gaussian-mixture
      data it made 10-20-step samples 1.5-2x worse than DDIM, while the
      first-order step there made them better than DDIM or as good (the
      "lower order final" of common implementations). So `N <= 3` steps
      are DDIM with `eta = 0`.

    References:
        Ho, Jain and Abbeel, "Denoising Diffusion Probabilistic Models",
        NeurIPS 2020.
        Song, Meng and Ermon, "Denoising Diffusion Implicit Models", ICLR 2021.
        Lu, Zhou, Bao, Chen, Li and Zhu, "DPM-Solver++: Fast Solver for
        Guided Sampling of Diffusion Probabilistic Models",
        arXiv:2211.01095, 2022.

    Args:
        timesteps: T.
        schedule: `"linear"` or `"cosine"` (see `schedules`), or a 1-D array
            of T betas.
        clip_range: If set, a float `c`: predicted `x_0` is clipped to
            `[-c, c]` while sampling (images live in `[-1, 1]`).

    Example:

    ```python
    process = GaussianDiffusion(1000, "linear")
    x_t = process.q_sample(x_0, t, noise)
    ```
    """

    def __init__(self, timesteps=1000, schedule="linear", clip_range=None):
        self.timesteps = check_positive_int(timesteps, "timesteps")
        if isinstance(schedule, str):
            betas = schedules.get(schedule, self.timesteps)
        else:
            betas = np.asarray(schedule, dtype="float64")
            if betas.shape != (self.timesteps,) or not np.all((betas > 0) & (betas < 1)):
                raise ValueError(
                    "A schedule array must hold `timesteps` betas in (0, 1). "
                    f"Received: shape {betas.shape}, timesteps={self.timesteps}"
                )
        if clip_range is not None and clip_range <= 0:
            raise ValueError(
                f"`clip_range` must be None or positive. Received: clip_range={clip_range}"
            )
        self.clip_range = clip_range
        alphas = 1.0 - betas
        alpha_bar = np.cumprod(alphas)
        alpha_bar_prev = np.concatenate([[1.0], alpha_bar[:-1]])
        posterior_variance = betas * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
        # Float64 constants, kept for tests and reference computations.
        self.np = {
            "betas": betas,
            "alpha_bar": alpha_bar,
            "alpha_bar_prev": alpha_bar_prev,
            "posterior_variance": posterior_variance,
        }
        table = {
            "betas": betas,
            "alpha_bar": alpha_bar,
            "sqrt_alpha_bar": np.sqrt(alpha_bar),
            "sqrt_one_minus_alpha_bar": np.sqrt(1.0 - alpha_bar),
            "sqrt_recip_alpha_bar": np.sqrt(1.0 / alpha_bar),
            "sqrt_recipm1_alpha_bar": np.sqrt(1.0 / alpha_bar - 1.0),
            "posterior_variance": posterior_variance,
            "posterior_std": np.sqrt(posterior_variance),
            "posterior_mean_coef1": betas * np.sqrt(alpha_bar_prev) / (1.0 - alpha_bar),
            "posterior_mean_coef2": (1.0 - alpha_bar_prev) * np.sqrt(alphas)
            / (1.0 - alpha_bar),
        }
        # Cast once to float32 numpy; tensors are made where they are used, so
        # the constants land in whichever graph (tf.function, export) runs them.
        self._table = {k: v.astype("float32") for k, v in table.items()}

    def _c(self, name, t, ndim):
        return _gather(tf.constant(self._table[name]), t, ndim)

    # ------------------------------------------------------------------
    # Forward process and posterior.
    # ------------------------------------------------------------------
    def q_sample(self, x_0, t, noise):
        """Draws `x_t ~ q(x_t | x_0)`: `sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise`.

        Args:
            x_0: `(batch, ...)` clean data.
            t: `(batch,)` int timesteps in `[0, T)`.
            noise: Standard normal noise shaped like `x_0`.

        Returns:
            `x_t`, shaped like `x_0`.
        """
        ndim = len(x_0.shape)
        return (
            self._c("sqrt_alpha_bar", t, ndim) * x_0
            + self._c("sqrt_one_minus_alpha_bar", t, ndim) * noise
        )

    def predict_x0_from_noise(self, x_t, t, noise):
        """Inverts `q_sample`: `x_0 = (x_t - sqrt(1 - alpha_bar_t) noise) / sqrt(alpha_bar_t)`."""
        ndim = len(x_t.shape)
        return (
            self._c("sqrt_recip_alpha_bar", t, ndim) * x_t
            - self._c("sqrt_recipm1_alpha_bar", t, ndim) * noise
        )

    def predict_noise_from_x0(self, x_t, t, x_0):
        """The noise that maps `x_0` to `x_t` at step `t`."""
        ndim = len(x_t.shape)
        return (self._c("sqrt_recip_alpha_bar", t, ndim) * x_t - x_0) / self._c(
            "sqrt_recipm1_alpha_bar", t, ndim
        )

    def q_posterior(self, x_0, x_t, t):
        """Mean and variance of `q(x_{t-1} | x_t, x_0)`.

        Args:
            x_0: `(batch, ...)` clean data (or its prediction).
            x_t: `(batch, ...)` noisy data at step `t`.
            t: `(batch,)` int timesteps.

        Returns:
            `(mean, variance)`; `variance` broadcasts against `x_t`.
        """
        ndim = len(x_t.shape)
        mean = (
            self._c("posterior_mean_coef1", t, ndim) * x_0
            + self._c("posterior_mean_coef2", t, ndim) * x_t
        )
        return mean, self._c("posterior_variance", t, ndim)

    def _clipped_x0(self, x_t, t, predicted_noise):
        x_0 = self.predict_x0_from_noise(x_t, t, predicted_noise)
        if self.clip_range is not None:
            x_0 = tf.clip_by_value(x_0, -self.clip_range, self.clip_range)
        return x_0

    # ------------------------------------------------------------------
    # Reverse steps.
    # ------------------------------------------------------------------
    def ddpm_step(self, x_t, t, predicted_noise, noise):
        """One ancestral step `x_{t-1} = mu_t(x_t, x0_hat) + sqrt(beta_tilde_t) z`.

        No noise is added at `t = 0`. `x0_hat` is clipped to `clip_range`.

        Args:
            x_t: `(batch, ...)` current sample.
            t: `(batch,)` int timesteps.
            predicted_noise: The network's noise prediction for `(x_t, t)`.
            noise: Standard normal `z` shaped like `x_t`.

        Returns:
            `x_{t-1}`.
        """
        x_0 = self._clipped_x0(x_t, t, predicted_noise)
        mean, _ = self.q_posterior(x_0, x_t, t)
        ndim = len(x_t.shape)
        std = self._c("posterior_std", t, ndim)  # Zero at t = 0.
        return mean + std * noise

    def ddim_step(self, x_t, t, t_prev, predicted_noise, noise, eta=0.0):
        """One DDIM step from `t` to an earlier `t_prev` (`-1` ends at `x_0`).

        `eta = 0` is deterministic; `eta = 1` with `t_prev = t - 1` is the
        ancestral DDPM step.

        Args:
            x_t: `(batch, ...)` current sample.
            t: `(batch,)` int timesteps.
            t_prev: `(batch,)` int earlier timesteps, `-1` for the data.
            predicted_noise: The network's noise prediction for `(x_t, t)`.
            noise: Standard normal noise shaped like `x_t` (unused if `eta = 0`).
            eta: Scale of the added noise.

        Returns:
            `x_{t_prev}`.
        """
        ndim = len(x_t.shape)
        x_0 = self._clipped_x0(x_t, t, predicted_noise)
        eps = self.predict_noise_from_x0(x_t, t, x_0)
        alpha_bar = self._c("alpha_bar", t, ndim)
        t_prev = tf.cast(t_prev, tf.int32)
        alpha_bar_prev = tf.where(
            tf.reshape(t_prev, tf.shape(alpha_bar)) >= 0,
            self._c("alpha_bar", tf.maximum(t_prev, 0), ndim),
            tf.ones_like(alpha_bar),
        )
        eta = tf.cast(eta, x_t.dtype)
        sigma = eta * tf.sqrt(
            (1.0 - alpha_bar_prev) / (1.0 - alpha_bar) * (1.0 - alpha_bar / alpha_bar_prev)
        )
        direction = tf.sqrt(tf.maximum(1.0 - alpha_bar_prev - tf.square(sigma), 0.0))
        return tf.sqrt(alpha_bar_prev) * x_0 + direction * eps + sigma * noise

    # ------------------------------------------------------------------
    # Samplers.
    # ------------------------------------------------------------------
    def timestep_sequence(self, num_steps):
        """The `num_steps` evenly spaced timesteps `floor(i T / num_steps)`.

        Args:
            num_steps: int32 scalar tensor in `[1, T]`.

        Returns:
            `(num_steps,)` int32 ascending timesteps; all of `0..T-1` when
            `num_steps = T`.
        """
        num_steps = tf.cast(num_steps, tf.int64)
        return tf.cast(tf.range(num_steps) * self.timesteps // num_steps, tf.int32)

    def dpmpp_2m_table(self, num_steps):
        """The DPM-Solver++(2M) coefficients of each call, in call order.

        Call `k` (0 first, at the noisiest timestep) runs the network at
        `t_k` and updates
        `x <- x_coef[k] x + x0_coef[k] D_k + prev_x0_coef[k] D_{k-1}`,
        the solver's step (see the class docstring) with its weights
        multiplied out. The timesteps are `timestep_sequence(num_steps)`,
        last first; the first call (no `D_{k-1}`) and the last two (into
        `t = 0` and into the data) are first order, so `prev_x0_coef` is 0
        there. The coefficients are computed in float64 and cast to
        float32.

        Args:
            num_steps: Python int or int32 scalar tensor in `[1, T]`. A
                Python int gives numpy arrays computed once (eagerly, also
                while tracing), so a traced loop and an exported step
                table bake in the same numbers.

        Returns:
            `{"t": int32, "x_coef", "x0_coef", "prev_x0_coef": float32}`,
            each `(num_steps,)`: numpy arrays for a Python int, tensors
            otherwise.
        """
        if isinstance(num_steps, (int, np.integer)):
            with tf.init_scope():
                table = self._dpmpp_2m_table(tf.constant(int(num_steps)))
                return {k: v.numpy() for k, v in table.items()}
        return self._dpmpp_2m_table(num_steps)

    def _dpmpp_2m_table(self, num_steps):
        t = tf.reverse(self.timestep_sequence(num_steps), [0])  # Noisiest first.
        count = tf.shape(t)[0]
        alpha_bar = tf.constant(self.np["alpha_bar"], tf.float64)
        ab_t = tf.gather(alpha_bar, t)
        # The next timestep of each call; the last call ends at the data.
        ab_s = tf.concat([ab_t[1:], tf.ones([1], tf.float64)], 0)
        lambda_t = 0.5 * (tf.math.log(ab_t) - tf.math.log1p(-ab_t))
        last = tf.equal(tf.range(count), count - 1)
        safe_s = tf.where(last, tf.zeros_like(ab_s) + 0.5, ab_s)  # Keeps log finite.
        lambda_s = 0.5 * (tf.math.log(safe_s) - tf.math.log1p(-safe_s))
        h = lambda_s - lambda_t
        # The previous call's step length (`lambda_t - lambda_u`).
        h_prev = tf.concat([tf.ones([1], tf.float64), h[:-1]], 0)
        second = (tf.range(count) > 0) & (tf.range(count) < count - 2)
        half_inv_r = tf.where(second, 0.5 * h / h_prev, tf.zeros_like(h))
        x0_weight = tf.where(last, tf.ones_like(h), tf.sqrt(ab_s) * -tf.math.expm1(-h))
        x_coef = tf.where(last, tf.zeros_like(h), tf.sqrt((1.0 - safe_s) / (1.0 - ab_t)))
        table = {
            "x_coef": x_coef,
            "x0_coef": x0_weight * (1.0 + half_inv_r),
            "prev_x0_coef": -x0_weight * half_inv_r,
        }
        table = {k: tf.cast(v, tf.float32) for k, v in table.items()}
        return {"t": t, **table}

    def dpmpp_2m_step(self, predict_noise, x, prev_x0, table, k):
        """Call `k` of DPM-Solver++(2M): one network call and the update.

        Args:
            predict_noise: Callable `(x_t, t) -> noise`.
            x: `(batch, ...)` current sample, at timestep `table["t"][k]`.
            prev_x0: The previous call's data prediction (ignored, but
                must be finite, at `k = 0`).
            table: `dpmpp_2m_table(num_steps)` (tensors or arrays).
            k: int32 scalar call index in `[0, num_steps)`.

        Returns:
            `(x_next, x0)`: the sample at the next timestep (the data
            after the last call) and this call's data prediction, clipped
            to `clip_range`: the next call's `prev_x0`.
        """
        row = {name: tf.gather(tf.convert_to_tensor(v), k) for name, v in table.items()}
        t = tf.fill(tf.shape(x)[:1], row["t"])
        eps = tf.cast(predict_noise(x, t), tf.float32)
        x0 = self._clipped_x0(x, t, eps)
        x_next = row["x_coef"] * x + row["x0_coef"] * x0 + row["prev_x0_coef"] * prev_x0
        return x_next, x0

    def dpmpp_2m_loop(self, predict_noise, x_T, num_steps, jit_compile=False):
        """DPM-Solver++(2M) from a given `x_T`, in one `tf.while_loop`.

        Deterministic: the result is a function of `x_T` (and the network).

        Args:
            predict_noise: Callable `(x_t, t) -> noise` (a batch of int32 `t`).
            x_T: float32 `(batch, ...)` starting sample (standard normal).
            num_steps: Python int or int32 scalar in `[1, T]`: network calls.
            jit_compile: Whether each call (network and update) is one XLA
                cluster.

        Returns:
            The samples `x_0`, float32.
        """
        x = tf.convert_to_tensor(x_T, tf.float32)
        table = self.dpmpp_2m_table(num_steps)

        def step(x, prev_x0, k):
            return self.dpmpp_2m_step(predict_noise, x, prev_x0, table, k)

        if jit_compile:
            step = tf.function(step, jit_compile=True, autograph=False)

        def body(k, x, prev_x0):
            x_next, x0 = step(x, prev_x0, k)
            return k + 1, tf.ensure_shape(x_next, x.shape), tf.ensure_shape(x0, x.shape)

        _, x, _ = tf.while_loop(
            lambda k, x, prev_x0: k < tf.shape(table["t"])[0],
            body,
            (tf.constant(0), x, tf.zeros_like(x)),
            shape_invariants=(tf.TensorShape([]), x.shape, x.shape),
        )
        return x

    def sample(
        self, predict_noise, shape, seed, num_steps, method="ddim", eta=0.0, jit_compile=False
    ):
        """Runs the reverse process from `x_T ~ N(0, I)` in one `tf.while_loop`.

        `x_T` is drawn with `seed` and the noise of the `i`-th step (counted
        from the end) with `stateless_fold_in(seed, i + 1)`, so the result is a
        pure function of the seed.

        With `jit_compile=True` the body of one step (network and update) is
        an XLA cluster, while the loop and the noise stay in TensorFlow: XLA
        draws different numbers from `tf.random.stateless_normal` than the
        TensorFlow kernel, so compiling the whole loop would change the
        samples of a seed. Results then match the uncompiled loop to float32
        rounding, not bit for bit.

        Args:
            predict_noise: Callable `(x_t, t) -> noise` (a batch of int32 `t`).
            shape: The sample shape, a 1-D int32 tensor or list.
            seed: int32 `[2]` tensor.
            num_steps: int32 scalar in `[1, T]`.
            method: `"ddpm"` (ancestral; with fewer than T steps it is the
                respaced ancestral sampler, i.e. DDIM with `eta = 1`),
                `"ddim"` or `"dpmpp_2m"` (`dpmpp_2m_loop` from the seed's
                `x_T`; deterministic, `num_steps` network calls).
            eta: DDIM noise scale (ignored by `"ddpm"` and `"dpmpp_2m"`).
            jit_compile: Whether each step runs as one XLA cluster.

        Returns:
            The samples `x_0`, float32.
        """
        if method not in METHODS:
            raise ValueError(
                f"`method` must be one of {METHODS}. Received: method={method!r}"
            )
        seed = tf.cast(seed, tf.int32)
        shape = tf.cast(shape, tf.int32)
        x = tf.random.stateless_normal(shape, seed=seed)
        if method == "dpmpp_2m":
            return self.dpmpp_2m_loop(predict_noise, x, num_steps, jit_compile)
        timesteps = self.timestep_sequence(num_steps)
        count = tf.shape(timesteps)[0]

        def step(x, t_scalar, t_prev_scalar, noise):
            t = tf.fill(tf.shape(x)[:1], t_scalar)
            t_prev = tf.fill(tf.shape(x)[:1], t_prev_scalar)
            eps = tf.cast(predict_noise(x, t), tf.float32)
            if method == "ddpm":
                return tf.cond(
                    t_prev_scalar == t_scalar - 1,
                    lambda: self.ddpm_step(x, t, eps, noise),
                    lambda: self.ddim_step(x, t, t_prev, eps, noise, eta=1.0),
                )
            return self.ddim_step(x, t, t_prev, eps, noise, eta=eta)

        if jit_compile:
            step = tf.function(step, jit_compile=True, autograph=False)

        def body(i, x):
            t_prev_scalar = tf.where(i > 0, timesteps[tf.maximum(i - 1, 0)], -1)
            step_seed = tf.random.experimental.stateless_fold_in(seed, i + 1)
            noise = tf.random.stateless_normal(shape, seed=step_seed)
            x_prev = tf.ensure_shape(step(x, timesteps[i], t_prev_scalar, noise), x.shape)
            return i - 1, x_prev

        _, x = tf.while_loop(
            lambda i, x: i >= 0,
            body,
            (count - 1, x),
            shape_invariants=(tf.TensorShape([]), x.shape),
        )
        return x
