"""The sandbox: no process outlives a gate, timeouts kill the whole tree, secrets never reach the command or log."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from validators.sandbox import (check_result_folder, new_result_folder, resolve_sandbox_user, run_sandboxed)

DAEMON = """\
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open(sys.argv[1], "w").write(str(os.getpid()))
        while True:
            time.sleep(0.05)
    os._exit(0)
while not os.path.exists(sys.argv[1]) or not open(sys.argv[1]).read():
    time.sleep(0.01)
print("launched")
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_double_forked_setsid_daemon_is_dead_when_run_returns(tmp_path):
    script, pidfile = tmp_path / "daemon.py", tmp_path / "pid"
    script.write_text(DAEMON)
    result = run_sandboxed([sys.executable, str(script), str(pidfile)], cwd=tmp_path, env=dict(os.environ),
                           timeout_s=30, log_path=tmp_path / "log")
    assert result.returncode == 0 and not result.timed_out
    assert result.killed_leftovers == 1
    assert not _alive(int(pidfile.read_text()))
    assert "launched" in (tmp_path / "log").read_text()


def test_timeout_kills_the_whole_group(tmp_path):
    marker = tmp_path / "children"
    cmd = ["sh", "-c", f"(sleep 60; echo late >> {marker}) & (sleep 60; echo late >> {marker}) & "
                       f"echo $$ > {tmp_path}/shell; sleep 60"]
    start = time.monotonic()
    result = run_sandboxed(cmd, cwd=tmp_path, env=dict(os.environ), timeout_s=1, log_path=tmp_path / "log")
    assert result.timed_out
    assert time.monotonic() - start < 15
    assert not _alive(int((tmp_path / "shell").read_text()))
    time.sleep(0.2)
    assert not marker.exists()


def test_secret_is_absent_from_the_command_and_redacted_in_the_log(tmp_path, monkeypatch):
    secret = "sk-testsecret-0123456789abcdef"
    monkeypatch.setenv("MY_SERVICE_API_KEY", secret)
    (tmp_path / "leak.txt").write_text(f"found {secret} in a file\n")
    cmd = ["sh", "-c", "echo \"env=[$MY_SERVICE_API_KEY]\"; cat leak.txt"]
    result = run_sandboxed(cmd, cwd=tmp_path, env=dict(os.environ), timeout_s=30, log_path=tmp_path / "log")
    log = (tmp_path / "log").read_text()
    assert result.returncode == 0
    assert "env=[]" in log
    assert secret not in log and "found [REDACTED] in a file" in log


def test_missing_command_reports_an_error(tmp_path):
    result = run_sandboxed(["no-such-command-vt"], cwd=tmp_path, env={}, timeout_s=5, log_path=tmp_path / "log")
    assert result.returncode == 127 and "no-such-command-vt" in result.error


def test_result_folder_checks(tmp_path):
    folder, started = new_result_folder(tmp_path)
    assert check_result_folder(folder, "r.xml", started, time.time_ns()) == "result file r.xml was not written"
    (folder / "r.xml").write_text("x")
    assert check_result_folder(folder, "r.xml", started, time.time_ns() + 10**9) is None
    assert "modified after" in check_result_folder(folder, "r.xml", started, started - 10**9)
    (folder / "other.xml").write_text("x")
    assert "other.xml" in check_result_folder(folder, "r.xml", started, time.time_ns())
    second, _ = new_result_folder(tmp_path)
    assert second != folder


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
def test_sandbox_user_drop(tmp_path):
    try:
        user = resolve_sandbox_user({"sandbox_user": "nobody"}, {})
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"no 'nobody' user here: {e}")
    shared = Path("/tmp") / f"vt-sandbox-test-{os.getpid()}"
    shared.mkdir(mode=0o755)
    try:
        os.chmod(shared, 0o755)
        protected = shared / "root-only"
        protected.mkdir(mode=0o755)
        cmd = ["sh", "-c", f"id -u; touch {protected}/forged && echo WROTE"]
        result = run_sandboxed(cmd, cwd=shared, env=dict(os.environ), timeout_s=30, log_path=shared / "log",
                               user=user)
        log = (shared / "log").read_text()
        assert f"\n{user[0]}\n" in log
        assert "\nWROTE" not in log and not (protected / "forged").exists()
        assert "Permission denied" in log
        assert result.returncode != 0
    finally:
        import shutil
        shutil.rmtree(shared)


def test_wait_exit_wakes_on_exit_and_times_out():
    """Note [Waiting without polling]: the wait returns the exit code as the process exits, raises TimeoutExpired
    at the timeout, and accepts timeouts past what poll() takes."""
    import subprocess

    from validators.sandbox import wait_exit

    p = subprocess.Popen([sys.executable, "-c", "import sys, time; time.sleep(0.3); sys.exit(3)"])
    assert wait_exit(p, 1e9) == 3
    p = subprocess.Popen(["sleep", "5"])
    t = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        wait_exit(p, 0.3)
    assert 0.25 < time.monotonic() - t < 3
    p.kill()
    assert wait_exit(p, 10) == -9
    assert wait_exit(p, 0) == -9  # already reaped: the fallback answers
