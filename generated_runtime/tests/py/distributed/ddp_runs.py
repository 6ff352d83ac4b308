"""Shared by the DDP tests: run one training script in one process and on 2 ranks under the launcher, on each
device where that is possible, and read back what every process wrote (``PREFIX.RANK.json``)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import vibetensor.torch as vt
import vibetensor.torch.distributed as dist

RUN = [sys.executable, "-m", "vibetensor.torch.distributed.run"]


def _gpus() -> int:
    return vt.cuda.device_count() if vt.cuda.is_built() else 0


DEVICES = pytest.mark.parametrize("device", [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(_gpus() < 2 or not dist.is_nccl_available(),
                                                  reason="DDP over NCCL needs two GPUs (runs on the lent machine)")),
])


def one_and_two_ranks(tmp_path: Path, script_text: str, device: str) -> tuple[dict, list[dict]]:
    """(what the one-process run wrote, what each of the 2 ranks wrote); the script gets (PREFIX, device)."""
    script = tmp_path / "train.py"
    script.write_text(script_text)
    one = subprocess.run([sys.executable, str(script), str(tmp_path / "one"), device], capture_output=True,
                         text=True, timeout=120)
    assert one.returncode == 0, one.stderr
    two = subprocess.run(RUN + ["--nproc-per-node", "2", str(script), str(tmp_path / "two"), device],
                         capture_output=True, text=True, timeout=240)
    assert two.returncode == 0, two.stdout + two.stderr
    single = json.loads((tmp_path / "one.0.json").read_text())
    return single, [json.loads((tmp_path / f"two.{r}.json").read_text()) for r in range(2)]
