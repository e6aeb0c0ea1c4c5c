"""The GAN family: adversarial training with two optimizers.

`GAN` (model.py: networks, data, sampling, evaluation) takes a generator and
a discriminator from `networks.py`; its two-player update is in
`training.py`, the loss terms and penalties in `losses.py`, the exported
signatures in `serving.py`; `presets.py` holds the `reference` (seed MLP),
`dcgan` and `mlp2d` presets.
"""

from keras_genmodels.gan.model import GAN

__all__ = ["GAN"]
