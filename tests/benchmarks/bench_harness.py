"""Harness benchmark: time to verdict for a one-file change with warm caches, harness overhead over the raw gate
commands, and `reproduce --check` time per ledger entry.

Run:  python tests/benchmarks/bench_harness.py [--repeats 3] [--out report.json]
It works on a throw-away local clone of this repository, so the working tree is never touched. Medians over repeats.
The first validate of the clone is a cold build (reported separately); every repeat then appends a comment to one
C++ source file and measures:
  harness: wall time of `vt-agent validate --gates build,ctest,pytest` (worktree, sandbox, parsing, logs included)
  raw:     the same three commands run directly on the same build folder (pip install, ctest, pytest)
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


def sh(cmd: list[str], cwd: Path, env: dict | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def vt(clone: Path, *args: str) -> tuple[float, dict]:
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "harness.cli", *args, "--json"], cwd=clone, capture_output=True,
                       text=True)
    dt = time.perf_counter() - t
    try:
        return dt, json.loads(p.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"vt-agent {' '.join(args)} failed: {p.stderr[-2000:]}")


def touch_one_file(clone: Path, i: int) -> None:
    src = sorted((clone / "generated_runtime" / "src").rglob("*.cpp"))[0]
    with open(src, "a") as fh:
        fh.write(f"\n// benchmark edit {i}\n")


def raw_gates(clone: Path, build_dir: Path) -> float:
    site = Path(tempfile.mkdtemp(prefix="vt-raw-site-"))
    try:
        t = sh([sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps", "--target",
                str(site), f"-Cbuild-dir={build_dir}", "-Ccmake.define.VBT_BUILD_TESTS=ON",
                str(clone / "generated_runtime")], clone,
               {"CCACHE_DIR": str(clone / ".vt" / "cache" / "ccache"), "CMAKE_BUILD_PARALLEL_LEVEL": "2"})
        t += sh(["ctest", "--test-dir", str(build_dir), "-j2"], clone)
        t += sh([sys.executable, "-m", "pytest", "-q", "--noconftest", "-p", "no:cacheprovider",
                 str(clone / "generated_runtime" / "tests" / "py")], clone, {"PYTHONPATH": str(site)})
        return t
    finally:
        shutil.rmtree(site, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vt-bench-"))
    clone = tmp / "clone"
    subprocess.run(["git", "clone", "-q", "--local", str(REPO), str(clone)], check=True)
    report: dict = {"machine": f"{platform.node()} {os.cpu_count()} cores", "python": platform.python_version()}
    try:
        dt, out = vt(clone, "reproduce", "--check")
        report["reproduce_check"] = {"seconds": round(dt, 3), "entries": out["entries"],
                                     "seconds_per_entry": round(dt / max(out["entries"], 1), 3), "ok": out["ok"]}
        cold, out = vt(clone, "validate", "--gates", "build,ctest,pytest")
        report["cold_validate_s"] = round(cold, 1)
        build_dir = tmp / "raw-build"  # the raw commands get their own warm build folder
        report["cold_raw_s"] = round(raw_gates(clone, build_dir), 1)
        harness, raw = [], []
        for i in range(args.repeats):
            touch_one_file(clone, 2 * i)
            dt, out = vt(clone, "validate", "--gates", "build,ctest,pytest")
            if out["status"] != "ok":
                raise SystemExit(f"validate failed: {out['reason']}")
            harness.append(dt)
            touch_one_file(clone, 2 * i + 1)
            raw.append(raw_gates(clone, build_dir))
        h, r = statistics.median(harness), statistics.median(raw)
        report["one_file_change"] = {"harness_s": [round(x, 2) for x in harness], "raw_s": [round(x, 2) for x in raw],
                                     "median_harness_s": round(h, 2), "median_raw_s": round(r, 2),
                                     "overhead_pct": round(100 * (h - r) / r, 1)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
