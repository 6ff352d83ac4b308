"""The data model: specs, ledger and run logs -> page data, including every broken input it must survive."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from harness.dashboard import data_model as dm

from .log_fixtures import attempt_summary, gate, write_ledger_entry, write_run, write_spec


def test_empty_repository_reports_what_is_missing(tmp_path):
    model = dm.load_model(tmp_path)
    assert model.specs == [] and model.ledger == [] and model.runs == []
    text = " | ".join(model.problems)
    assert "specs/ is missing" in text and "logs/ledger/ is missing" in text and "logs/runs/ is missing" in text


def test_empty_log_folders(tmp_path):
    for sub in ("specs", "logs/ledger", "logs/runs"):
        (tmp_path / sub).mkdir(parents=True)
    model = dm.load_model(tmp_path)
    assert model.runs == [] and model.ledger == [] and model.totals == []
    assert any("no spec files" in p for p in model.problems)


def test_spec_states_follow_the_ledger(demo_repo):
    repo, _ = demo_repo
    states = {s.id: (s.state, s.blocked_by) for s in dm.load_model(repo).specs}
    assert states["01-core"] == ("accepted", [])
    assert states["02-ops"] == ("accepted", [])
    assert states["03-autograd"] == ("pending", [])
    assert states["04-cuda"] == ("blocked", ["03-autograd"])
    assert states["05-extra"] == ("blocked", ["99-missing"])
    assert states["99-missing"][0] == "missing"


def test_bad_spec_files_become_notes(tmp_path):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "01-nofront.md").write_text("# just text\n")
    (tmp_path / "specs" / "02-badyaml.md").write_text("---\nid: [unclosed\n---\n")
    (tmp_path / "specs" / "03-list.md").write_text("---\n- a\n- b\n---\n")
    write_spec(tmp_path, "04-ok", gates=["build", {"name": "parity", "options": {"dtypes": ["f32"]}}, {"perf": {}}])
    model = dm.load_model(tmp_path)
    by_file = {s.file: s for s in model.specs}
    assert by_file["01-nofront.md"].problem == "no YAML front matter"
    assert by_file["02-badyaml.md"].problem.startswith("bad YAML front matter")
    assert by_file["03-list.md"].problem == "front matter is not a mapping"
    assert by_file["04-ok.md"].gates == ["build", "parity", "perf"]
    assert sum("spec 0" in p for p in model.problems) == 3


def test_specs_readme_is_not_a_spec(tmp_path):
    write_spec(tmp_path, "01-ok", gates=["build"])
    (tmp_path / "specs" / "README.md").write_text("# Specs\nhow to write one\n")
    model = dm.load_model(tmp_path)
    assert [s.file for s in model.specs] == ["01-ok.md"]
    assert not any("README" in p for p in model.problems)


def test_ledger_entries_sorted_and_malformed_ones_noted(tmp_path):
    write_ledger_entry(tmp_path, 2, "b", cost_usd=None)
    write_ledger_entry(tmp_path, 1, "a")
    (tmp_path / "logs/ledger/0003-c.json").write_text('{"seq": 3, "spec_id": ')  # half-written
    (tmp_path / "logs/ledger/0004-d.json").write_text('["not", "an", "object"]')
    (tmp_path / "logs/ledger/0001-a.patch").unlink()
    model = dm.load_model(tmp_path)
    assert [e.seq for e in model.ledger] == [1, 2]
    assert model.ledger[1].usage.cost_usd is None  # unknown stays unknown, never 0
    assert model.ledger[0].problem == "patch file 0001-a.patch is missing"
    text = " | ".join(model.problems)
    assert "0003-c.json: unreadable" in text and "0004-d.json" in text


def test_finished_run_summary(demo_repo):
    repo, ids = demo_repo
    run = dm.load_model(repo).run(ids["good"])
    assert run.status == "accepted" and run.ended and not run.half_written_events
    assert run.attempt_count == 2 and run.reason == "all gates passed on attempt 2"


def test_half_written_run_is_crashed(demo_repo):
    repo, ids = demo_repo
    model = dm.load_model(repo)
    run = model.run(ids["crashed"])
    assert run.status == "crashed" and not run.ended and run.half_written_events
    assert "no run_end event" in run.reason and "mid-line" in run.reason
    detail = dm.load_run_detail(model, run)
    assert detail.end_event is None
    assert any("half-written" in p for p in run.problems)


def test_fresh_half_written_line_is_a_write_in_flight(tmp_path):
    run_dir = write_run(tmp_path, "r0", "s", ended=False)
    with open(run_dir / "events.jsonl", "a") as fh:
        fh.write('{"ts": "2026-01-01T00:00:09Z", "type": "gate", "att')
    now = time.time()
    run = dm.load_model(tmp_path, now=now).runs[0]
    assert run.status == "running" and run.half_written_events
    later = dm.load_model(tmp_path, now=now + dm.HALF_LINE_GRACE_S + 5).runs[0]
    assert later.status == "crashed" and "mid-line" in later.reason


def test_running_run_is_not_crashed_until_stale(tmp_path):
    run_dir = write_run(tmp_path, "r1", "s", ended=False)
    now = time.time()
    assert dm.load_model(tmp_path, now=now).runs[0].status == "running"
    later = now + dm.RUN_STALE_AFTER_S + 60
    stale = dm.load_model(tmp_path, now=later).runs[0]
    assert stale.status == "crashed" and "last event" in stale.reason
    assert (run_dir / "run.json").is_file()


def test_run_without_run_json_is_built_from_events(tmp_path):
    run_dir = tmp_path / "logs/runs/r2"
    gates = [gate("build", "fail", "boom", run_dir=run_dir, repo=tmp_path, log="log text\n")]
    write_run(tmp_path, "r2", "s", attempts=[attempt_summary(1, gates)], write_run_json=False, ended=False,
              half_written_tail=True)
    model = dm.load_model(tmp_path)
    run = model.runs[0]
    assert not run.has_run_json and run.status == "crashed"
    assert any("run.json" in p and "missing" in p for p in run.problems)
    detail = dm.load_run_detail(model, run)
    assert len(detail.attempts) == 1 and detail.attempts[0].from_events_only
    assert detail.attempts[0].gates[0].gate.summary == "boom"
    assert detail.attempts[0].gates[0].log_file == (run_dir / "gates/A1-C1-build.log").resolve()
    assert "+new r2" in detail.attempts[0].proposal_text


def test_garbage_run_json_does_not_crash(tmp_path):
    run_dir = tmp_path / "logs/runs/r3"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text('{"attempts": "nope", "usage": [1], "status": 5, "model": 3}')
    model = dm.load_model(tmp_path, now=time.time() + 10**6)
    run = model.runs[0]
    assert run.attempts == [] and run.model is None and run.status == "crashed"
    assert dm.load_run_detail(model, run).attempts == []


def test_gate_paths_outside_the_repository_are_not_followed(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("do not publish")
    repo = tmp_path / "repo"
    bad = gate("build", "fail")
    bad["log_path"] = str(outside)
    bad["report_path"] = "../secret.txt"
    write_run(repo, "r4", "s", attempts=[attempt_summary(1, [bad])])
    model = dm.load_model(repo)
    row = dm.load_run_detail(model, model.runs[0]).attempts[0].gates[0]
    assert row.log_file is None and row.report_file is None


def test_symlinked_logs_pointing_outside_are_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "key.txt").write_text("secret")
    repo = tmp_path / "repo"
    run_dir = repo / "logs/runs/r5"
    write_run(repo, "r5", "s", attempts=[attempt_summary(1, [gate("build", "fail"), gate("pytest", "fail")])])
    (run_dir / "gates/A1-C1-build.log").symlink_to(outside / "key.txt")
    (run_dir / "reports").rmdir()
    (run_dir / "reports").symlink_to(outside)
    (outside / "A1-C1-pytest.json").write_text("{}")
    (run_dir / "gates/A1-C1-pytest.log").write_text("inside, fine\n")
    model = dm.load_model(repo)
    rows = dm.load_run_detail(model, model.runs[0]).attempts[0].gates
    assert rows[0].log_file is None
    assert rows[1].report_file is None and rows[1].log_file is not None


def test_huge_log_is_truncated_fast(tmp_path):
    path = tmp_path / "huge.log"
    with open(path, "wb") as fh:
        fh.write(b"FIRST LINE\n" + b"x" * (40 * 1024 * 1024) + b"\nLAST LINE\n")
    start = time.perf_counter()
    log = dm.read_log(path, tmp_path)
    elapsed = time.perf_counter() - start
    assert log.truncated and log.size > 40 * 1024 * 1024
    assert log.text.startswith("FIRST LINE") and log.text.rstrip().endswith("LAST LINE")
    assert "bytes cut by the dashboard" in log.text
    assert len(log.text) < dm.LOG_TRUNCATE_BYTES + 1024
    assert elapsed < 1.0, elapsed


def test_totals_per_agent_and_model(demo_repo):
    repo, _ = demo_repo
    totals = {(t.agent, t.model): t for t in dm.load_model(repo).totals}
    openai = totals[("openai", "gpt-x")]
    assert (openai.runs, openai.accepted_runs, openai.ledger_entries) == (2, 1, 1)  # accepted + crashed run
    assert openai.acceptance_rate == 0.5 and openai.attempts_per_accepted == 2.0
    assert openai.cost_per_accepted == 1.0  # two runs at $0.50 each over one accepted diff
    claude = totals[("anthropic", "claude-x")]
    assert claude.acceptance_rate == 0.0 and claude.usage.cost_usd is None and claude.cost_per_accepted is None
    replay = totals[("replay", None)]  # a ledger entry without a run log: its own accepted run, cost unknown
    assert replay.accepted_runs == 1 and replay.usage.cost_usd is None


def test_reports_missing_or_unknown(tmp_path, demo_repo):
    repo, ids = demo_repo
    assert dm.report_kind("custom", {"curves": {}}) == "training"
    assert dm.report_kind("custom", {"whatever": 1}) == "other"
    model = dm.load_model(repo)
    rows = dm.perf_over_ledger(model)
    assert [(e.seq, r) for e, r in rows] == [(2, {"step_time": 1.4, "matmul": 0.95})]
    report = repo / "logs/runs" / ids["good"] / "reports/A2-C1-training.json"
    report.write_text(json.dumps({"curves": "broken"}))
    os.utime(report)
    assert dm.read_json(report)[1] is None
    report.unlink()
    assert "missing" in dm.read_json(report)[1]


def test_a_run_in_progress_marks_its_pending_spec_running(demo_repo):
    repo, _ = demo_repo
    write_run(repo, "20990101-000000-03-autograd-run", "03-autograd", ended=False, attempts=[])
    write_run(repo, "20990101-000001-02-ops-run", "02-ops", ended=False, attempts=[])
    states = {s.id: s.state for s in dm.load_model(repo, now=time.time()).specs}
    assert states["03-autograd"] == "running"  # pending before the run
    assert states["02-ops"] == "accepted"  # an accepted spec stays accepted while it runs again
    assert states["04-cuda"] == "blocked"
