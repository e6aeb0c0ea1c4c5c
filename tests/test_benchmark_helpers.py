import argparse
import json

import benchmarks
from benchmarks import best_times, command_line, merged_rows


def test_merged_rows_replaces_matching_rows_and_keeps_the_others(tmp_path):
    path = tmp_path / "result.json"
    new = [{"family": "flow", "preset": "mnist", "speed": 2.0}]
    assert merged_rows(str(path), new, ("family", "preset")) == new  # No earlier file.
    earlier = [
        {"family": "flow", "preset": "mnist", "speed": 1.0},
        {"family": "flow", "preset": "mlp2d", "speed": 0.8},
        {"family": "vae", "preset": "conv", "speed": 0.5},
    ]
    path.write_text(json.dumps({"results": earlier}))
    merged = merged_rows(str(path), new, ("family", "preset"), field="results")
    assert merged == [earlier[1], earlier[2], new[0]]


def test_command_line_reproduces_the_arguments():
    args = argparse.Namespace(presets=["unet-mnist", "mlp2d"], repeats=5, out=None)
    assert command_line("diffusion_sampling_speed", args) == (
        "python -m benchmarks.diffusion_sampling_speed --presets unet-mnist mlp2d --repeats 5"
    )


def test_best_times_warms_up_interleaves_and_keeps_the_minimum(monkeypatch):
    # Timed calls in order a, b, a, b lasting 5, 2, 3 and 4 seconds.
    clock = iter([0, 5, 10, 12, 20, 23, 30, 34])
    monkeypatch.setattr(benchmarks.time, "perf_counter", lambda: next(clock))
    calls = []

    def loop(name, results):
        def run():
            calls.append(name)
            return results.pop(0)

        return run

    seconds, outputs = best_times(
        {
            "a": (loop("a", [0, 1, 2]), None),
            "b": (loop("b", [10, 11]), loop("b-warm-up", [None])),
        },
        repeats=2,
    )
    assert calls == ["a", "b-warm-up", "a", "b", "a", "b"]
    assert outputs == {"a": 2, "b": 11}
    assert seconds == {"a": 3, "b": 2}
