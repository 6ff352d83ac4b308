"""Run one gate command so that nothing it started outlives it, and nothing it wrote is trusted blindly.

Policy (used by every gate):
- The command runs under a small wrapper process (this file run as a script with ``python -I -S``, so the
  candidate's PYTHONPATH cannot hijack it). The wrapper makes itself a child subreaper (Linux prctl), starts the
  command in a new session, waits for it (up to the timeout), then SIGKILLs every remaining descendant -- double-
  forked ``setsid`` daemons included, because orphans are re-parented to the subreaper -- and reaps them. Only then
  does it exit and report. So every process a gate started is gone before its verdict is read. If the harness dies,
  the wrapper gets SIGTERM (parent-death signal) and cleans up the same way.
- The environment is always ``harness.secrets.scrubbed_env``; everything copied to the log is ``redact``-ed.
- Result files: the harness parses them itself (``validators.junit``) right after the wrapper exits.

Choice: nonce result folders by default; dropping to an unprivileged user only as an opt-in.
  Running the command as an unprivileged user (``VT_SANDBOX_USER``, only when the harness runs as root) is
  implemented (setgid/setuid in the wrapper's child before exec) but it cannot be the default: the sandbox user must
  be able to execute the Python interpreter and read the candidate tree, and the build, site, ccache and JUnit
  folders must be writable by it (gates hand those over with ``grant_to_user``). On the development machines
  Python lives under /root (mode 0700), so ``nobody`` cannot even start it; ``check_user_can_run`` detects that and
  the gate errors clearly instead of failing mysteriously. The JUnit folder must be writable by whoever runs pytest,
  so under a user drop it is still a nonce folder, owned by that user only during the run.
  Always on, with or without a user drop: JUnit goes to a fresh random-named folder created just before the run;
  any extra file there, a file older than the run, or a file modified after the command exited invalidates the
  result (``check_result_folder``); and a trusted pytest plugin (``validators.pytest_guard``) kills every other
  sandbox process just before pytest writes its report, so a daemon cannot overwrite it in the last milliseconds.
  Residual risk, stated plainly: code the candidate imports into the pytest process itself could patch pytest's
  reporting in memory; protected tests, ``--noconftest``, no plugin autoload and a trusted ini narrow that path,
  and the parity/training gates compare numbers out of process.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1
LOG_LIMIT_BYTES = 32 * 1024 * 1024  # a log past this is truncated (a runaway test must not fill the disk)
WRAPPER_GRACE_S = 30.0  # extra time the wrapper gets past the command's timeout to clean up


@dataclass
class SandboxResult:
    returncode: int
    timed_out: bool
    duration_s: float
    killed_leftovers: int  # processes still alive after the command exited (or timed out), killed by the wrapper
    child_exit_ns: int = 0  # wall clock (time.time_ns) when the command exited: result files must be older
    error: str | None = None  # the command could not start, or the wrapper itself failed


# ----------------------------------------------------------------------------------------------------------------
# Wrapper side (runs as ``python -I -S sandbox.py SPEC_JSON``): standard library only.


def _prctl(option: int, value: int) -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _process_table() -> list[tuple[int, int, str]]:
    """(pid, ppid, state) of every process visible in /proc."""
    table = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2 :].split()  # comm may contain spaces and parentheses
        if len(rest) >= 2:
            table.append((int(entry), int(rest[1]), rest[0]))
    return table


def descendants(root_pid: int) -> list[tuple[int, str]]:
    """(pid, state) of every descendant of root_pid, found through /proc's parent links."""
    children: dict[int, list[tuple[int, str]]] = {}
    for pid, ppid, state in _process_table():
        children.setdefault(ppid, []).append((pid, state))
    found, stack = [], [root_pid]
    while stack:
        for pid, state in children.get(stack.pop(), []):
            found.append((pid, state))
            stack.append(pid)
    return found


def kill_descendants(root_pid: int, deadline_s: float = 10.0) -> int:
    """SIGKILL and reap every descendant of root_pid (which must be a subreaper to catch orphans); returns how many
    live (non-zombie) processes it killed."""
    killed: set[int] = set()
    end = time.monotonic() + deadline_s
    while True:
        alive = descendants(root_pid)
        for pid, state in alive:
            if state != "Z":
                killed.add(pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0] != 0:
                pass
        except ChildProcessError:
            pass
        if not alive or time.monotonic() > end:
            return len(killed)
        time.sleep(0.005)


class _Interrupted(Exception):
    pass


