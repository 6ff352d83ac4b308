"""Gate reports in the shapes the real gates write them, made with the gates' own helpers where they exist
(validators.parity.compare for parity rows and totals, validators.training.curves for curves and windows), so a
schema change in a gate shows up here as a failing dashboard test rather than as a blank page.

The allocator gate does not exist yet: its report follows the trace schema "vbt.allocator_trace/1" printed by
generated_runtime/tests/cpp/cuda/allocator_scenarios.cpp and the snapshot schema of
generated_runtime/src/vbt/cuda/caching_allocator.cpp (Note [Allocator snapshot schema]).
"""
from __future__ import annotations

from typing import Any

from validators.parity import compare
from validators.training import curves


def parity_report() -> dict[str, Any]:
    """A parity report as validators/parity_gate.py assembles it: one missing op, one failing dtype, passes."""
    rows = []
    for dtype, (atol, rtol) in (("float32", compare.DEFAULT_TOL["float32"]), ("float16", compare.DEFAULT_TOL["float16"])):
        rows.append({"op": "add", "category": "elementwise", "dtype": dtype, "case": "broadcast", "form": "plain",
                     "status": "pass", "max_abs_err": atol / 10, "max_rel_err": rtol / 10, "atol": atol, "rtol": rtol,
                     "message": "", "calls": 2})
    atol, rtol = compare.DEFAULT_TOL["float16"]
    rows.append({"op": "matmul", "category": "linalg", "dtype": "float16", "case": "non-contiguous", "form": "plain",
                 "status": "fail", "max_abs_err": atol * 40, "max_rel_err": rtol * 3, "atol": atol, "rtol": rtol,
                 "message": "values differ in 3 of 12 elements; first at [1, 2]", "calls": 2})
    rows.append({"op": "matmul", "category": "linalg", "dtype": "float32", "case": "non-contiguous", "form": "plain",
                 "status": "fail", "max_abs_err": 2e-5, "max_rel_err": 1e-6, "atol": 1e-5, "rtol": 1e-5,
                 "message": "values differ in 1 of 12 elements", "calls": 2})
    rows.append(compare.missing_row("cumsum", "scan", "missing op: module 'vibetensor.torch' has no attribute "
                                                      "'cumsum'"))
    overall, per_category = compare.totals(rows)
    return {"schema": compare.SCHEMA, "gate_version": "1", "module": "vibetensor.torch", "seed": 1234,
            "device": "cpu", "ops": ["add", "matmul", "cumsum"], "dtypes": ["float32", "float16"], "finished": True,
            "fatal": None, "duration_s": 1.5, "totals": overall, "categories": per_category, "rows": rows}


def training_report(steps: int = 40, window: int = 10, tolerance: float = 0.02) -> dict[str, Any]:
    """One workload's report as validators/training_gate.py writes it; vibetensor drifts in the last window."""
    torch_curve = curves.Curve(loss=[2.0 * 0.97 ** i for i in range(steps)], step_time_s=[0.010] * steps,
                               rss_mb=[100.0] * steps, allocated_mb=[None] * steps, items_per_s=[1000.0] * steps,
                               end={"event": "end"})
    vt_loss = [v * (1.0 if i < steps - window else 1.10) for i, v in enumerate(torch_curve.loss)]
    vt_curve = curves.Curve(loss=vt_loss, step_time_s=[0.025] * steps, rss_mb=[120.0 + i for i in range(steps)],
                            allocated_mb=[None] * steps, items_per_s=[400.0] * steps, end={"event": "end"})
    windows = curves.compare_windows(torch_curve.loss, vt_curve.loss, window, tolerance)
    ratio = curves.step_time_ratio(torch_curve.step_time_s, vt_curve.step_time_s, 2)
    report = {"workload": "reversal", "profile": "ci", "steps": steps, "status": "fail",
              "module": "vibetensor.torch", "device": "cpu", "seed": 0, "threads": 1, "torch_curve_from_cache": False,
              "curves": {"torch": torch_curve.to_report(), "vibetensor": vt_curve.to_report()},
              "tolerance": {"relative": tolerance, "window": window}, "windows": windows, "nan_step": None,
              "step_time_ratio": ratio,
              "memory": {"source": "rss_mb", "warmup_steps": 2, "vt_growth_mb": 20.0, "torch_growth_mb": 0.0,
                         "bound_mb": 32.0, "ok": True},
              "problems": ["loss diverges from torch in steps 30-39"]}
    return curves.json_safe(report)


def allocator_snapshot() -> dict[str, Any]:
    return {"schema": "vbt.cuda.allocator_snapshot/1", "backend": "host", "device": 0, "memory_fraction": 1.0,
            "memory_limit": 1 << 30, "stats": {"allocated_bytes": {"current": 1536, "peak": 4096}},
            "segments": [
                {"address": 4096, "size": 2048, "stream": 0, "pool": "small", "graph": None, "birth": 0,
                 "blocks": [{"address": 4096, "size": 512, "requested": 500, "stream": 0, "state": "allocated"},
                            {"address": 4608, "size": 1024, "requested": 0, "stream": 0, "state": "free"},
                            {"address": 5632, "size": 512, "requested": 0, "stream": 0, "state": "pending"}]},
                {"address": 1 << 20, "size": 2 << 20, "stream": 1, "pool": "large", "graph": None, "birth": 1,
                 "blocks": [{"address": 1 << 20, "size": 1 << 20, "requested": 1 << 20, "stream": 1,
                             "state": "allocated"},
                            {"address": 2 << 20, "size": 1 << 20, "requested": 0, "stream": 1, "state": "free"}]}]}


def allocator_trace(scenario: str = "reuse-across-streams") -> dict[str, Any]:
    """A scenario trace in the "vbt.allocator_trace/1" schema (no fragmentation field: the dashboard derives it)."""
    steps = []
    allocated, reserved = 0, 0
    for t, (op, size) in enumerate([("malloc", 512), ("malloc", 1 << 20), ("free", 512), ("malloc", 1024),
                                    ("empty_cache", 0)]):
        if op == "malloc":
            allocated += size
            reserved = max(reserved, allocated * 2)
        elif op == "free":
            allocated -= size
        steps.append({"t": t, "op": op, "stream": t % 2, "size": size, "allocated": allocated,
                      "reserved": reserved, "active": allocated, "segments": 2})
    return {"schema": "vbt.allocator_trace/1", "scenario": scenario, "backend": "host", "seed": 0,
            "config": {"rounding": 512}, "steps": steps, "events": [], "final_stats": {"segments": {"current": 2}},
            "snapshot": allocator_snapshot()}
