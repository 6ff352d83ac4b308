"""Ctrl-C during a gate, the CLI's exit codes and --json, resume, parallel candidates and reproduce."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import gitops
from harness.ledger import Ledger
from tests.harness.toy_repo import make_toy_repo, toy_runtime_diff, wait_until


def vt(repo: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=repo, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    return make_toy_repo(tmp_path / "repo")


def write_script(repo: Path, steps: list) -> Path:
    path = repo.parent / "script.json"
    path.write_text(json.dumps(steps))
    return path


@pytest.mark.parametrize("candidates", [1, 2])
def test_ctrl_c_during_gate_leaves_ledger_and_tree_untouched(repo: Path, candidates: int):
    # the candidate's package sleeps at import, so the pytest gate is running when we interrupt
    slow = toy_runtime_diff("return a + b", prelude="import time; time.sleep(60)")
    script = write_script(repo, [slow] * candidates)
    before = gitops.runtime_tree_hash(repo)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "01-toy", "--agent", "scripted",
                             "--script", str(script), "--no-nop-check", "--json", "--candidates", str(candidates)],
                            cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs = repo / "logs" / "runs"

    def build_done() -> bool:  # the build gate passed, so pytest is running
        events = list(runs.glob("*/events.jsonl"))
        return bool(events) and '"name": "build"' in events[0].read_text()

    wait_until(build_done, proc, "the build gate never finished", every=0.5)
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    t_int = time.monotonic()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert time.monotonic() - t_int < 30  # the gates were stopped, not waited for (the import sleeps 60 s)
    summary = json.loads(out)
    assert summary["status"] == "interrupted"
    assert Ledger(repo).entries() == []
    assert gitops.runtime_tree_hash(repo) == before
    assert not list((repo / ".vt" / "worktrees").glob("slot-*"))
    # no process of the gate survives (the sleeping import)
    left = subprocess.run(["pgrep", "-f", str(repo / ".vt")], capture_output=True, text=True).stdout.split()
    assert left == []


def test_cli_exit_codes_and_json(repo: Path):
    r = vt(repo, "specs", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["specs"][0]["state"] == "pending"
    (repo / "specs" / "02-bad.md").write_text("---\nid: 02-bad\ntitle: x\ngates: [nonsense]\n---\n")
    r = vt(repo, "specs", "check")
    assert r.returncode == 2 and "02-bad.md: field 'gates[0]': unknown gate 'nonsense'" in r.stdout
    (repo / "specs" / "02-bad.md").unlink()
    r = vt(repo, "run", "01-toy", "--agent", "nosuch")
    assert r.returncode == 2 and "unknown agent backend" in r.stderr
    r = vt(repo, "run", "01-toy")  # replay of a spec with no recording
    assert r.returncode == 2 and "no recorded proposals" in r.stderr
    script = write_script(repo, [toy_runtime_diff("return a - b")])
    r = vt(repo, "run", "01-toy", "--agent", "scripted", "--script", str(script), "--max-attempts", "1",
           "--no-nop-check", "--json")
    assert r.returncode == 1, r.stderr
    assert json.loads(r.stdout)["status"] == "rejected"
    # the acceptance test a person wrote is not in the (empty) ledger yet: reproduce --check says so
    r = vt(repo, "reproduce", "--check", "--json")
    assert r.returncode == 5 and json.loads(r.stdout)["entries"] == 0
    assert "differs from the replay" in json.loads(r.stdout)["message"]


def test_resume_continues_after_interruption(repo: Path):
    # attempt 1 fails, then the agent errors (a provider outage): resume with a new script that succeeds
    script = write_script(repo, [toy_runtime_diff("return a - b"), {"fault": "error"}])
    r = vt(repo, "run", "01-toy", "--agent", "scripted", "--script", str(script), "--no-nop-check", "--json")
    assert r.returncode == 2, r.stderr
    run_id = json.loads(r.stdout)["run_id"]
    script2 = write_script(repo, [toy_runtime_diff("return a + b")])
    r = vt(repo, "run", "--resume", run_id, "--agent", "scripted", "--script", str(script2), "--json")
    assert r.returncode == 0, (r.stdout, r.stderr)
    out = json.loads(r.stdout)
    assert out["run_id"] == run_id and out["ledger_seq"] == 1
    summary = json.loads((repo / "logs" / "runs" / run_id / "run.json").read_text())
    assert [a["attempt"] for a in summary["attempts"]] == [1, 2]


def test_parallel_candidates_first_passing_wins(repo: Path):
    script = write_script(repo, [toy_runtime_diff("return a - b"), toy_runtime_diff("return a + b")])
    r = vt(repo, "run", "01-toy", "--agent", "scripted", "--script", str(script), "--candidates", "2",
           "--max-attempts", "1", "--no-nop-check", "--json")
    assert r.returncode == 0, (r.stdout, r.stderr)
    summary = json.loads((Path(json.loads(r.stdout)["run_dir"]) / "run.json").read_text())
    assert sorted(a["status"] for a in summary["attempts"]) == ["fail", "pass"]


def test_reproduce_into_folder_and_from_specs(repo: Path, tmp_path: Path):
    script = write_script(repo, [toy_runtime_diff("return a - b"), toy_runtime_diff("return a + b")])
    assert vt(repo, "run", "01-toy", "--agent", "scripted", "--script", str(script), "--no-nop-check").returncode == 0
    out = tmp_path / "replayed"
    r = vt(repo, "reproduce", "--out", str(out), "--gates", "--json")
    assert r.returncode == 0, (r.stdout, r.stderr)
    data = json.loads(r.stdout)
    assert data["final_tree"] == gitops.runtime_tree_hash(repo) and data["entries"][0]["gates_ok"]
    # regenerate from the specs alone, with the recorded proposals as the agent
    r = vt(repo, "reproduce", "--from-specs", "--agent", "replay", "--out", str(tmp_path / "regen"), "--json")
    assert r.returncode == 0, (r.stdout, r.stderr)
    data = json.loads(r.stdout)
    assert data["equals_current"] is True
