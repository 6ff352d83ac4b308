"""Gate report pages from reports in the real gates' shapes (tests/dashboard/report_fixtures.py): the parity table
failures first, training curves vibetensor vs PyTorch, allocator charts, and notes for whatever is missing."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.dashboard import build_site
from harness.dashboard import data_model as dm
from harness.dashboard import report_views as rv

from . import report_fixtures as rf

DATA = Path(__file__).resolve().parent / "data"
from .log_fixtures import attempt_summary, gate, write_ledger_entry, write_run


def view_of(tmp_path, gate_name, report):
    path = tmp_path / f"{gate_name}.json"
    path.write_text(json.dumps(report))
    return rv.report_view(gate_name, path, tmp_path)


def tol_ratio(row):
    """The reference ordering key, written independently of the dashboard: worst error over tolerance."""
    ratios = [row[e] / row[t] for e, t in (("max_abs_err", "atol"), ("max_rel_err", "rtol"))
              if row.get(e) is not None and row.get(t)]
    return max(ratios, default=0.0)


def test_parity_rows_failures_first_then_worst_ratio(tmp_path):
    report = rf.parity_report()
    view = view_of(tmp_path, "parity", report)
    assert view["kind"] == "parity" and view["missing"] == [] and view["problem"] is None
    shown = [(r["op"], r["dtype"], r["status"]) for r in view["rows"]]
    expected_bad = sorted((r for r in report["rows"] if r["status"] != "pass"),
                          key=lambda r: (r["status"] != "fail", -tol_ratio(r)))
    assert shown[:len(expected_bad)] == [(r["op"], r["dtype"], r["status"]) for r in expected_bad]
    assert all(s == "pass" for _, _, s in shown[len(expected_bad):])
    assert view["count"] == report["totals"]["checks"]
    assert view["failures"] == report["totals"]["fail"] + report["totals"]["missing"] + report["totals"]["error"]
    assert dict(view["counts"]) == {k: v for k, v in report["totals"].items() if k != "checks" and v}
    cells = dict(view["matrix"])
    assert cells["matmul"][("float16", "cpu")] == [0, 1] and cells["add"][("float32", "cpu")] == [1, 1]
    assert cells["cumsum"][("*", "cpu")] == [0, 1]
    assert [op for op, _ in view["matrix"]][-1] == "add"  # ops with failures come first
    top = view["rows"][0]
    assert top["ratio"] == pytest.approx(tol_ratio(report["rows"][2]))


def test_parity_alternative_field_names_and_devices(tmp_path):
    report = {"results": [
        {"op": "add", "dtype": "float32", "device": "cpu", "max_err": 1e-7, "tol": 1e-5, "status": "pass"},
        {"op": "add", "dtype": "float32", "device": "cuda", "max_err": 3e-4, "tol": 1e-5, "status": "fail"},
        {"op": "mul", "device": "cuda", "max_err": 0.0, "tol": 1e-5}]}
    view = view_of(tmp_path, "parity-cuda", report)
    assert view["kind"] == "parity" and view["multi_device"]
    assert view["rows"][0]["device"] == "cuda" and view["rows"][0]["ratio"] == pytest.approx(30.0)
    assert set(view["columns"]) == {("float32", "cpu"), ("float32", "cuda"), ("?", "cuda")}
    assert any("'dtype' (1)" in m and "'status' (1)" in m for m in view["missing"])


def test_parity_report_without_rows_says_so(tmp_path):
    view = view_of(tmp_path, "parity", {"seed": 1, "fatal": "cannot import module vibetensor.torch"})
    assert view["count"] == 0 and view["fatal"].startswith("cannot import")
    assert any("no 'rows'" in m for m in view["missing"])


def test_training_curves_and_windows(tmp_path):
    report = rf.training_report()
    view = view_of(tmp_path, "training", report)
    assert view["kind"] == "training" and view["missing"] == [] and view["index"] is None
    assert view["step_time_ratio"] == pytest.approx(0.025 / 0.010)
    assert view["failed_windows"] == sum(1 for w in report["windows"] if not w["ok"]) == 1
    assert view["tolerance"] == "2.00% relative per window of 10 steps"
    titles = [re.search(r"<title>(.*?)</title>", str(c)).group(1) for c in view["charts"]]
    assert titles == ["loss: vibetensor vs PyTorch", "step time (s): vibetensor vs PyTorch", "RSS (MiB): vibetensor "
                      "vs PyTorch", "loss difference per window"]  # allocated_mb is all null: no chart
    loss_chart = str(view["charts"][0])
    assert "vibetensor loss" in loss_chart and "torch loss" in loss_chart and loss_chart.count("<polyline") == 2
    assert view["problems"] == report["problems"]


def test_training_index_error_and_gaps(tmp_path):
    index = {"status": "fail", "workloads": [{"workload": "vit", "status": "pass", "report": "/gone/training-vit.json"},
                                             {"workload": "minigpt", "status": "fail", "report": "x.json"}]}
    view = view_of(tmp_path, "training", index)
    assert [w["workload"] for w in view["index"]] == ["vit", "minigpt"] and not any(w["found"] for w in view["index"])
    assert any("not in the repository" in m for m in view["missing"])
    # an index whose workloads carry their reports inline, or name a file kept in the repository: each is shown
    kept = tmp_path / "kept.json"
    kept.write_text(json.dumps(rf.training_report()))
    inline = {"status": "fail", "workloads": [{"workload": "reversal", "status": "fail", "data": rf.training_report()},
                                              {"workload": "vit", "status": "fail", "report": "kept.json"}]}
    view = view_of(tmp_path, "training", inline)
    assert view["missing"] == [] and all(w["found"] for w in view["index"])
    assert [len(w["view"]["charts"]) for w in view["index"]] == [4, 4]
    error = view_of(tmp_path, "training", {"workload": "vit", "status": "error", "error": "reference run failed: x"})
    assert any("no 'curves'" in m and "reference run failed: x" in m for m in error["missing"])
    short = rf.training_report()
    del short["curves"]["vibetensor"]["step_time_s"]
    view = view_of(tmp_path, "training", short)
    assert "curve 'vibetensor' has no step_time_s values" in view["missing"]


def test_allocator_series_fragmentation_and_segments(tmp_path):
    report = rf.allocator_trace()
    view = view_of(tmp_path, "allocator", report)
    assert view["kind"] == "allocator" and len(view["scenarios"]) == 1
    sc = view["scenarios"][0]
    assert sc["name"] == "reuse-across-streams" and sc["missing"] == []
    steps = report["steps"]
    assert sc["series"]["allocated"] == [(float(s["t"]), float(s["allocated"])) for s in steps]
    assert sc["series"]["fragmentation_derived"]
    frag = sc["series"]["fragmentation"]
    expected = [(s["t"], 1 - s["allocated"] / s["reserved"]) for s in steps if s["reserved"]]
    assert [x for x, _ in frag] == [x for x, _ in expected]
    assert [y for _, y in frag] == pytest.approx([y for _, y in expected])
    for row, seg in zip(sc["segments"], report["snapshot"]["segments"]):
        for state in ("allocated", "pending", "free"):
            sizes = [b["size"] for b in seg["blocks"] if b["state"] == state]
            assert row[state] == (sum(sizes) if sizes else None), (state, row)
        assert row["size"] == seg["size"]
    assert len(sc["charts"]) == 3 and "snapshot segments" in str(sc["charts"][2])


def test_allocator_many_scenarios_and_missing_parts(tmp_path):
    given = {"scenarios": [rf.allocator_trace("a"), {"scenario": "b", "fragmentation": [0.1, 0.2, 0.4]}, 7]}
    view = view_of(tmp_path, "allocator", given)
    a, b = view["scenarios"]
    assert a["name"] == "a" and b["name"] == "b"
    assert b["series"]["fragmentation"] == [(0.0, 0.1), (1.0, 0.2), (2.0, 0.4)]
    assert not b["series"]["fragmentation_derived"]
    assert any("no time series" in m for m in b["missing"]) and "no allocator snapshot" in b["missing"]
    assert any("not a JSON object" in m for m in view["missing"])


def test_every_real_shape_builds_into_pages(tmp_path):
    repo = tmp_path / "repo"
    run_dir = repo / "logs/runs/r1"
    gates = [gate("parity", "fail", "parity FAIL", report=rf.parity_report(), run_dir=run_dir, repo=repo, log="p\n"),
             gate("training", "fail", "reversal/ci: FAIL", report=rf.training_report(), run_dir=run_dir, repo=repo,
                  metrics={"reversal": {"step_time_ratio": 2.5}, "duration_s": 3.0}),
             gate("allocator", "pass", report=rf.allocator_trace(), run_dir=run_dir, repo=repo)]
    write_run(repo, "r1", "04-cuda", attempts=[attempt_summary(1, gates)])
    index = {"status": "fail", "workloads": [{"workload": "reversal", "status": "fail", "data": rf.training_report()},
                                             {"workload": "vit", "status": "pass", "report": "/elsewhere/vit.json"}]}
    write_run(repo, "r2", "03-training", attempts=[attempt_summary(1, [gate("training", "fail", report=index,
                                                                             run_dir=repo / "logs/runs/r2",
                                                                             repo=repo)])])
    write_ledger_entry(repo, 1, "04-cuda", run_id="r1", gates=gates)
    site = build_site(repo, tmp_path / "site").parent
    parity = (site / "runs/r1/report-A1-C1-parity.html").read_text()
    first = re.search(r'<tbody>\s*<tr class="row-(\w+)"><td>(\w+)</td><td>\w+</td><td>(\w+)</td>',
                      parity.split('id="parity-table"')[1])
    assert first.groups() == ("fail", "matmul", "float16")
    assert "missing op: module" in parity
    training = (site / "runs/r1/report-A1-C1-training.html").read_text()
    assert "loss diverges from torch in steps 30-39" in training and training.count("<svg") == 4
    several = (site / "runs/r2/report-A1-C1-training.html").read_text()
    assert several.count('class="scenario" id="workload-') == 1 and several.count("<svg") == 4
    assert "(not kept)" in several and "/elsewhere/vit.json" in several
    allocator = (site / "runs/r1/report-A1-C1-allocator.html").read_text()
    assert "1 - allocated/reserved (derived)" in allocator and "snapshot segments" in allocator
    # the training gate's step-time ratio appears in performance over the ledger
    rows = dm.perf_over_ledger(dm.load_model(repo))
    assert [(e.seq, r) for e, r in rows] == [(1, {"training reversal step": 2.5})]
    assert "training reversal step" in (site / "perf.html").read_text()
    overview = (site / "index.html").read_text()
    assert overview.count('class="timeline-entry"') == 1 and 'href="ledger/0001.html" class="timeline-entry"' in overview


def test_a_recorded_allocator_gate_report(tmp_path):
    """data/allocator_gate_report.json: the host driver (generated_runtime/tests/cpp/cuda/allocator_scenarios.cpp,
    --steps 40 --seed 0) run through validators.allocator_gate.check_report and _dashboard_scenario, as the gate
    writes it; short runs make 'churn' fail its coverage check, so the page has a failure to show."""
    report = json.loads((DATA / "allocator_gate_report.json").read_text())
    view = rv.report_view("allocator", DATA / "allocator_gate_report.json", tmp_path)
    assert view["kind"] == "allocator" and view["problem"] is None and view["missing"] == []
    assert [s["name"] for s in view["scenarios"]] == [s["name"] for s in report["scenarios"]]
    for sc, raw in zip(view["scenarios"], report["scenarios"]):
        assert sc["status"] == raw["status"] and sc["problems"] == raw["problems"]
        assert [y for _, y in sc["series"]["allocated"]] == [float(s["allocated"]) for s in raw["steps"]]
        assert [y for _, y in sc["series"]["reserved"]] == [float(s["reserved"]) for s in raw["steps"]]
        assert sc["fragmentation"] == raw["fragmentation"]
        assert [row["size"] for row in sc["segments"]] == [seg["size"] for seg in raw["snapshot"]["segments"]]
        for row, seg in zip(sc["segments"], raw["snapshot"]["segments"]):
            used = [b["size"] for b in seg["blocks"] if b["state"] == "allocated"]
            assert row["allocated"] == (sum(used) if used else None)
        assert len(sc["checks"]) == len(raw["checks"]) and sc["snapshot_frag"] == raw["snapshot_fragmentation"]
    assert [r["returncode"] for r in view["runs"]] == [0]
    # the page: a scenario table, and each failing scenario's problems
    repo = tmp_path / "repo"
    run_dir = repo / "logs/runs/r"
    write_run(repo, "r", "04-cuda", attempts=[attempt_summary(1, [gate("allocator", "fail", report=report,
                                                                       run_dir=run_dir, repo=repo)])])
    page = (build_site(repo, tmp_path / "site").parent / "runs/r/report-A1-C1-allocator.html").read_text()
    failing = [s for s in report["scenarios"] if s["status"] == "fail"]
    assert failing and all(s["problems"][0] in page for s in failing)
    assert page.count('class="scenario"') == len(report["scenarios"]) and 'id="allocator-scenarios"' in page
    assert "external fragmentation at each snapshot" in page
