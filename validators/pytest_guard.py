"""Trusted pytest plugin loaded by the pytest gate (``-p vt_pytest_guard``): just before pytest writes its JUnit
report, kill every other process of the sandbox, so a daemon a test left behind cannot overwrite the report between
pytest's write and pytest's exit (the sandbox wrapper kills whatever remains after exit).

The pytest gate copies this file and ``sandbox.py`` (as ``vt_sandbox``) into a fresh folder first on PYTHONPATH;
it imports nothing from the candidate. The wrapper's pid comes from ``VT_SANDBOX_ROOT_PID``.
"""
from __future__ import annotations

import os
import signal
import sys
import time

import pytest
from vt_sandbox import descendants


def _self_and_ancestors(root_pid: int) -> set[int]:
    keep, pid = {root_pid}, os.getpid()
    while pid > 1 and pid != root_pid:
        keep.add(pid)
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            break
        pid = int(stat[stat.rfind(")") + 2 :].split()[1])
    return keep


def _stop_xdist_workers(config) -> None:
    """With pytest-xdist (Note [Parallel pytest in the gate] in pytest_gate.py), shut the workers down the way xdist
    does at the end of its own sessionfinish, before the guard kills what is left: every test has reported by now,
    and a worker killed mid-shutdown would make xdist's later teardown fail or hang."""
    dsession = config.pluginmanager.getplugin("dsession")
    nodemanager = getattr(dsession, "nodemanager", None)
    if nodemanager is not None:
        nodemanager.teardown_nodes()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001 (pytest hook signature)
    root_pid = int(os.environ.get("VT_SANDBOX_ROOT_PID", "0") or 0)
    if root_pid <= 1:
        return
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: its siblings are not strays; the controller guards the report
    _stop_xdist_workers(session.config)
    keep = _self_and_ancestors(root_pid)
    killed: set[int] = set()
    end = time.monotonic() + 5.0
    while time.monotonic() < end:
        others = [pid for pid, state in descendants(root_pid) if pid not in keep and state != "Z"]
        if not others:
            break
        for pid in others:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.005)
    if killed:
        sys.stderr.write(f"[vt_pytest_guard] killed {len(killed)} stray processes before writing the report\n")
