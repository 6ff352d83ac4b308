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


def _x(cat, name, ts, dur, tid=7, **args):
    return {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur, "tid": tid, "args": args}


def test_attribute_kernels_joins_kernels_to_their_launching_python_frames():
    trace = {"traceEvents": [
        _x("python_function", "/r/examples/minigpt.py(70): forward", 0, 100),
        _x("python_function", "/site/vibetensor/torch/_tensor.py(10): contiguous", 10, 20),
        _x("python_function", "/site/vibetensor/torch/functional.py(5): matmul", 40, 30),
        _x("cuda_runtime", "cudaLaunchKernel", 15, 1, correlation=1),   # inside contiguous
        _x("cuda_runtime", "cudaLaunchKernel", 45, 1, correlation=2),   # inside matmul
        _x("cuda_driver", "cuLaunchKernel", 50, 1, correlation=3),      # inside matmul, driver API
        _x("cuda_runtime", "cudaLaunchKernel", 200, 1, correlation=4),  # after every frame ended
        _x("cuda_runtime", "cudaLaunchKernel", 16, 1, tid=9, correlation=5),  # another thread, no frames there
        _x("kernel", "copy", 300, 8.0, correlation=1),
        _x("kernel", "copy", 301, 4.0, correlation=2),
        _x("kernel", "gemm", 302, 30.0, correlation=3),
        _x("kernel", "copy", 303, 2.0, correlation=4),
        _x("kernel", "copy", 304, 1.0, correlation=5),
        _x("kernel", "copy", 305, 1.0, correlation=99),                  # its launch is not in the trace
    ]}
    rows = profile_step.attribute_kernels(trace, steps=2, top=5, frames=2)
    assert [r["name"] for r in rows] == ["gemm", "copy"]
    assert rows[0]["sites"] == [{"site": "examples/minigpt.py(70): forward > torch/functional.py(5): matmul",
                                 "us_per_step": 15.0, "calls_per_step": 0.5}]
    copy = rows[1]
    assert copy["us_per_step"] == pytest.approx(8.0) and copy["calls_per_step"] == pytest.approx(2.5)
    assert [s["site"] for s in copy["sites"]] == [
        "examples/minigpt.py(70): forward > torch/_tensor.py(10): contiguous",
        "examples/minigpt.py(70): forward > torch/functional.py(5): matmul",
        "(no Python frame)",
        "(launch not traced)"]
    # correlation 4 (after the frames ended) and 5 (a thread without frames): 3 us in 2 launches over 2 steps
    assert copy["sites"][2] == {"site": "(no Python frame)", "us_per_step": 1.5, "calls_per_step": 1.0}


def test_attribute_kernels_reads_a_real_profiler_trace_format():
    """A CPU-only torch trace with stacks has python_function events on the launching thread's tid, the fields the
    join reads; with no kernels the attribution is empty, not an error."""
    torch = pytest.importorskip("torch")
    import json
    from torch.profiler import ProfilerActivity, profile

    def inner(x):
        return x.t().contiguous()

    with profile(activities=[ProfilerActivity.CPU], with_stack=True) as prof:
        inner(torch.ones(8, 8))
    path = Path(profile_step.__file__).parent / "_trace_test.json"
    try:
        prof.export_chrome_trace(str(path))
        trace = json.loads(path.read_text())
    finally:
        path.unlink(missing_ok=True)
    py = [e for e in trace["traceEvents"] if e.get("cat") == "python_function"]
    assert any("inner" in e["name"] for e in py) and all("ts" in e and "dur" in e and "tid" in e for e in py)
    assert profile_step.attribute_kernels(trace, steps=1) == []
