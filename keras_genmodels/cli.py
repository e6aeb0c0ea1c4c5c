"""The `keras-genmodels` command: list, train, sample, evaluate, export, inspect.

```
keras-genmodels list
keras-genmodels train vae --preset conv --dataset mnist --out runs/vae
keras-genmodels sample runs/vae --num 64 --seed 0 --out grid.png
keras-genmodels evaluate runs/vae
keras-genmodels export runs/vae --base-dir savedmodels --tflite --quantize float16
keras-genmodels inspect savedmodels/vae
```

`train` writes into its run directory `run.json` (what was trained),
`model.keras`, `history.csv`, `samples.png` (or `samples.txt` for text),
`metrics.json` and TensorBoard logs under `logs/`. An interrupted `train`
resumes from the last finished epoch when run again with the same `--out`.
Errors are one line on stderr and a non-zero exit status.
"""

import argparse
import json
import math
import os
import sys

from keras_genmodels.run_dir import CommandError, RunDirectory

#: Exit status of an interrupted command (128 + SIGINT), as shells use.
INTERRUPTED_STATUS = 130


def _parse_override(text):
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, received {text!r}")
    try:
        value = json.loads(value)
    except json.JSONDecodeError:
        pass  # A bare string such as `schedule=cosine`.
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(
            f"{key} must be a finite number, received {text.partition('=')[2]!r}"
        )
    if isinstance(value, list):
        value = tuple(value)
    return key, value


def _parse_labels(text):
    """`--labels 0,1,2` -> `[0, 1, 2]`."""
    try:
        labels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        labels = []
    if not labels:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integer labels such as 0,1,2. Received: {text!r}"
        )
    return labels


def _parse_limit(text):
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier() or not value.strip().isdigit():
        raise argparse.ArgumentTypeError(
            f"expected INPUT=N with a positive integer N, received {text!r}"
        )
    return key, int(value)


