"""Speed and quality benchmarks: `python -m benchmarks.NAME` prints a table and
writes JSON under `benchmarks/results/`."""


def command_line(module, args):
    """The command that reproduces a benchmark run, for its JSON.

    Args:
        module: The benchmark's module name, e.g. `"flow_toy2d"`.
        args: The parsed `argparse.Namespace`; `None` values are left out
            and list values are joined with spaces.

    Returns:
        A string such as `"python -m benchmarks.flow_toy2d --seed 0"`.
    """
    options = " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in vars(args).items()
        if v is not None
    )
    return f"python -m benchmarks.{module} {options}"
