"""RealNVP on the 2-D `moons` set: fit, check the likelihood, sample, export.

Run from the repository root: `python examples/flow.py`.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras_genmodels  # noqa: E402
from keras_genmodels import data, export, plotting  # noqa: E402

flow = keras_genmodels.build("flow", "mlp2d", data_shape=(2,), seed=0)
train = data.load("moons", "train")
flow.fit(flow.prepare_dataset(train, batch_size=256), epochs=10)

test = data.load("moons", "test")
print(flow.evaluation_metrics(test, dataset_name="moons"))

points = flow.sample(2_000, seed=0)
latents = flow.encode(points[:5])
print("round trip error:", abs(flow.decode(latents) - points[:5]).max())
plotting.scatter(points).save("flow_moons.png")

# An absolute base directory: the verification runs in another directory.
report = export.export_and_verify(flow, os.path.abspath("savedmodels"), name="flow_moons")
print(report)
