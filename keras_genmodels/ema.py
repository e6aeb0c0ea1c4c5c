"""`WeightAverage`: an exponential moving average of a network's weights.

The GAN samples from an average of its generator (Karras et al., 2018;
Yazici et al., 2019) and the DDPM from an average of its noise network (Ho et
al., 2020). Both keep the average in a twin network of the same architecture,
so the average is sampled, saved and exported like any Keras model.
"""

import keras
import tensorflow as tf

NON_TRAINABLE_RULES = ("copy", "average")


def averaged_twin(network):
    """A non-trainable copy of `network` starting from its current weights.

    Args:
        network: A built `keras.Model`.

    Returns:
        A `keras.Model` of the same architecture and weights, not trainable.
    """
    twin = keras.models.clone_model(network)
    twin.set_weights(network.get_weights())
    twin.trainable = False
    return twin


class WeightAverage:
    """Updates `average` towards `network` after each optimizer step.

    Each trainable weight follows

    `average <- decay_t * average + (1 - decay_t) * weight`

    with `decay_t = decay`, or, with `warmup=True`,
    `decay_t = min(decay, (1 + step) / (10 + step))` so that the early
    average is not dominated by the random initialisation (the warm-up of
    Tarvainen and Valpola, 2017, used by DDPM implementations). Non-trainable
    weights (batch-norm statistics) are either copied (`"copy"`: the
    statistics of the live network, which the averaged weights are
    normalised with in practice) or averaged like the rest (`"average"`).

    Args:
        network: The trained `keras.Model`.
        average: Its twin holding the average (see `averaged_twin`).
        decay: Float in `[0, 1)`.
        warmup: Whether the decay ramps up with the step count.
        non_trainable: `"copy"` or `"average"`.

    Example:

    ```python
    ema_network = averaged_twin(network)
    ema = WeightAverage(network, ema_network, decay=0.999, warmup=True)
    ema.update(optimizer.iterations)  # in `after_train_step`
    ```
    """

    def __init__(self, network, average, decay, warmup=False, non_trainable="copy"):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"`decay` must be in [0, 1). Received: decay={decay}")
        if non_trainable not in NON_TRAINABLE_RULES:
            raise ValueError(
                f"`non_trainable` must be one of {NON_TRAINABLE_RULES}. "
                f"Received: non_trainable={non_trainable!r}"
            )
        if len(network.weights) != len(average.weights):
            raise ValueError(
                "`average` must have the architecture of `network`. Received: "
                f"{len(average.weights)} weights for {len(network.weights)}"
            )
        self.network = network
        self.average = average
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.non_trainable = non_trainable

    def decay_at(self, step):
        """The decay used after optimizer step `step`.

        A constant decay stays a Python float, so `1 - decay` is computed in
        float64 and rounded once, as the GAN always did; with the warm-up it
        is a float32 tensor.
        """
        if not self.warmup:
            return self.decay
        step = tf.cast(step, "float32")
        return tf.minimum(self.decay, (1.0 + step) / (10.0 + step))

    def update(self, step):
        """Moves every averaged weight one step towards the network's.

        Args:
            step: The optimizer's iteration count (used by the warm-up).
        """
        decay = self.decay_at(step)
        for average, weight in zip(self.average.weights, self.network.weights):
            value = tf.cast(weight, average.dtype)
            if weight.trainable or self.non_trainable == "average":
                rate = tf.cast(decay, average.dtype) if tf.is_tensor(decay) else decay
                average.assign(rate * average + (1.0 - rate) * value)
            else:
                average.assign(value)
