"""Pytest gate: run the Python tests against the build gate's site folder, verdict from pytest's JUnit XML.

Trust rules:
- Protected test files (ctx.spec.protected globs plus option ``protected``, relative to the repository root) are
  copied from trusted_root over the candidate before the run; protected-path files the trusted tree lacks are
  removed. The candidate's edits to acceptance tests never count.
- pytest runs with ``--noconftest`` (a candidate conftest.py cannot rewrite outcomes), ``-p no:cacheprovider``,
  PYTEST_DISABLE_PLUGIN_AUTOLOAD=1, a trusted ini written here (``-c``), and the trusted guard plugin
  (validators/pytest_guard.py) that kills stray sandbox processes before the report is written.
- JUnit goes to a fresh nonce folder under work_dir; the harness checks and parses it after the sandbox exited.
  Zero tests collected is a "fail"; a missing, forged or malformed report is an "error".
Options: ``paths`` (test paths relative to candidate_root, default ["generated_runtime/tests/py"]), ``markexpr``
(pytest -m), ``protected`` (extra globs), ``extra_args`` (list of extra pytest arguments), ``workers`` (pytest-xdist
processes: an int, or "auto", the default: min(CPU count, 4); 1 runs in one process).

Note [Parallel pytest in the gate]
The runtime's suite is some 2,500 tests of pure CPU work; on the 2-core machines this project runs on, one process
leaves a core idle for most of a verdict. With ``workers`` > 1 the gate loads pytest-xdist explicitly (``-p
xdist.plugin``: plugin autoload stays off) and runs ``-n N --dist loadfile``: a test file stays in one worker, so
tests that share module state or spawn rank processes see the same order as in one process. The trust rules hold
because the workers are the controller's children inside the same sandbox, started with the same arguments (the
trusted ini, ``--noconftest``, the guard), and only the controller writes the JUnit report. The guard acts in the
controller alone (a worker ending its session must not kill its siblings), after xdist has shut the workers down
and just before the report is written (validators/pytest_guard.py).
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath

from harness import gitops
from harness.interfaces import GateContext, GateResult, HarnessError
from validators.junit import junit_verdict
from validators.sandbox import (bounded, grant_to_user, new_result_folder, reclaim_from_user,
                                resolve_sandbox_user, run_sandboxed)

RESULT_FILE = "pytest.xml"
DEFAULT_PATHS = ["generated_runtime/tests/py"]
TRUSTED_INI = """\
# Written by the harness (validators/pytest_gate.py); the candidate's own pytest configuration is not used.
[pytest]
python_files = test_*.py *_test.py
python_classes = Test*
python_functions = test_*
markers =
    slow: long-running test
    cuda: needs a CUDA device
