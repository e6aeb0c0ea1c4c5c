"""Exports for TF Serving and TF Lite, and their verification.

`export_savedmodel` writes `BASE/NAME/VERSION/`, the layout TensorFlow Serving
watches, through a staging directory renamed into place so a server never
sees a half-written version (`keras_genmodels.export_layout`). Its signatures
check every input in the graph against limits fixed at export time
(`keras_genmodels.serving_limits`). Each version carries, in
`assets.extra/`, TF Serving's warm-up requests built from the model's example
inputs (`keras_genmodels.serving_warmup`) and a model card
(`keras_genmodels.model_card`). `export_tflite` converts the model's
static-shape `tflite_endpoints()` into one `.tflite` file with one signature
each.

`export_and_verify` also checks both before the version is published
(`keras_genmodels.export_verify`): the SavedModel in a fresh Python process
that imports only TensorFlow, the `.tflite` file in `ai_edge_litert` against
the SavedModel signature of the same name, within the model's
`tflite_tolerance` (absolute, 1e-4 by default). The TF Serving request
helpers live in `keras_genmodels.serving_requests`.
"""

import os
import tempfile

import keras
import tensorflow as tf

from keras_genmodels import export_layout, model_card, serving_warmup
from keras_genmodels.export_layout import next_version
from keras_genmodels.export_verify import (
    compare_tflite,
    run_tflite,
    tflite_signatures,
    verify_savedmodel,
)
from keras_genmodels.serving_limits import resolve_limits
from keras_genmodels.serving_requests import (
    predict_request,
    rest_request_body,
    run_predict_request,
)

__all__ = [
    "compare_tflite",
    "export_and_verify",
    "export_savedmodel",
    "export_tflite",
    "next_version",
    "predict_request",
    "rest_request_body",
    "run_predict_request",
    "run_tflite",
    "tflite_signatures",
    "verify_savedmodel",
]


def _checked_endpoints(model, endpoints, method):
    if not endpoints:
        raise ValueError(f"{type(model).__name__}.{method}() returned no endpoints.")
    return endpoints


def _write_archive(model, endpoints, path):
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, fn in endpoints.items():
        archive.add_endpoint(name, fn)
    archive.write_out(path, verbose=False)


def _plan(model, base_dir, name, version, limits):
    """Checks the arguments of an export; returns its paths and endpoints."""
    if name is None:
        name = getattr(model, "default_export_name", None) or model.name
    model_dir = os.path.join(base_dir, export_layout.check_name(name))
    if version is None:
        version = next_version(model_dir)
    elif isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(
            f"`version` must be a positive integer. Received: version={version!r}"
        )
    target = os.path.join(model_dir, str(version))
    if os.path.exists(target):
        raise FileExistsError(
            f"Version {version} already exists at {target}; exports never "
            "overwrite a version. Pass another `version` or omit it."
        )
    endpoints = model.export_endpoints(resolve_limits(model, limits))
    return target, _checked_endpoints(model, endpoints, "export_endpoints")


def _write_staged(model, endpoints, target, examples):
    """Writes the SavedModel and its warm-up requests into a staging directory."""
    model_dir, version = os.path.split(target)
    staging = export_layout.stage(model_dir, version)
    try:
        _write_archive(model, endpoints, staging)
        serving_warmup.write_warmup_requests(
            staging, examples, model_name=os.path.basename(model_dir)
        )
    except BaseException:
        export_layout.discard(staging)
        raise
    return staging


def _write_card(model, staging, target, limits, tflite=None, card=None):
    model_dir, version = os.path.split(target)
    return model_card.write_card(staging, model_card.build_card(
        model, serving_warmup.read_signatures(staging), os.path.basename(model_dir),
        int(version), limits=limits, tflite=tflite, card=card,
    ))


def export_savedmodel(model, base_dir, name=None, version=None, limits=None, card=None):
    """Writes the model's serving signatures as `base_dir/name/version/`.

    The version is written into a staging directory and renamed into place
    when complete (see `keras_genmodels.export_layout`); its directory gets
    the mode of the umask, so a server running as another user can read it.
    It holds `assets.extra/tf_serving_warmup_requests`, one TF Serving
    warm-up request per signature from `model.export_examples()`, and
    `assets.extra/model_card.json` (`keras_genmodels.model_card`).

    Args:
        model: A `GenerativeModel`.
        base_dir: The directory TF Serving's `--model_base_path` points above.
        name: Model name (the directory under `base_dir`): letters, digits,
            `_`, `.` and `-`, not starting with `.` or `-`; defaults to
            `model.default_export_name` (e.g. `vae`, `ar-transformer`).
        version: Positive int; defaults to the next free integer version. An
            existing version is never overwritten.
        limits: Optional `{limit name: positive int}` replacing the model's
            default serving limits (`model.serving_limits`), e.g.
            `{"num_samples": 64}`; see `keras_genmodels.serving_limits`.
        card: Optional dict of model card fields merged into the card, e.g.
            `model_card.run_information(run_dir)` or
            `{"preset": "conv", "training": {"dataset": "mnist"}}`.

    Returns:
        The path of the written version directory.

    Example:

    ```python
    path = export_savedmodel(vae, "savedmodels", limits={"num_samples": 64})
    # savedmodels/vae/1, servable by tensorflow_model_server; a request for
    # more than 64 samples fails with INVALID_ARGUMENT.
    ```
    """
    card = model_card.check_card(card)
    target, endpoints = _plan(model, base_dir, name, version, limits)
    staging = _write_staged(model, endpoints, target, model.export_examples(limits))
    try:
        _write_card(model, staging, target, limits, card=card)
        export_layout.publish(staging, target)
    except BaseException:
        export_layout.discard(staging)
        raise
    return target


