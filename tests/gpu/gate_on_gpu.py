"""Run one of the harness's gates on the lent GPU machine, outside the harness, with the candidate on CUDA.

    python3 tests/gpu/gate_on_gpu.py parity   SITE_DIR OUT_DIR [--opt ops=core] [--opt dtypes=all] [--opt backward=true]
    python3 tests/gpu/gate_on_gpu.py training SITE_DIR OUT_DIR [--opt workloads=reversal,minigpt] [--opt steps=60]

SITE_DIR holds a ``vibetensor`` package built with CUDA (``generated_runtime/tests/cpp/cuda/gpu_check.sh``
assembles one). The gate is the same class the harness runs (``validators.parity_gate.ParityGate``: reference =
torch on the CPU in its own process, fresh seeded inputs, outputs poisoned, inputs checked after each call;
``validators.training_gate.TrainingGate``: the trusted examples trained with torch and with vibetensor, both on
the GPU here), with option ``device=cuda`` added. ``--opt key=value`` sets more options (comma lists become
lists; true/false and numbers are parsed). Writes OUT_DIR/summary.txt and the gate's reports and logs; exits 0
when the gate passes. Needs only the standard library, numpy and torch (no other harness dependency).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness.interfaces import GateContext  # noqa: E402


def _value(text: str):
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.split(",") if "," in text else text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gate", choices=["parity", "training"])
    ap.add_argument("site_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--timeout-s", type=float, default=1500.0)
    args = ap.parse_args()
    out = Path(args.out_dir).resolve()
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    options = {"device": "cuda"}
    for item in args.opt:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--opt {item!r}: expected KEY=VALUE")
        options[key] = _value(value)
    if args.gate == "parity":
        from validators.parity_gate import ParityGate as Gate
        for key in ("ops", "dtypes"):  # space-separated lists, as in a spec's YAML list
            if isinstance(options.get(key), str) and options[key] not in ("all", "core"):
                options[key] = options[key].split()
    else:
        from validators.training_gate import TrainingGate as Gate
        if isinstance(options.get("workloads"), str):
            options["workloads"] = [options["workloads"]]
    ctx = GateContext(spec=None, candidate_root=ROOT, trusted_root=ROOT, work_dir=work, cache_dir=out / "cache",
                      env=dict(os.environ), timeout_s=args.timeout_s, options=options,
                      state={"site_dir": str(Path(args.site_dir).resolve())})
    result = Gate().run(ctx)
    for f in work.iterdir():
        if f.is_file():
            shutil.copy2(f, out / f.name)
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(out / "cache", ignore_errors=True)
    text = f"{args.gate} on cuda: {result.status} in {result.duration_s:.0f}s\n{result.summary}\n"
    (out / "summary.txt").write_text(text + json.dumps(result.metrics, indent=1, default=str) + "\n")
    print(text)
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