def wait_exit(proc: subprocess.Popen, timeout: float) -> int:
    """proc.wait(timeout), woken by the exit itself.

    Note [Waiting without polling]: ``Popen.wait(timeout=...)`` polls, sleeping up to 50 ms between looks, so a
    gate's verdict came on average ~25 ms late at each of the two levels (wrapper and harness), and every gate
    paid it. A pidfd (Linux >= 5.3) becomes readable the moment the process exits; poll() on it sleeps until then
    or the timeout. Signals behave as before: a handler that raises (Ctrl-C, the wrapper's SIGTERM) interrupts the
    wait. Where pidfds are missing, the polling wait is used."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd_open (old kernel or Python), or the process is already reaped
        return proc.wait(timeout=timeout)
    try:
        import select

        poller = select.poll()
        poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while not poller.poll(min(max(0, int((deadline - time.monotonic()) * 1000)), 2**31 - 1)):
            if time.monotonic() >= deadline:  # (a long timeout is waited for in slices poll() accepts)
                raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(fd)
    return proc.wait()


def _raise_interrupted(signum, frame):  # noqa: ARG001 (signal handler signature)
    raise _Interrupted()


def _wrapper_main(spec_json: str) -> int:
    spec = json.loads(spec_json)
    me = os.getpid()
    subreaper = _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # the harness died: clean up and go
    signal.signal(signal.SIGTERM, _raise_interrupted)
    report = {"returncode": -1, "timed_out": False, "killed_leftovers": 0, "error": None, "subreaper": subreaper}
    os.environ["VT_SANDBOX_ROOT_PID"] = str(me)  # lets validators/pytest_guard.py find the other sandbox processes
    drop = {}
    if spec.get("uid") is not None:
        drop = {"user": spec["uid"], "group": spec["gid"], "extra_groups": []}
    try:
        proc = subprocess.Popen(spec["cmd"], stdin=subprocess.DEVNULL, stdout=1, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, **drop)
    except (OSError, subprocess.SubprocessError) as e:
        report.update(returncode=127, error=f"cannot start {spec['cmd'][0]!r}: {e}", child_exit_ns=time.time_ns())
        sys.stderr.write(json.dumps(report) + "\n")
        return 0
    try:
        report["returncode"] = wait_exit(proc, spec["timeout_s"])
    except (subprocess.TimeoutExpired, _Interrupted) as e:
        report["timed_out"] = isinstance(e, subprocess.TimeoutExpired)
        report["error"] = None if report["timed_out"] else "interrupted: the harness went away"
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        report["returncode"] = proc.wait()
    report["child_exit_ns"] = time.time_ns()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # finish the clean-up even if told to stop now
    report["killed_leftovers"] = kill_descendants(me)
    if not subreaper:  # no subreaper (not Linux?): at least the command's own process group is gone
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    sys.stderr.write(json.dumps(report) + "\n")
    return 0


# ----------------------------------------------------------------------------------------------------------------
# Harness side.


def resolve_sandbox_user(options: dict, env: dict[str, str]) -> tuple[int, int] | None:
    """(uid, gid) to drop to, or None. Configured by option ``sandbox_user`` or env ``VT_SANDBOX_USER``; honoured
    only when the harness runs as root (otherwise it already runs unprivileged)."""
    from harness.interfaces import HarnessError

    name = options.get("sandbox_user") or env.get("VT_SANDBOX_USER") or os.environ.get("VT_SANDBOX_USER")
    if not name or os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise HarnessError(f"sandbox user {name!r} (VT_SANDBOX_USER) does not exist on this machine") from None
    if entry.pw_uid == 0:
        raise HarnessError(f"sandbox user {name!r} is root: name an unprivileged user such as 'nobody'")
    return entry.pw_uid, entry.pw_gid


def grant_to_user(paths: list[Path], user: tuple[int, int] | None) -> None:
    """Make paths (recursively) owned by the sandbox user so the command can write them; no-op without a user."""
    if user is None:
        return
    for top in paths:
        top.mkdir(parents=True, exist_ok=True)
        os.chown(top, *user)
        for dirpath, dirnames, filenames in os.walk(top):
            for name in dirnames + filenames:
                os.lchown(os.path.join(dirpath, name), *user)


def reclaim_from_user(path: Path) -> None:
    """Give a folder back to the harness's user (after the sandbox user's processes are all dead)."""
    os.chown(path, os.geteuid(), os.getegid())
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), os.geteuid(), os.getegid())


def check_user_can_run(user: tuple[int, int], env: dict[str, str], log_path: Path) -> str | None:
    """None when the sandbox user can start this Python; else a message saying why not."""
    res = run_sandboxed([sys.executable, "-c", "pass"], cwd=Path("/"), env=env, timeout_s=30,
                        log_path=log_path, user=user)
    if res.returncode == 0:
        return None
    return (f"sandbox user uid {user[0]} cannot run {sys.executable} (rc {res.returncode}; e.g. it lives under a "
            f"0700 home): install Python where that user can read it, or unset VT_SANDBOX_USER")


def run_sandboxed(cmd: list[str], cwd: Path, env: dict[str, str], timeout_s: float, log_path: Path,
                  user: tuple[int, int] | None = None) -> SandboxResult:
    """Run cmd under the wrapper; its merged stdout/stderr is redacted into log_path (appended)."""
    from harness.secrets import redact, scrubbed_env

    clean_env = scrubbed_env(env)
    spec = {"cmd": [str(c) for c in cmd], "timeout_s": float(timeout_s),
            "uid": user[0] if user else None, "gid": user[1] if user else None}
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(log_path, "a", encoding="utf-8", errors="replace") as log:
        log.write(redact(f"$ {' '.join(spec['cmd'])}\n  (cwd {cwd}, timeout {timeout_s:.0f}s)\n"))
        log.flush()
        wrapper = subprocess.Popen([sys.executable, "-I", "-S", os.path.abspath(__file__), json.dumps(spec)],
                                   cwd=cwd, env=clean_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, start_new_session=True)
        report_lines: list[bytes] = []
        copier = threading.Thread(target=_copy_output, args=(wrapper.stdout, log, redact), daemon=True)
        errs = threading.Thread(target=lambda: report_lines.extend(wrapper.stderr), daemon=True)
        copier.start()
        errs.start()
        with _LIVE_LOCK:
            _LIVE_WRAPPERS.add(wrapper)
        try:
            wait_exit(wrapper, timeout_s + WRAPPER_GRACE_S)
        except subprocess.TimeoutExpired:  # the wrapper itself hangs: kill it and its group
            _stop_wrapper(wrapper)
        except BaseException:  # Ctrl-C (or any error) in the harness: the gate's processes go before we do
            _stop_wrapper(wrapper)
            raise
        finally:
            with _LIVE_LOCK:
                _LIVE_WRAPPERS.discard(wrapper)
        copier.join(timeout=10)
        errs.join(timeout=10)
    duration = time.monotonic() - start
    try:
        report = json.loads(report_lines[-1])
    except (IndexError, ValueError):
        tail = b"".join(report_lines)[-500:].decode("utf-8", "replace")
        return SandboxResult(-1, False, duration, 0, time.time_ns(),
                             error=redact(f"sandbox wrapper failed (rc {wrapper.returncode}): {tail}"))
    result = SandboxResult(returncode=int(report["returncode"]), timed_out=bool(report["timed_out"]),
                           duration_s=duration, killed_leftovers=int(report["killed_leftovers"]),
                           child_exit_ns=int(report.get("child_exit_ns", 0)), error=report.get("error"))
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(redact(f"[sandbox] rc {result.returncode}, {duration:.1f}s, timed out: {result.timed_out}, "
                         f"leftover processes killed: {result.killed_leftovers}"
                         + (f", error: {result.error}" if result.error else "") + "\n"))
    return result


_LIVE_WRAPPERS: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()


def _stop_wrapper(wrapper: subprocess.Popen) -> None:
    """SIGTERM the wrapper (it kills and reaps every process of its gate, then exits) and wait for it; SIGKILL its
    group if it does not finish within the grace period."""
    try:
        wrapper.send_signal(signal.SIGTERM)
        wrapper.wait(timeout=WRAPPER_GRACE_S)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(wrapper.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wrapper.wait()
    except ProcessLookupError:
        pass


def stop_all_gates() -> int:
    """Stop every gate command still running in this process (gates of other candidate threads on Ctrl-C), waiting
    until their processes are gone. Returns how many were stopped."""
    with _LIVE_LOCK:
        live = list(_LIVE_WRAPPERS)
    for w in live:
        if w.poll() is None:
            _stop_wrapper(w)
    return len(live)


def _copy_output(stream, log, redact) -> None:
    written = 0
    try:
        for raw in stream:
            if written > LOG_LIMIT_BYTES:
                continue  # keep draining so the command never blocks on a full pipe
            line = redact(raw.decode("utf-8", "replace"))
            written += len(line)
            log.write(line if written <= LOG_LIMIT_BYTES else "\n[log truncated]\n")
        log.flush()
    except ValueError:  # the log was closed: only when a process escaped the wrapper (no subreaper) and lingers
        pass


def new_result_folder(parent: Path) -> tuple[Path, int]:
    """A fresh random-named folder for one run's result files, created just before the run, and its creation time
    as the file system stamps it (the same clock as the result file's mtime)."""
    import secrets

    folder = Path(parent) / f"results-{secrets.token_hex(12)}"
    folder.mkdir(parents=True)
    return folder, folder.stat().st_mtime_ns


def check_result_folder(folder: Path, expected: str, started_ns: int, exited_ns: int) -> str | None:
    """None when folder holds exactly ``expected``, written during the run (started_ns: from new_result_folder;
    exited_ns: SandboxResult.child_exit_ns); else why the result is invalid."""
    names = sorted(p.name for p in folder.iterdir())
    if names != [expected]:
        extra = [n for n in names if n != expected]
        if expected not in names:
            return f"result file {expected} was not written" + (f" (found instead: {', '.join(extra)})" if extra else "")
        return f"unexpected files in the result folder: {', '.join(extra)}"
    target = folder / expected
    if target.is_symlink() or not target.is_file():
        return f"result file {expected} is not a plain file"
    mtime = target.stat().st_mtime_ns
    if mtime < started_ns:
        return f"result file {expected} is older than the run"
    if mtime > exited_ns:
        return f"result file {expected} was modified after the test command exited"
    return None


def bounded(text: str, limit: int = 2000) -> str:
    """Cut text to about limit characters (what an agent sees of a gate)."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 20].rstrip() + "\n[... truncated]"


if __name__ == "__main__":
    sys.exit(_wrapper_main(sys.argv[1]))
