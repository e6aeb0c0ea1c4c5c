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

from keras_genmodels._backend import check_backend
from keras_genmodels._startup import quiet_tensorflow_start

with quiet_tensorflow_start():
    check_backend()

from keras_genmodels import data, export  # noqa: E402
from keras_genmodels.autoregressive.rnn import RNNAutoregressive  # noqa: E402
from keras_genmodels.autoregressive.rnn_lm import RNNLanguageModel  # noqa: E402
from keras_genmodels.autoregressive.transformer import TransformerLM  # noqa: E402
from keras_genmodels.base import GenerativeModel  # noqa: E402
from keras_genmodels.diffusion.ddpm import DDPM  # noqa: E402
from keras_genmodels.flow.realnvp import RealNVP  # noqa: E402
from keras_genmodels.gan.model import GAN  # noqa: E402
from keras_genmodels.presets import build, list_presets  # noqa: E402
from keras_genmodels.vae.model import VAE  # noqa: E402

# Every family module is imported here, not on first use: importing a module
# registers its classes with `keras.saving`, so `keras.saving.load_model` can
# read any family's `.keras` file once `keras_genmodels` is imported.

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
