"""Held-out figures of an export, computed from its signatures alone.

`evaluate_export(path, dataset_name)` is what `keras-genmodels evaluate
--export PATH --dataset NAME` runs. It computes, through
`keras_genmodels.evaluation.exported.ExportedModel`, the figures that
`keras-genmodels evaluate RUN` computes in process, with the same seeds, so
that with `seed=0` they equal those of the model the export came from (to
float32 rounding) whenever the export's signatures serve what the figure
needs:

- VAE: `negative_elbo`, `iwae_nll` (`encode` and `decode`);
- flow: `test_nll`, `bits_per_dim`, `median_bits_per_dim` of points
  (`log_prob`); for images `log_prob` takes bin centres, so instead of the
  dequantised figures it gives `bits_per_dim_bin_centres`;
- diffusion: the sliced Wasserstein figures of points (`sample`), not
  `test_loss` (the export serves the EMA network, the loss is the trained
  network's);
- GAN: not `d_loss`, `g_loss`, `d_accuracy` (no discriminator is exported);
- byte language models: `bits_per_char` (`score`; a text longer than its
  limit through `next_token_logits` or `step`), not `dynamic_bits_per_char`
  (it trains while scoring);

and every family gets the registered data-set figures
(`keras_genmodels.evaluation.registry`: classifier-FID, precision and recall
of digits, mode coverage of 2-D toy sets) from its `sample` signature. A
`.tflite` file gives the figures that its static-batch signatures allow:
samples of the VAE, GAN and flow (their latents drawn with the same
stateless seeds), the flow's `log_prob` and the byte LMs' bits per
character.
"""

import math
import time

import numpy as np
import tensorflow as tf

from keras_genmodels.evaluation.exported import ExportedModel, ExportError, card_field

LN2 = math.log(2.0)

#: Figures of `evaluate RUN` that an export cannot give, and why.
NOT_AVAILABLE = {
    "gan": {
        "d_loss": "the export serves the generator only, not the discriminator",
        "g_loss": "the export serves the generator only, not the discriminator",
        "d_accuracy": "the export serves the generator only, not the discriminator",
    },
    "diffusion": {
        "test_loss": "the export serves the EMA network; the test loss is the "
        "trained network's noise error",
    },
    "ar-transformer": {
        "dynamic_bits_per_char": "dynamic evaluation trains the weights while scoring",
    },
}

#: TF Lite files whose signatures cannot give the in-process figures, and why.
TFLITE_REFUSALS = {
    "diffusion": "its `denoise_step` runs one ancestral step on noise the app draws, "
    "not the sampler's seeded draws (a keras_genmodels.litert runner is planned)",
    "ar-rnn": "its `step` serves none of the forecaster's figures",
}