junit_family = xunit2
"""


class PytestGate:
    name = "pytest"
    version = "1"

    def run(self, ctx: GateContext) -> GateResult:
        start = time.monotonic()
        work = Path(ctx.work_dir)
        work.mkdir(parents=True, exist_ok=True)
        log_path = work / "pytest.log"
        log_path.write_text("")
        candidate = Path(ctx.candidate_root)
        runtime = candidate / "generated_runtime"

        def result(status: str, summary: str, **metrics) -> GateResult:
            return GateResult(self.name, status, time.monotonic() - start, bounded(summary),
                              {"duration_s": round(time.monotonic() - start, 3), **metrics}, str(log_path))

        site = ctx.state.get("site_dir")
        if not site or not Path(site).is_dir():
            return result("error", "the pytest gate needs the build gate's site folder (ctx.state['site_dir'])")
        try:
            restored = restore_protected(candidate, Path(ctx.trusted_root), protected_globs(ctx))
            tests = [_inside(candidate, p) for p in ctx.options.get("paths", DEFAULT_PATHS)]
            user = resolve_sandbox_user(ctx.options, ctx.env)
            workers = _workers(ctx.options.get("workers", "auto"))
        except HarnessError as e:
            return result("error", str(e))
        missing = [str(t.relative_to(candidate)) for t in tests if not t.exists()]
        if missing:
            return result("fail", f"no tests ran: test paths missing: {', '.join(missing)}", tests=0)

        ini = work / "pytest-trusted.ini"
        ini.write_text(TRUSTED_INI)
        folder, started_ns = new_result_folder(work)
        guard = _guard_plugin_dir(folder.parent / (folder.name + "-guard"))
        grant_to_user([folder], user)
        cmd = [sys.executable, "-m", "pytest", *map(str, tests), "--noconftest", "-p", "no:cacheprovider",
               "-p", "vt_pytest_guard", "-c", str(ini), "--rootdir", str(runtime if runtime.is_dir() else candidate),
               "--junitxml", str(folder / RESULT_FILE), "-q"]
        if workers > 1:
            cmd += ["-p", "xdist.plugin", "-n", str(workers), "--dist", "loadfile"]
        if ctx.options.get("markexpr"):
            cmd += ["-m", str(ctx.options["markexpr"])]
        cmd += [str(a) for a in ctx.options.get("extra_args", [])]
        env = dict(ctx.env)
        env.update(PYTHONPATH=f"{guard}:{site}", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", PYTHONDONTWRITEBYTECODE="1")
        env.pop("PYTEST_ADDOPTS", None)
        env.pop("PYTEST_PLUGINS", None)
        run = run_sandboxed(cmd, cwd=runtime if runtime.is_dir() else candidate, env=env, timeout_s=ctx.timeout_s,
                            log_path=log_path, user=user)
        if user is not None:
            reclaim_from_user(folder)
        base = {"killed_leftovers": run.killed_leftovers, "returncode": run.returncode,
                "protected_restored": len(restored), "workers": workers}
        return junit_verdict("pytest", run, folder, RESULT_FILE, started_ns, base, result,
                             "pytest collected zero tests", timeout_s=ctx.timeout_s)


def _workers(option) -> int:
    """Number of pytest processes for option ``workers`` (Note [Parallel pytest in the gate]); 1 when pytest-xdist
    is not installed."""
    if option == "auto":
        n = min(os.cpu_count() or 1, 4)
    else:
        try:
            n = int(option)
        except (TypeError, ValueError):
            raise HarnessError(f"pytest gate: option workers must be an integer >= 1 or 'auto', got {option!r}") from None
        if n < 1:
            raise HarnessError(f"pytest gate: option workers must be an integer >= 1 or 'auto', got {option!r}")
    if n > 1 and importlib.util.find_spec("xdist") is None:
        return 1
    return n


def protected_globs(ctx: GateContext) -> list[str]:
    globs = list(ctx.spec.protected) if ctx.spec is not None else []
    return globs + [str(g) for g in ctx.options.get("protected", [])]


def protected_files(root: Path, globs: list[str]) -> set[str]:
    """The repository-relative POSIX paths of the files (and symlinks) under root that globs select, with the
    meaning the runner gives them when it installs protected files (harness.specs.path_matches: '**' crosses
    folders, 'dir/**' is everything under dir, '!' excludes). Walks only each glob's literal leading folders and
    never follows a symlinked folder. (Path.glob on Python 3.11 returns only folders for a glob ending in '**', so
    the gate once restored nothing for the specs' 'tests/**' globs.)"""
    from harness.specs import path_matches

    for pattern in globs:
        _check_pattern(pattern[1:] if pattern.startswith("!") else pattern)
    out: set[str] = set()
    listing = _git_listing(root)  # None: not a git checkout; the folders are walked
    for pattern in (g for g in globs if not g.startswith("!")):
        parts = PurePosixPath(pattern).parts
        fixed = next((i for i, part in enumerate(parts) if any(c in part for c in "*?[")), len(parts))
        base = Path(root, *parts[:fixed])
        if base.is_symlink() or base.is_file():
            found = [base.relative_to(root).as_posix()]
        elif base.is_dir():
            prefix = base.relative_to(root).as_posix() + "/"
            if listing is not None and prefix.startswith(f"{gitops.RUNTIME}/"):
                found = [rel for rel in listing if rel.startswith(prefix)]
            else:  # every file
                found = []
                for folder, dirs, files in os.walk(base, followlinks=False):
                    found += [Path(folder, f).relative_to(root).as_posix() for f in files]
                    found += [Path(folder, d).relative_to(root).as_posix() for d in dirs if Path(folder, d).is_symlink()]
        else:
            continue
        out.update(rel for rel in found if path_matches(rel, globs))
    return out


def _git_listing(root: Path) -> list[str] | None:
    """generated_runtime/'s files as the runner's install_protected lists them (harness.worktree.runtime_files:
    what git sees, tracked or not, ignored ones such as __pycache__ excluded); None when root is no git checkout."""
    from harness.worktree import runtime_files

    if not (Path(root) / ".git").exists():
        return None
    try:
        return [rel for rel in runtime_files(Path(root)) if Path(root, rel).is_file() or Path(root, rel).is_symlink()]
    except (OSError, subprocess.CalledProcessError):
        return None


def restore_protected(candidate: Path, trusted: Path, globs: list[str]) -> list[str]:
    """Copy every trusted file matching globs over the candidate; delete candidate files matching globs that the
    trusted tree lacks. Returns the relative paths written or removed."""
    changed = []
    trusted_files = {rel for rel in protected_files(trusted, globs) if (trusted / rel).is_file()}
    candidate_files = protected_files(candidate, globs)
    for rel in sorted(trusted_files):
        dest = _inside(candidate, rel)
        if dest.is_symlink() or dest.is_dir():
            dest.unlink() if dest.is_symlink() else shutil.rmtree(dest)
        if not dest.exists() or dest.read_bytes() != (trusted / rel).read_bytes():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(trusted / rel, dest)
            changed.append(rel)
    for rel in sorted(candidate_files - trusted_files):
        (candidate / rel).unlink()
        changed.append(rel)
    return changed


def protected_digest(trusted: Path, globs: list[str]) -> str:
    """sha256 over (path, content hash) of the trusted protected files: verdict caches key on it."""
    h = hashlib.sha256()
    for rel in sorted(protected_files(Path(trusted), globs)):
        p = Path(trusted) / rel
        if p.is_file():
            h.update(f"{rel}\0{hashlib.sha256(p.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()


def _check_pattern(pattern: str) -> None:
    if not pattern or pattern.startswith("/") or ".." in Path(pattern).parts:
        raise HarnessError(f"protected glob {pattern!r} must be relative to the repository root, without '..'")


def _inside(root: Path, rel: str) -> Path:
    """root/rel, refusing paths that resolve outside root (absolute paths, '..', symlinked folders)."""
    path = Path(root) / rel
    real_root = Path(root).resolve()
    if Path(rel).is_absolute() or not (path.parent.resolve() == real_root or
                                       path.parent.resolve().is_relative_to(real_root)):
        raise HarnessError(f"path {rel!r} leaves the candidate tree")
    return path


def _guard_plugin_dir(folder: Path) -> Path:
    """A fresh folder holding the trusted guard plugin and its helper, first on the tests' PYTHONPATH."""
    here = Path(__file__).parent
    folder.mkdir(parents=True)
    shutil.copyfile(here / "sandbox.py", folder / "vt_sandbox.py")
    shutil.copyfile(here / "pytest_guard.py", folder / "vt_pytest_guard.py")
    return folder
