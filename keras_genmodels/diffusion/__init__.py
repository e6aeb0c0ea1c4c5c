"""The diffusion family: DDPM with an EMA, DDPM and DDIM samplers.

Modules: `schedules` (betas), `gaussian` (the process: `q_sample`, posterior,
samplers), `layers` (time embedding), `mlp` and `unet` (noise predictors),
`ddpm` (the `DDPM` model), `serving` (its exported signatures), `evaluation`
(its own held-out figures) and `presets`.
"""

from keras_genmodels.diffusion.ddpm import DDPM
from keras_genmodels.diffusion.gaussian import GaussianDiffusion

# The U-Net's layers are imported with the package so that their classes are
# registered with `keras.saving` as soon as `keras_genmodels` is imported:
# without them `keras.saving.load_model` cannot read a U-Net DDPM's `.keras`
# file in a process that has not built one.
from keras_genmodels.diffusion.layers import FastGroupNormalization, SinusoidalEmbedding

__all__ = ["DDPM", "FastGroupNormalization", "GaussianDiffusion", "SinusoidalEmbedding"]