def evaluate_export(export, dataset_name=None, seed=0, test=None, sample_inputs=None):
    """The held-out figures of an export on a data set's test split.

    Args:
        export: A SavedModel version directory, a model directory (its
            newest version), a `.tflite` file, or an `ExportedModel`.
        dataset_name: The data set (as `keras_genmodels.data.load` takes);
            `None`: the training data set the model card names.
        seed: Base seed of every draw: 0 gives the in-process evaluation's
            draws; another value replaces that 0 (the VAE's batch `b` draws
            with `[b, 1 + seed]`).
        test: Optional unbatched test split to use instead of loading
            `dataset_name` (which then only names it).
        sample_inputs: Optional `{input: value}` of extra `sample` inputs
            (see `ExportedModel`); not with an `ExportedModel`.

    Returns:
        A JSON-ready dict: `export`, `format`, `family`, `dataset`, `seed`,
        `figures`, `sample_inputs` (the scalar extra `sample` inputs used,
        e.g. `num_steps`), `not_available` (`{figure: reason}`), `notes`
        and, when the model card holds the run's figures on the same data
        set, `card_figures` and `difference_from_card` (export minus card,
        for each number both have).

    Example:

    ```python
    report = evaluate_export("savedmodels/vae/1", "mnist")
    report["figures"]["negative_elbo"], report["figures"]["classifier_fid"]
    ```
    """
    from keras_genmodels.evaluation import registry

    if isinstance(export, ExportedModel):
        model = export
        model.notes.clear()
        model.inputs_used.clear()
    else:
        model = ExportedModel(export, sample_inputs)
    if model.format == "tflite" and model.family in TFLITE_REFUSALS:
        raise ExportError(
            f"A {model.family} .tflite file cannot give the in-process figures: "
            f"{TFLITE_REFUSALS[model.family]}. From a .tflite file, evaluate supports "
            "the VAE, GAN and flow (samples decoded from the same seeded latents, the "
            "flow's log_prob) and the byte language models (bits per character); "
            f"evaluate the SavedModel version instead. Received: {model.path}"
        )
    if dataset_name is None:
        dataset_name = card_field(model.card, "training", "dataset")
        if dataset_name is None and test is None:
            found = "its model card names no" if model.card else "it has no model card naming its"
            raise ExportError(
                f"Name the data set to evaluate {model.path} on (--dataset NAME): "
                f"{found} training data set."
            )
    if test is None:
        from keras_genmodels import data

        test = data.load(dataset_name, "test", with_labels=model.uses_labels)
        check_dataset(model, test, dataset_name)
        dataset_name = getattr(test, "source_name", dataset_name)
    else:
        check_dataset(model, test, dataset_name)
    start = time.perf_counter()
    figures, not_available = family_figures(model, test, dataset_name, seed)
    for evaluator in registry.evaluators_for(model, dataset_name):
        options = {"seed": seed} if _takes_seed(evaluator.figures) else {}
        figures.update(evaluator.figures(model, test, dataset_name, **options))
    figures["evaluation_seconds"] = round(time.perf_counter() - start, 2)
    if not figures.keys() - {"evaluation_seconds"}:
        raise ExportError(
            f"No figure of a {model.family} {model.format} export can be computed on "
            f"{dataset_name!r}: {'; '.join(f'{k}: {v}' for k, v in not_available.items())}"
        )
    report = {
        "export": model.path,
        "format": model.format,
        "family": model.family,
        "dataset": dataset_name,
        "seed": seed,
        "figures": figures,
        "sample_inputs": model.inputs_used,
        "not_available": not_available,
        "notes": list(model.notes),
    }
    card_figures = card_field(model.card, "evaluation")
    if card_figures and card_field(model.card, "training", "dataset") == dataset_name:
        report["card_figures"] = card_figures
        report["difference_from_card"] = _differences(figures, card_figures)
    return report


def _differences(figures, reference):
    """`figures - reference` for every number both hold (nested dicts too)."""
    differences = {}
    for key, value in figures.items():
        other = reference.get(key)
        if isinstance(value, dict) and isinstance(other, dict):
            nested = _differences(value, other)
            if nested:
                differences[key] = nested
        elif key != "evaluation_seconds" and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in (value, other)
        ):
            differences[key] = value - other
    return differences


def _takes_seed(figures):
    import inspect

    return "seed" in inspect.signature(figures).parameters


def check_dataset(model, test, dataset_name):
    """Refuses a test split whose examples do not fit the export's signatures."""
    spec = test.element_spec[0] if isinstance(test.element_spec, tuple) else test.element_spec
    shape = tuple(spec.shape.as_list())
    kind = getattr(test, "data_kind", None)
    if model.data_kind in ("text", "sequence"):
        expected = "byte ids (int32 scalars)" if model.data_kind == "text" else (
            "values (float32 scalars)"
        )
        ok = shape == () and (spec.dtype == tf.int32) == (model.data_kind == "text")
        ok = ok and kind in (None, model.data_kind)
    else:
        expected = f"{_PLURAL[model.data_kind]} of shape {model.data_shape}"
        ok = shape == model.data_shape and kind in (None, model.data_kind)
    if not ok:
        raise ExportError(
            f"The {model.family} export at {model.path} takes {expected}; the data "
            f"set {dataset_name!r} holds {_PLURAL.get(kind, 'examples')} of shape "
            f"{shape} ({spec.dtype.name}). Received: dataset={dataset_name!r}"
        )


_PLURAL = {"image": "images", "points": "points", "text": "text", "sequence": "a sequence"}


def family_figures(model, test, dataset_name, seed):
    """The family's own figures an export gives: `(figures, not_available)`."""
    not_available = dict(NOT_AVAILABLE.get(model.family, {}))
    figures = {}
    if model.family == "vae":
        if "encode" in model.names:
            figures = vae_bounds(model, test, seed)
        else:
            reason = "the TF Lite file has `decode` only, the bounds need `encode`"
            not_available.update(negative_elbo=reason, iwae_nll=reason)
    elif model.family == "flow":
        figures, unavailable = flow_likelihood(model, test, dataset_name, seed)
        not_available.update(unavailable)
    elif model.family == "diffusion":
        if model.data_kind == "points":
            from keras_genmodels.diffusion import evaluation

            figures = evaluation.sliced_wasserstein_figures(
                model, test, dataset_name, 2000, None, seed
            )
    elif model.family in ("ar-transformer", "ar-rnn-text"):
        figures = text_figures(model, test, dataset_name)
    elif model.family == "ar-rnn":
        not_available["mse"] = (
            "the forecaster's figures need its teacher-forced outputs and residual "
            "variance, which its export does not serve"
        )
    return figures, not_available


