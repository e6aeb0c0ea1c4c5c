"""Train the convolutional VAE on the bundled digits, sample, export.

Run from the repository root: `python examples/vae.py`.
"""

import keras_genmodels
from keras_genmodels import data, export, plotting

model = keras_genmodels.build("vae", "conv", seed=0)
train = model.prepare_dataset(data.load("mnist-5k"), batch_size=128)
model.fit(train, epochs=5)

plotting.image_grid(model.sample(36, seed=0)).save("vae_samples.png")
print(model.evaluation_metrics(data.load("mnist-5k", "test"), num_importance_samples=20))
print(export.export_and_verify(model, "savedmodels", name="vae"))
