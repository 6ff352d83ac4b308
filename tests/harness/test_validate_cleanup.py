"""Note [Validate leaves nothing behind]: `vt-agent validate` discards its gate work folder (.vt/work/RUN_ID) on
every exit path -- a verdict, a gate that raised, an unknown gate, Ctrl-C -- and keeps the gates' logs in the
validate log."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.interfaces import GateConfig, HarnessError
from harness.runner import Runner
from tests.harness.toy_repo import PYPROJECT, make_toy_repo, wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    repo = make_toy_repo(tmp_path / "repo")
    pkg = repo / "generated_runtime" / "vibetensor"
    pkg.mkdir()
    (repo / "generated_runtime" / "pyproject.toml").write_text(PYPROJECT)
    (pkg / "__init__.py").write_text("def add(a, b):\n    return a + b\n")
    return repo


def leftovers(repo: Path) -> list[str]:
    work = repo / ".vt" / "work"
    return sorted(p.name for p in work.iterdir()) if work.is_dir() else []


def validate_log(repo: Path) -> dict:
    [run_json] = (repo / ".vt" / "validate").glob("*/run.json")
    return json.loads(run_json.read_text())


GATES = [GateConfig("build"), GateConfig("pytest")]


def test_verdict_removes_the_work_folder_and_keeps_the_logs(repo: Path):
    out = Runner(repo).validate(None, GATES, progress=False)
    assert out.status == "ok", out.reason
    assert leftovers(repo) == []
    for g in out.details:  # the details point to the archived logs, which outlive the work folder
        assert (repo / g["log_path"]).is_file() and "/.vt/validate/" in "/" + g["log_path"], g
    assert validate_log(repo)["status"] == "ok"


def test_gate_that_raises_leaves_no_work_folder(repo: Path, monkeypatch):
    from validators.pytest_gate import PytestGate

    def boom(self, ctx):
        (Path(ctx.work_dir) / "half-written.txt").write_text("x")
        raise RuntimeError("a bug in the gate")

    monkeypatch.setattr(PytestGate, "run", boom)
    out = Runner(repo).validate(None, GATES, progress=False)
    assert out.status == "rejected" and "pytest: error" in out.reason
    assert leftovers(repo) == []
    crash = out.details[-1]
    assert "crashed: RuntimeError: a bug in the gate" in crash["summary"]
    assert "RuntimeError" in (repo / crash["log_path"]).read_text()  # the crash log was kept


def test_interrupt_inside_a_gate_leaves_no_work_folder(repo: Path, monkeypatch):
    from validators.pytest_gate import PytestGate

    def interrupted(self, ctx):
        (Path(ctx.work_dir) / "half-written.txt").write_text("x")
        raise KeyboardInterrupt

    monkeypatch.setattr(PytestGate, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Runner(repo).validate(None, GATES, progress=False)
    assert leftovers(repo) == []
    log = validate_log(repo)
    assert log["status"] == "interrupted" and [g["name"] for g in log["gates"]] == ["build"]
    assert not list((repo / ".vt" / "worktrees").glob("slot-*"))


def test_error_between_gates_leaves_no_work_folder(repo: Path):
    # the chain makes the first gate's folder, then refuses the unknown gate
    with pytest.raises(HarnessError, match="unknown gate"):
        Runner(repo).validate(None, [GateConfig("build"), GateConfig("nosuch")], progress=False)
    assert leftovers(repo) == []
    assert validate_log(repo)["status"] == "error"


def test_ctrl_c_of_the_cli_during_a_gate_leaves_no_work_folder(repo: Path):
    (repo / "generated_runtime" / "vibetensor" / "__init__.py").write_text(
        "import time\ntime.sleep(60)\n\n\ndef add(a, b):\n    return a + b\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "validate", "--gates", "build,pytest", "--json"],
                            cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: bool(list((repo / ".vt" / "work").glob("*/pytest/pytest.log"))), proc,
               "the pytest gate never started")  # its log exists in the work folder: pytest is running
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert leftovers(repo) == []
    assert validate_log(repo)["status"] == "interrupted"
