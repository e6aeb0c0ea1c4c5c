"""Registry of families and presets: family -> preset name -> constructor.

Each family folder owns a `presets.py` with a `PRESETS` dict of `Preset`s and
a `DEFAULT_PRESET` name; this module collects them under the family names the
command uses (`vae`, `gan`, `ar`, `flow`, `diffusion`).
"""

import dataclasses
import importlib
from collections.abc import Callable

FAMILY_MODULES = {
    "vae": "keras_genmodels.vae.presets",
    "gan": "keras_genmodels.gan.presets",
    "ar": "keras_genmodels.autoregressive.presets",
    "flow": "keras_genmodels.flow.presets",
    "diffusion": "keras_genmodels.diffusion.presets",
}


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named model configuration with its training defaults.

    Args:
        description: One line shown by `keras-genmodels list`.
        builder: Callable taking keyword overrides and returning a compiled
            `GenerativeModel`.
        dataset: Name of the data set the command trains on by default.
        train_steps: Default training length for the command, in optimizer
            steps; the command turns it into whole epochs of the data set
            (so the default takes about as long on MNIST as on mnist-5k).
        batch_size: Default batch size for the command.
        adapts_to_data_shape: Whether the builder takes the shape of one
            example as `data_shape` (the command passes the loaded data's).
    """

    description: str
    builder: Callable
    dataset: str
    train_steps: int
    batch_size: int
    adapts_to_data_shape: bool = False


def _family_module(family):
    if family not in FAMILY_MODULES:
        raise ValueError(
            f"Unknown family {family!r}. Expected one of: "
            f"{', '.join(FAMILY_MODULES)}."
        )
    return importlib.import_module(FAMILY_MODULES[family])


def import_family(family):
    """Imports a family's modules, registering its classes for `.keras` loading.

    Args:
        family: One of `vae`, `gan`, `ar`, `flow`, `diffusion`.

    Returns:
        The family's presets module.
    """
    return _family_module(family)


def get_preset(family, preset=None):
    """Looks up a preset.

    Args:
        family: One of `vae`, `gan`, `ar`, `flow`, `diffusion`.
        preset: Preset name, or `None` for the family's default.

    Returns:
        A `(name, Preset)` pair.
    """
    module = _family_module(family)
    name = module.DEFAULT_PRESET if preset is None else preset
    if name not in module.PRESETS:
        raise ValueError(
            f"Unknown preset {name!r} for family {family!r}. Expected one of: "
            f"{', '.join(module.PRESETS)}."
        )
    return name, module.PRESETS[name]


def list_presets(family=None):
    """Lists the presets of one family or of all.

    Args:
        family: A family name, or `None` for every family.

    Returns:
        `{preset: description}` for one family, or
        `{family: {preset: description}}` when `family` is `None`.
    """
    if family is None:
        return {name: list_presets(name) for name in FAMILY_MODULES}
    module = _family_module(family)
    return {name: p.description for name, p in module.PRESETS.items()}


def default_preset(family):
    """Returns the name of a family's default preset."""
    return _family_module(family).DEFAULT_PRESET


def build(family, preset=None, **overrides):
    """Builds and compiles a family model from a preset.

    Args:
        family: One of `vae`, `gan`, `ar`, `flow`, `diffusion`.
        preset: Preset name, or `None` for the family's default.
        **overrides: Constructor arguments that replace the preset's.

    Returns:
        A compiled `GenerativeModel`, ready for `fit`.

    Example:

    ```python
    vae = keras_genmodels.build("vae", "conv", latent_dim=8)
    ```
    """
    _, spec = get_preset(family, preset)
    return spec.builder(**overrides)
