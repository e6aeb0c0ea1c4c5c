"""Package-level behaviour: the backend guard, class registration and the preset registry."""

import importlib
import json
import os
import pkgutil
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_genmodels
from keras_genmodels import presets

FAMILIES = ["vae", "gan", "ar", "flow", "diffusion"]


def test_non_tensorflow_backend_is_refused_in_one_line():
    env = dict(os.environ, KERAS_BACKEND="jax")
    proc = subprocess.run(
        [sys.executable, "-c", "import keras_genmodels"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "keras_genmodels needs the TensorFlow backend" in last
    assert "KERAS_BACKEND='jax'" in last


def test_families_are_registered():
    assert list(presets.FAMILY_MODULES) == FAMILIES
    assert list(keras_genmodels.list_presets("vae")) == ["reference", "conv", "conv-cond"]
    assert presets.default_preset("vae") == "conv"


def test_unknown_family_and_preset_list_the_valid_names():
    with pytest.raises(ValueError, match="Expected one of: vae, gan, ar, flow, diffusion"):
        keras_genmodels.build("bert")
    with pytest.raises(ValueError, match="Expected one of: reference, conv"):
        keras_genmodels.build("vae", "huge")


def test_build_overrides_reach_the_model():
    model = keras_genmodels.build("vae", "conv", latent_dim=4, beta=0.5)
    assert model.latent_dim == 4 and model.beta == 0.5
    assert model.optimizer is not None  # Compiled, ready for fit.


def test_top_level_family_classes_are_the_registered_ones():
    # Every family class named at the top level is the class `.keras` files
    # are loaded with (registered under the package's name).
    classes = {
        name: getattr(keras_genmodels, name) for name in keras_genmodels.__all__
        if isinstance(getattr(keras_genmodels, name), type)
        and issubclass(getattr(keras_genmodels, name), keras_genmodels.GenerativeModel)
        and name != "GenerativeModel"
    }
    assert {"VAE", "GAN", "TransformerLM", "RealNVP", "DDPM"} <= set(classes)
    for name, cls in classes.items():
        assert keras.saving.get_registered_object(f"keras_genmodels>{name}") is cls


def _registered_classes():
    """The `keras.saving` names of this package's registered classes."""
    return sorted(k for k in keras.saving.get_custom_objects() if k.startswith("keras_genmodels>"))


def test_importing_the_package_registers_every_class(tmp_path):
    # `keras.saving.load_model` finds a custom class only if the module that
    # registers it has been imported: `import keras_genmodels` alone must
    # register all of them, or a `.keras` file cannot be read in a process
    # that did not build the model (a U-Net DDPM's once could not).
    for module in pkgutil.walk_packages(keras_genmodels.__path__, "keras_genmodels."):
        importlib.import_module(module.name)
    every_class = _registered_classes()
    assert "keras_genmodels>SinusoidalEmbedding" in every_class

    from keras_genmodels.diffusion import DDPM
    from keras_genmodels.diffusion.unet import unet

    network = unet((8, 8, 1), base_filters=8, channel_multipliers=(1, 2),
                   attention_resolutions=(4,), groups=4)
    model = DDPM(network, timesteps=10, sampling_steps=2, sampling_method="ddim", seed=0)
    path = str(tmp_path / "unet_ddpm.keras")
    model.save(path)
    expected = [float(np.sum(w)) for w in model.get_weights()]
    script = (
        "import json, sys, keras, keras_genmodels\n"
        "names = sorted(k for k in keras.saving.get_custom_objects()"
        " if k.startswith('keras_genmodels>'))\n"
        "model = keras.saving.load_model(sys.argv[1], safe_mode=True)\n"
        "weights = [float(w.sum()) for w in model.get_weights()]\n"
        "print(json.dumps({'names': names, 'weights': weights}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, path], capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    fresh = json.loads(proc.stdout.strip().splitlines()[-1])
    assert fresh["names"] == every_class
    np.testing.assert_allclose(fresh["weights"], expected, rtol=1e-6)
