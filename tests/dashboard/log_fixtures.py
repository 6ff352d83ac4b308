"""Synthetic repositories for the dashboard tests: specs, ledger entries and run logs written as the harness
writes them (see harness/runlog.py), plus the broken shapes the dashboards must survive (crashed runs,
half-written lines, huge logs, missing reports, hostile proposals).

Every writer takes the repository root (a tmp dir) and returns what it wrote, so tests can assert against it.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

HOSTILE = '<script>window.__pwned = 1; document.title = "PWNED"</script><img src=x onerror="window.__pwned=2">'


def gate(name: str, status: str = "pass", summary: str = "", *, run_dir: Path | None = None, attempt: int = 1,
         candidate: int = 1, log: str | None = None, report: dict[str, Any] | None = None,
         metrics: dict[str, Any] | None = None, repo: Path | None = None) -> dict[str, Any]:
    """A GateResult dict; with ``run_dir`` also writes its log and report where runlog.RunLog puts them."""
    result = {"name": name, "status": status, "duration_s": 1.25, "summary": summary or f"{name} {status}",
              "metrics": metrics or {}, "log_path": None, "report_path": None, "cached": False}
    stem = f"A{attempt}-C{candidate}-{name}"
    if run_dir is not None and log is not None:
        path = run_dir / "gates" / f"{stem}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(log)
        result["log_path"] = str(path.relative_to(repo)) if repo else None
    if run_dir is not None and report is not None:
        path = run_dir / "reports" / f"{stem}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report))
        result["report_path"] = str(path.relative_to(repo)) if repo else None
    return result


def write_spec(repo: Path, spec_id: str, depends_on: list[str] | None = None, title: str | None = None,
               gates: list[Any] | None = None) -> Path:
    path = repo / "specs" / f"{spec_id}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    front = {"id": spec_id, "title": title or f"Spec {spec_id}", "depends_on": depends_on or [],
             "paths": ["generated_runtime/**"], "protected": [], "gates": gates or ["build", {"name": "parity",
                                                                                              "options": {}}],
             "budget": {"max_attempts": 3}}
    import yaml

    path.write_text("---\n" + yaml.safe_dump(front) + "---\n\n# Goal\n\nDo the thing.\n")
    return path


def write_ledger_entry(repo: Path, seq: int, spec_id: str, *, agent: str = "openai", model: str | None = "gpt-x",
                       run_id: str | None = None, gates: list[dict[str, Any]] | None = None,
                       cost_usd: float | None = 0.5, patch_text: str = "", tokens: tuple[int, int] = (1000, 200),
                       attempts: int = 1) -> Path:
    ledger = repo / "logs" / "ledger"
    ledger.mkdir(parents=True, exist_ok=True)
    patch_name = f"{seq:04d}-{spec_id}.patch"
    (ledger / patch_name).write_text(patch_text or f"--- a/x\n+++ b/x\n@@ -0,0 +1 @@\n+line {seq}\n")
    entry = {"seq": seq, "spec_id": spec_id, "agent": agent, "model": model, "message": f"accept {spec_id}",
             "run_id": run_id, "created_at": f"2026-01-01T00:{seq % 60:02d}:00Z", "parent_tree": "a" * 40,
             "result_tree": "b" * 40, "patch": patch_name, "patch_sha256": "c" * 64, "prev_entry_sha256": None,
             "prompt_digest": "d" * 64, "gates": gates or [gate("build")],
             "usage": {"input_tokens": tokens[0], "output_tokens": tokens[1], "cost_usd": cost_usd, "calls": 1},
             "wall_s": 12.5, "attempts": attempts}
    path = ledger / f"{seq:04d}-{spec_id}.json"
    path.write_text(json.dumps(entry, indent=2))
    return path


def write_run(repo: Path, run_id: str, spec_id: str, *, status: str = "accepted", agent: str = "openai",
              model: str | None = "gpt-x", attempts: list[dict[str, Any]] | None = None,
              proposals: dict[tuple[int, int], str] | None = None, reason: str | None = None,
              ended: bool = True, half_written_tail: bool = False, write_run_json: bool = True,
              cost_usd: float | None = 0.5, ledger_seq: int | None = None) -> Path:
    """A run directory. ``attempts`` are attempt summaries (gates already written with ``gate(run_dir=...)``)."""
    run_dir = repo / "logs" / "runs" / run_id
    (run_dir / "gates").mkdir(parents=True, exist_ok=True)
    (run_dir / "reports").mkdir(exist_ok=True)
    attempts = attempts if attempts is not None else [attempt_summary(1, [gate("build")])]
    proposals = proposals or {(a["attempt"], a["candidate"]): f"--- a/f.py\n+++ b/f.py\n@@ -1 +1 @@\n-old\n+new {run_id}\n"
                              for a in attempts}
    events = [{"ts": "2026-01-01T00:00:00Z", "type": "prompt", "attempt": 1, "candidate": 1, "chars": 100}]
    for (a, c), text in proposals.items():
        events.append({"ts": "2026-01-01T00:00:01Z", "type": "proposal", "attempt": a, "candidate": c,
                       "kind": "diff", "text": text})
        for g in next((x["gates"] for x in attempts if (x["attempt"], x["candidate"]) == (a, c)), []):
            events.append({"ts": "2026-01-01T00:00:02Z", "type": "gate", "attempt": a, "candidate": c, **g})
    if ended:
        events.append({"ts": "2026-01-01T00:01:00Z", "type": "run_end", "attempt": len(attempts), "candidate": 1,
                       "status": status, "reason": reason or f"run {status}"})
    lines = "".join(json.dumps(e) + "\n" for e in events)
    if half_written_tail:
        lines += '{"ts": "2026-01-01T00:00:09Z", "type": "gate", "attem'
    (run_dir / "events.jsonl").write_text(lines)
    if write_run_json:
        summary = {"schema": 1, "run_id": run_id, "spec_id": spec_id, "agent": agent, "model": model,
                   "started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-01T00:01:00Z" if ended else None,
                   "status": status if ended else "running", "reason": reason or (f"run {status}" if ended else ""),
                   "attempts": attempts,
                   "usage": {"input_tokens": 5000, "output_tokens": 900, "cost_usd": cost_usd, "calls": 2},
                   "ledger_seq": ledger_seq, "wall_s": 60.0, "candidates": 1, "mode": "run"}
        (run_dir / "run.json").write_text(json.dumps(summary, indent=2))
    if half_written_tail:  # as a crash leaves it: the writer stopped mid-line a while ago
        for path in run_dir.glob("*.json*"):
            os.utime(path, (time.time() - 3600, time.time() - 3600))
    return run_dir


def attempt_summary(attempt: int, gates: list[dict[str, Any]], status: str | None = None,
                    candidate: int = 1, feedback: str = "") -> dict[str, Any]:
    status = status or ("pass" if all(g["status"] == "pass" for g in gates) else "fail")
    return {"attempt": attempt, "candidate": candidate, "status": status, "proposal_kind": "diff",
            "proposal_sha256": "e" * 64, "gates": gates, "feedback": feedback,
            "usage": {"input_tokens": 2500, "output_tokens": 450, "cost_usd": 0.25, "calls": 1},
            "started_at": "2026-01-01T00:00:00Z", "wall_s": 30.0}


PARITY_REPORT = {
    "seed": 7, "device": "cpu", "totals": {"cases": 3, "failed": 1},
    "results": [
        {"op": "add", "category": "binary", "dtype": "float32", "case": "broadcast", "status": "pass",
         "max_abs_err": 0.0, "max_rel_err": 0.0, "atol": 1e-5, "rtol": 1e-5, "message": ""},
        {"op": "matmul", "category": "linalg", "dtype": "float16", "case": "non-contiguous", "status": "fail",
         "max_abs_err": 0.25, "max_rel_err": 0.1, "atol": 1e-3, "rtol": 1e-3, "message": "mismatch at [1, 2]"},
        {"op": "sum", "category": "reduction", "dtype": "float32", "case": "zero-size", "status": "pass",
         "max_abs_err": 1e-7, "max_rel_err": 1e-7, "atol": 1e-5, "rtol": 1e-5, "message": "", "extra": "ok"}],
    "unknown_field": {"kept": True}}
TRAINING_REPORT = {
    "workload": "mlp-mnist", "steps": 5,
    "curves": {"torch": {"loss": [2.3, 1.9, 1.5, 1.2, 1.0], "step_time_s": [0.01] * 5},
               "vibetensor": {"loss": [2.3, 1.91, 1.52, 1.21, 1.01], "step_time_s": [0.02] * 5}},
    "tolerance": 0.05, "windows": [{"start": 0, "end": 5, "max_diff": 0.01}], "step_time_ratio": 2.0,
    "memory": {"peak_bytes": 1048576, "per_step": [100, 110, 110, 110, 110]}}
ALLOCATOR_REPORT = {
    "scenario": "reuse-across-streams",
    "trace": [{"t": i, "allocated": 1000 * (i % 4), "reserved": 4096} for i in range(10)],
    "fragmentation": 0.125,
    "snapshot": {"segments": [{"device": 0, "stream": 1, "total_size": 4096, "allocated_size": 2048}]}}
PERF_REPORT = {"ratios": {"step_time": 1.4, "matmul": 0.95}}


def make_demo_repo(repo: Path) -> dict[str, Any]:
    """A small repository with every page kind: 4 specs (one blocked), 2 ledger entries, an accepted run with all
    report kinds (parity in the older "results" shape, training and allocator as the real gates write them), a
    rejected run with a hostile proposal, and a crashed run."""
    from .report_fixtures import allocator_trace, training_report
    write_spec(repo, "01-core", title="Core tensors")
    write_spec(repo, "02-ops", ["01-core"], title="Elementwise ops")
    write_spec(repo, "03-autograd", ["02-ops"], title="Autograd")
    write_spec(repo, "04-cuda", ["01-core", "03-autograd"], title="CUDA allocator")

    good = "20260101-000000-02-ops-aaaaaa"
    run_dir = repo / "logs" / "runs" / good
    at2 = {"attempt": 2, "run_dir": run_dir, "repo": repo}
    gates = [gate("build", log="cmake ...\nbuild ok\n", **at2),
             gate("parity", "pass", "3 cases, 1 failing (allowed)", report=PARITY_REPORT, log="parity log\n", **at2),
             gate("training", report=training_report(), **at2),  # the real gates' shapes (report_fixtures)
             gate("allocator", report=allocator_trace(), **at2),
             gate("perf", report=PERF_REPORT, metrics={"ratios": PERF_REPORT["ratios"]}, **at2)]
    fail_gates = [gate("build", "fail", "error: expected ';' before '}' token", attempt=1, run_dir=run_dir,
                       repo=repo, log="FAILED: src/add.cpp\nerror: expected ';'\n")]
    write_run(repo, good, "02-ops", attempts=[attempt_summary(1, fail_gates, feedback="fix the syntax error"),
                                              attempt_summary(2, gates)], ledger_seq=2,
              reason="all gates passed on attempt 2")

    hostile = "20260101-010000-03-autograd-bbbbbb"
    hostile_dir = repo / "logs" / "runs" / hostile
    write_run(repo, hostile, "03-autograd", status="rejected", agent="anthropic", model="claude-x", cost_usd=None,
              attempts=[attempt_summary(1, [gate("build", "fail", HOSTILE, run_dir=hostile_dir, repo=repo,
                                                 log=HOSTILE + "\n")])],
              proposals={(1, 1): f"--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-x\n+{HOSTILE}\n"},
              reason="budget of 1 attempt spent: build failed")

    crashed = "20260101-020000-03-autograd-cccccc"
    write_run(repo, crashed, "03-autograd", ended=False, half_written_tail=True, attempts=[])

    write_spec(repo, "05-extra", ["99-missing"], title="Depends on a missing spec")
    write_ledger_entry(repo, 1, "01-core", agent="replay", model=None, cost_usd=None)
    write_ledger_entry(repo, 2, "02-ops", run_id=good, gates=gates)
    return {"good": good, "hostile": hostile, "crashed": crashed}
