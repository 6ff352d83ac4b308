"""tests/gpu/profile_step.py on CPU: the override parser and the kernel table (fed a stand-in profiler)."""
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import profile_step  # noqa: E402


def test_overrides_parse_ints_and_floats_and_reject_a_bare_key():
    assert profile_step.parse_overrides(["dim=32", "lr=1e-3", "batch=2"]) == {"dim": 32, "lr": 1e-3, "batch": 2}
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        profile_step.parse_overrides(["dim"])


def test_kernel_table_sums_device_time_per_step_and_skips_host_rows():
    events = [SimpleNamespace(key="gemm", count=40, self_device_time_total=8000.0),
              SimpleNamespace(key="softmax", count=20, self_device_time_total=2000.0),
              SimpleNamespace(key="cudaLaunchKernel", count=60, self_device_time_total=0.0)]
    prof = SimpleNamespace(key_averages=lambda: events)
    top, busy_ms, launches = profile_step.kernel_table(prof, steps=20, top=1)
    assert busy_ms == pytest.approx(0.5)           # (8000 + 2000) us over 20 steps
    assert launches == pytest.approx(3.0)          # 2 + 1 kernels per step; the host-side row is not a kernel
    assert top == [{"name": "gemm", "calls_per_step": 2.0, "us_per_step": 400.0}]


def test_older_profiler_field_name_is_read():
    prof = SimpleNamespace(key_averages=lambda: [SimpleNamespace(key="k", count=4, self_cuda_time_total=100.0)])
    assert profile_step.kernel_table(prof, steps=2, top=5)[1] == pytest.approx(0.05)


def test_runs_a_tiny_torch_step_on_cpu(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "p.json"
    r = subprocess.run([sys.executable, str(Path(profile_step.__file__)), "--workload", "reversal", "--framework",
                        "torch", "--profile", "ci", "--device", "cpu", "--warmup", "1", "--steps", "2", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "reversal/ci torch on cpu: wall" in r.stdout and '"wall_ms_median"' in out.read_text()
