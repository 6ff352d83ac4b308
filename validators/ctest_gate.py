"""CTest gate: run the C++ unit tests of the build folder the build gate left, verdict from CTest's JUnit XML.

Command: ``ctest --test-dir BUILD --output-junit <nonce folder>/ctest.xml --timeout N -j2``. BUILD is
ctx.state["build_dir"] (set by the build gate), else cache_dir/build. The harness parses the XML itself, right
after the sandbox wrapper exited (every test process is dead by then); a missing, forged (extra files, stale or
late writes) or malformed XML is an "error"; zero tests is a "fail" ("no tests ran").
Options: ``per_test_timeout_s`` (default 300), ``jobs`` (default 2), ``label`` (ctest -L regex), ``include``
(ctest -R regex: a spec that owns some tests names them, so a tree without them fails with "no tests ran"),
``exclude`` (ctest -E regex), ``min_passed`` (default 1: tests that only skip, e.g. GPU tests on a CPU machine,
do not make a pass on their own).
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from harness.interfaces import GateContext, GateResult, HarnessError
from validators.junit import junit_verdict
from validators.sandbox import (bounded, grant_to_user, new_result_folder, reclaim_from_user,
                                resolve_sandbox_user, run_sandboxed)

RESULT_FILE = "ctest.xml"


class CTestGate:
    name = "ctest"
    version = "2"

    def run(self, ctx: GateContext) -> GateResult:
        start = time.monotonic()
        work = Path(ctx.work_dir)
        work.mkdir(parents=True, exist_ok=True)
        log_path = work / "ctest.log"
        log_path.write_text("")
        build = Path(ctx.state.get("build_dir") or Path(ctx.cache_dir) / "build")

        def result(status: str, summary: str, **metrics) -> GateResult:
            return GateResult(self.name, status, time.monotonic() - start, bounded(summary),
                              {"duration_s": round(time.monotonic() - start, 3), **metrics}, str(log_path))

        ctest = shutil.which("ctest")
        if ctest is None:
            return result("error", "ctest is not installed on this machine")
        if not (build / "CTestTestfile.cmake").is_file():
            return result("fail", f"no tests ran: {build} has no CTestTestfile.cmake (did the build enable "
                          "VBT_BUILD_TESTS and call enable_testing()?)", tests=0)
        try:
            user = resolve_sandbox_user(ctx.options, ctx.env)
        except HarnessError as e:
            return result("error", str(e))
        folder, started_ns = new_result_folder(work)
        grant_to_user([folder, build], user)
        cmd = [ctest, "--test-dir", str(build), "--output-junit", str(folder / RESULT_FILE),
               "--timeout", str(int(ctx.options.get("per_test_timeout_s", 300))),
               "-j", str(int(ctx.options.get("jobs", 2))), "--output-on-failure"]
        if ctx.options.get("label"):
            cmd += ["-L", str(ctx.options["label"])]
        if ctx.options.get("include"):
            cmd += ["-R", str(ctx.options["include"])]
        if ctx.options.get("exclude"):
            cmd += ["-E", str(ctx.options["exclude"])]
        run = run_sandboxed(cmd, cwd=build, env=dict(ctx.env), timeout_s=ctx.timeout_s, log_path=log_path,
                            user=user)
        if user is not None:
            reclaim_from_user(folder)
        base = {"killed_leftovers": run.killed_leftovers, "returncode": run.returncode}
        return junit_verdict("ctest", run, folder, RESULT_FILE, started_ns, base, result,
                             "ctest found zero tests", int(ctx.options.get("min_passed", 1)), ctx.timeout_s)
