"""Where a training step's time goes on the CPU: forward, zero_grad, backward, clip_grad_norm_ and optimizer.step() of
an examples/ workload, vibetensor against torch, medians over steps.

    PYTHONPATH=SITE .venv/bin/python tests/benchmarks/bench_step_phases.py --workload minigpt --tiny --threads 1

--tiny shrinks the tensors (dim 32, batch 2, context 16) and keeps the model's structure (layers, heads, parameter
count), so the times are the host-side cost of the same ops: the regime a GPU step is in when it is bound by the
host. --load N runs N busy-loop processes meanwhile (a loaded machine). --foreach-false gives Adam/AdamW the
per-parameter path (both frameworks), to compare with the fused one. Each framework runs in its own process, one
after the other, --rounds times, alternating which goes first; the table gives the median over rounds of each
round's median over steps.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PHASES = ("forward", "zero_grad", "backward", "clip", "step")


def worker(args) -> dict:
    sys.path.insert(0, str(ROOT / "generated_runtime" / "examples"))
    workload = importlib.import_module(args.workload)
    if args.tiny:
        over = {"dim": 32, "batch": 2} | ({"context": 16} if "context" in workload.Config.__dataclass_fields__ else {})
        workload.PROFILES[args.profile] = dataclasses.replace(workload.PROFILES[args.profile], **over)
    T = importlib.import_module("torch" if args.framework == "torch" else "vibetensor.torch")
    if args.threads:
        T.set_num_threads(args.threads)
    job = workload.prepare(T, args.profile, 0, "cpu")
    if args.foreach_false:
        for group in job.optimizer.param_groups:
            group["foreach"] = False
    times = {p: [] for p in PHASES}
    for s in range(args.warmup + args.steps):
        batch = job.batch(s)
        t0 = time.perf_counter()
        loss = job.loss(batch)
        t1 = time.perf_counter()
        job.optimizer.zero_grad()
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        T.nn.utils.clip_grad_norm_(job.model.parameters(), 1.0)
        t4 = time.perf_counter()
        job.optimizer.step()
        t5 = time.perf_counter()
        if s >= args.warmup:
            for p, a, b in zip(PHASES, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5)):
                times[p].append((b - a) * 1e3)
    return {p: statistics.median(v) for p, v in times.items()}


def busy() -> None:
    while True:
        pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="minigpt")
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="both frameworks' thread count (0: their defaults)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--load", type=int, default=0, help="busy-loop processes running meanwhile")
    ap.add_argument("--foreach-false", action="store_true")
    ap.add_argument("--framework", default=None, help=argparse.SUPPRESS)  # the worker's own
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.framework:
        print(json.dumps(worker(args)))
        return 0

    loaders = [multiprocessing.Process(target=busy, daemon=True) for _ in range(args.load)]
    for p in loaders:
        p.start()
    rounds = {"torch": [], "vibetensor": []}
    try:
        for r in range(args.rounds):
            order = ("torch", "vibetensor") if r % 2 == 0 else ("vibetensor", "torch")
            for fw in order:
                cmd = [sys.executable, __file__, "--framework", fw, "--workload", args.workload, "--profile",
                       args.profile, "--threads", str(args.threads), "--steps", str(args.steps), "--warmup",
                       str(args.warmup)] + (["--tiny"] if args.tiny else []) + \
                      (["--foreach-false"] if args.foreach_false else [])
                out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(), timeout=1800)
                if out.returncode != 0:
                    print(out.stderr, file=sys.stderr)
                    return 1
                rounds[fw].append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        for p in loaders:
            p.terminate()
    result = {fw: {p: statistics.median(r[p] for r in rs) for p in PHASES} for fw, rs in rounds.items()}
    for fw in result:
        result[fw]["total"] = sum(result[fw][p] for p in PHASES)
    print(f"{args.workload}/{args.profile}{' tiny' if args.tiny else ''}, threads {args.threads or 'default'}, "
          f"load {args.load}{', foreach=False' if args.foreach_false else ''}: ms per step (median of "
          f"{args.rounds} rounds x {args.steps} steps)")
    print(f"{'phase':<10} {'torch':>9} {'vibetensor':>11} {'vt/torch':>9}")
    for p in PHASES + ("total",):
        t, v = result["torch"][p], result["vibetensor"][p]
        print(f"{p:<10} {t:9.2f} {v:11.2f} {v / t if t else float('nan'):9.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "ms": result}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
