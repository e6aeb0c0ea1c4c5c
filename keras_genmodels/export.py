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

`export_tflite(..., quantization="float16" | "dynamic_int8")` writes a
post-training quantised file (`QUANTIZATIONS`); `export_and_verify(...,
quantization=...)` writes it beside the float file as
`NAME-vVERSION.QUANTIZATION.tflite` and checks every output of every
signature against the float file within `QUANTIZED_RTOL` of the output's
scale (`compare_quantized`).
"""

import os
import tempfile

import keras
import numpy as np
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
    "QUANTIZATIONS",
    "QUANTIZED_RTOL",
    "compare_quantized",
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


#: The `quantization` values of `export_tflite`: `None` (float32 weights),
#: `"float16"` (weights stored as float16, computed in float32) and
#: `"dynamic_int8"` (dynamic-range quantisation: int8 weights, activations
#: quantised on the fly where a built-in kernel supports it).
QUANTIZATIONS = (None, "float16", "dynamic_int8")
#: How far a quantised file's outputs may lie from the float file's, as a
#: fraction of the output's scale: `max|q - f| <= rtol * max(1, max|f|)`
#: for each output of each signature (`compare_quantized`).
QUANTIZED_RTOL = {"float16": 1e-2, "dynamic_int8": 1e-1}


def check_quantization(quantization):
    """Validates a `quantization` argument; returns it."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            "`quantization` must be one of None, 'float16' or 'dynamic_int8'. "
            f"Received: quantization={quantization!r}"
        )
    return quantization


def quantized_path(path, quantization):
    """`NAME-v1.tflite` -> `NAME-v1.float16.tflite`: a quantised file's name."""
    root, ext = os.path.splitext(path)
    return f"{root}.{check_quantization(quantization)}{ext or '.tflite'}"


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


def export_tflite(model, path, batch_size=1, quantization=None):
    """Converts the model's `tflite_endpoints(batch_size)` to one `.tflite`.

    Only TF Lite built-in ops are allowed, so the file runs in the plain
    `ai_edge_litert` interpreter and on phones without the Flex delegate.
    Quantisation is post-training and needs no data: `"float16"` stores the
    weights as float16 (about half the file; inputs, outputs and arithmetic
    stay float32), `"dynamic_int8"` stores them as int8 with a scale per
    channel (about a quarter) and kernels that support it quantise their
    activations on the fly. Inputs and outputs keep their dtypes.

    Args:
        model: A `GenerativeModel`.
        path: Output file path (`.tflite`).
        batch_size: The static batch dimension of every signature.
        quantization: `None`, `"float16"` or `"dynamic_int8"`
            (`QUANTIZATIONS`).

    Returns:
        `path`.

    Example:

    ```python
    export_tflite(vae, "vae.float16.tflite", quantization="float16")
    ```
    """
    check_quantization(quantization)
    endpoints = _checked_endpoints(
        model, model.tflite_endpoints(batch_size=batch_size), "tflite_endpoints"
    )
    with tempfile.TemporaryDirectory() as tmp:
        _write_archive(model, endpoints, tmp)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            tmp, signature_keys=list(endpoints)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        flatbuffer = converter.convert()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(flatbuffer)
    return path


def compare_quantized(quantized_path, float_path, requests, rtol):
    """Checks a quantised `.tflite` file against the float file it came from.

    Both files run every signature of the float file on the same inputs in
    `ai_edge_litert`. The float file itself is checked against the
    SavedModel (`compare_tflite`); this check bounds what quantisation adds,
    relative to each output's scale: `max|q - f| <= rtol * max(1, max|f|)`.

    Args:
        quantized_path: The quantised `.tflite` file.
        float_path: The float `.tflite` file of the same model.
        requests: `{signature: {argument: array}}`, e.g.
            `model.signature_examples(batch_size=1)`.
        rtol: Largest difference allowed, as a fraction of the output's
            scale (`QUANTIZED_RTOL[quantization]`).

    Returns:
        `{signature: largest difference relative to the output's scale}`.
    """
    quantized = tflite_signatures(quantized_path)
    differences = {}
    for signature in tflite_signatures(float_path):
        if signature not in quantized:
            raise AssertionError(
                f"The quantised file {quantized_path} has no signature {signature!r}."
            )
        reference = run_tflite(float_path, signature, requests[signature])
        outputs = run_tflite(quantized_path, signature, requests[signature])
        worst = 0.0
        for name, value in reference.items():
            if value.size:
                scale = max(1.0, float(np.max(np.abs(value))))
                diff = np.max(np.abs(outputs[name].astype("float64") - value)) / scale
                worst = max(worst, float(diff))
        if not worst <= rtol:  # NaN fails too.
            raise AssertionError(
                f"Quantised TF Lite signature {signature!r} differs from the float "
                f"file by {worst:.3g} of its output's scale > rtol={rtol:g}."
            )
        differences[signature] = worst
    return differences


