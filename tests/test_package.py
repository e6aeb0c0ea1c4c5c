"""Package-level behaviour: the backend guard and the preset registry."""

import os
import subprocess
import sys

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
    assert list(keras_genmodels.list_presets("vae")) == ["reference", "conv"]
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


def test_lazy_family_names_resolve():
    from keras_genmodels.vae.model import VAE

    assert keras_genmodels.VAE is VAE
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        keras_genmodels.Nope  # noqa: B018