def export_tflite(model, path, batch_size=1):
    """Converts the model's `tflite_endpoints(batch_size)` to one `.tflite`.

    Only TF Lite built-in ops are allowed, so the file runs in the plain
    `ai_edge_litert` interpreter and on phones without the Flex delegate.

    Args:
        model: A `GenerativeModel`.
        path: Output file path (`.tflite`).
        batch_size: The static batch dimension of every signature.

    Returns:
        `path`.
    """
    endpoints = _checked_endpoints(
        model, model.tflite_endpoints(batch_size=batch_size), "tflite_endpoints"
    )
    with tempfile.TemporaryDirectory() as tmp:
        _write_archive(model, endpoints, tmp)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            tmp, signature_keys=list(endpoints)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        flatbuffer = converter.convert()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(flatbuffer)
    return path


def export_and_verify(
    model, base_dir, name=None, version=None, tflite=True, limits=None, card=None
):
    """Exports a model for TF Serving and TF Lite and verifies both.

    The SavedModel is written into a staging directory with its warm-up
    requests, loaded in a fresh TensorFlow-only process and every signature
    is called twice with `model.export_examples()` (the warm-up requests'
    inputs); the `.tflite` file (written as
    `base_dir/name/name-vVERSION.tflite`, outside the version directories TF
    Serving scans) is compared with the SavedModel within
    `model.tflite_tolerance`. The model card, with the `.tflite` file's
    SHA-256, is written last. Only then is the version renamed into place: a
    version that fails verification is never served, and its files are
    removed.

    Args:
        model: A `GenerativeModel`.
        base_dir: TF Serving base directory.
        name: Model name; defaults to `model.default_export_name`.
        version: Version number; defaults to the next free one.
        tflite: Whether to write and check the `.tflite` file too.
        limits: Optional `{limit name: positive int}` replacing the model's
            default serving limits, as in `export_savedmodel`.
        card: Optional dict of model card fields merged into the card, as
            in `export_savedmodel` (the command passes what the run
            directory knows: `model_card.run_information`).

    Returns:
        A dict with `savedmodel` (path), `signatures` (names), `limits`
        (`{signature: {limit name: int}}`), `tflite` (path or `None`),
        `tflite_max_abs_diff` (`{signature: float}`), `model_card` and
        `warmup_requests` (paths inside the version).

    Example:

    ```python
    report = export_and_verify(lm, "savedmodels", limits={"max_new_tokens": 256})
    report["savedmodel"]  # "savedmodels/ar-transformer/1"
    ```
    """
    card = model_card.check_card(card)
    target, endpoints = _plan(model, base_dir, name, version, limits)
    model_dir, version_name = os.path.split(target)
    lite_path = os.path.join(
        model_dir, f"{os.path.basename(model_dir)}-v{version_name}.tflite"
    )
    examples = model.export_examples(limits)
    staging = _write_staged(model, endpoints, target, examples)
    lite_staging = staging + ".tflite"
    published = []
    try:
        try:
            outputs = verify_savedmodel(staging, examples)
            differences = {}
            if tflite:
                export_tflite(model, lite_staging)
                differences = compare_tflite(
                    lite_staging, staging, model.signature_examples(batch_size=1),
                    atol=model.tflite_tolerance,
                )
        except Exception as error:
            raise RuntimeError(
                f"The export failed verification, so version {version_name} of "
                f"{model_dir} was not published and its files were removed: "
                f"{type(error).__name__}: {error}"
            ) from error
        lite_card = None
        if tflite:
            lite_card = model_card.tflite_entry(
                lite_staging, os.path.basename(lite_path), differences,
                model.tflite_tolerance,
            )
        _write_card(model, staging, target, limits, tflite=lite_card, card=card)
        if tflite:
            export_layout.publish(lite_staging, lite_path)
            published.append(lite_path)
        export_layout.publish(staging, target)
    except BaseException:
        for path in (staging, lite_staging, *published):
            export_layout.discard(path)
        raise
    return {
        "savedmodel": target,
        "signatures": sorted(outputs),
        "limits": model.serving_limits.by_signature(limits),
        "tflite": lite_path if tflite else None,
        "tflite_max_abs_diff": differences,
        "model_card": os.path.join(target, model_card.CARD_FILE),
        "warmup_requests": os.path.join(target, serving_warmup.WARMUP_FILE),
    }
