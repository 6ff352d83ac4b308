"""Binary float ops with a CPU scalar operand on cuda, bit for bit against torch on cuda (on the lent GPU machine):
    PYTHONPATH=SITE python3 tests/gpu/scalar_ops_cuda.py [--torch-only] [OUT.json]
Part 1 (torch only) asks which arithmetic torch.cuda's kernels do, by comparing each op's result with candidate
formulas written with torch ops in the compute type (float for float16/bfloat16/float32, double for float64): is a
Python-number operand rounded to the tensor's dtype first, does x / s multiply by the reciprocal 1/s. Part 2 reports,
per op and dtype, how many of 200,000 elements vibetensor computes differently from torch.cuda and by how many units
in the last place at most, next to how torch's own CPU and cuda kernels differ. Exit status 1 when vibetensor differs
from torch.cuda anywhere. The CPU side of these rules is tested in generated_runtime/tests/py/core/
test_low_float_scalars.py (spec 01), the cuda side in generated_runtime/tests/py/cuda/test_cuda_scalar_rules.py."""
import json
import sys

import numpy as np
import torch

S = 0.7  # not exact in any float dtype, so rounding it first shows
OPS = {
    "mul": lambda T, x, y: x * S,
    "rmul": lambda T, x, y: S * x,
    "mul_0d_cpu": lambda T, x, y: x * T.tensor(S),
    "div": lambda T, x, y: x / S,
    "div_0d_cpu": lambda T, x, y: x / T.tensor(S),
    "div_0d_cpu_first": lambda T, x, y: T.div(T.tensor(S, dtype=T.float64), x),
    "div_trunc": lambda T, x, y: T.div(x, S, rounding_mode="trunc"),
    "div_floor": lambda T, x, y: T.div(x, S, rounding_mode="floor"),
    "div_floor_neg": lambda T, x, y: T.div(x, -S, rounding_mode="floor"),
    "floordiv": lambda T, x, y: x // S,
    "rdiv": lambda T, x, y: S / x,
    "gt": lambda T, x, y: x > S,
    "eq": lambda T, x, y: x == S,
    "add": lambda T, x, y: x + S,
    "radd": lambda T, x, y: S + x,
    "sub": lambda T, x, y: x - S,
    "rsub": lambda T, x, y: S - x,
    "add_alpha": lambda T, x, y: T.add(x, S, alpha=3),
    "sub_alpha": lambda T, x, y: T.sub(x, S, alpha=3),
    "add_tensors_alpha": lambda T, x, y: T.add(x, y, alpha=S),
    "lerp": lambda T, x, y: T.lerp(x, y, 0.3),
    "lerp_high": lambda T, x, y: T.lerp(x, y, 0.7),
    "lerp_negative": lambda T, x, y: T.lerp(x, y, -0.7),
    "addcmul": lambda T, x, y: T.addcmul(x, y, y, value=0.3),
    "addcdiv": lambda T, x, y: T.addcdiv(x, y, y.abs() + 1, value=0.3),
    "div_tensors": lambda T, x, y: x / y,
    "div_trunc_tensors": lambda T, x, y: T.div(x, y, rounding_mode="trunc"),
    "div_floor_tensors": lambda T, x, y: T.div(x, y, rounding_mode="floor"),
}
DTYPES = ["float16", "bfloat16", "float32", "float64"]


