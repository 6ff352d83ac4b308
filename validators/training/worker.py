"""Subprocess entry of the training gate: train one workload with one framework and stream per-step records.

Run as a script (``python worker.py ...``), never imported by the harness process: the framework under test is
imported only here. The gate starts this file from the trusted tree, once with ``--module torch`` and once with the
candidate module; both runs load the same workload files (``--examples-dir``) and so see identical initial weights
and batches (see examples/common.py).

Output: JSON lines appended to ``--out`` and flushed after every line, so a crash still leaves the steps so far:
  {"event": "start", "module": ..., "module_file": ..., "parameters": N, "item_unit": "tok"}
  {"event": "step", "step": k, "loss": x, "step_time_s": s, "items_per_s": r, "rss_mb": m, "allocated_mb": a|null}
  {"event": "end", "steps": n, "stopped": "done"|"non-finite loss", "torch_imported": bool}
A non-finite loss ends the run after its record (``json`` writes it as NaN/Infinity).
Exit status: 0 after "end"; 2 for bad arguments; anything else is the framework failing.
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import resource
import sys
from pathlib import Path

WORKLOADS = ("reversal", "vit", "minigpt")


def rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc), else the peak from getrusage."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def allocator_mb(T, device: str) -> float | None:
    """Bytes held by the framework's device allocator (``T.cuda.memory_allocated``), when it exposes them."""
    if not device.startswith("cuda"):
        return None
    probe = getattr(getattr(T, "cuda", None), "memory_allocated", None)
    try:
        return float(probe()) / 2**20 if probe is not None else None
    except Exception:  # a broken stats call must not hide the training result
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples-dir", required=True)
    parser.add_argument("--workload", required=True, help="examples/<workload>.py (default set: %s)"
                        % ", ".join(WORKLOADS))
    parser.add_argument("--module", required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    if not args.workload.isidentifier():
        print(f"bad workload name {args.workload!r}", file=sys.stderr)
        return 2
    torch_before = "torch" in sys.modules
    torch_imports: list[str] = []  # an audit hook cannot be removed: deleting torch from sys.modules hides nothing

    def hook(event: str, hook_args) -> None:
        if event == "import" and hook_args and str(hook_args[0]).split(".")[0] == "torch" and not torch_imports:
            torch_imports.append(str(hook_args[0]))

    if args.module != "torch":
        sys.addaudithook(hook)
    sys.path.insert(0, str(Path(args.examples_dir).resolve()))
    workload = importlib.import_module(args.workload)
    if args.profile not in workload.PROFILES:
        print(f"unknown profile {args.profile!r}; {args.workload} has {sorted(workload.PROFILES)}", file=sys.stderr)
        return 2
    T = importlib.import_module(args.module)
    job = workload.prepare(T, args.profile, args.seed, args.device)

    with open(args.out, "a") as out:
        def emit(record: dict) -> None:
            out.write(json.dumps(record) + "\n")
            out.flush()

        emit({"event": "start", "module": args.module, "module_file": getattr(T, "__file__", None),
              "parameters": sum(math.prod(tuple(p.shape)) for p in job.model.parameters()),
              "item_unit": job.item_unit})
        stopped = ["done"]
        count = [0]

        def on_step(record) -> bool:
            count[0] += 1
            emit({"event": "step", "step": record.step, "loss": record.loss, "step_time_s": record.step_time_s,
                  "items_per_s": record.items_per_s, "rss_mb": rss_mb(), "allocated_mb": allocator_mb(T, args.device)})
            if not math.isfinite(record.loss):
                stopped[0] = "non-finite loss"
                return True
            return False

        workload.common.train(T, job, args.steps, on_step)
        emit({"event": "end", "steps": count[0], "stopped": stopped[0],
              "torch_imported": bool(torch_imports or "torch" in sys.modules) and not torch_before})
    return 0


if __name__ == "__main__":
    sys.exit(main())
