"""Figures from an export's signatures equal the in-process figures (same seeds).

Each tiny model is exported once (module-scoped fixtures) and evaluated both
ways: `keras_genmodels.evaluation.registry.evaluate` on the model, and
`evaluate_export` on its SavedModel (loaded with `tf.saved_model.load` only).
Float figures must agree to a relative 1e-6 (float32 rounding of batched
matmuls; most agree exactly). The classifier-FID floor (real train digits
against test digits, independent of the model) is replaced by a constant to
keep the file fast.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from keras_genmodels import cli, data, export, presets
from keras_genmodels.evaluation import classifier_fid, registry
from keras_genmodels.evaluation.export_signatures import (
    ExportError,
    card_directory,
    card_field,
    read_model_card,
    resolve_export,
)
from keras_genmodels.evaluation.exported import ExportedModel
from keras_genmodels.evaluation.exported_figures import evaluate_export
from tests import contract_support

pytestmark = pytest.mark.xdist_group("test_exported")

RELATIVE = 1e-6
FLOOR = {"fid": 1.0, "precision": 0.5, "recall": 0.5}


@pytest.fixture(scope="module", autouse=True)
def _constant_floor():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(classifier_fid, "digit_floor", lambda num_images=1000: FLOOR)
        yield


def _fit(model, dataset, steps=2):
    batches = model.prepare_dataset(dataset, contract_support.BATCH_SIZE).repeat()
    model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
    return model


def assert_figures_match(exported, in_process, skip=()):
    """Every number of `in_process` (nested too) is in `exported`, equal to
    within `RELATIVE`."""
    for key, value in in_process.items():
        if key in skip:
            continue
        assert key in exported, f"{key} missing from the export's figures {sorted(exported)}"
        if isinstance(value, dict):
            assert_figures_match(exported[key], value)
        else:
            assert exported[key] == pytest.approx(value, rel=RELATIVE, abs=1e-9), key


@pytest.fixture(scope="module")
def vae(tmp_path_factory):
    """A 28x28 VAE (so the digit figures apply), trained two steps."""
    model = presets.build(
        "vae", "reference", seed=0, latent_dim=2, hidden_units=8, data_shape=(28, 28, 1)
    )
    test = contract_support.synthetic_dataset(model)
    _fit(model, test)
    # 100 importance samples x 16 images = 1,600 decoded rows: four `decode` calls.
    path = export.export_savedmodel(
        model, str(tmp_path_factory.mktemp("vae")), limits={"batch_size": 500}
    )
    return model, test, path


@pytest.fixture(scope="module")
def ddpm(tmp_path_factory):
    """A 2-D point DDPM with T = 3 steps, trained two steps, on ring8 points."""
    model = presets.build(
        "diffusion", "mlp2d", seed=0, timesteps=3, hidden_units=8, num_layers=1
    )
    test = data.load("ring8", "test").take(200)
    _fit(model, test)
    # The figures draw 2,000 and 2,500 points: one call each.
    path = export.export_savedmodel(
        model, str(tmp_path_factory.mktemp("ddpm")), limits={"num_samples": 2500}
    )
    return model, test, path


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    """A 2-D point flow, trained two steps, exported with the default limits."""
    model = contract_support.build_tiny("flow", "mlp2d")
    _fit(model, data.load("ring8", "test").take(200))
    base = tmp_path_factory.mktemp("flow")
    path = export.export_savedmodel(model, str(base), name="flow")
    return model, path


@pytest.fixture(scope="module")
def conditional_gan(tmp_path_factory):
    """An untrained class-conditional GAN whose `sample` takes up to 4 rows."""
    overrides = contract_support.TINY[("gan", "dcgan")]
    model = presets.build(
        "gan", "dcgan", seed=0, num_classes=3, data_shape=(8, 8, 1), **overrides
    )
    path = export.export_savedmodel(
        model, str(tmp_path_factory.mktemp("gan")), limits={"num_samples": 4}
    )
    return model, path


@pytest.fixture(scope="module")
def transformer(tmp_path_factory):
    """An untrained tiny byte transformer whose `score` takes up to 600 bytes."""
    model = contract_support.build_tiny("ar", "transformer-small")
    path = export.export_savedmodel(
        model, str(tmp_path_factory.mktemp("lm")), limits={"text": 600}
    )
    return model, contract_support.synthetic_dataset(model), ExportedModel(path)


def test_vae_figures_equal_in_process(vae):
    model, test, path = vae
    in_process = registry.evaluate(model, test, "mnist")
    report = evaluate_export(path, "mnist", test=test)
    assert {"negative_elbo", "iwae_nll", "classifier_fid"} <= set(report["figures"])
    assert_figures_match(report["figures"], in_process)
    assert report["family"] == "vae" and report["format"] == "savedmodel"
    assert report["not_available"] == {} and report["notes"] == []


def test_conditional_vae_bounds_equal_in_process(tmp_path):
    """A CVAE's bounds take the test labels: `encode` and `decode` get them
    (tiled once per importance sample)."""
    model = presets.build(
        "vae", "conv-cond", seed=0, latent_dim=2, data_shape=(8, 8, 1), num_classes=3,
        embedding_dim=2,
    )
    test = contract_support.synthetic_dataset(model)
    path = export.export_savedmodel(model, str(tmp_path), limits={"batch_size": 500})
    report = evaluate_export(path, "labelled-squares", test=test)
    assert ExportedModel(path).uses_labels
    assert_figures_match(report["figures"], model.evaluation_metrics(test))


def test_vae_seed_changes_the_draws(vae):
    model, test, path = vae
    base = evaluate_export(path, "mnist", test=test)["figures"]
    other = evaluate_export(path, "mnist", test=test, seed=1)["figures"]
    assert other["negative_elbo"] != base["negative_elbo"]
    assert other["classifier_fid"]["fid"] != base["classifier_fid"]["fid"]


def test_ddpm_figures_equal_in_process(ddpm):
    model, test, path = ddpm
    in_process = registry.evaluate(model, test, "ring8")
    report = evaluate_export(path, "ring8", test=test)
    assert {"sliced_wasserstein", "modes_covered"} <= set(report["figures"])
    assert_figures_match(report["figures"], in_process, skip=("test_loss", "num_examples"))
    assert "EMA network" in report["not_available"]["test_loss"]
    assert report["sample_inputs"] == {"num_steps": 3}
    assert report["notes"] == []


def test_ddpm_samples_equal_in_process_with_num_steps(ddpm):
    model, _, path = ddpm
    exported = ExportedModel(path, sample_inputs={"num_steps": 2})
    np.testing.assert_array_equal(
        exported.sample(5, seed=[4, 5]), model.sample(5, seed=[4, 5], num_steps=2)
    )
    assert exported.limit("sample", "num_steps") == 3
    assert exported.limit("sample", "num_samples") == 2500


def test_conditional_gan_labels(conditional_gan):
    """The classes are read from the `labels` check; labels cycle through them
    as `sample(labels=None)` does, or take the value given."""
    model, path = conditional_gan
    exported = ExportedModel(path)
    assert (exported.family, exported.data_shape, exported.num_classes) == ("gan", (8, 8, 1), 3)
    np.testing.assert_array_equal(exported.sample(4, seed=[1, 2]), model.sample(4, seed=[1, 2]))
    chosen = ExportedModel(path, sample_inputs={"labels": 2})
    np.testing.assert_array_equal(
        chosen.sample(3, seed=[1, 2]), model.sample(3, seed=[1, 2], labels=2)
    )
    test = contract_support.synthetic_dataset(model)
    with pytest.raises(ExportError) as error:  # No figure applies to this data set.
        evaluate_export(exported, "small-digits", test=test)
    assert str(error.value).startswith(
        "No figure of a gan savedmodel export can be computed on 'small-digits': d_loss: "
        "the export serves the generator only"
    )


def test_transformer_bits_per_char_equal_in_process(transformer):
    model, test, exported = transformer
    tokens = np.concatenate([t.numpy()[None] for t in test])
    for size, method in ((500, "score"), (len(tokens), "next_token_logits")):
        part = tf.data.Dataset.from_tensor_slices(tokens[:size])
        in_process = model.evaluation_metrics(part, dynamic_learning_rate=None)
        report = evaluate_export(exported, None, test=part)
        assert_figures_match(report["figures"], in_process)
        scored_in_one_call = report["notes"] == []
        assert scored_in_one_call == (method == "score"), report["notes"]
    assert report["notes"] == [
        "The test text has 1,024 bytes, over the `score` limit of 600 (export with "
        "--limit text=1024 to score it in one call): scored byte by byte instead"
    ]
    assert "dynamic_bits_per_char" in report["not_available"]


def test_flow_split_draw(flow):
    """Over the export's num_samples limit (1,024), the first call keeps the
    seed: its rows equal the in-process draw, the rest differ, and the
    report says so; the likelihood figures are exact."""
    model, path = flow
    exported = ExportedModel(path)
    samples = exported.sample(1500, seed=0)
    reference = model.sample(1500, seed=0)
    np.testing.assert_array_equal(samples[:1024], reference[:1024])
    assert not np.allclose(samples[1024:], reference[1024:])
    assert exported.notes == [
        "1,500 samples exceed the export's num_samples limit 1,024: drawn in 2 "
        "calls, so only the first 1,024 equal the in-process draw of the same seed"
    ]


def test_command_writes_the_report(flow, tmp_path, capsys):
    model, path = flow
    out = tmp_path / "figures.json"
    model_dir = os.path.dirname(path)  # The newest version is taken.
    status = cli.main(
        ["evaluate", "--export", model_dir, "--dataset", "ring8", "--out", str(out)]
    )
    assert status == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == printed
    assert printed["export"] == path and printed["dataset"] == "ring8"
    test = data.load("ring8", "test")
    in_process = model.evaluation_metrics(test, dataset_name="ring8")
    assert_figures_match(printed["figures"], in_process)
    assert printed["figures"]["num_samples"] == registry.TOY_SAMPLES
    assert len(printed["notes"]) == 1  # The 2,500 toy-set points: a split draw.


def test_command_errors_are_one_line(vae, tmp_path, capsys):
    _, _, path = vae
    assert cli.main(["evaluate", "--export", str(tmp_path), "--dataset", "mnist"]) == 2
    assert capsys.readouterr().err == (
        f"keras-genmodels: error: {tmp_path} is not a SavedModel version directory "
        "(no saved_model.pb), a model directory with numbered versions or a .tflite "
        f"file. Received: export path '{tmp_path}'\n"
    )
    assert cli.main(["evaluate", "--export", path, "--dataset", "ring8"]) == 2
    assert capsys.readouterr().err == (
        f"keras-genmodels: error: The vae export at {path} takes images of shape "
        "(28, 28, 1); the data set 'ring8' holds points of shape (2,) (float32). "
        "Received: dataset='ring8'\n"
    )
    assert cli.main(["evaluate", str(tmp_path), "--dataset", "mnist"]) == 2
    assert capsys.readouterr().err == (
        "keras-genmodels: error: Only with --export: --dataset (a run is evaluated on "
        f"its own test split). Received: evaluate {tmp_path} with --dataset\n"
    )


def test_vae_tflite_samples_give_the_digit_figures(vae, tmp_path):
    """The TF Lite `decode` of the same stateless latents: the figures within
    the file's tolerance; the ELBO, which needs `encode`, is not available."""
    model, test, _ = vae
    lite = export.export_tflite(model, str(tmp_path / "vae.tflite"), batch_size=4)
    exported = ExportedModel(lite)
    assert (exported.family, exported.data_shape) == ("vae", (28, 28, 1))
    np.testing.assert_allclose(
        exported.sample(6, seed=[1, 2]), model.sample(6, seed=[1, 2]), atol=1e-4
    )
    report = evaluate_export(exported, "mnist", test=test)
    in_process = registry.evaluate(model, test, "mnist")["classifier_fid"]
    figures = report["figures"]["classifier_fid"]
    assert figures["fid"] == pytest.approx(in_process["fid"], rel=1e-3)
    assert (figures["precision"], figures["recall"]) == (
        in_process["precision"], in_process["recall"]
    )
    assert set(report["not_available"]) == {"negative_elbo", "iwae_nll"}


