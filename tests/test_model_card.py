"""The model card each export writes: `assets.extra/model_card.json`."""

import datetime
import hashlib
import json
import os

import keras
import pytest
import tensorflow as tf

import keras_genmodels
from keras_genmodels import export, model_card
from tests import export_fixtures
from tests.export_fixtures import FAMILIES, METRICS, RUN, RUN_STEPS

# The exports are shared with test_export_warmup and test_inspect: one worker.
pytestmark = pytest.mark.xdist_group("export_fixtures")


def _card(exported):
    with open(exported.report["model_card"], encoding="utf-8") as f:
        return json.load(f)


def test_an_exported_run_carries_what_the_run_knows():
    exported = export_fixtures.export_of("vae")
    card = _card(exported)
    assert card["card_version"] == model_card.CARD_VERSION
    assert (card["name"], card["version"]) == ("vae", 1)
    assert (card["family"], card["preset"]) == ("vae", "reference")
    assert card["class"] == "keras_genmodels>VAE"
    assert card["parameters"] == exported.model.count_params()
    assert card["training"] == {
        "dataset": "mnist-5k",  # What ran, not the requested "mnist".
        "requested_dataset": "mnist",
        "batch_size": RUN["batch_size"],
        "seed": 0,
        "overrides": RUN["overrides"],
        "epochs": 1,  # history.csv's rows.
        "steps": RUN_STEPS,  # The optimizer's, restored with model.keras.
        "seconds": METRICS["train_seconds"],
        "final_losses": METRICS["final"],
        "run_directory": os.path.abspath(exported.run_dir),
    }
    assert card["evaluation"] == METRICS["test"]
    exported_at = datetime.datetime.fromisoformat(card["exported_at"])
    age = datetime.datetime.now(datetime.timezone.utc) - exported_at
    assert datetime.timedelta(0) <= age < datetime.timedelta(hours=2)
    assert card["versions"]["tensorflow"] == tf.__version__
    assert card["versions"]["keras"] == keras.__version__
    assert card["versions"]["keras_genmodels"] == keras_genmodels.__version__


def test_the_config_rebuilds_the_model():
    exported = export_fixtures.export_of("vae")
    config = _card(exported)["config"]
    assert config["name"] == exported.model.name
    rebuilt = type(exported.model).from_config(config)
    if not rebuilt.built:
        rebuilt.build()
    assert rebuilt.count_params() == exported.model.count_params()


@pytest.mark.parametrize("family", FAMILIES)
def test_signatures_and_limits_are_the_served_ones(family):
    exported = export_fixtures.export_of(family)
    card = _card(exported)
    served = export_fixtures.tensorflow_signatures(exported.path)
    assert sorted(card["signatures"]) == sorted(served)
    limits = exported.report["limits"]
    for name, entry in card["signatures"].items():
        assert entry["inputs"] == served[name]["inputs"], name
        assert entry["outputs"] == served[name]["outputs"], name
        assert entry["limits"] == limits[entry.get("alias_of", name)], name
    assert card["signatures"]["serving_default"]["alias_of"] in limits
    used = {key for value in limits.values() for key in value}
    assert sorted(card["limit_meanings"]) == sorted(used)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_tflite_file_is_named_and_hashed(family):
    exported = export_fixtures.export_of(family)
    lite = _card(exported)["tflite"]
    path = exported.report["tflite"]
    with open(path, "rb") as f:
        data = f.read()
    assert lite["file"] == os.path.basename(path)
    assert lite["sha256"] == hashlib.sha256(data).hexdigest()
    assert lite["bytes"] == len(data)
    assert sorted(lite["signatures"]) == export.tflite_signatures(path)
    assert lite["max_abs_diff"] == pytest.approx(exported.report["tflite_max_abs_diff"])
    assert lite["tolerance"] == exported.model.tflite_tolerance


def test_a_bare_model_says_what_is_unknown():
    exported = export_fixtures.export_of("flow")
    card = _card(exported)
    assert (card["family"], card["preset"], card["evaluation"]) == ("flow", None, None)
    steps = card["training"].pop("steps")
    assert steps == 0  # Compiled, never trained.
    assert card["training"] == dict.fromkeys(card["training"])  # Every other key: None.


def test_card_fields_are_merged_and_export_fields_refused(tmp_path):
    model = export_fixtures.export_of("gan").model
    path = export.export_savedmodel(
        model, str(tmp_path), name="m",
        card={"preset": "dcgan", "training": {"dataset": "mnist"}, "notes": ("a", 1)},
    )
    card = model_card.read_card(path)
    assert (card["preset"], card["notes"], card["tflite"]) == ("dcgan", ["a", 1], None)
    assert card["training"]["dataset"] == "mnist"
    assert card["training"]["epochs"] is None  # The other keys stay.
    assert card["conditioning"] == ["labels"]
    with pytest.raises(ValueError, match=r"`card` may not set \['signatures', 'version'\]"):
        export.export_savedmodel(model, str(tmp_path), name="n",
                                 card={"signatures": {}, "version": 3})
    with pytest.raises(ValueError, match="`card` must be a dict"):
        export.export_and_verify(model, str(tmp_path), name="n", card="mnist")
    assert sorted(os.listdir(tmp_path)) == ["m"]  # Refused before anything was written.


def test_json_safe_turns_numpy_tuples_and_nan_into_json():
    import numpy as np

    value = {"a": (np.float32(0.5), np.int64(3)), "b": float("nan"), 1: np.arange(2),
             "c": object}
    safe = model_card.json_safe(value)
    assert safe == {"a": [0.5, 3], "b": None, "1": [0, 1], "c": repr(object)}
    json.dumps(safe, allow_nan=False)
