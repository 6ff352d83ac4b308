"""Run the parity gate with the candidate's tensors on CUDA, outside the harness (on the lent GPU machine).

    python3 tests/gpu/parity_cuda.py SITE_DIR OUT_DIR [--ops core] [--dtypes all] [--backward] [--seed N]

SITE_DIR holds a ``vibetensor`` package built with CUDA (``generated_runtime/tests/cpp/cuda/gpu_check.sh``
assembles one). The gate is the same ``validators.parity_gate.ParityGate`` the harness runs (reference = torch on
the CPU in its own process, fresh seeded inputs, outputs poisoned, inputs checked after each call), with option
``device: cuda``: every input is moved to the GPU before the op and every output read back. Writes OUT_DIR/parity.json
(the table the dashboards read), parity.log and summary.txt; exits 0 when the gate passes.
Needs only the standard library, numpy and torch (the harness's other dependencies are not imported).
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
from validators.parity_gate import ParityGate  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("site_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--ops", default="core", help="op names, globs or categories, space-separated")
    ap.add_argument("--dtypes", default="all")
    ap.add_argument("--backward", action="store_true")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--timeout-s", type=float, default=1500.0)
    args = ap.parse_args()
    out = Path(args.out_dir).resolve()
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    options = {"ops": args.ops.split(), "dtypes": args.dtypes, "backward": args.backward, "device": "cuda",
               "site_dir": str(Path(args.site_dir).resolve())}
    if args.seed is not None:
        options["seed"] = args.seed
    ctx = GateContext(spec=None, candidate_root=ROOT, trusted_root=ROOT, work_dir=work, cache_dir=out / "cache",
                      env=dict(os.environ), timeout_s=args.timeout_s, options=options)
    result = ParityGate().run(ctx)
    for name in ("parity.json", "parity.log"):
        if (work / name).exists():
            shutil.copy2(work / name, out / name)
    text = f"parity on cuda: {result.status} in {result.duration_s:.0f}s\n{result.summary}\n"
    (out / "summary.txt").write_text(text + json.dumps(result.metrics, indent=1) + "\n")
    shutil.rmtree(work / "parity-run", ignore_errors=True)
    print(text)
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
