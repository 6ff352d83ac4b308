"""The optional subpackages of vibetensor.torch (_subsystems.py) are attributes after `import vibetensor.torch`,
as torch's are (torch.nn, torch.cuda, torch.distributed ...), and VBT_SKIP_SUBSYSTEMS leaves them out."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

import vibetensor.torch as vt
from vibetensor.torch import _subsystems


@pytest.mark.parametrize("name", _subsystems.SUBSYSTEMS)
def test_every_present_subsystem_is_an_attribute(name):
    if importlib.util.find_spec(f"vibetensor.torch.{name}") is None:
        pytest.skip(f"vibetensor.torch.{name} is not part of this installation")
    assert name in _subsystems.loaded
    assert getattr(vt, name) is sys.modules[f"vibetensor.torch.{name}"]


def test_distributed_is_a_subsystem_like_torch_distributed():
    assert "distributed" in _subsystems.SUBSYSTEMS
    assert vt.distributed.is_available() and not vt.distributed.is_initialized()


def test_skip_variable_leaves_a_subsystem_out():
    code = "import vibetensor.torch as vt; print(hasattr(vt, 'distributed'), hasattr(vt, 'nn'))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, VBT_SKIP_SUBSYSTEMS="distributed"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", str(importlib.util.find_spec("vibetensor.torch.nn") is not None)]
