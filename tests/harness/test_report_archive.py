"""Large gate reports are archived gzip-compressed in the run log (committed logs stay small), and the dashboards
read them, also where the run log still names the uncompressed file."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

from harness.dashboard import data_model as dm
from harness.interfaces import GateResult
from harness.runlog import RunLog
from harness.runner import REPORT_GZIP_ABOVE, Runner
from tests.harness.toy_repo import make_toy_repo


def _report(tmp: Path, rows: int) -> Path:
    p = tmp / "parity.json"
    p.write_text(json.dumps({"rows": [{"op": f"op{i}", "dtype": "float32", "status": "pass", "max_err": 0.0,
                                       "tol": 1e-6} for i in range(rows)]}))
    return p


def test_large_reports_are_gzipped_small_ones_copied(tmp_path):
    repo = make_toy_repo(tmp_path / "repo")
    runner = Runner(repo)
    log = RunLog(repo / "logs" / "runs", "20260101-000000-01-toy-abc123", {"spec_id": "01-toy"})
    big = _report(tmp_path, 20_000)
    assert big.stat().st_size > REPORT_GZIP_ABOVE
    res = runner._archive_gate(log, 1, 0, GateResult("parity", "pass", 1.0, "ok", report_path=str(big)))
    assert res.report_path.endswith("A1-C0-parity.json.gz")
    assert json.loads(gzip.decompress((repo / res.report_path).read_bytes())) == json.loads(big.read_text())

    small_dir = tmp_path / "small"
    small_dir.mkdir()
    small = _report(small_dir, 3)
    res = runner._archive_gate(log, 2, 0, GateResult("parity", "pass", 1.0, "ok", report_path=str(small)))
    assert res.report_path.endswith("A2-C0-parity.json")
    assert (repo / res.report_path).read_text() == small.read_text()


def test_dashboard_reads_a_compressed_report_named_without_gz(tmp_path):
    run_dir = tmp_path / "logs" / "runs" / "r1"
    (run_dir / "reports").mkdir(parents=True)
    data = {"rows": [{"op": "add", "dtype": "float32", "status": "fail", "max_err": 1.0, "tol": 1e-6}]}
    (run_dir / "reports" / "A1-C0-parity.json.gz").write_bytes(gzip.compress(json.dumps(data).encode()))
    gate = dm.GateView.from_dict({"name": "parity", "status": "fail",
                                  "report_path": "logs/runs/r1/reports/A1-C0-parity.json"})
    row = dm.gate_row(tmp_path, run_dir, (1, 0), gate)
    assert row.report_file is not None and row.report_file.name == "A1-C0-parity.json.gz"
    got, problem = dm.read_json(row.report_file)
    assert problem is None and got == data