# ----------------------------------------------------------------------
# VAE: the ELBO and IWAE bounds through `encode` and `decode`.
# ----------------------------------------------------------------------
def vae_bounds(model, test, seed=0, num_importance_samples=100, batch_size=100):
    """`VAE.evaluation_metrics` from the `encode` and `decode` signatures.

    `log p(x) >= log (1/k) sum_j p(x|z_j) p(z_j) / q(z_j|x)`, `z_j ~ q(z|x)`
    (Burda et al., 2016), with the in-process draws: batch `b` of 100 test
    images draws its `k = 100` latents with the seed `[b, 1 + seed]`.

    Returns:
        `{"negative_elbo", "iwae_nll", "iwae_samples", "num_images"}`.
    """
    from keras_genmodels import progress
    from keras_genmodels.vae.likelihoods import bernoulli_log_likelihood, gaussian_log_density

    k = num_importance_samples
    elbos, iwaes = [], []
    batches = test.batch(batch_size)
    total = progress.dataset_size(batches)
    description = f"IWAE bound (k={k}) of the export on the test images"
    for b, batch in enumerate(progress.track(batches, total, description, "batch")):
        images, labels = (batch if isinstance(batch, tuple) else (batch, None))[:2]
        images = np.asarray(images, np.float32)
        coded = {"images": images}
        if labels is not None and model.uses_labels:
            coded["labels"] = np.asarray(labels, np.int32)
        posterior = model.call_rows("encode", coded)
        z_mean, z_log_var = posterior["z_mean"], posterior["z_log_var"]
        eps = tf.random.stateless_normal([k, *z_mean.shape], seed=[b, 1 + seed])
        z = z_mean + tf.exp(0.5 * z_log_var) * eps  # (k, N, d)
        decoded = {"latents": tf.reshape(z, [-1, z_mean.shape[-1]]).numpy()}
        if "labels" in coded:  # Row j * N + n is image n's j-th draw.
            decoded["labels"] = np.tile(coded["labels"], k)
        (probabilities,) = model.call_rows("decode", decoded).values()
        probabilities = probabilities.reshape(k, *images.shape)
        log_w = tf.cast(
            bernoulli_log_likelihood(images[None], probabilities)
            + gaussian_log_density(z, 0.0, tf.zeros_like(z))
            - gaussian_log_density(z, z_mean, z_log_var),
            "float64",
        )
        elbos.append(tf.reduce_mean(log_w, 0).numpy())
        iwaes.append((tf.reduce_logsumexp(log_w, 0) - math.log(k)).numpy())
    elbo, iwae = np.concatenate(elbos), np.concatenate(iwaes)
    return {
        "negative_elbo": float(-elbo.mean()),
        "iwae_nll": float(-iwae.mean()),
        "iwae_samples": k,
        "num_images": int(len(elbo)),
    }


# ----------------------------------------------------------------------
# Flow: log-likelihoods through `log_prob`.
# ----------------------------------------------------------------------
def flow_likelihood(model, test, dataset_name, seed=0, batch_size=500):
    """`FlowModel.evaluation_metrics` from the `log_prob` signature.

    Points give the in-process figures. For images the exported `log_prob`
    evaluates each pixel at its bin centre, while the in-process figure
    dequantises with seeded uniform noise: the bin-centre figure is
    reported as `bits_per_dim_bin_centres` and the others as not available.

    Returns:
        `(figures, not_available)`.
    """
    from keras_genmodels import progress
    from keras_genmodels.evaluation import registry

    del seed  # Only the images' dequantisation noise is seeded.
    points = np.concatenate([np.asarray(b) for b in model.prepare_dataset(test, batch_size)])
    log_probs = []
    starts = range(0, len(points), batch_size)
    title = f"Flow log-likelihood of the export on {len(points):,} test examples"
    for start in progress.track(starts, len(starts), title, "batch"):
        (values,) = model.call_rows("log_prob", {"x": points[start : start + batch_size]}).values()
        log_probs.append(values.astype("float64"))
    log_probs = np.concatenate(log_probs)
    nll = float(-log_probs.mean())
    to_bits = 1.0 / (int(np.prod(model.data_shape)) * LN2)
    if model.data_kind == "image":
        reason = (
            "the exported log_prob evaluates images at bin centres; the in-process "
            "figure dequantises them with seeded noise"
        )
        figures = {"bits_per_dim_bin_centres": nll * to_bits, "num_examples": len(log_probs)}
        unavailable = dict.fromkeys(("test_nll", "bits_per_dim", "median_bits_per_dim"), reason)
        return figures, unavailable
    figures = {
        "test_nll": nll,
        "bits_per_dim": nll * to_bits,
        "median_bits_per_dim": float(-np.median(log_probs)) * to_bits,
        "num_examples": int(len(log_probs)),
    }
    toy = registry.toy_set(dataset_name) if model.data_shape == (2,) else None
    if toy is not None:
        entropy = float(-toy.log_prob(points).mean())
        figures["true_entropy"] = entropy
        figures["nll_minus_entropy"] = nll - entropy
    return figures, {}


