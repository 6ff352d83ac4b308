"""Matmul on the GPU, side by side in one run: vibetensor with cuBLAS, vibetensor's own tiled kernel, and torch
(cuBLAS), for float32 / bfloat16 square and batched shapes. Median of repeats, each timed over a batch of calls
with the device synchronised before and after (host wall clock), reported as TFLOP/s and as ratios to torch.

    python3 tests/gpu/matmul_bench.py SITE OUT.json
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, sys.argv[1])
import torch  # noqa: E402
import vibetensor.torch as vt  # noqa: E402
from vibetensor.interop import from_dlpack  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import timed  # noqa: E402 (tests/gpu/timing.py)

SHAPES = [((1024, 1024), (1024, 1024)), ((4096, 4096), (4096, 4096)), ((64, 128, 128), (64, 128, 128)),
          ((8192, 256), (256, 1024)), ((32, 512, 64), (32, 64, 512))]


def main() -> None:
    rows = []
    for dtype in ("float32", "bfloat16"):
        for sa, sb in SHAPES:
            a = torch.randn(*sa, device="cuda").to(getattr(torch, dtype))
            b = torch.randn(*sb, device="cuda").to(getattr(torch, dtype))
            va, vb = from_dlpack(a), from_dlpack(b)  # the same device memory as torch's operands
            flops = 2 * a.shape[-2] * a.shape[-1] * b.shape[-1] * (a.shape[0] if a.dim() == 3 else 1)
            calls = max(3, min(200, int(2e11 / flops)))
            row = {"dtype": dtype, "a": list(sa), "b": list(sb)}
            row["torch_s"] = timed(lambda: torch.matmul(a, b), torch.cuda.synchronize, calls, 7)[0]
            for backend in ("cublas", "kernel"):
                vt.cuda.set_matmul_backend(backend)
                row[f"vt_{backend}_s"] = timed(lambda: vt.matmul(va, vb), vt.cuda.synchronize, calls, 7)[0]
            vt.cuda.set_matmul_backend("cublas")
            ref = torch.matmul(a.double(), b.double())
            got = torch.from_dlpack(vt.matmul(va, vb))
            row["max_rel_err"] = float(((got.double() - ref).abs().max() / ref.abs().max()).item())
            for key in ("torch", "vt_cublas", "vt_kernel"):
                row[f"{key}_tflops"] = flops / row[f"{key}_s"] / 1e12
            row["vt_cublas_vs_torch"] = row["torch_s"] / row["vt_cublas_s"]
            row["vt_kernel_vs_torch"] = row["torch_s"] / row["vt_kernel_s"]
            rows.append(row)
            print(f"{dtype:8s} {str(sa):16s} x {str(sb):16s} torch {row['torch_tflops']:7.1f} TF/s | vt cublas "
                  f"{row['vt_cublas_tflops']:7.1f} ({row['vt_cublas_vs_torch']:.2f}x) | vt kernel "
                  f"{row['vt_kernel_tflops']:7.1f} ({row['vt_kernel_vs_torch']:.2f}x) | "
                  f"rel err {row['max_rel_err']:.1e}", flush=True)
    out = {"device": torch.cuda.get_device_name(0), "cublas": vt.cuda.cublas_info(), "rows": rows,
           "timing": "host wall clock around a batch of calls, device synchronised, median of 7"}
    with open(sys.argv[2], "w") as f:
        json.dump(out, f, indent=1, default=str)


if __name__ == "__main__":
    main()
