"""Build gate: pip-install the candidate runtime (scikit-build-core) into a fresh site folder.

Command: ``python -m pip install --no-build-isolation --no-deps --target SITE -Cbuild-dir=BUILD
-Ccmake.define.VBT_BUILD_TESTS=ON <candidate>/generated_runtime``. SITE = work_dir/site, fresh every time;
BUILD = cache_dir/build and CCACHE_DIR = cache_dir/ccache persist between attempts, so a one-file change rebuilds
fast. Invariant after a pass: SITE's top level holds only ``vibetensor`` and ``vibetensor-*.dist-info`` (plain
folders); anything else (``sitecustomize.py``, a ``.pth``, a link) could hijack later gates and fails the gate.
Hands ``site_dir`` and ``build_dir`` to later gates through ctx.state.
Options: ``cmake_defines`` (dict, extra -D values), ``jobs`` (parallel compile jobs, default 2).
"""
from __future__ import annotations

import re
import shutil
import sys
import time
from pathlib import Path

from harness.interfaces import GateContext, GateResult, HarnessError
from validators.sandbox import bounded, check_user_can_run, grant_to_user, resolve_sandbox_user, run_sandboxed

PACKAGE = "vibetensor"
COMPILER_ERROR = re.compile(r"^\s*(?P<loc>[^\s:][^:\n]*:\d+(?::\d+)?): (?:fatal )?error: (?P<msg>.*)$", re.M)
CMAKE_ERROR = re.compile(r"^CMake Error.*$", re.M)


class BuildGate:
    name = "build"
    version = "1"

    def run(self, ctx: GateContext) -> GateResult:
        start = time.monotonic()
        log_path = Path(ctx.work_dir) / "build.log"
        runtime = Path(ctx.candidate_root) / "generated_runtime"
        site, build = Path(ctx.work_dir) / "site", Path(ctx.cache_dir) / "build"
        ccache = Path(ctx.cache_dir) / "ccache"

        def result(status: str, summary: str, **metrics) -> GateResult:
            return GateResult(self.name, status, time.monotonic() - start, bounded(summary),
                              {"duration_s": round(time.monotonic() - start, 3), **metrics}, str(log_path))

        Path(ctx.work_dir).mkdir(parents=True, exist_ok=True)
        log_path.write_text("")
        if not (runtime / "pyproject.toml").is_file():
            log_path.write_text(f"{runtime}/pyproject.toml is missing\n")
            return result("fail", "generated_runtime/pyproject.toml is missing: nothing to build", compiler_errors=0)
        if site.exists():
            shutil.rmtree(site)
        site.mkdir(parents=True)
        build.mkdir(parents=True, exist_ok=True)
        ccache.mkdir(parents=True, exist_ok=True)
        try:
            user = resolve_sandbox_user(ctx.options, ctx.env)
        except HarnessError as e:
            return result("error", str(e))
        if user is not None:
            problem = check_user_can_run(user, ctx.env, log_path)
            if problem:
                return result("error", problem)
            grant_to_user([site, build, ccache], user)

        cmd = [sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--no-cache-dir",
               "--disable-pip-version-check", "--target", str(site), f"-Cbuild-dir={build}",
               "-Ccmake.define.VBT_BUILD_TESTS=ON"]
        for key, value in sorted(dict(ctx.options.get("cmake_defines", {})).items()):
            cmd.append(f"-Ccmake.define.{key}={value}")
        cmd.append(str(runtime))
        env = dict(ctx.env)
        env.update(CCACHE_DIR=str(ccache), CMAKE_BUILD_PARALLEL_LEVEL=str(int(ctx.options.get("jobs", 2))),
                   PYTHONDONTWRITEBYTECODE="1")
        if shutil.which("ccache"):
            env.update(CMAKE_CXX_COMPILER_LAUNCHER="ccache", CMAKE_C_COMPILER_LAUNCHER="ccache",
                       CMAKE_CUDA_COMPILER_LAUNCHER="ccache")
        run = run_sandboxed(cmd, cwd=Path(ctx.work_dir), env=env, timeout_s=ctx.timeout_s, log_path=log_path,
                            user=user)
        log_text = log_path.read_text(encoding="utf-8", errors="replace")
        prefix = str(Path(ctx.candidate_root).resolve()) + "/"  # agents see repository-relative paths
        errors = list(dict.fromkeys(  # unique, in order: a header's error repeats in every file including it
            f"{m['loc']}: error: {m['msg']}".replace(prefix, "") for m in COMPILER_ERROR.finditer(log_text)))
        metrics = {"compiler_errors": len(errors), "killed_leftovers": run.killed_leftovers}
        if run.error and run.returncode == 127:
            return result("error", run.error, **metrics)
        if run.timed_out:
            return result("fail", f"build timed out after {ctx.timeout_s:.0f}s\n" + _tail(log_text), **metrics)
        if run.returncode != 0:
            head = "\n".join(errors[:12]) or "\n".join(m.group(0) for m in CMAKE_ERROR.finditer(log_text)) \
                or _tail(log_text)
            return result("fail", f"build failed (rc {run.returncode}, {len(errors)} compiler errors)\n{head}",
                          **metrics)
        intruders = unexpected_site_entries(site)
        if intruders:
            return result("fail", "the build installed files outside the vibetensor package (they could hijack "
                          "later gates): " + ", ".join(intruders), **metrics)
        ctx.state["site_dir"] = str(site)
        ctx.state["build_dir"] = str(build)
        return result("pass", f"built in {run.duration_s:.1f}s", **metrics)


def unexpected_site_entries(site: Path) -> list[str]:
    """Top-level entries of the install folder other than the package and its dist-info (plain folders only)."""
    bad = []
    for entry in sorted(site.iterdir()):
        allowed = entry.name == PACKAGE or (entry.name.startswith(PACKAGE + "-") and entry.name.endswith(".dist-info"))
        if not allowed or entry.is_symlink() or not entry.is_dir():
            bad.append(entry.name)
    if not (site / PACKAGE).is_dir():
        bad.append(f"(no {PACKAGE}/ package was installed)")
    return bad


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
