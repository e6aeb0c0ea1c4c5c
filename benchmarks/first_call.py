"""First-call timing: a benchmark's case run in fresh Python processes.

A user who generates once from a script pays the first call: tracing the
`tf.function`, TensorFlow's graph optimisation and any XLA compilation.
Inside one process only the first call pays it, so each repeat here starts a
new process (`python -m benchmarks.MODULE --child ...`) that times its first
calls and prints them as one JSON line. The modes take turns for every
repeat, so a change of load on a shared machine hits them alike.
"""

import json
import os
import subprocess
import sys
import time

MARK = "FIRST_CALL_JSON "


def timed(fn):
    """`(wall seconds, process CPU seconds, result)` of one call of `fn`."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def report(values):
    """Prints the child's figures for `run_child` (the last line it reads)."""
    print(MARK + json.dumps(values), flush=True)


def run_child(module, args, env=None):
    """Runs `python -m benchmarks.MODULE *args` in a fresh process.

    Args:
        module: Benchmark module name, e.g. `"ar_generation_speed"`.
        args: Its command-line arguments (strings).
        env: Extra environment variables.

    Returns:
        The dict the child passed to `report`.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args],
        cwd=root,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith(MARK)]
    if result.returncode or not lines:
        raise RuntimeError(
            f"benchmarks.{module} {' '.join(args)} failed "
            f"(exit {result.returncode}):\n{result.stderr[-3000:]}"
        )
    return json.loads(lines[-1][len(MARK):])


def first_call_table(module, modes, repeats):
    """Best (least loaded) figures of each mode over `repeats` fresh processes.

    Args:
        module: Benchmark module name.
        modes: Dict name -> `(args, env)` for `run_child`.
        repeats: Fresh processes per mode, the modes interleaved.

    Returns:
        Dict name -> `{figure: best value}` over the repeats (every figure
        is a time, so the minimum), plus `"runs"`: every repeat's dict.
    """
    runs = {name: [] for name in modes}
    for _ in range(repeats):
        for name, (args, env) in modes.items():
            runs[name].append(run_child(module, args, env))
    table = {}
    for name, values in runs.items():
        numbers = {
            k for k, v in values[0].items() if isinstance(v, float) and not k.startswith("load")
        }
        table[name] = {k: round(min(v[k] for v in values), 3) for k in sorted(numbers)}
        table[name]["runs"] = values
    return table
