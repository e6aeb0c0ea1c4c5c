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

check_backend()

import importlib  # noqa: E402

from keras_genmodels import data  # noqa: E402
from keras_genmodels.base import GenerativeModel  # noqa: E402
from keras_genmodels.presets import build, list_presets  # noqa: E402

__version__ = "0.1.0"

# Family classes are imported on first use, so `import keras_genmodels` does
# not build TensorFlow Probability or every family's module.
_LAZY = {
    "VAE": "keras_genmodels.vae.model",
    "GAN": "keras_genmodels.gan.model",
    "RNNAutoregressive": "keras_genmodels.autoregressive.rnn",
    "TransformerLM": "keras_genmodels.autoregressive.transformer",
    "RealNVP": "keras_genmodels.flow.realnvp",
    "DDPM": "keras_genmodels.diffusion.ddpm",
    "export": "keras_genmodels.export",
}


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = module if name == "export" else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keras_genmodels' has no attribute {name!r}")


__all__ = ["GenerativeModel", "build", "data", "list_presets", *_LAZY]
