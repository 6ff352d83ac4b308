"""Allocator gate: passes on the real scenario driver (built from generated_runtime/cmake/cuda_subsystem.cmake on
the host backend) and fails on drivers whose reports violate an invariant: a leak after empty_cache, a block reused
before its stream event, stats that do not add up while the driver claims success, a bad schema, a missing
scenario, a crashing driver. The bad drivers replay a real report with one targeted change, so each test shows
that exactly that check catches it."""
from __future__ import annotations

import copy
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from validators import get_gate
from validators.allocator_gate import AllocatorGate, check_report

REPO = Path(__file__).resolve().parents[2]
SUBSYSTEM_CMAKE = REPO / "generated_runtime" / "cmake" / "cuda_subsystem.cmake"

pytestmark = pytest.mark.slow  # builds the scenario driver (the allocator library, 4 files) once per session


@pytest.fixture(scope="module")
def driver_build(tmp_path_factory) -> Path:
    """A build folder holding the real vbt_allocator_scenarios (host backend only: CUDA off, no GoogleTest)."""
    root = tmp_path_factory.mktemp("allocator_driver")
    (root / "CMakeLists.txt").write_text(textwrap.dedent(f"""\
        cmake_minimum_required(VERSION 3.25)
        project(allocator_driver LANGUAGES CXX)
        set(CMAKE_CXX_STANDARD 20)
        find_program(CCACHE_PROGRAM ccache)
        if(CCACHE_PROGRAM)
          set(CMAKE_CXX_COMPILER_LAUNCHER "${{CCACHE_PROGRAM}}")
        endif()
        include({SUBSYSTEM_CMAKE})
        """))
    build = root / "build"
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    subprocess.run(["cmake", "-S", str(root), "-B", str(build), *generator, "-DCMAKE_BUILD_TYPE=Release",
                    "-DVBT_ENABLE_CUDA=OFF", "-DVBT_BUILD_ALLOCATOR_DRIVER=ON"], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build), "--target", "vbt_allocator_scenarios", "-j2"], check=True,
                   capture_output=True)
    return build


@pytest.fixture(scope="module")
def real_report(driver_build) -> dict:
    out = driver_build / "seed0.json"
    subprocess.run([str(driver_build / "vbt_allocator_scenarios"), "--seed", "0", "--out", str(out)], check=True)
    return json.loads(out.read_text())


