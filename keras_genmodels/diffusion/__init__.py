"""The diffusion family: DDPM with an EMA, DDPM and DDIM samplers.

Modules: `schedules` (betas), `gaussian` (the process: `q_sample`, posterior,
samplers), `layers` (time embedding), `mlp` and `unet` (noise predictors),
`ddpm` (the `DDPM` model) and `presets`.
"""

from keras_genmodels.diffusion.ddpm import DDPM
from keras_genmodels.diffusion.gaussian import GaussianDiffusion

__all__ = ["DDPM", "GaussianDiffusion"]
