"""Denoising diffusion probabilistic models (Ho et al., 2020) with an EMA."""

import keras
import tensorflow as tf

from keras_genmodels.base import GenerativeModel, check_positive_int
from keras_genmodels.conditioning import check_guidance_scale, check_prompts, labelled_pipeline
from keras_genmodels.conditioning.text import PromptEmbedding
from keras_genmodels.data import captions
from keras_genmodels.diffusion import evaluation, prompts
from keras_genmodels.diffusion.gaussian import GaussianDiffusion
from keras_genmodels.diffusion.guidance import (
    ClassConditioning,
    TextConditioning,
    drop_condition,
)
from keras_genmodels.diffusion.sampling import METHODS, DDPMSampling, check_steps
from keras_genmodels.diffusion.schedules import SCHEDULES
from keras_genmodels.diffusion.serving import DDPMSignatures
from keras_genmodels.ema import WeightAverage, averaged_twin


@keras.saving.register_keras_serializable(package="keras_genmodels")
class DDPM(DDPMSignatures, DDPMSampling, GenerativeModel):
    """A DDPM: a noise-prediction network trained on the Gaussian process.

    Training draws `t ~ U{0, ..., T-1}` and `eps ~ N(0, I)` per example and
    minimises the simple loss of Ho et al. (2020):

    `loss = E || eps - eps_theta(sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, t) ||^2`

    An exponential moving average of the network's weights
    (`ema_network`, updated after every optimizer step, saved with the model)
    is what `sample` and the exports use. Images in `[0, 1]` are mapped to
    `[-1, 1]` for the process and back when sampling; vectors (2-D points)
    are used as they are. The exported signatures are described in
    `keras_genmodels.diffusion.serving`, the samplers in
    `keras_genmodels.diffusion.sampling`.

    With `num_classes` the model is class-conditional with classifier-free
    guidance (`keras_genmodels.diffusion.guidance`): it trains on
    `(images, labels)` batches, replacing each label by the "no label" class
    with probability `p_uncond`, and samples with
    `eps = eps_uncond + w * (eps_cond - eps_uncond)`, `w = guidance_scale`.

    With a `text_encoder` the model is text-conditional: the encoder (a
    nested network trained with the U-Net, with its own EMA twin
    `ema_text_encoder`) turns a prompt's byte ids into token states that
    the U-Net reads by cross-attention; the empty prompt is the
    unconditional case, training drops the prompt to it with probability
    `p_uncond`, and `sample(prompt=...)` is guided as above. It trains on
    `(images, captions)` or on `(images, labels)` that `prepare_dataset`
    captions (`keras_genmodels.diffusion.prompts`).

    References:
        Ho, Jain and Abbeel, "Denoising Diffusion Probabilistic Models",
        NeurIPS 2020.
        Song, Meng and Ermon, "Denoising Diffusion Implicit Models", ICLR 2021.
        Nichol and Dhariwal, "Improved Denoising Diffusion Probabilistic
        Models", ICML 2021.

    Args:
        network: Functional `keras.Model` with inputs `[x_t, t]` (`t`: int32
            `(batch,)`) predicting the noise, shaped like `x_t`: e.g.
            `diffusion.unet.unet()` or `diffusion.mlp.mlp_denoiser()`; with
            `num_classes`, inputs `[x_t, t, labels]` (`unet(...,
            num_classes=...)`); with `text_encoder`, inputs `[x_t, t,
            context, context_mask]` (`unet(..., context_width=...)`).
        timesteps: T, the number of diffusion steps.
        schedule: `"linear"` or `"cosine"`.
        ema_decay: Decay of the weight EMA, in `[0, 1)`. The decay used at
            optimizer step `n` is `min(ema_decay, (1 + n) / (10 + n))`, so
            the average follows the weights closely early in training; every
            weight (trainable or not) is averaged.
        sampling_steps: Default number of reverse steps of `sample`
            (`None`: T).
        sampling_method: Default sampler of `sample` below T steps, `"ddpm"`,
            `"ddim"` or `"dpmpp_2m"`.
        clip_denoised: Whether predicted `x_0` is clipped to `[-1, 1]` while
            sampling; `None` means yes for images, no for vectors.
        num_classes: `None` (unconditional) or the number of classes of a
            class-conditional model.
        p_uncond: Probability with which training drops a label to "no
            label" (conditional models), in `[0, 1)`.
        guidance_scale: Default classifier-free guidance weight `w >= 0` of
            `sample` and the exports (conditional models).
        text_encoder: `None`, or the text encoder of a text-conditional
            model: a functional `keras.Model` `token_ids int32 [N, L] ->
            [states [N, L, width], mask [N, L]]` holding a `PromptEmbedding`
            (`keras_genmodels.conditioning.text.text_encoder`), whose `width`
            is the network's `context_width`. Exclusive with `num_classes`.
        default_prompts: Text-conditional models: the prompts `sample`
            cycles through when given none (`None`: one caption per digit,
            `"a handwritten 0"` to `"a handwritten 9"`).
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

    text = keras_genmodels.build("diffusion", "unet-mnist-text")
    text.fit(text.prepare_dataset(data.load("mnist-5k", with_labels=True), 32))
    text.sample(8, seed=0, prompt="a handwritten 7", guidance_scale=3.0)
    ```
    """

    nested_networks = ("network", "text_encoder")
    config_arguments = (
        "timesteps",
        "schedule",
        "ema_decay",
        "sampling_steps",
        "sampling_method",
        "clip_denoised",
        "num_classes",
        "p_uncond",
        "guidance_scale",
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
        num_classes=None,
        p_uncond=0.1,
        guidance_scale=1.0,
        text_encoder=None,
        default_prompts=None,
        seed=None,
        **kwargs,
    ):
        kwargs.setdefault("name", "ddpm")
        super().__init__(seed=seed, **kwargs)
        if num_classes is not None:
            num_classes = check_positive_int(num_classes, "num_classes")
        if text_encoder is not None and num_classes is not None:
            raise ValueError(
                "A DDPM is conditioned on class labels or on text, not both. Received: "
                f"num_classes={num_classes} and a text_encoder"
            )
        expected, count = "[x_t, t]", 2
        if num_classes is not None:
            expected, count = "[x_t, t, labels]", 3
        elif text_encoder is not None:
            expected, count = "[x_t, t, context, context_mask]", 4
        if not isinstance(network, keras.Model) or len(network.inputs) != count:
            raise ValueError(
                f"`network` must be a functional keras.Model with inputs {expected}"
                f" (num_classes={num_classes}, text_encoder="
                f"{None if text_encoder is None else text_encoder.name}). "
                f"Received: network={network!r}"
            )
        if not 0.0 <= p_uncond < 1.0:
            raise ValueError(f"`p_uncond` must be in [0, 1). Received: p_uncond={p_uncond}")
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
        self.num_classes = num_classes
        self.p_uncond = float(p_uncond)
        self.guidance_scale = check_guidance_scale(guidance_scale, 1.0)
        self.text_encoder = text_encoder
        self.condition = None if num_classes is None else ClassConditioning(num_classes)
        self.conditioning = () if num_classes is None else ("labels", "guidance_scale")
        if text_encoder is not None:
            self._init_text(network, text_encoder, default_prompts)
        elif default_prompts is not None:
            raise ValueError(
                "`default_prompts` are for a text-conditional DDPM (with a "
                f"text_encoder). Received: default_prompts={default_prompts!r}"
            )
        self.uses_labels = self.condition is not None
        self.add_loss_trackers("loss")
        self.build(None)

    def _init_text(self, network, text_encoder, default_prompts):
        """The text encoder, its EMA twin and the prompt conditioning."""
        embeddings = [
            layer for layer in getattr(text_encoder, "layers", [])
            if isinstance(layer, PromptEmbedding)
        ]
        if not isinstance(text_encoder, keras.Model) or len(embeddings) != 1:
            raise ValueError(
                "`text_encoder` must be a functional keras.Model token_ids -> [states, "
                "mask] with one PromptEmbedding layer (conditioning.text.text_encoder). "
                f"Received: text_encoder={text_encoder!r}"
            )
        width = text_encoder.outputs[0].shape[-1]
        context = tuple(network.inputs[2].shape)
        if len(context) != 3 or context[-1] != width:
            raise ValueError(
                "The network's `context` input must be (batch, length, width) with the "
                f"text encoder's width {width}. Received: context shape {tuple(context)}"
            )
        self.max_prompt_bytes = embeddings[0].max_prompt_bytes
        self.ema_text_encoder = averaged_twin(text_encoder)
        self.text_weight_average = WeightAverage(
            text_encoder, self.ema_text_encoder, self.ema_decay, warmup=True,
            non_trainable="average",
        )
        self.condition = TextConditioning(
            text_encoder, self.ema_text_encoder, self.max_prompt_bytes
        )
        self.conditioning = ("prompt", "guidance_scale")
        #: Labels of `(image, label)` pairs are captioned by this builder
        #: (`prepare_dataset`); `num_classes` is its number of classes.
        self.caption_builder = captions.DIGITS
        self.num_classes = self.caption_builder.num_classes
        if default_prompts is None:
            default_prompts = prompts.default_prompts(self.caption_builder)
        if isinstance(default_prompts, str) or not default_prompts:
            raise ValueError(
                "`default_prompts` must be a non-empty list of prompts. Received: "
                f"default_prompts={default_prompts!r}"
            )
        self.default_prompts = tuple(
            check_prompts(list(default_prompts), len(default_prompts), self.max_prompt_bytes)
        )

    def get_config(self):
        config = super().get_config()
        if self.text_encoder is not None:
            # `num_classes` of a text model counts the captioned classes; the
            # constructor's `num_classes` (label conditioning) is None.
            config["num_classes"] = None
            config["default_prompts"] = list(self.default_prompts)
        return config

    @classmethod
    def from_config(cls, config):
        # `.keras` files written before text conditioning have no text_encoder.
        return super().from_config({"text_encoder": None, **config})

    def call(self, inputs, training=False):
        return self.network(list(inputs), training=training)

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

    def prepare_dataset(self, dataset, batch_size, shuffle=True, drop_remainder=False):
        """Batches data, as `(images, labels)` pairs for a class-conditional
        model and `(images, prompt token ids)` for a text-conditional one.

        A text-conditional model takes `(image, caption)` pairs as they are
        and captions `(image, label)` pairs with `caption_builder`: with
        `shuffle=True` (training) from its training templates, drawn anew
        each epoch (seeded by the model's `seed`); with `shuffle=False`
        (evaluation batches) from its held-out templates, the same on every
        call (`keras_genmodels.diffusion.prompts.prompt_batches`).
        """
        if self.condition is None:
            return super().prepare_dataset(dataset, batch_size, shuffle, drop_remainder)
        if self.condition.option == "prompt":
            return prompts.prompt_batches(
                dataset, batch_size, self.max_prompt_bytes, shuffle, drop_remainder,
                seed=self.seed, builder=self.caption_builder,
            )
        return labelled_pipeline(dataset, batch_size, shuffle, drop_remainder, "DDPM")

    def split_batch(self, data):
        """`(x, raw condition)` of a batch; the condition is `None` when
        the model is unconditional."""
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if isinstance(x, (tuple, list)):
            x, y = x[0], x[1] if len(x) > 1 else y
        if self.condition is None:
            return x, None
        text = self.condition.option == "prompt"
        if y is None:
            raise ValueError(
                "A text-conditional DDPM trains on (images, prompt token ids) batches "
                "(`prepare_dataset`)." if text else
                "A class-conditional DDPM trains on (images, labels) batches. "
                "Received batches without labels."
            )
        if text:
            return x, tf.ensure_shape(tf.cast(y, tf.int32), [None, self.condition.length])
        return x, tf.cast(tf.reshape(y, [-1]), tf.int32)

    def compute_losses(self, data, training=False):
        x, raw = self.split_batch(data)
        x_0 = self.to_process_space(x)
        batch = tf.shape(x_0)[:1]
        # Global-batch draws (`batch_noise`): a mirrored step sees the noise of
        # the one-device step. The noise, `q_sample`'s schedule products and
        # the MSE stay float32 under a mixed policy (bfloat16 rounds
        # `sqrt(1 - alpha_bar_t)` near t = 0 to 0); only the network is mixed.
        t = self.batch_noise(batch, "integer", "int32", maxval=self.timesteps)
        noise = self.batch_noise(tf.shape(x_0))
        if raw is not None and training:
            keep = self.batch_noise(batch, "uniform") >= self.p_uncond
            raw = drop_condition(self.condition, raw, keep)
        return {"loss": self.noise_loss(x_0, t, noise, training, raw)}

    def noise_loss(self, x_0, t, noise, training=False, raw_condition=None):
        """The simple loss: the trained network's noise MSE at `(x_0, t, noise)`.

        Args:
            x_0: float32 data in the process's scale.
            t: int32 timesteps `(batch,)`.
            noise: The `eps` that noises `x_0`, shaped like it.
            training: Whether the network runs in training mode.
            raw_condition: The raw condition of a conditional model (int32
                labels or prompt token ids, encoded by the trained text
                encoder), `None` otherwise.

        Returns:
            Scalar float32 mean of `(eps_theta(x_t, t[, c]) - eps)^2`.
        """
        x_t = self.process.q_sample(x_0, t, noise)
        inputs = [x_t, t]
        if raw_condition is not None:
            inputs += self.condition.network_inputs(raw_condition, training)
        predicted = tf.cast(self.network(inputs, training=training), "float32")
        return tf.reduce_mean(tf.square(predicted - noise))

    def after_train_step(self):
        self.weight_average.update(self.optimizer.iterations)
        if self.text_encoder is not None:
            self.text_weight_average.update(self.optimizer.iterations)

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