def _fake_driver(tmp_path: Path, report: dict, exit_code: int = 0, crash: bool = False) -> Path:
    """An executable that writes `report` to the path after --out (the interface of the real driver)."""
    data = tmp_path / "fake_report.json"
    data.write_text(json.dumps(report))
    script = tmp_path / "fake_driver"
    body = "raise SystemExit('segmentation fault (simulated)')" if crash else (
        f"import sys, shutil\nout = sys.argv[sys.argv.index('--out') + 1]\n"
        f"shutil.copy({str(data)!r}, out)\nsys.exit({exit_code})")
    script.write_text(f"#!{sys.executable}\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def _scenario(report: dict, name: str) -> dict:
    return next(s for s in report["scenarios"] if s["name"] == name)


def _run(make_ctx, tmp_path, **options):
    ctx = make_ctx(tmp_path, options={"seeds": [0], **options})
    return AllocatorGate().run(ctx)


def test_registered_in_the_gate_registry():
    assert isinstance(get_gate("allocator"), AllocatorGate)


def test_real_driver_passes_and_writes_a_dashboard_report(driver_build, make_ctx, tmp_path):
    ctx = make_ctx(tmp_path, state={"build_dir": str(driver_build)}, options={"seeds": [0, 3]})
    result = AllocatorGate().run(ctx)
    assert result.status == "pass", result.summary
    assert result.metrics["scenarios"] == 12 and result.metrics["violations"] == 0
    report = json.loads(Path(result.report_path).read_text())
    assert report["schema"] == "vbt.allocator_gate/1" and report["passed"] is True
    churn = next(s for s in report["scenarios"] if s["name"] == "churn (seed 0)")
    assert len(churn["steps"]) == churn["metrics"]["steps"] > 2000 and churn["status"] == "pass"
    assert churn["metrics"]["pending_reuse_waits"] > 0  # the churn really exercised record_stream
    # The dashboard renders it: charts for the series and the snapshot, nothing reported missing.
    from harness.dashboard.report_views import allocator_view
    view = allocator_view(report)
    assert len(view["scenarios"]) == 12 and not view["missing"]
    churn_view = next(v for v in view["scenarios"] if v["name"] == "churn (seed 0)")
    assert churn_view["charts"] and not churn_view["missing"], churn_view["missing"]


def test_missing_driver_fails_clearly(make_ctx, tmp_path):
    empty = tmp_path / "build"
    empty.mkdir()
    result = AllocatorGate().run(make_ctx(tmp_path, state={"build_dir": str(empty)}))
    assert result.status == "fail" and "vbt_allocator_scenarios" in result.summary


def test_unchanged_replay_of_the_real_report_passes(real_report, make_ctx, tmp_path):
    # The control for the tests below: the fake driver itself is not what makes them fail.
    result = _run(make_ctx, tmp_path, driver=str(_fake_driver(tmp_path, real_report)))
    assert result.status == "pass", result.summary


def test_leak_after_empty_cache_fails(real_report, make_ctx, tmp_path):
    report = copy.deepcopy(real_report)
    sc = _scenario(report, "empty_cache")
    last_empty = max(s["t"] for s in sc["steps"] if s["op"] == "empty_cache")
    leaked = [e for e in sc["events"] if e["t"] == last_empty and e["kind"] == "segment_free"]
    assert leaked, "the real empty_cache scenario returns segments in its last empty_cache"
    # The allocator "forgets" to return the segments, and its stats agree with that (so only the leak check fires).
    sc["events"] = [e for e in sc["events"] if not (e["t"] == last_empty and e["kind"] == "segment_free")]
    kept = sum(e["size"] for e in leaked)
    for s in sc["steps"]:
        if s["t"] >= last_empty:
            s["reserved"] += kept
            s["segments"] += len(leaked)
    result = _run(make_ctx, tmp_path, driver=str(_fake_driver(tmp_path, report)))
    assert result.status == "fail"
    assert "after empty_cache segment" in result.summary and "(leak)" in result.summary


def test_block_reused_before_its_stream_event_fails(real_report, make_ctx, tmp_path):
    report = copy.deepcopy(real_report)
    sc = _scenario(report, "cross_stream")
    steps = sc["steps"]
    # cross_stream: malloc a, record_stream x2, free a (pending), malloc "before" -> hand out a itself.
    free_i = next(i for i, s in enumerate(steps) if s["op"] == "free")
    a = steps[free_i]["ptr"]
    before = next(s for s in steps[free_i + 1:] if s["op"] == "malloc")
    old = before["ptr"]
    before["ptr"] = a
    for s in steps[free_i + 1:]:  # keep the rest of the trace consistent with the swap
        if s.get("ptr") == old and s is not before:
            s["ptr"] = a
    result = _run(make_ctx, tmp_path, driver=str(_fake_driver(tmp_path, report)))
    assert result.status == "fail"
    assert f"reuses freed block {a} before streams [1, 2] completed" in result.summary


def test_stats_that_do_not_add_up_fail_even_when_the_driver_claims_success(real_report, make_ctx, tmp_path):
    report = copy.deepcopy(real_report)
    sc = _scenario(report, "churn")
    step = next(s for s in sc["steps"] if s["op"] == "free" and s["allocated"] > 0)
    step["allocated"] -= 512  # e.g. a free that subtracts the requested bytes instead of the block's
    assert report["passed"] and all(i["passed"] for i in sc["invariants"])
    result = _run(make_ctx, tmp_path, driver=str(_fake_driver(tmp_path, report)))
    assert result.status == "fail"
    assert f"t={step['t']} (free): allocated" in result.summary


def test_bad_schema_fails(real_report, make_ctx, tmp_path):
    report = copy.deepcopy(real_report)
    del _scenario(report, "graph_capture")["steps"][3]["reserved"]
    result = _run(make_ctx, tmp_path, driver=str(_fake_driver(tmp_path, report)))
    assert result.status == "fail"
    assert "bad report schema" in result.summary and "'reserved'" in result.summary


def test_bad_snapshot_fails(real_report, make_ctx, tmp_path):
    report = copy.deepcopy(real_report)
    snap = _scenario(report, "churn")["steps"]
    snap_step = next(s for s in snap if s["op"] == "snapshot" and s["snapshot"]["segments"])
    blocks = snap_step["snapshot"]["segments"][0]["blocks"]
    blocks[0]["size"] += 512  # blocks no longer tile the segment
    result = _run(make_ctx, tmp_path, driver=str(_fake_driver(tmp_path, report)))
    assert result.status == "fail"
    assert "do not tile the segment" in result.summary or "of the segment's" in result.summary


def test_missing_scenario_and_failed_driver_invariant_fail(real_report, make_ctx, tmp_path):
    report = copy.deepcopy(real_report)
    report["scenarios"] = [s for s in report["scenarios"] if s["name"] != "graph_capture"]
    inv = _scenario(report, "fraction_cap")["invariants"][0]
    inv["passed"], inv["message"] = False, "simulated"
    result = _run(make_ctx, tmp_path, driver=str(_fake_driver(tmp_path, report, exit_code=3)))
    assert result.status == "fail"
    assert "required scenarios missing from the report: graph_capture" in result.summary
    assert "driver invariant" in result.summary and "simulated" in result.summary


def test_crashing_driver_fails(real_report, make_ctx, tmp_path):
    result = _run(make_ctx, tmp_path, driver=str(_fake_driver(tmp_path, real_report, crash=True)))
    assert result.status == "fail" and "report rejected" in result.summary


def test_oom_without_staged_gc_is_caught(real_report):
    report = copy.deepcopy(real_report)
    sc = _scenario(report, "fraction_cap")
    oom_t = next(s["t"] for s in sc["steps"] if s.get("oom"))
    sc["events"] = [e for e in sc["events"] if not (e["t"] == oom_t and e["kind"] == "gc_stage")]
    checks, problems = check_report(report)
    found = [p for c in checks for p in c.problems]
    assert any("without running GC stages 1, 2, 3" in p for p in found), found