def test_diffusion_tflite_is_refused(ddpm, tmp_path):
    model, test, _ = ddpm
    lite = export.export_tflite(model, str(tmp_path / "ddpm.tflite"))
    with pytest.raises(ExportError) as error:
        evaluate_export(lite, "ring8", test=test)
    assert str(error.value) == (
        "A diffusion .tflite file cannot give the in-process figures: its "
        "`denoise_step` runs one ancestral step on noise the app draws, not the "
        "sampler's seeded draws (a keras_genmodels.litert runner is planned). From a "
        ".tflite file, evaluate supports the VAE, GAN and flow (samples decoded from "
        "the same seeded latents, the flow's log_prob) and the byte language models "
        f"(bits per character); evaluate the SavedModel version instead. Received: {lite}"
    )


def test_model_card_is_read_where_present(tmp_path):
    version = tmp_path / "diffusion" / "3"
    (version / "assets.extra").mkdir(parents=True)
    card = {"config": {"sampling_steps": 50}, "training": {"dataset": "mnist-5k"}}
    (version / "assets.extra" / "model_card.json").write_text(json.dumps(card))
    lite = str(tmp_path / "diffusion" / "diffusion-v3.tflite")
    assert card_directory("tflite", lite) == str(version)
    read = read_model_card(card_directory("savedmodel", str(version)))
    assert card_field(read, "config", "sampling_steps") == 50
    assert card_field(read, "training", "dataset") == "mnist-5k"
    assert card_field(read, "config", "guidance_scale") is None
    assert read_model_card(str(tmp_path)) is None
    with pytest.raises(ExportError, match="is not a SavedModel version directory"):
        resolve_export(str(version))
