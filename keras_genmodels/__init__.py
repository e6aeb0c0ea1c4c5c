"""keras_genmodels: VAE, GAN, autoregressive, flow and diffusion models in Keras 3.

Each family is a `keras.Model` trained with `fit`, saved as `.keras`, exported
for TF Serving and converted to TF Lite.

Example:

```python
import keras_genmodels

vae = keras_genmodels.build("vae", "conv")
vae.fit(keras_genmodels.data.load("mnist-5k").batch(128), epochs=5)
images = vae.sample(16, seed=0)
keras_genmodels.export.export_savedmodel(vae, "savedmodels", name="vae")
```
"""

from keras_genmodels._startup import light_command, quiet_tensorflow_start

if not light_command():
    from keras_genmodels._backend import check_backend

    with quiet_tensorflow_start():
        check_backend()

    from keras_genmodels import data, export
    from keras_genmodels.autoregressive.rnn import RNNAutoregressive
    from keras_genmodels.autoregressive.rnn_lm import RNNLanguageModel
    from keras_genmodels.autoregressive.transformer import TransformerLM
    from keras_genmodels.base import GenerativeModel
    from keras_genmodels.diffusion.ddpm import DDPM
    from keras_genmodels.flow.realnvp import RealNVP
    from keras_genmodels.gan.model import GAN
    from keras_genmodels.presets import build, list_presets
    from keras_genmodels.vae.model import VAE

# Every family module is imported here, not on first use: importing a module
# registers its classes with `keras.saving`, so `keras.saving.load_model` can
# read any family's `.keras` file once `keras_genmodels` is imported. Only the
# command's file-reading subcommands (`keras-genmodels inspect`) skip them.

__version__ = "0.1.0"

__all__ = [
    "DDPM",
    "GAN",
    "GenerativeModel",
    "RNNAutoregressive",
    "RNNLanguageModel",
    "RealNVP",
    "TransformerLM",
    "VAE",
    "build",
    "data",
    "export",
    "list_presets",
]