def ulps(a, b):
    """(elements that differ, largest difference in units in the last place); NaNs equal, -0 != +0."""
    if a.dtype == torch.bool:
        n = int((a != b).sum())
        return n, int(n > 0)
    it = {2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
    ia, ib = a.view(it).to(torch.int64), b.view(it).to(torch.int64)
    lo = torch.iinfo(it).min
    ia = torch.where(ia < 0, lo - ia, ia)  # sign-magnitude to a monotonic line
    ib = torch.where(ib < 0, lo - ib, ib)
    d = (ia - ib).abs().masked_fill(a.isnan() & b.isnan(), 0)
    return int((d > 0).sum()), int(d.max()) if d.numel() else 0


def candidates(x, dtype, y):
    """Formulas for x op S in the compute type A, written with torch ops (results rounded to dtype)."""
    A = torch.float64 if dtype == torch.float64 else torch.float32
    npA = np.float64 if A == torch.float64 else np.float32
    xa, ya = x.to(A), y.to(A)
    za = (y.abs() + 1).to(A)  # addcdiv's denominator, made in the dtype as OPS makes it
    s_a = torch.tensor(npA(S), dtype=A, device=x.device)                       # the number in the compute type
    s_t = torch.tensor(S, dtype=dtype).to(A).to(x.device)                      # the number rounded to dtype first
    inv = torch.tensor(npA(1) / npA(S), dtype=A, device=x.device)              # its reciprocal, in A
    r = lambda v: v.to(dtype)  # noqa: E731
    return {
        "mul": {"x*s in A": r(xa * s_a), "x*s rounded to dtype first": r(xa * s_t)},
        "div": {"x*(1/s) in A": r(xa * inv), "x/s in A": r(xa / s_a), "x/s rounded to dtype first": r(xa / s_t)},
        "div_trunc": {"trunc(x*(1/s)) in A": r((xa * inv).trunc()), "trunc(x/s) in A": r((xa / s_a).trunc())},
        "div_floor": {"floor(x*(1/s)) in A": r((xa * inv).floor()), "floor(x/s) in A": r((xa / s_a).floor()),
                      "fmod rule with 1/s": r(fmod_floor(xa, s_a, inv, dtype))},
        "div_0d_cpu_first": {"s/x in A": r(s_a / xa), "s/x rounded to dtype first": r(s_t / xa)},
        "rdiv": {"s/x in A": r(s_a / xa), "s/x rounded to dtype first": r(s_t / xa),
                 "(1/x in dtype)*s in A": r(r(1 / xa).to(A) * s_a)},
        "gt": {"x>s in A": xa > s_a, "x>s rounded to dtype first": xa > s_t},
        "eq": {"x==s in A": xa == s_a, "x==s rounded to dtype first": xa == s_t},
        "lerp_negative": {"fma from the end (abs(w) >= 0.5)": r(fma(-(ya - xa), torch.full_like(xa, 1.7), ya)),
                          "fma from the start (w < 0.5)": r(fma(torch.full_like(xa, -0.7), ya - xa, xa))},
        "addcdiv": {"x + (v*y)/z": r(xa + (torch.tensor(0.3, dtype=A) * ya) / za),
                    "x + v*(y/z)": r(xa + torch.tensor(0.3, dtype=A) * (ya / za))},
        "add": {"x+s in A": r(xa + s_a), "x+s rounded to dtype first": r(xa + s_t)},
        "rsub": {"s-x in A": r(s_a - xa), "s-x rounded to dtype first": r(s_t - xa)},
    }


def fma(a, b, c):
    """a * b + c with one rounding in a's dtype: exact for float32 through float64; float64 only approximately."""
    if a.dtype == torch.float64:
        return a * b + c
    return (a.double() * b.double() + c.double()).to(a.dtype)


def fmod_floor(xa, b, inv, dtype):
    """floor division by a scalar b through fmod and the reciprocal, the quotient's floor rounded to dtype."""
    mod = torch.fmod(xa, b)
    div = (xa - mod) * inv
    div = torch.where((mod != 0) & ((b < 0) != (mod < 0)), div - 1, div)
    fl = div.floor().to(dtype).to(xa.dtype)
    fl = torch.where(div - fl > 0.5, (fl + 1).to(dtype).to(xa.dtype), fl)
    zero = torch.copysign(torch.zeros_like(xa), xa * inv)
    return torch.where(div != 0, fl, zero)


def data(tdt):
    g = torch.Generator().manual_seed(0)
    a = (torch.randn(200_000, generator=g, dtype=torch.float64) * 8).to(tdt)
    b = (torch.randn(200_000, generator=g, dtype=torch.float64) * 2).to(tdt)
    return a, b


def part1():
    rows = []
    for dname in DTYPES:
        tdt = getattr(torch, dname)
        a, b = data(tdt)
        ac, bc = a.cuda(), b.cuda()
        for op, forms in candidates(ac, tdt, bc).items():
            want = OPS[op](torch, ac, bc)
            for form, val in forms.items():
                n, m = ulps(val, want)
                rows.append({"op": op, "dtype": dname, "formula": form, "differ": n, "max_ulp": m})
                print(f"torch.cuda {op:10s} {dname:9s} vs {form:28s}: {n:7d} differ (max {m} ulp)")
    return rows


def part2():
    import vibetensor.torch as vt

    rows, bad = [], 0
    for dname in DTYPES:
        tdt = getattr(torch, dname)
        a, b = data(tdt)
        ac, bc = a.cuda(), b.cuda()
        va, vb = vt.from_dlpack(a.clone()).cuda(), vt.from_dlpack(b.clone()).cuda()
        for name, f in OPS.items():
            want = f(torch, ac, bc)
            cpu = f(torch, a, b)
            try:
                n, m = ulps(torch.from_dlpack(f(vt, va, vb)).clone(), want)
                err = None
            except Exception as e:  # noqa: BLE001 - reported per op
                n, m, err = -1, -1, f"{type(e).__name__}: {e}"
            tn, tm = ulps(cpu.cuda(), want)
            rows.append({"op": name, "dtype": dname, "vt_vs_torch_cuda_differ": n, "vt_vs_torch_cuda_max_ulp": m,
                         "torch_cpu_vs_cuda_differ": tn, "torch_cpu_vs_cuda_max_ulp": tm, "error": err})
            bad += n != 0
            print(f"{name:18s} {dname:9s} vt vs torch.cuda: {n:7d} differ (max {m} ulp)   "
                  f"torch cpu vs cuda: {tn:7d} differ (max {tm} ulp){'   ' + err if err else ''}")
    print(f"{bad} of {len(rows)} op/dtype pairs differ from torch.cuda "
          f"({torch.cuda.get_device_name(0)}, torch {torch.__version__})")
    return rows, bad


def main(argv):
    torch_only = "--torch-only" in argv
    paths = [a for a in argv if not a.startswith("--")]
    report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "torch_rules": part1()}
    bad = 0
    if not torch_only:
        report["vibetensor"], bad = part2()
    if paths:
        with open(paths[0], "w") as fh:
            json.dump(report, fh, indent=1)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
