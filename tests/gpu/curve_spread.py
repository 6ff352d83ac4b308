"""How far apart do two correct implementations' loss curves drift? The training gate's noise floor.

The training gate (validators/training_gate.py) compares vibetensor's loss curve with torch's window by window
against a relative tolerance. Two implementations that round differently (another reduction order, a fused kernel)
follow different trajectories, and on a workload that overfits the distance grows with the step count. This tool
measures that distance for several runs against one reference run, each trained by the gate's own worker
(validators/training/worker.py, same examples, same initial weights and batches):

    python3 tests/gpu/curve_spread.py --site SITE --workload vit --profile paper --steps 240 \
        --run torch:cuda --run torch:cuda --run torch:cpu --run vibetensor.torch:cuda --seeds 0 1 --out OUT

The first --run is the reference; every other run is compared with it. A second run of the reference itself shows
whether it is deterministic. Output: a table per seed (largest windowed relative difference over the whole curve
and in each quarter of it, first window beyond --tolerance) on stdout, and OUT/spread.json with every window.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from validators.training import curves  # noqa: E402

WORKER = ROOT / "validators" / "training" / "worker.py"
EXAMPLES = ROOT / "generated_runtime" / "examples"


def parse_run(text: str) -> tuple[str, str]:
    module, sep, device = text.partition(":")
    if not sep or not module or not device:
        raise argparse.ArgumentTypeError(f"--run wants MODULE:DEVICE (torch:cuda), got {text!r}")
    return module, device


def train(module: str, device: str, args, seed: int, out: Path) -> tuple[curves.Curve | None, str, float]:
    """One worker run; (curve, log tail, seconds). The curve is None when the worker failed."""
    out.unlink(missing_ok=True)
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
    if args.site:
        env["PYTHONPATH"] = str(Path(args.site).resolve())
    cmd = [sys.executable, str(WORKER), "--examples-dir", str(EXAMPLES), "--workload", args.workload,
           "--module", module, "--profile", args.profile, "--steps", str(args.steps), "--seed", str(seed),
           "--device", device, "--out", str(out)]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.run_timeout_s)
    seconds = time.monotonic() - start
    tail = (proc.stdout + proc.stderr)[-2000:]
    if proc.returncode != 0 or not out.exists():
        return None, tail, seconds
    return curves.read_curve(out), tail, seconds


def summarize(windows: list[dict], tolerance: float) -> dict:
    """Largest relative difference overall and per quarter of the windows; the first window beyond tolerance."""
    rel = [w["rel_diff"] if w["rel_diff"] is not None else float("inf") for w in windows]
    quarters = []
    n = len(rel)
    for q in range(4):
        part = rel[q * n // 4:(q + 1) * n // 4]
        quarters.append(max(part) if part else None)
    first = next((w for w in windows if w["rel_diff"] is None or w["rel_diff"] > tolerance), None)
    return {"max_rel_diff": max(rel) if rel else None, "quarters": quarters,
            "first_beyond": None if first is None else [first["start"], first["end"]]}


def percent(x: float | None) -> str:
    return "   -  " if x is None else ("  inf " if x == float("inf") else f"{100 * x:5.2f}%")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", default=None, help="site directory holding vibetensor (PYTHONPATH of the runs)")
    parser.add_argument("--workload", default="vit")
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--steps", type=int, default=240)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--tolerance", type=float, default=0.02)
    parser.add_argument("--run", dest="runs", type=parse_run, action="append", required=True,
                        help="MODULE:DEVICE; the first one is the reference")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--run-timeout-s", type=float, default=600)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        parser.error("give at least two --run: a reference and one to compare with it")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    report = {"workload": args.workload, "profile": args.profile, "steps": args.steps, "window": args.window,
              "tolerance": args.tolerance, "seeds": {}}
    failed = False
    for seed in args.seeds:
        results = []
        for i, (module, device) in enumerate(args.runs):
            curve, tail, seconds = train(module, device, args, seed, out / f"seed{seed}-run{i}.jsonl")
            results.append((f"{module}:{device}", curve, tail, seconds))
            if curve is None and i == 0:
                break  # nothing to compare with
        label0, ref, tail0, _ = results[0]
        print(f"{args.workload}/{args.profile}, seed {seed}, {args.steps} steps, window {args.window}; "
              f"reference {label0}" + ("" if ref else " FAILED"))
        if ref is None:
            print(tail0)
            failed = True
            report["seeds"][str(seed)] = {"reference": label0, "error": tail0}
            continue
        rows = []
        print(f"  {'run':32s} {'max':>7s} {'q1':>7s} {'q2':>7s} {'q3':>7s} {'q4':>7s}  first window > "
              f"{100 * args.tolerance:g}%   final loss (ref {ref.loss[-1]:.4f})")
        for i, (label, curve, tail, seconds) in enumerate(results[1:], 1):
            if curve is None:
                print(f"  {label:32s} FAILED\n{tail}")
                failed = True
                rows.append({"run": label, "index": i, "error": tail})
                continue
            windows = curves.compare_windows(ref.loss, curve.loss, args.window, args.tolerance)
            s = summarize(windows, args.tolerance)
            first = "-" if s["first_beyond"] is None else f"steps {s['first_beyond'][0]}-{s['first_beyond'][1] - 1}"
            final = curve.loss[-1] if curve.loss else float("nan")
            print(f"  {label:32s} {percent(s['max_rel_diff'])} " + " ".join(percent(q) for q in s["quarters"])
                  + f"  {first:22s} {final:.4f}  ({seconds:.0f} s)")
            rows.append({"run": label, "index": i, "seconds": seconds, "final_loss": final, **s,
                         "windows": curves.json_safe(windows)})
        report["seeds"][str(seed)] = {"reference": label0, "final_loss": ref.loss[-1], "runs": rows}
    (out / "spread.json").write_text(json.dumps(report, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