class _OneLineParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose usage errors are one line on stderr."""

    def error(self, message):
        self.exit(2, f"keras-genmodels: error: {message} (see --help)\n")


def parser():
    parser = _OneLineParser(
        prog="keras-genmodels",
        description="Train, sample, evaluate and export generative models.",
    )
    parser.add_argument(
        "--debug", action="store_true",
        help="show tracebacks and TensorFlow's own start-up and log lines",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("list", help="families, presets and data sets")

    train = commands.add_parser("train", help="train a model into a run directory")
    train.add_argument("family", help="vae, gan, ar, flow or diffusion")
    train.add_argument("--preset", help="preset name (default: the family's default)")
    train.add_argument("--dataset", help="data set (default: the preset's)")
    length = train.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, help="epochs (default: the preset's length)")
    length.add_argument(
        "--steps", type=int,
        help="optimizer steps, rounded up to whole epochs (default: the preset's)",
    )
    train.add_argument("--batch-size", type=int, help="batch size (default: the preset's)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.add_argument("--out", default=None, help="run directory (default runs/FAMILY)")
    train.add_argument(
        "--strategy", default="default", choices=["default", "mirrored", "multi-worker"],
        help="tf.distribute strategy: one device, every local device mirrored, or "
        "every worker of the TF_CONFIG cluster (the chief writes --out, worker N "
        "writes --out/worker-N)",
    )
    train.add_argument(
        "--mixed-precision", default="off", choices=["off", "mixed_float16", "mixed_bfloat16"],
        help="Keras dtype policy for the layers",
    )
    train.add_argument(
        "--jit-compile", default="auto", choices=["auto", "on", "off"],
        help="XLA-compile the train step (auto: the model's default)",
    )
    train.add_argument(
        "--steps-per-execution", type=int, default=1,
        help="batches per compiled call (default 1)",
    )
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        type=_parse_override,
        metavar="KEY=VALUE",
        help="override a preset argument (JSON value), e.g. --set latent_dim=8",
    )
    train.add_argument(
        "--overwrite", action="store_true",
        help="train into a directory that is not a run of this package, or "
        "replace a finished run",
    )

    sample = commands.add_parser("sample", help="draw samples from a trained run")
    sample.add_argument("run")
    sample.add_argument(
        "--num", type=int, default=None,
        help="samples to draw (default 64), or per label/prompt row (default 8)",
    )
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument(
        "--labels", type=_parse_labels, default=None,
        help="class-conditional models: comma-separated labels, e.g. 0,1,2; the "
        "grid gets one row of --num samples per label",
    )
    sample.add_argument(
        "--prompt", action="append", default=None,
        help="text-conditional models: a prompt (repeat for several); one grid row "
        "of --num samples per prompt",
    )
    sample.add_argument(
        "--guidance", type=float, default=None,
        help="classifier-free guidance scale w (0: unconditional, 1: conditional; "
        "default: the model's)",
    )
    sample.add_argument(
        "--method", default=None,
        help="diffusion runs: the sampler, ddpm, ddim or dpmpp_2m (default: the model's)",
    )
    sample.add_argument(
        "--num-steps", type=int, default=None,
        help="diffusion runs: network calls per sample (default: the model's)",
    )
    sample.add_argument(
        "--out", help="output file (default RUN/samples-SEED.png, or .txt for text)"
    )
    sample.add_argument("--overwrite", action="store_true", help="replace --out if it exists")

    evaluate = commands.add_parser(
        "evaluate", help="held-out figures of a run, or of an export (--export)",
        description="Held-out figures of a run (written to RUN/metrics.json), or of "
        "an exported model computed from its signatures alone: --export PATH "
        "--dataset NAME prints a JSON report (figures, the ones an export cannot "
        "give and why, and the model card's run figures beside them when it has "
        "them); --out FILE also writes it. With --seed 0 the draws are those of "
        "`evaluate RUN`, so the figures equal the run's where the export serves "
        "what they need.",
    )
    evaluate.add_argument("run", nargs="?", help="run directory (not with --export)")
    evaluate.add_argument(
        "--export", metavar="PATH",
        help="a SavedModel version directory, a model directory (its newest "
        "version) or a .tflite file",
    )
    evaluate.add_argument(
        "--dataset", metavar="NAME",
        help="with --export: the data set whose test split is used (default: the "
        "one the model card names)",
    )
    evaluate.add_argument(
        "--seed", type=int, default=None,
        help="with --export: base seed of every draw (default 0, the run's draws)",
    )
    evaluate.add_argument(
        "--input", dest="inputs", action="append", default=[], type=_parse_override,
        metavar="NAME=VALUE",
        help="with --export: an extra input of the sample signature, e.g. "
        "--input num_steps=50 (default: the model card's, else the export's limit)",
    )
    evaluate.add_argument(
        "--out", metavar="FILE",
        help="with --export: also write the JSON report to FILE (replaced if it exists)",
    )

    export = commands.add_parser("export", help="SavedModel for TF Serving (+ TF Lite)")
    export.add_argument("run")
    export.add_argument("--base-dir", default="savedmodels")
    export.add_argument("--name", help="model name (default: the model's own, e.g. ar-rnn)")
    export.add_argument("--version", type=int, help="version (default: next free)")
    export.add_argument("--tflite", action="store_true", help="also write a .tflite file")
    export.add_argument(
        "--quantize", choices=["float16", "dynamic_int8"], default=None,
        help="with --tflite: also write a post-training quantised file beside the "
        "float one (NAME-vN.float16.tflite or NAME-vN.dynamic_int8.tflite), checked "
        "against it",
    )
    export.add_argument(
        "--max-samples", type=int,
        help="largest num_samples a served request may ask for (default: the model's)",
    )
    export.add_argument(
        "--limit", dest="limits", action="append", default=[], type=_parse_limit,
        metavar="INPUT=N",
        help="limit of another client-controlled size, e.g. --limit max_new_tokens=512",
    )

    inspect = commands.add_parser(
        "inspect",
        help="model card, signatures and REST requests of an export (loads no model)",
    )
    inspect.add_argument(
        "path", help="a SavedModel version directory, a model directory (its newest "
        "version) or a .tflite file",
    )
    inspect.add_argument("--json", action="store_true", help="print one JSON document")
    return parser


# ----------------------------------------------------------------------
# Commands.
# ----------------------------------------------------------------------
def cmd_list(args):
    from keras_genmodels import data, presets

    for family in presets.FAMILY_MODULES:
        default = presets.default_preset(family)
        print(f"{family}:")
        for name, description in presets.list_presets(family).items():
            _, spec = presets.get_preset(family, name)
            marker = " (default)" if name == default else ""
            print(f"  {name}{marker}: {description} [data: {spec.dataset}]")
    print("datasets:")
    for name in data.list_datasets():
        print(f"  {name}")


def cmd_train(args, callbacks=()):
    from keras_genmodels import training

    metrics = training.train_run(args, callbacks)
    print(json.dumps(metrics.get("test", {}), indent=2))
    return metrics


def cmd_sample(args):
    from keras_genmodels import run_outputs

    run_dir = RunDirectory(args.run)
    run, model = run_dir.load_model()
    rows = args.labels or args.prompt
    num = args.num if args.num is not None else (8 if rows else 64)
    if num < 1:
        raise CommandError(f"--num must be positive. Received: {num}")
    options, columns = {}, None
    if rows:
        # One grid row of `num` samples per label or prompt.
        options["labels" if args.labels else "prompt"] = [r for r in rows for _ in range(num)]
        columns, num = num, num * len(rows)
    if args.guidance is not None:
        options["guidance_scale"] = args.guidance
    for flag, name in (("--method", "method"), ("--num-steps", "num_steps")):
        value = getattr(args, name)
        if value is None:
            continue
        if run["family"] != "diffusion":
            raise CommandError(
                f"{flag} applies to diffusion runs; {args.run} holds a {run['family']} model."
            )
        options[name] = value
    suffix = ".txt" if model.data_kind == "text" else ".png"
    out = run_outputs.samples_path(
        model, args.out or run_dir.file(f"samples-{args.seed}{suffix}")
    )
    if os.path.exists(out) and not args.overwrite:
        raise CommandError(f"{out} exists; pass --overwrite to replace it, or another --out.")
    samples = run_outputs.sample_in_chunks(model, num, args.seed, **options)
    path = run_outputs.write_samples(model, samples, out, columns=columns)
    print(f"Wrote {num} samples to {path}")


def cmd_evaluate(args):
    if args.export is not None:
        return cmd_evaluate_export(args)
    from keras_genmodels import run_outputs, training

    if args.run is None:
        raise CommandError("evaluate needs a run directory, or --export PATH.")
    export_only = [
        flag for flag, value in (
            ("--dataset", args.dataset), ("--seed", args.seed), ("--out", args.out),
            ("--input", args.inputs or None),
        ) if value is not None
    ]
    if export_only:
        raise CommandError(
            f"Only with --export: {', '.join(export_only)} (a run is evaluated on its "
            f"own test split). Received: evaluate {args.run} with {', '.join(export_only)}"
        )
    run_dir = RunDirectory(args.run)
    run, model = run_dir.load_model()
    figures = run_outputs.evaluate(model, run)
    metrics = run_dir.read_metrics()
    metrics.pop("test_error", None)
    metrics["test"] = figures
    figures = training.write_metrics(run_dir, metrics)["test"]
    print(json.dumps(figures, indent=2))
    return figures


def cmd_evaluate_export(args):
    from keras_genmodels import files
    from keras_genmodels.evaluation.exported_figures import evaluate_export
    from keras_genmodels.run_outputs import finite_figures

    if args.run is not None:
        raise CommandError(
            f"Pass a run directory or --export, not both. Received: evaluate {args.run} "
            f"--export {args.export}"
        )
    seed = 0 if args.seed is None else args.seed
    if seed < 0:
        raise CommandError(f"--seed must be non-negative. Received: --seed {seed}")
    report = evaluate_export(
        args.export, args.dataset, seed=seed, sample_inputs=dict(args.inputs)
    )
    report, _ = finite_figures(report)
    if args.out:
        files.write_json(args.out, report)
    print(json.dumps(report, indent=2))
    return report


def cmd_export(args):
    from keras_genmodels import export
    from keras_genmodels.model_card import run_information

    if args.quantize is not None and not args.tflite:
        raise CommandError(
            f"--quantize {args.quantize} writes a TF Lite file: pass --tflite too."
        )
    run, model = RunDirectory(args.run).load_model()
    limits = dict(args.limits)
    if args.max_samples is not None:
        limits["num_samples"] = args.max_samples
    report = export.export_and_verify(
        model,
        args.base_dir,
        name=args.name,
        version=args.version,
        tflite=args.tflite,
        limits=limits or None,
        card=run_information(args.run),
        quantization=args.quantize,
    )
    print(json.dumps(report, indent=2))
    return report


def cmd_inspect(args):
    from keras_genmodels import inspect_export

    info = inspect_export.describe(args.path)
    print(json.dumps(info, indent=2) if args.json else inspect_export.format_text(info))
    return info


COMMANDS = {
    "list": cmd_list,
    "train": cmd_train,
    "sample": cmd_sample,
    "evaluate": cmd_evaluate,
    "export": cmd_export,
    "inspect": cmd_inspect,
}


def main(argv=None):
    """Runs the command line; returns the exit status."""
    args = parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("keras-genmodels: interrupted.", file=sys.stderr)
        return INTERRUPTED_STATUS
    except Exception as error:
        if args.debug:
            raise
        from keras_genmodels.training import TrainingInterrupted

        message = " ".join(str(error).split()) or type(error).__name__
        if isinstance(error, TrainingInterrupted):
            print(f"keras-genmodels: {message}", file=sys.stderr)
            return INTERRUPTED_STATUS
        if not isinstance(error, (CommandError, ValueError, OSError, FloatingPointError)):
            if len(message) > 300:
                message = message[:300] + "..."
            message = f"{type(error).__name__}: {message} (--debug shows the traceback)"
        print(f"keras-genmodels: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
