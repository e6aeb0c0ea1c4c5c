"""`GenerativeModel`: the contract every family keeps.

A family model is a `keras.Model` that trains with plain `fit`, samples to
numpy, saves as `.keras` and exports pure-TensorFlow functions for TF Serving
and TF Lite. A family is its networks, its loss (`compute_losses`) and the
function that turns a seed into samples (`sample_from_seed`); this module
holds the rest of the contract once: the `sample` template with its cache of
traced functions, seeds, the dataset preparation that `fit` is fed with, and
config/build by declaration. The exported `sample` and `sample_batch`
signatures and the list of exported signatures live in
`keras_genmodels.sample_signatures`, the training step in
`keras_genmodels.training_step`, workarounds for Keras and TensorFlow
problems in `keras_genmodels._compat`.
"""

import functools
import numbers

import keras
import numpy as np
import tensorflow as tf

from keras_genmodels.sample_signatures import SampleSignatures
from keras_genmodels.training_step import (  # noqa: F401 (re-exported)
    MAX_SEED,
    TrainingStep,
    num_replicas_in_sync,
)

#: The conditioning keyword options of `sample` (`GenerativeModel.conditioning`).
CONDITIONING_OPTIONS = ("labels", "prompt", "guidance_scale")


def check_positive_int(value, name):
    """Validates that `value` is a positive Python or numpy integer.

    Args:
        value: The value to check.
        name: The argument name used in the error message.

    Returns:
        `value` as a Python int.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(
            f"`{name}` must be a positive integer. Received: {name}={value!r}"
        )
    if value < 1:
        raise ValueError(
            f"`{name}` must be a positive integer. Received: {name}={value}"
        )
    return int(value)


class GenerativeModel(SampleSignatures, TrainingStep, keras.Model):
    """Base class of every family model.

    Subclasses implement:

    - their networks, and `call` (a deterministic forward pass), declaring
      networks passed to the constructor in `nested_networks` and plain
      arguments in `config_arguments` (config, `from_config` and `build`
      follow from the declarations);
    - `compute_losses(data, training)`: a dict of scalar losses whose
      `"loss"` entry the default `train_step` minimises
      (`keras_genmodels.training_step.TrainingStep`);
    - `sample_from_seed(num_samples, seed, **options)`: the pure-TF sampler
      behind `sample` and the exported `sample` and `sample_batch`
      signatures (`keras_genmodels.sample_signatures.SampleSignatures`),
      with `sample_options` for its keyword options and, when the signature
      takes more inputs, `sample_signature_inputs`/`check_sample_inputs`;
    - `serving_endpoints(limits)`, `tflite_endpoints(batch_size)` and
      `signature_examples(batch_size)` for `keras_genmodels.export`;
    - `evaluation_metrics(dataset)`: the figures only the family computes
      (data-set figures are in `keras_genmodels.evaluation.registry`).

    Args:
        seed: Optional int seeding the model's `keras.random.SeedGenerator`,
            from which training noise and unseeded `sample` calls draw.
        **kwargs: Passed to `keras.Model` (`name`, `dtype`, ...).

    Example:

    ```python
    model = keras_genmodels.build("vae", "reference")
    model.fit(images, epochs=1)
    images = model.sample(16, seed=0)
    ```
    """

    #: What `sample` returns: "image", "points", "text" or "sequence".
    data_kind = "image"
    #: Whether `prepare_dataset` needs `(features, label)` pairs, i.e. whether
    #: the command loads the data set `with_labels=True` (class-conditional
    #: models).
    uses_labels = False
    #: Largest absolute difference allowed between a TF Lite signature and the
    #: same signature run by TensorFlow.
    tflite_tolerance = 1e-4
    #: The conditioning options of `sample` this model takes, a subset of
    #: `CONDITIONING_OPTIONS` (validated by `keras_genmodels.conditioning`);
    #: the others are refused by `check_conditioning`.
    conditioning = ()

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        if seed is not None and (
            isinstance(seed, bool)
            or not isinstance(seed, numbers.Integral)
            or not 0 <= seed <= MAX_SEED
        ):
            raise ValueError(
                "`seed` must be None or an int in [0, 2**31 - 1]. "
                f"Received: seed={seed!r}"
            )
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    # ------------------------------------------------------------------
    # Training.
    # ------------------------------------------------------------------
    def compute_losses(self, data, training=False):
        """Returns a dict of scalar losses for one batch; `"loss"` is minimised.

        Args:
            data: One batch as yielded by the dataset.
            training: Whether the call is part of a training step.

        Returns:
            Dict of name to scalar float32 tensor.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement `compute_losses`."
        )

    # ------------------------------------------------------------------
    # Data.
    # ------------------------------------------------------------------
    def prepare_dataset(
        self, dataset, batch_size, shuffle=True, drop_remainder=False
    ):
        """Turns an unbatched `keras_genmodels.data.load` dataset into batches.

        The default keeps the features only (labels are dropped unless the
        family overrides this), then caches, shuffles, batches and prefetches.

        Args:
            dataset: Unbatched `tf.data.Dataset` of features or
                (features, label) pairs.
            batch_size: Positive int.
            shuffle: Whether to shuffle each epoch.
            drop_remainder: Whether to drop the last partial batch (needed
                where shapes must be static).

        Returns:
            A batched, prefetched `tf.data.Dataset`.
        """
        batch_size = check_positive_int(batch_size, "batch_size")
        if isinstance(dataset.element_spec, tuple):
            dataset = dataset.map(
                lambda x, *_: x, num_parallel_calls=tf.data.AUTOTUNE
            )
        return batch_pipeline(dataset, batch_size, shuffle, drop_remainder)

    # ------------------------------------------------------------------
    # Sampling and seeds.
    # ------------------------------------------------------------------
    def resolve_seed(self, seed):
        """Turns a user seed into the int32 `[2]` tensor stateless ops take.

        Args:
            seed: `None` (draw from the model's `SeedGenerator`), a
                non-negative int, or a pair of non-negative ints.

        Returns:
            An int32 tensor of shape `[2]`.
        """
        if seed is None:
            return keras.random.randint(
                (2,), 0, MAX_SEED, dtype="int32", seed=self.seed_generator
            )
        if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
            pair = [int(seed), 0]
        elif isinstance(seed, (tf.Tensor, np.ndarray, list, tuple)):
            pair = [int(s) for s in np.asarray(seed).reshape(-1)]
        else:
            pair = None
        if pair is None or len(pair) != 2 or not all(
            0 <= s <= MAX_SEED for s in pair
        ):
            raise ValueError(
                "`seed` must be None, an int in [0, 2**31 - 1] or a pair of "
                f"such ints. Received: seed={seed!r}"
            )
        return tf.constant(pair, dtype=tf.int32)

    def sample(self, num_samples, seed=None, **options):
        """Draws samples from the model.

        The template every family shares: it validates `num_samples`, lets
        the family validate its keyword options (`sample_options`), runs
        `sample_from_seed` in a `tf.function` traced once per set of static
        options (`traced_function`) and converts the result
        (`sample_result`). Families document their options by overriding
        `sample` with keyword-only arguments that call this one.

        Args:
            num_samples: Positive int.
            seed: `None`, an int, or a pair of ints (see `resolve_seed`). The
                same seed gives the same samples, here and in the exported
                `sample` signature.
            **options: Family-specific keyword options (e.g. `labels`,
                `num_steps`, `temperature`).

        Returns:
            A numpy array of samples; text families return a list of `str`.
        """
        num_samples = check_positive_int(num_samples, "num_samples")
        options = self.check_conditioning(options)
        static, tensors = self.sample_options(num_samples, **options)
        key = ("sample",) + tuple(sorted(static.items()))
        fn = self.traced_function(key, functools.partial(self.sample_from_seed, **static))
        samples = fn(tf.constant(num_samples, tf.int32), self.resolve_seed(seed), **tensors)
        return self.sample_result(samples)

    def check_conditioning(self, options):
        """Refuses conditioning options this model does not take.

        Args:
            options: The keyword options of a `sample` call.

        Returns:
            `options` without the conditioning names the model does not
            take (those passed as `None` are dropped).

        Raises:
            ValueError: A conditioning option the model does not take was
                given a value; the message names it and the value.
        """
        options = dict(options)
        for name in CONDITIONING_OPTIONS:
            if name in self.conditioning or name not in options:
                continue
            value = options.pop(name)
            if value is not None:
                accepted = ", ".join(f"`{c}`" for c in self.conditioning)
                raise ValueError(
                    f"This {type(self).__name__} is not conditioned on `{name}`; "
                    f"it takes {accepted or 'no conditioning'}. Received: "
                    f"{name}={value!r}"
                )
        return options

    def sample_from_seed(self, num_samples, seed, **options):
        """The pure-TensorFlow sampler behind `sample` and the `sample` signature.

        Args:
            num_samples: int32 scalar tensor.
            seed: int32 `[2]` tensor for stateless random ops.
            **options: The static options and tensors of `sample_options`,
                or the extra inputs of the `sample` signature
                (`sample_signature_inputs`).

        Returns:
            A tensor whose first axis has `num_samples` rows.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement `sample_from_seed`."
        )

    def sample_options(self, num_samples, **options):
        """Validates the keyword options of `sample`.

        Args:
            num_samples: The validated number of samples.
            **options: The keyword options `sample` received.

        Returns:
            `(static, tensors)`: a dict of hashable Python values, one traced
            function per distinct dict, and a dict of tensors passed to the
            traced function (no retracing when only their values change).
        """
        if options:
            raise TypeError(
                f"{type(self).__name__}.sample() takes no keyword options. "
                f"Received: {', '.join(sorted(options))}"
            )
        return {}, {}

    def sample_result(self, samples):
        """Converts `sample_from_seed`'s tensor into what `sample` returns."""
        return keras.ops.convert_to_numpy(samples)

    def traced_function(self, key, fn, **function_kwargs):
        """A `tf.function` of `fn`, traced once per `key` and then reused.

        Args:
            key: Hashable key of the cache (e.g. `("sample", options...)`).
            fn: The Python function to wrap on the first call with `key`.
            **function_kwargs: Passed to `tf.function` on that first call
                (e.g. `input_signature`, `jit_compile`).

        Returns:
            The cached `tf.function`.
        """
        cache = self.__dict__.setdefault("_traced_functions_cache", {})
        if key not in cache:
            cache[key] = tf.function(fn, **function_kwargs)
        return cache[key]

    # ------------------------------------------------------------------
    # Export and evaluation.
    # ------------------------------------------------------------------
    def serving_endpoints(self):
        """Returns `{name: tf.function}` with input signatures for TF Serving.

        Each function returns a dict of named tensors, takes randomness as an
        int32 `seed` of shape `[2]` and uses only TensorFlow ops.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement `serving_endpoints`."
        )

    def tflite_endpoints(self, batch_size=1):
        """Returns `{name: tf.function}` with static shapes for TF Lite.

        Every name is also a `serving_endpoints` name with the same meaning,
        so the TF Lite file can be checked against the SavedModel.

        Args:
            batch_size: The static batch dimension.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement `tflite_endpoints`."
        )

    def signature_examples(self, batch_size=1):
        """Returns `{name: {argument: numpy array}}` for every endpoint.

        Inputs of TF Lite endpoints have `batch_size` rows so they fit the
        static shapes. Used to verify exports.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement `signature_examples`."
        )

    def evaluation_metrics(self, dataset, **kwargs):
        """Returns a dict of held-out figures (floats) for `dataset`.

        Args:
            dataset: Unbatched test-split dataset from `keras_genmodels.data`.
            **kwargs: Family-specific options; the command passes
                `dataset_name` (the data set's name) to every family, and
                families that do not need it ignore it.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement `evaluation_metrics`."
        )

    # ------------------------------------------------------------------
    # Building and serialization, driven by declarations.
    # ------------------------------------------------------------------
    #: Constructor arguments that hold Keras networks (built functional
    #: models); `get_config` serializes them, `from_config` rebuilds them and
    #: `build` has nothing left to create when every variable lives in them.
    nested_networks = ()
    #: Constructor arguments stored under their own name and written to the
    #: config as they are (ints, floats, strings, tuples, `None`).
    config_arguments = ()

    def build(self, input_shape=None):
        """Marks a model whose variables all live in `nested_networks` built.

        Families that create layers of their own override this and build
        them.
        """
        if not self.nested_networks:
            raise NotImplementedError(
                f"{type(self).__name__} declares no `nested_networks`; it must "
                "override `build` to create its layers."
            )
        self.built = True

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        for name in self.nested_networks:
            config[name] = keras.saving.serialize_keras_object(getattr(self, name))
        for name in self.config_arguments:
            config[name] = getattr(self, name)
        return config

    #: `{old argument name: new name}` of renamed constructor arguments, so
    #: `.keras` files written before a rename still load.
    renamed_config_arguments = {}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for old, new in cls.renamed_config_arguments.items():
            if old in config:
                config.setdefault(new, config.pop(old))
        for name in cls.nested_networks:
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)


def batch_pipeline(dataset, batch_size, shuffle=True, drop_remainder=False):
    """Caches, shuffles, batches and prefetches an unbatched dataset.

    Args:
        dataset: Unbatched `tf.data.Dataset`.
        batch_size: Positive int.
        shuffle: Whether to reshuffle each epoch (buffer of 10,000 elements).
        drop_remainder: Whether to drop the last partial batch.

    Returns:
        The batched `tf.data.Dataset`.
    """
    dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(10_000, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)
