"""Where a training step's time goes: wall time per step against GPU busy time per step, kernel launches per step
and the kernels that take the most GPU time, for torch or vibetensor running one of the examples' workloads.

    python3 tests/gpu/profile_step.py --workload minigpt --framework vibetensor --profile paper --device cuda \
        --out OUT/profile-minigpt-vibetensor.json

GPU time comes from torch.profiler's CUDA activity (CUPTI), which sees every kernel of the process, vibetensor's
included, so torch must be importable. If GPU busy time is well under the wall time, the step is bound by the host
(Python, dispatch, launches); if close to it, by the kernels. On a machine without a GPU (--device cpu), only the
wall times are reported: with --set dim=32 --set batch=2 (tiny tensors) they measure the host-side cost of the
same sequence of ops.

--attribute K profiles K more steps with Python stacks (torch.profiler's python tracer) and names, for each of the
top kernels, the Python call sites that launched it: each kernel is joined to its launch (the CUDA runtime or driver
call with the same correlation id) and the launch to the innermost Python frames running on that thread at that
moment (attribute_kernels). The tracer slows the host a lot, so these steps are not timed.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "generated_runtime" / "examples"))


def parse_overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set expects KEY=VALUE, got {pair!r}")
        out[key] = float(value) if "." in value or "e" in value else int(value)
    return out


def run_steps(common, T, job, steps: int) -> list[float]:
    times: list[float] = []

    def on_step(record) -> bool:
        times.append(record.step_time_s)
        return False

    common.train(T, job, steps, on_step)
    return times


def kernel_table(prof, steps: int, top: int) -> tuple[list[dict], float, float]:
    rows = []
    for e in prof.key_averages():
        device_us = getattr(e, "self_device_time_total", None)
        if device_us is None:
            device_us = getattr(e, "self_cuda_time_total", 0.0)
        if device_us <= 0:
            continue
        rows.append({"name": e.key[:160], "calls_per_step": e.count / steps, "us_per_step": device_us / steps})
    rows.sort(key=lambda r: -r["us_per_step"])
    busy_ms = sum(r["us_per_step"] for r in rows) / 1e3
    launches = sum(r["calls_per_step"] for r in rows)
    return rows[:top], busy_ms, launches


LAUNCH_CATS = ("cuda_runtime", "cuda_driver")


def short_frame(name: str) -> str:
    """'/a/b/vibetensor/torch/_tensor.py(120): contiguous' -> 'torch/_tensor.py(120): contiguous'."""
    path, sep, rest = name.partition("(")
    parts = path.replace("\\", "/").split("/")
    return "/".join(parts[-2:]) + sep + rest


def attribute_kernels(trace: dict, steps: int, top: int = 12, frames: int = 3, sites: int = 4) -> list[dict]:
    """Join a Kineto chrome trace's kernels to the Python frames that launched them (see the module doc).

    Returns the `top` kernels by GPU time, each with its `sites` largest call sites: a site is the innermost `frames`
    Python frames (outermost first, joined by ' > ') on the launching thread; a launch outside any Python frame is
    '(no Python frame)', a kernel whose launch is not in the trace '(launch not traced)'."""
    events = [e for e in trace.get("traceEvents", []) if e.get("ph") == "X"]
    launches = {}
    for e in events:
        if e.get("cat") in LAUNCH_CATS and "correlation" in e.get("args", {}):
            launches[e["args"]["correlation"]] = e
    py_by_tid: dict = {}
    for e in events:
        if e.get("cat") == "python_function":
            py_by_tid.setdefault(e.get("tid"), []).append(e)
    # the site of each launch: sweep each thread's launches in time order against its (nested) Python frames
    site_of: dict = {}
    by_tid: dict = {}
    for corr, e in launches.items():
        by_tid.setdefault(e.get("tid"), []).append((float(e["ts"]), corr))
    for tid, items in by_tid.items():
        py = sorted(py_by_tid.get(tid, []), key=lambda e: (float(e["ts"]), -float(e.get("dur", 0))))
        stack: list = []
        i = 0
        for ts, corr in sorted(items):
            while i < len(py) and float(py[i]["ts"]) <= ts:
                stack.append(py[i])
                i += 1
            stack = [e for e in stack if float(e["ts"]) + float(e.get("dur", 0)) >= ts]
            names = [short_frame(e["name"]) for e in stack[-frames:]]
            site_of[corr] = " > ".join(names) if names else "(no Python frame)"
    kernels: dict = {}
    for e in events:
        if e.get("cat") != "kernel":
            continue
        k = kernels.setdefault(e["name"], {"us": 0.0, "calls": 0, "sites": {}})
        dur = float(e.get("dur", 0))
        k["us"] += dur
        k["calls"] += 1
        site = site_of.get(e.get("args", {}).get("correlation"), "(launch not traced)")
        s = k["sites"].setdefault(site, [0.0, 0])
        s[0] += dur
        s[1] += 1
    rows = []
    for name, k in sorted(kernels.items(), key=lambda kv: -kv[1]["us"])[:top]:
        ranked = sorted(k["sites"].items(), key=lambda kv: -kv[1][0])[:sites]
        rows.append({"name": name[:160], "us_per_step": k["us"] / steps, "calls_per_step": k["calls"] / steps,
                     "sites": [{"site": site, "us_per_step": us / steps, "calls_per_step": n / steps}
                               for site, (us, n) in ranked]})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="minigpt")
    ap.add_argument("--framework", default="vibetensor", choices=["torch", "vibetensor"])
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--attribute", type=int, default=0, metavar="K",
                    help="profile K more steps with Python stacks and name the call sites of the top kernels (cuda)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a field of the profile's config (e.g. dim=32, batch=2)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    workload = importlib.import_module(args.workload)
    common = workload.common
    overrides = parse_overrides(args.set)
    if overrides:
        workload.PROFILES[args.profile] = dataclasses.replace(workload.PROFILES[args.profile], **overrides)
    T = importlib.import_module("torch" if args.framework == "torch" else "vibetensor.torch")
    job = workload.prepare(T, args.profile, 0, args.device)
    run_steps(common, T, job, args.warmup)

    report = {"workload": args.workload, "framework": args.framework, "profile": args.profile,
              "overrides": overrides, "device": args.device, "steps": args.steps}
    if args.device.startswith("cuda"):
        import torch
        from torch.profiler import ProfilerActivity, profile
        report["device_name"] = torch.cuda.get_device_name()
        plain = run_steps(common, T, job, args.steps)  # wall time without the profiler's own cost
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            t0 = time.perf_counter()
            run_steps(common, T, job, args.steps)
            profiled_wall = time.perf_counter() - t0
        top, busy_ms, launches = kernel_table(prof, args.steps, args.top)
        report.update(wall_ms_median=statistics.median(plain) * 1e3, gpu_busy_ms_per_step=busy_ms,
                      kernels_per_step=launches, profiled_wall_ms_per_step=profiled_wall * 1e3 / args.steps,
                      top_kernels=top)
        if args.attribute > 0:
            import tempfile
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], with_stack=True) as prof:
                run_steps(common, T, job, args.attribute)
            with tempfile.TemporaryDirectory() as tmp:
                prof.export_chrome_trace(f"{tmp}/trace.json")
                trace = json.loads(Path(f"{tmp}/trace.json").read_text())
            report["attribution"] = attribute_kernels(trace, args.attribute, top=args.top)
    else:
        plain = run_steps(common, T, job, args.steps)
        report.update(wall_ms_median=statistics.median(plain) * 1e3, wall_ms_min=min(plain) * 1e3)

    print(f"{args.workload}/{args.profile} {args.framework} on {args.device}: wall {report['wall_ms_median']:.2f} ms "
          f"per step (median of {args.steps})", end="")
    if "gpu_busy_ms_per_step" in report:
        print(f", GPU busy {report['gpu_busy_ms_per_step']:.2f} ms, {report['kernels_per_step']:.0f} kernels "
              f"per step")
        for row in report["top_kernels"]:
            print(f"  {row['us_per_step']:9.1f} us  {row['calls_per_step']:6.1f}x  {row['name']}")
        for row in report.get("attribution", []):
            print(f"call sites of {row['name'][:120]} ({row['us_per_step']:.1f} us, {row['calls_per_step']:.1f}x "
                  f"per step, profiled with stacks):")
            for site in row["sites"]:
                print(f"    {site['us_per_step']:9.1f} us  {site['calls_per_step']:6.1f}x  {site['site']}")
    else:
        print()
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
