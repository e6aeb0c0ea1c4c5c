"""Speed and quality benchmarks: `python -m benchmarks.NAME` prints a table and
writes JSON under `benchmarks/results/`."""

import json
import os
import time


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


def merged_rows(path, rows, key, field="rows"):
    """This run's rows plus the rows of an earlier result they do not replace.

    A run over part of a benchmark (some families, some presets) updates its
    rows in the result file and keeps the others.

    Args:
        path: The JSON an earlier run wrote (need not exist).
        rows: This run's rows, dicts.
        key: Names of the fields that identify a row, e.g. `("preset",)`.
        field: Name of the list of rows in the JSON.

    Returns:
        The earlier rows whose key no new row has, then `rows`.
    """
    if not os.path.isfile(path):
        return list(rows)
    with open(path) as f:
        earlier = json.load(f).get(field, [])
    replaced = {tuple(row[k] for k in key) for row in rows}
    return [r for r in earlier if tuple(r.get(k) for k in key) not in replaced] + list(rows)


def best_times(loops, repeats):
    """Best-of-`repeats` seconds of each loop, the loops interleaved.

    Every loop runs once untimed first (tracing, XLA compilation, the first
    predict call's setup). The repeats then take turns, so a change of load
    on a shared machine hits every loop alike; the minimum is the estimate
    least inflated by other jobs.

    Args:
        loops: Dict name -> `(fn, warm_up or None)`.
        repeats: Timed calls per loop.

    Returns:
        `(seconds, outputs)`: dicts name -> best seconds, name -> last output.
    """
    for fn, warm_up in loops.values():
        (warm_up or fn)()
    seconds = {name: float("inf") for name in loops}
    outputs = {}
    for _ in range(repeats):
        for name, (fn, _) in loops.items():
            start = time.perf_counter()
            outputs[name] = fn()
            seconds[name] = min(seconds[name], time.perf_counter() - start)
    return seconds, outputs
