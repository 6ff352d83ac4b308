"""Data-parallel training of the workloads (Note [Data-parallel workloads] in examples/common.py): on 2 CPU ranks
the printed losses (the mean over the ranks) match a one-process run of the same global batches, with vibetensor
and with torch, and a global batch that does not split evenly is refused."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
RUN = [sys.executable, "-m", "vibetensor.torch.distributed.run"]


def _losses(stdout: str) -> list[float]:
    return [float(m) for m in re.findall(r"^step +\d+ \| loss ([0-9.]+)", stdout, flags=re.M)]


def _train(workload: str, framework: str, steps: int, nproc: int | None = None) -> subprocess.CompletedProcess:
    args = [str(EXAMPLES / f"{workload}.py"), "--framework", framework, "--steps", str(steps)]
    command = ([sys.executable] + args) if nproc is None else (RUN + ["--nproc-per-node", str(nproc)] + args)
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("framework", ["vibetensor", "torch"])
@pytest.mark.parametrize("workload", ["reversal", "minigpt"])
def test_two_ranks_follow_the_one_process_loss_curve(workload: str, framework: str):
    if framework == "torch":
        torch = pytest.importorskip("torch")
        if not torch.distributed.is_available():
            pytest.skip("this torch build has no torch.distributed")
    steps = 6
    one = _train(workload, framework, steps)
    assert one.returncode == 0, one.stderr
    two = _train(workload, framework, steps, nproc=2)
    assert two.returncode == 0, two.stdout + two.stderr
    assert "2 ranks (data parallel)" in two.stdout
    single, parallel = _losses(one.stdout), _losses(two.stdout)
    assert len(single) == len(parallel) == steps, two.stdout  # only rank 0 prints
    assert single[0] != single[-1]  # the weights moved: later steps check the averaged gradients
    np.testing.assert_allclose(parallel, single, rtol=2e-4, atol=0)


def test_uneven_global_batch_is_refused():
    proc = _train("reversal", "vibetensor", 1, nproc=3)  # the ci profile's batch of 8 over 3 ranks
    assert proc.returncode != 0
    assert "the global batch of 8 does not split evenly over 3 ranks" in proc.stderr