def export_and_verify(
    model, base_dir, name=None, version=None, tflite=True, limits=None, card=None,
    quantization=None,
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
    removed. With `quantization`, a quantised file is written beside the
    float one as `base_dir/name/name-vVERSION.QUANTIZATION.tflite` and
    checked against the float file within `QUANTIZED_RTOL[quantization]` of
    each output's scale (`compare_quantized`); the card's `tflite` entry
    lists it under `quantized`.

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
        quantization: `None`, `"float16"` or `"dynamic_int8"`: also write
            and check a quantised `.tflite` file (needs `tflite=True`).

    Returns:
        A dict with `savedmodel` (path), `signatures` (names), `limits`
        (`{signature: {limit name: int}}`), `tflite` (path or `None`),
        `tflite_max_abs_diff` (`{signature: float}`), `model_card` and
        `warmup_requests` (paths inside the version); with `quantization`
        also `quantized_tflite` (path) and `quantized_rel_diff`
        (`{signature: float}`, relative to each output's scale).

    Example:

    ```python
    report = export_and_verify(lm, "savedmodels", limits={"max_new_tokens": 256})
    report["savedmodel"]  # "savedmodels/ar-transformer/1"
    ```
    """
    card = model_card.check_card(card)
    if check_quantization(quantization) is not None and not tflite:
        raise ValueError(
            "A quantised file is a TF Lite file: `quantization` needs "
            f"`tflite=True`. Received: tflite={tflite!r}, quantization={quantization!r}"
        )
    target, endpoints = _plan(model, base_dir, name, version, limits)
    model_dir, version_name = os.path.split(target)
    lite_path = os.path.join(
        model_dir, f"{os.path.basename(model_dir)}-v{version_name}.tflite"
    )
    examples = model.export_examples(limits)
    staging = _write_staged(model, endpoints, target, examples)
    lite_staging = staging + ".tflite"
    quant_path = quant_staging = None
    if quantization is not None:
        quant_path = quantized_path(lite_path, quantization)
        quant_staging = quantized_path(lite_staging, quantization)
    published = []
    try:
        try:
            outputs = verify_savedmodel(staging, examples)
            differences, quant_differences = {}, {}
            if tflite:
                export_tflite(model, lite_staging)
                differences = compare_tflite(
                    lite_staging, staging, model.signature_examples(batch_size=1),
                    atol=model.tflite_tolerance,
                )
            if quantization is not None:
                export_tflite(model, quant_staging, quantization=quantization)
                quant_differences = compare_quantized(
                    quant_staging, lite_staging, model.signature_examples(batch_size=1),
                    QUANTIZED_RTOL[quantization],
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
        if quantization is not None:
            lite_card["quantized"] = {quantization: model_card.quantized_entry(
                quant_staging, os.path.basename(quant_path), quantization,
                quant_differences, QUANTIZED_RTOL[quantization],
            )}
        _write_card(model, staging, target, limits, tflite=lite_card, card=card)
        for source, path in ((lite_staging, lite_path), (quant_staging, quant_path)):
            if source is not None and tflite:
                export_layout.publish(source, path)
                published.append(path)
        export_layout.publish(staging, target)
    except BaseException:
        for path in (staging, lite_staging, quant_staging, *published):
            if path is not None:
                export_layout.discard(path)
        raise
    report = {
        "savedmodel": target,
        "signatures": sorted(outputs),
        "limits": model.serving_limits.by_signature(limits),
        "tflite": lite_path if tflite else None,
        "tflite_max_abs_diff": differences,
        "model_card": os.path.join(target, model_card.CARD_FILE),
        "warmup_requests": os.path.join(target, serving_warmup.WARMUP_FILE),
    }
    if quantization is not None:
        report["quantized_tflite"] = quant_path
        report["quantized_rel_diff"] = quant_differences
    return report