# ----------------------------------------------------------------------
# Byte language models: bits per character.
# ----------------------------------------------------------------------
def text_figures(model, test, dataset_name):
    """Test bits per character of a byte LM export (and the xz baseline)."""
    from keras_genmodels.autoregressive import windows

    tokens = windows.stream_array(test, "int32")
    if len(tokens) == 0:
        raise ExportError("The test text is empty: no bytes to score.")
    figures = {"bits_per_char": bits_per_char(model, tokens), "num_chars": int(len(tokens))}
    if model.family == "ar-transformer":
        figures["context_length"] = context_length(model)
        if dataset_name is not None:
            from keras_genmodels.evaluation import xz_baseline

            figures["xz_bits_per_char"] = xz_baseline.dataset_rate(dataset_name)
    return figures


def context_length(model):
    """The transformer's window, the width of `next_token_logits`' tokens."""
    return int(model.signatures.inputs("next_token_logits")["tokens"][0][1])


def bits_per_char(model, tokens):
    """Bits per byte of `tokens` as the in-process `bits_per_char` scores them.

    One `score` call when the text fits the export's `text` limit; else,
    every byte is scored from the same context by `next_token_logits` (one
    row per byte, the transformer's windows of
    `keras_genmodels.autoregressive.frames`) or `step` (the RNN's state
    carried from the start token), which takes longer.
    """
    limit = model.limit("score", "text") if "score" in model.names else 0
    if limit is None or len(tokens) <= limit:
        scored = model.signatures("score", text=tokens.astype(np.uint8).tobytes())
        return float(scored["bits_per_char"])
    if "score" in model.names:
        model.note(
            f"The test text has {len(tokens):,} bytes, over the `score` limit of "
            f"{limit:,} (export with --limit text={len(tokens)} to score it in one "
            "call): scored byte by byte instead"
        )
    if model.family == "ar-transformer":
        return _window_bits(model, tokens)
    return _step_bits(model, tokens)


def _cross_entropy(logits, targets):
    logits = logits.astype("float64")
    top = logits.max(-1, keepdims=True)
    log_norm = np.log(np.exp(logits - top).sum(-1)) + top[:, 0]
    return log_norm - logits[np.arange(len(targets)), targets]


def _window_bits(model, tokens):
    from keras_genmodels import progress
    from keras_genmodels.autoregressive import frames

    size = context_length(model)
    stride = max(size // 2, 1)
    windows, scored, _ = frames.numpy_frames(tokens, size, stride)
    rows, columns = np.nonzero(scored)
    step = model.limit("next_token_logits", "rows") or 64
    bar = progress.Progress(len(rows), f"Bits per character of {len(tokens):,} bytes", "byte")
    total = 0.0
    for start in range(0, len(rows), step):
        r, c = rows[start : start + step], columns[start : start + step]
        # Causal: the logits at column c of a window see its first c + 1 tokens.
        outputs = model.call_rows(
            "next_token_logits", {"tokens": windows[r], "length": (c + 1).astype(np.int32)}
        )
        total += float(_cross_entropy(outputs["logits"], windows[r, c + 1]).sum())
        bar.advance(len(r))
    return total / len(rows) / LN2


def _step_bits(model, tokens):
    from keras_genmodels import progress
    from keras_genmodels.autoregressive import tokenizer

    inputs = model.signatures.inputs("step")
    state = np.zeros([1, inputs["state"][0][1]], np.float32)
    previous = np.concatenate([[tokenizer.START_TOKEN], tokens[:-1]]).astype(np.int32)
    bar = progress.Progress(len(tokens), f"Bits per character of {len(tokens):,} bytes", "byte")
    total = 0.0
    for x, target in zip(previous, tokens):
        outputs = model.signatures("step", x=np.array([x], np.int32), state=state)
        state = outputs["state"]
        total += float(_cross_entropy(outputs["y"], np.array([target]))[0])
        bar.advance(1)
    return total / len(tokens) / LN2
