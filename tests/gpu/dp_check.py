"""Data-parallel training of the workloads on the GPUs of one host (run on a lent multi-GPU machine):

    python3 tests/gpu/dp_check.py SITE OUTDIR [--workloads reversal,minigpt] [--profile paper] [--steps 30]
                                  [--frameworks vibetensor,torch] [--gpus 2]

SITE is a folder with a CUDA build of vibetensor (tests/gpu/gpu_session.sh makes one). For each workload and
framework, side by side in one run, with generated_runtime/examples and the launcher
`python -m vibetensor.torch.distributed.run` (torch uses the same script, with torch.distributed and NCCL):
  1. one GPU, the profile's global batch B                -> loss curve, median step, throughput
  2. N GPUs, the same global batch B (B/N per rank)        -> loss curve against run 1 (max relative difference)
  3. N GPUs, global batch N*B (B per rank, weak scaling)   -> scaling efficiency = throughput / (N * run 1's)
Writes OUTDIR/dp_report.json (everything, with device names) and OUTDIR/dp_summary.txt.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "generated_runtime" / "examples"
STEP = re.compile(r"^step +(\d+) \| loss ([0-9.naif]+) \| +([0-9.]+) ms", re.M)
MEDIAN = re.compile(r"^median step ([0-9.]+) ms \| ([0-9,]+) (tok|img)/s", re.M)


def run(site: str, workload: str, framework: str, profile: str, steps: int, gpus: int, batch: int | None,
        log: Path, timeout: int, device: str = "cuda") -> dict:
    args = [str(EXAMPLES / f"{workload}.py"), "--framework", framework, "--profile", profile, "--steps", str(steps),
            "--device", device] + (["--batch", str(batch)] if batch else [])
    command = [sys.executable] + (["-m", "vibetensor.torch.distributed.run", "--nproc-per-node", str(gpus)]
                                  if gpus > 1 else []) + args
    env = dict(os.environ, PYTHONPATH=site, NCCL_NVLS_ENABLE="0", TORCH_SYMM_MEM_DISABLE_MULTICAST="1",
               NVSHMEM_DISABLE_NVLS="1")
    start = time.monotonic()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd="/tmp")
        out, err, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out, err, rc = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or ""), \
            "timeout", 124
    log.write_text(" ".join(command) + "\n" + out + "\n--- stderr ---\n" + err)
    losses = [float(m.group(2)) for m in STEP.finditer(out)]
    median = MEDIAN.search(out)
    return {"rc": rc, "gpus": gpus, "batch": batch, "losses": losses, "wall_s": round(time.monotonic() - start, 1),
            "median_step_ms": float(median.group(1)) if median else None,
            "throughput": float(median.group(2).replace(",", "")) if median else None,
            "unit": median.group(3) if median else None, "stderr_tail": err[-600:] if rc else ""}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("site")
    ap.add_argument("out")
    ap.add_argument("--workloads", default="reversal,minigpt")
    ap.add_argument("--frameworks", default="vibetensor,torch")
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--gpus", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=240)
    ap.add_argument("--device", default="cuda", help="cuda (default), or cpu to try the script without GPUs")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(EXAMPLES))
    devices = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True).stdout.split("\n")
    report = {"schema": "vbt-dp-report/1", "devices": [d for d in devices if d], "profile": a.profile,
              "steps": a.steps, "gpus": a.gpus, "results": []}
    lines = []
    for workload in a.workloads.split(","):
        module = __import__(workload)
        base_batch = module.PROFILES[a.profile].batch
        for framework in a.frameworks.split(","):
            tag = f"{workload}-{framework}"
            one = run(a.site, workload, framework, a.profile, a.steps, 1, None, out / f"{tag}-1gpu.log", a.timeout,
                      a.device)
            strong = run(a.site, workload, framework, a.profile, a.steps, a.gpus, None,
                         out / f"{tag}-{a.gpus}gpu.log", a.timeout, a.device)
            weak = run(a.site, workload, framework, a.profile, a.steps, a.gpus, base_batch * a.gpus,
                       out / f"{tag}-{a.gpus}gpu-weak.log", a.timeout, a.device)
            entry = {"workload": workload, "framework": framework, "batch": base_batch, "one_gpu": one,
                     "strong": strong, "weak": weak}
            ok = (one["rc"] == strong["rc"] == weak["rc"] == 0
                  and len(one["losses"]) == len(strong["losses"]) == a.steps)
            if ok:
                diffs = [abs(x - y) / max(abs(x), 1e-12) for x, y in zip(one["losses"], strong["losses"])]
                entry["max_rel_loss_diff"] = max(diffs)
                entry["final_loss"] = {"one_gpu": one["losses"][-1], "strong": strong["losses"][-1]}
                entry["strong_speedup"] = strong["throughput"] / one["throughput"]
                entry["weak_efficiency"] = weak["throughput"] / (a.gpus * one["throughput"])
                lines.append(f"{tag}: losses 1 vs {a.gpus} GPUs max rel diff {entry['max_rel_loss_diff']:.2e} "
                             f"(final {one['losses'][-1]:.4f} / {strong['losses'][-1]:.4f}); 1 GPU "
                             f"{one['throughput']:,.0f} {one['unit']}/s ({one['median_step_ms']} ms); "
                             f"{a.gpus} GPUs same batch {strong['throughput']:,.0f} (x{entry['strong_speedup']:.2f}); "
                             f"{a.gpus} GPUs batch {base_batch * a.gpus}: {weak['throughput']:,.0f}, efficiency "
                             f"{entry['weak_efficiency']:.3f}")
            else:
                lines.append(f"{tag}: FAILED rc 1gpu={one['rc']} strong={strong['rc']} weak={weak['rc']} "
                             f"{(one['stderr_tail'] or strong['stderr_tail'] or weak['stderr_tail'])[-300:]!r}")
            entry["ok"] = ok
            report["results"].append(entry)
            print(lines[-1], flush=True)
            (out / "dp_report.json").write_text(json.dumps(report, indent=1))
    (out / "dp_summary.txt").write_text("\n".join(lines) + "\n")
    return 0 if all(e["ok"] for e in report["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())
