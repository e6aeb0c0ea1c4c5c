"""The GAN family: adversarial training with two optimizers.

`GAN` (model.py) takes a generator and a discriminator from `networks.py`;
`presets.py` holds the `reference` (seed MLP), `dcgan` and `mlp2d` presets.
"""

from keras_genmodels.gan.model import GAN

__all__ = ["GAN"]
