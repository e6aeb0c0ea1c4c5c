"""Two workers on 127.0.0.1 train under `MultiWorkerMirroredStrategy`."""

import json
import os
import socket
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT_S = 300


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_two_workers_end_with_the_same_weights(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    processes, outputs = [], []
    try:
        for index in range(2):
            env = dict(os.environ)
            env["TF_CONFIG"] = json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            )
            env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
            outputs.append(tmp_path / f"worker-{index}.npz")
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "tests.multi_worker_job", str(outputs[-1])],
                    cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        logs = [p.communicate(timeout=TIMEOUT_S)[0] for p in processes]
    finally:
        for p in processes:  # Always cleaned up, also after a timeout.
            if p.poll() is None:
                p.kill()
                p.communicate()
    for p, log in zip(processes, logs):
        assert p.returncode == 0, log[-3000:]
    first, second = (np.load(path) for path in outputs)
    assert int(first["replicas"]) == int(second["replicas"]) == 2
    assert np.isfinite(float(first["d_loss"]))
    assert float(first["moved"]) > 1e-4  # Training changed the weights.
    weights = [name for name in first.files if name.startswith("w")]
    assert weights and len(weights) == len(second.files) - 3
    for name in weights:
        # The all-reduce hands every worker the same sum: identical updates.
        np.testing.assert_array_equal(first[name], second[name])
