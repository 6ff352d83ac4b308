"""float16/bfloat16 ops with scalars on cuda, bit for bit against torch on cuda (on the lent GPU machine):
    PYTHONPATH=SITE python3 tests/gpu/scalar16_cuda.py [OUT.json]
The CPU side of these rules is tested in generated_runtime/tests/py/core/test_low_float_scalars.py (spec 01); this
script reports, per op and dtype, how many of 200,000 elements differ from torch.cuda and by how many units in the
last place at most, and also how torch's own CPU and cuda kernels differ (a rule can be device-specific in torch).
Exit status 1 when vibetensor differs from torch.cuda anywhere."""
import json
import sys

import torch

import vibetensor.torch as vt

OPS = {
    "mul": lambda T, x, y: x * 0.7,
    "rmul": lambda T, x, y: 0.7 * x,
    "mul_0d_float32": lambda T, x, y: x * T.tensor(0.7),
    "div": lambda T, x, y: x / 0.7,
    "div_trunc": lambda T, x, y: T.div(x, 0.7, rounding_mode="trunc"),
    "div_floor": lambda T, x, y: T.div(x, 0.7, rounding_mode="floor"),
    "floordiv": lambda T, x, y: x // 0.7,
    "add_alpha": lambda T, x, y: T.add(x, y, alpha=0.7),
    "sub_alpha": lambda T, x, y: T.sub(x, y, alpha=0.7),
    "div_tensors": lambda T, x, y: x / y,
    "div_trunc_tensors": lambda T, x, y: T.div(x, y, rounding_mode="trunc"),
    "div_floor_tensors": lambda T, x, y: T.div(x, y, rounding_mode="floor"),
    "div_trunc_0d_cpu": lambda T, x, y: T.div(x, T.tensor(0.7), rounding_mode="trunc"),
}


def ulps(a, b):
    """Largest difference in units in the last place between two same-dtype tensors (NaNs equal)."""
    ia = a.view(torch.int16).to(torch.int32)
    ib = b.view(torch.int16).to(torch.int32)
    # map sign-magnitude to a monotonic integer line
    ia = torch.where(ia < 0, -32768 - ia, ia)
    ib = torch.where(ib < 0, -32768 - ib, ib)
    both_nan = a.isnan() & b.isnan()
    d = (ia - ib).abs().masked_fill(both_nan, 0)
    return int(d.max()), int((d > 0).sum())


def main():
    rows, bad = [], 0
    for dname in ("float16", "bfloat16"):
        tdt = getattr(torch, dname)
        g = torch.Generator().manual_seed(0)
        a = (torch.randn(200_000, generator=g) * 8).to(tdt)
        b = (torch.randn(200_000, generator=g) * 2).to(tdt)
        ac, bc = a.cuda(), b.cuda()
        va, vb = vt.from_dlpack(a.clone()).cuda(), vt.from_dlpack(b.clone()).cuda()
        for name, f in OPS.items():
            want = f(torch, ac, bc)
            cpu = f(torch, a, b)
            try:
                got = torch.from_dlpack(f(vt, va, vb)).clone()
                m, n = ulps(got, want)
                err = None
            except Exception as e:  # noqa: BLE001 - reported per op
                m, n, err = -1, -1, f"{type(e).__name__}: {e}"
            tm, tn = ulps(cpu.cuda(), want)
            rows.append({"op": name, "dtype": dname, "vt_vs_torch_cuda_max_ulp": m, "vt_vs_torch_cuda_diff": n,
                         "torch_cpu_vs_cuda_max_ulp": tm, "torch_cpu_vs_cuda_diff": tn, "error": err})
            bad += (n != 0)
            print(f"{name:20s} {dname:9s} vt vs torch.cuda: {n:7d} differ (max {m} ulp)   "
                  f"torch cpu vs cuda: {tn:7d} differ (max {tm} ulp){'   ' + err if err else ''}")
    print(f"{bad} of {len(rows)} op/dtype pairs differ from torch.cuda "
          f"({torch.cuda.get_device_name(0)}, torch {torch.__version__})")
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as fh:
            json.dump({"device": torch.cuda.get_device_name(0), "rows": rows}, fh, indent=1)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
