"""Harness benchmark: time to verdict for a one-file change with warm caches, harness overhead over the raw gate
commands, and `reproduce --check` time per ledger entry.

Run:  python tests/benchmarks/bench_harness.py [--repeats 3] [--out r.json] [--against REF] [--clone DIR] [--gates G]
It works on a throw-away local clone of this repository, so the working tree is never touched. Medians over repeats.
The first validate of the clone is a cold build (reported separately); every repeat then appends a comment to one
C++ source file and measures:
  harness: wall time of `vt-agent validate --gates build,ctest,pytest` (worktree, sandbox, parsing, logs included)
  raw:     the same three commands run directly on the same build folder (pip install, ctest, pytest with the
           gate's default number of xdist workers)
The harness measured is this repository's committed HEAD (harness/ and validators/ extracted from git, run on the
clone). --against REF also times the harness of REF (e.g. the commit before an optimisation) in every repeat,
alternating with HEAD's, on the same clone and build folder: before/after under the same load, which on a shared
machine matters more than anything else. --clone DIR reuses (and keeps) a clone made by an earlier run with
--keep-clone, its build folders warm, instead of building cold twice (the cold numbers are then warm ones).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from validators.pytest_gate import _workers as _gate_workers  # noqa: E402


def sh(cmd: list[str], cwd: Path, env: dict | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def harness_code(tmp: Path, ref: str) -> Path:
    """harness/ and validators/ of REPO at ref, extracted into a folder of their own."""
    dest = tmp / f"harness-{ref.replace('/', '_')}"
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", ref, "harness", "validators"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def vt(clone: Path, *args: str, code: Path | None = None) -> tuple[float, dict]:
    """Wall time and JSON answer of `vt-agent ARGS --json` run in clone, with the harness in code (default: the
    clone's own)."""
    launcher = ["-m", "harness.cli"] if code is None else [
        "-c", f"import runpy, sys; sys.path.insert(0, {str(code)!r}); "
              "runpy.run_module('harness.cli', run_name='__main__')"]
    t = time.perf_counter()
    p = subprocess.run([sys.executable, *launcher, *args, "--json"], cwd=clone, capture_output=True, text=True)
    dt = time.perf_counter() - t
    try:
        return dt, json.loads(p.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"vt-agent {' '.join(args)} failed: {p.stderr[-2000:]}")


def touch_one_file(clone: Path, i: int) -> None:
    src = sorted((clone / "generated_runtime" / "src").rglob("*.cpp"))[0]
    with open(src, "a") as fh:
        fh.write(f"\n// benchmark edit {i}\n")


def raw_gates(clone: Path, build_dir: Path, gates: str = "build,ctest,pytest") -> float:
    site = Path(tempfile.mkdtemp(prefix="vt-raw-site-"))
    try:
        t = sh([sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps", "--target",
                str(site), f"-Cbuild-dir={build_dir}", "-Ccmake.define.VBT_BUILD_TESTS=ON",
                str(clone / "generated_runtime")], clone,
               {"CCACHE_DIR": str(clone / ".vt" / "cache" / "ccache"), "CMAKE_BUILD_PARALLEL_LEVEL": "2"})
        t += sh(["ctest", "--test-dir", str(build_dir), "-j2"], clone)
        if "pytest" not in gates:
            return t
        # as many xdist workers as the pytest gate takes by default (Note [Parallel pytest in the gate])
        workers = _gate_workers("auto")
        parallel = ["-n", str(workers), "--dist", "loadfile"] if workers > 1 else []
        t += sh([sys.executable, "-m", "pytest", "-q", "--noconftest", "-p", "no:cacheprovider", *parallel,
                 str(clone / "generated_runtime" / "tests" / "py")], clone, {"PYTHONPATH": str(site)})
        return t
    finally:
        shutil.rmtree(site, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out")
    ap.add_argument("--against", metavar="REF", help="also time the harness of this git ref, alternating with HEAD")
    ap.add_argument("--clone", metavar="DIR", help="reuse the warm clone an earlier --keep-clone run left")
    ap.add_argument("--keep-clone", metavar="DIR", help="keep the clone (with its warm build folders) at DIR")
    ap.add_argument("--gates", default="build,ctest,pytest", choices=["build,ctest,pytest", "build,ctest"],
                    help="build,ctest: leave out the minute-long pytest run, whose noise on a shared machine hides "
                         "differences of a second")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vt-bench-"))
    if args.clone:
        clone = Path(args.clone).resolve()
    else:
        clone = Path(args.keep_clone).resolve() if args.keep_clone else tmp / "clone"
        subprocess.run(["git", "clone", "-q", "--local", str(REPO), str(clone)], check=True)
    build_dir = clone / ".vt" / "bench-raw-build"  # the raw commands get their own warm build folder
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    variants = {"HEAD": harness_code(tmp, head)}
    if args.against:
        variants[args.against] = harness_code(tmp, args.against)
    report: dict = {"machine": f"{platform.node()} {os.cpu_count()} cores", "python": platform.python_version(),
                    "head": head, "clone_reused": bool(args.clone), "gates": args.gates}
    try:
        dt, out = vt(clone, "reproduce", "--check", code=variants["HEAD"])
        report["reproduce_check"] = {"seconds": round(dt, 3), "entries": out["entries"],
                                     "seconds_per_entry": round(dt / max(out["entries"], 1), 3), "ok": out["ok"]}
        cold, out = vt(clone, "validate", "--gates", args.gates, code=variants["HEAD"])
        report["cold_validate_s"] = round(cold, 1)
        report["cold_raw_s"] = round(raw_gates(clone, build_dir, args.gates), 1)
        harness: dict[str, list[float]] = {name: [] for name in variants}
        # wall time minus the gates' own durations: what the harness adds around the gates, measured in the same
        # process, so much less noisy on a shared machine than harness minus raw (two runs of a minute apart)
        outside: dict[str, list[float]] = {name: [] for name in variants}
        raw = []
        edit = 0
        for i in range(args.repeats):
            order = list(variants.items())
            for name, code in (order if i % 2 == 0 else order[::-1]):  # alternate who goes first
                touch_one_file(clone, edit)
                edit += 1
                dt, out = vt(clone, "validate", "--gates", args.gates, code=code)
                if out["status"] != "ok":
                    raise SystemExit(f"validate ({name}) failed: {out['reason']}")
                harness[name].append(dt)
                outside[name].append(dt - sum(g["duration_s"] for g in out["details"]))
            touch_one_file(clone, edit)
            edit += 1
            raw.append(raw_gates(clone, build_dir, args.gates))
        r = statistics.median(raw)
        for name, times in harness.items():
            h = statistics.median(times)
            key = "one_file_change" if name == "HEAD" else f"one_file_change_{name}"
            report[key] = {"harness_s": [round(x, 2) for x in times], "raw_s": [round(x, 2) for x in raw],
                           "median_harness_s": round(h, 2), "median_raw_s": round(r, 2),
                           "overhead_s": round(h - r, 2), "overhead_pct": round(100 * (h - r) / r, 1)}
            # per repeat: harness minus the raw run of the same repeat (less sensitive to slow drifts of the load)
            report[key]["median_paired_overhead_s"] = round(statistics.median(
                h_i - r_i for h_i, r_i in zip(times, raw)), 2)
            report[key]["outside_gates_s"] = [round(x, 3) for x in outside[name]]
            report[key]["median_outside_gates_s"] = round(statistics.median(outside[name]), 3)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
