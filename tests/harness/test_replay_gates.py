"""Note [Replay compares the failing gate]: the replay compares where a recorded failure failed, not only that it
failed; "other gate" is counted apart and fails the replay only with --strict-gates; old recordings that name no
gate are compared by verdict, and the report says so."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.agents.replay_agent import recorded_failed_gate, recordings
from harness.runner import (MATCH, MISMATCH, OTHER_GATE, Runner, RunOptions, compare_with_recording,
                            describe_comparison, replay_spec)
from harness.specs import find_spec
from tests.harness.toy_repo import make_toy_repo, toy_runtime_diff

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}  # the CLI of this checkout, not of whichever one is installed


@pytest.fixture()
def recorded(tmp_path: Path) -> tuple[Path, Path]:
    """A toy repository with one run: attempt 1 fails at pytest (a - b), attempt 2 passes and lands."""
    repo = make_toy_repo(tmp_path / "repo")
    opts = RunOptions(agent="scripted", progress=False, nop_check=False,
                      agent_options={"script": [toy_runtime_diff("return a - b"), toy_runtime_diff("return a + b")]})
    out = Runner(repo).run(find_spec(repo, "01-toy"), opts)
    assert out.status == "accepted", out.reason
    return repo, Path(out.run_dir)


def counts(**kw: int) -> dict[str, int]:
    """A replay's ``counts``: every key, 0 unless given (runs of these tests record their protected files, so
    their recordings count under "manifest")."""
    return {MATCH: 0, OTHER_GATE: 0, MISMATCH: 0, "verdict_only": 0, "not_reproducible": 0, "validator_fixed": 0,
            "annotated": 0, "manifest": 0, **kw}


def rewrite_attempt_end(run_dir: Path, attempt: int, edit) -> None:
    events = run_dir / "events.jsonl"
    lines = []
    for line in events.read_text().splitlines():
        e = json.loads(line)
        if e["type"] == "attempt_end" and e["attempt"] == attempt:
            edit(e)
        lines.append(json.dumps(e))
    events.write_text("\n".join(lines) + "\n")


def vt_replay(repo: Path, *extra: str) -> tuple[int, dict]:
    p = subprocess.run([sys.executable, "-m", "harness.cli", "run", "01-toy", "--agent", "replay", "--json", *extra],
                       cwd=repo, capture_output=True, text=True, timeout=600, env=ENV)
    return p.returncode, json.loads(p.stdout)


def test_compare_with_recording_all_cases():
    assert compare_with_recording("pass", None, "pass", None)["result"] == MATCH
    assert compare_with_recording("fail", "parity", "fail", "parity")["result"] == MATCH
    moved = compare_with_recording("fail", "parity", "fail", "pytest")
    assert moved["result"] == OTHER_GATE and moved["match"] is False
    assert describe_comparison(moved) == "match, other gate (recorded parity, now pytest)"
    assert compare_with_recording("rejected", "apply", "rejected", "apply")["result"] == MATCH
    assert compare_with_recording("rejected", "apply", "fail", "build")["result"] == OTHER_GATE
    assert compare_with_recording("fail", "pytest", "pass", None)["result"] == MISMATCH
    assert compare_with_recording("pass", None, "fail", "build")["result"] == MISMATCH
    assert describe_comparison(compare_with_recording("pass", None, "fail", "build")).startswith("MISMATCH")
    old = compare_with_recording("fail", None, "fail", "pytest")
    assert old["result"] == MATCH and old["gate_compared"] is False
    assert "verdict only" in describe_comparison(old)


def test_recorded_failed_gate_sources():
    assert recorded_failed_gate({"status": "pass", "gates": [{"name": "build", "status": "pass"}]}) is None
    assert recorded_failed_gate({"status": "fail", "failed_gate": "parity", "gates": []}) == "parity"
    gates = [{"name": "build", "status": "pass"}, {"name": "ctest", "status": "error"}, {"name": "pytest"}]
    assert recorded_failed_gate({"status": "fail", "gates": gates}) == "ctest"  # before the field existed
    assert recorded_failed_gate({"status": "rejected"}) is None  # an old pre-gate rejection: unknown


def test_runs_record_the_failing_gate_and_replay_matches_it(recorded):
    repo, run_dir = recorded
    ends = [json.loads(l) for l in (run_dir / "events.jsonl").read_text().splitlines()]
    ends = [e for e in ends if e["type"] == "attempt_end"]
    assert [(e["status"], e["failed_gate"]) for e in ends] == [("fail", "pytest"), ("pass", None)]
    assert [r.recorded_gate for r in recordings(repo, "01-toy")] == ["pytest", None]
    out = replay_spec(Runner(repo), find_spec(repo, "01-toy"), progress=False)
    assert out.status == "ok", out.reason
    assert [(d["recorded_gate"], d["today_gate"], d["result"]) for d in out.details] == [
        ("pytest", "pytest", MATCH), (None, None, MATCH)]
    assert out.extra["counts"] == counts(match=2, manifest=2)


def test_failure_at_another_gate_is_reported_counted_and_strict_fails(recorded):
    repo, run_dir = recorded
    # as if attempt 1 had been rejected by the build gate when it was recorded; today it fails at pytest
    rewrite_attempt_end(run_dir, 1, lambda e: e.update(failed_gate="build"))
    code, out = vt_replay(repo)
    assert code == 0, out
    assert out["status"] == "ok" and out["counts"] == counts(match=1, other_gate=1, manifest=2)
    first = out["details"][0]
    assert (first["result"], first["recorded_gate"], first["today_gate"]) == (OTHER_GATE, "build", "pytest")
    assert "recorded build, now pytest" in out["reason"]
    code, out = vt_replay(repo, "--strict-gates")
    assert code == 5, out
    assert out["status"] == "mismatch" and out["strict_gates"] is True
    assert "match, other gate (recorded build, now pytest)" in out["reason"]
    # the human report names the comparison per recording and counts them
    p = subprocess.run([sys.executable, "-m", "harness.cli", "run", "01-toy", "--agent", "replay"], cwd=repo,
                       capture_output=True, text=True, timeout=600, env=ENV)
    assert p.returncode == 0, p.stderr
    assert "recorded fail at build, today fail at pytest -> match, other gate (recorded build, now pytest)" \
        in p.stdout
    assert "1 match, 1 match at another gate, 0 mismatch, 0 not reproducible" in p.stdout


def test_old_recording_without_gate_names_is_compared_by_verdict(recorded):
    repo, run_dir = recorded

    def strip(e: dict) -> None:
        e.pop("failed_gate")
        e["gates"] = []

    rewrite_attempt_end(run_dir, 1, strip)
    code, out = vt_replay(repo, "--strict-gates")
    assert code == 0, out
    assert out["details"][0]["gate_compared"] is False and out["details"][0]["result"] == MATCH
    assert out["counts"]["verdict_only"] == 1
    assert "compared by verdict only" in out["reason"]


def test_recorded_failure_that_passes_today_is_a_mismatch(recorded):
    repo, run_dir = recorded
    # the recorded failing proposal now says "a + b": it passes today although the recording says pytest failed
    events = run_dir / "events.jsonl"
    events.write_text(events.read_text().replace("return a - b", "return b + a"))
    code, out = vt_replay(repo)
    assert code == 5, out
    assert out["counts"][MISMATCH] == 1 and out["details"][0]["result"] == MISMATCH
    assert "recorded fail, today pass" in out["reason"]


def test_select_recordings_terms_and_errors():
    from harness.agents.replay_agent import select_recordings
    from harness.interfaces import HarnessError

    class R:
        def __init__(self, verdict):
            self.recorded_verdict = verdict

    recs = [R("pass"), R("fail"), R("pass"), R("rejected"), R("pass"), R("pass")]
    pick = lambda sel: [i for i, _ in select_recordings(recs, sel)]  # noqa: E731
    assert pick(None) == pick("all") == [1, 2, 3, 4, 5, 6]
    assert pick("first,failed,last") == [1, 2, 4, 6]
    assert pick("last:2") == [5, 6] and pick("last:99") == [1, 2, 3, 4, 5, 6]
    assert pick("2-3, 3, 5") == [2, 3, 5]  # sorted, each once
    assert select_recordings(recs, "failed")[0][1] is recs[1]
    for bad, message in [("7", "recording 7 does not exist (the spec has 6)"), ("0", "recording 0 does not exist"),
                         ("4-9", "range 4-9 is outside 1-6"), ("newest", "cannot read 'newest'"),
                         ("last:0", "cannot read 'last:0'"), ("3-1", "range 3-1 is outside")]:
        with pytest.raises(HarnessError, match=message.replace("(", r"\(").replace(")", r"\)")):
            select_recordings(recs, bad)


def test_replay_of_selected_recordings_keeps_their_numbers(recorded):
    repo, _ = recorded
    code, out = vt_replay(repo, "--recordings", "last")
    assert code == 0, out
    assert [d["recording"] for d in out["details"]] == [2] and out["recordings"] == [2] and out["recordings_of"] == 2
    assert "1 recorded proposal(s) re-gated (of 2: last)" in out["reason"]
    assert out["counts"] == counts(match=1, manifest=1)
    p = subprocess.run([sys.executable, "-m", "harness.cli", "run", "01-toy", "--agent", "replay", "--recordings",
                        "failed"], cwd=repo, capture_output=True, text=True, timeout=600, env=ENV)
    assert p.returncode == 0, p.stderr
    assert "recording 1 (entry" in p.stdout and "recording 2 (entry" not in p.stdout
    assert "(1 of 2 recordings selected: 1)" in p.stdout


def test_replay_with_a_bad_selection_is_a_clear_error_that_writes_no_run(recorded):
    repo, _ = recorded
    replays = repo / "logs" / "replays"
    before = sorted(replays.iterdir()) if replays.exists() else []
    p = subprocess.run([sys.executable, "-m", "harness.cli", "run", "01-toy", "--agent", "replay", "--recordings",
                        "5"], cwd=repo, capture_output=True, text=True, timeout=600, env=ENV)
    assert p.returncode != 0 and "recording 5 does not exist (the spec has 2)" in (p.stderr + p.stdout)
    assert (sorted(replays.iterdir()) if replays.exists() else []) == before


def test_replay_rebuilds_old_ledger_states_a_fresh_clone_lacks(recorded, tmp_path):
    """A clone holds only reachable objects: an old entry's result tree, which judges a recording of that entry
    (Note [Replay judges with the tests of its time]), is not in it. The replay rebuilds it from the ledger (it
    raised "cannot materialise tree" in a fresh clone of this repository)."""
    repo, _ = recorded
    entry_tree = json.loads(next((repo / "logs" / "ledger").glob("0001-*.json")).read_text())["result_tree"]
    subprocess.run(["git", "-C", str(repo), "add", "-A", "logs"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m",
                    "ledger and run logs; generated_runtime/ left at its first state"], check=True)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-local", str(repo), str(clone)], check=True)
    has = subprocess.run(["git", "-C", str(clone), "cat-file", "-e", entry_tree], capture_output=True)
    assert has.returncode != 0, "the clone should not have the old ledger state yet"
    code, out = vt_replay(clone, "--recordings", "first")
    assert code == 0, out
    assert out["counts"][MISMATCH] == 0 and [d["recording"] for d in out["details"]] == [1]
