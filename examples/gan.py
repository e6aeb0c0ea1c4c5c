"""A DCGAN on MNIST digits and an MLP GAN on the 2-D `grid25` mixture.

Builds both from the package presets, trains briefly, samples, evaluates the
mode coverage of the 2-D model and exports the DCGAN for TF Serving and
TF Lite. Run from the repository root: `python examples/gan.py`.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras_genmodels  # noqa: E402
from keras_genmodels import data, export, plotting  # noqa: E402
from keras_genmodels.evaluation import registry  # noqa: E402

# Images: the default `dcgan` preset on the 4,000 mnist-5k training digits.
gan = keras_genmodels.build("gan", "dcgan", data_shape=(28, 28, 1), seed=0)
train = data.load("mnist-5k", "train")
gan.fit(gan.prepare_dataset(train, batch_size=64), epochs=5)
plotting.image_grid(gan.sample(64, seed=0)).save("gan_mnist.png")
print(gan.evaluation_metrics(data.load("mnist-5k", "test")))
print(export.export_and_verify(gan, os.path.abspath("savedmodels"), name="gan_mnist"))

# Points: the `mlp2d` preset on 25 Gaussians, scored with the mode-coverage
# protocol (2,500 samples, high quality within 3 sigma of a centre). 20 epochs
# is a short demo; the preset's 127 epochs cover all 25 modes (see docs/gan.md).
toy = keras_genmodels.build("gan", "mlp2d", data_shape=(2,), seed=0)
toy.fit(toy.prepare_dataset(data.load("grid25", "train"), batch_size=256), epochs=20)
print(registry.evaluate(toy, data.load("grid25", "test"), "grid25"))
plotting.scatter(toy.sample(2_500, seed=0)).save("gan_grid25.png")
