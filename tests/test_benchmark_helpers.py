import argparse
import json

from benchmarks import command_line, merged_rows


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
