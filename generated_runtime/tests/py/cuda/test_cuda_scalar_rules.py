"""A CPU scalar operand (a Python number or a 0-d CPU tensor) of a float op on cuda, bit for bit as torch.cuda's
kernels (spec 04, ScalarArithNote in elementwise.cu): the scalar of mul, add/sub and of div as the divisor enters
the kernel in the compute type (float for float16/bfloat16/float32, double for float64), not rounded to the
tensor's dtype first; division by it multiplies by its reciprocal computed in that type; div floor goes through fmod
with the scalar and its reciprocal. A scalar dividend is rounded to the dtype (torch.cuda does so too). Each result is
compared with torch on the same device and with the rule's formula written with torch ops on the CPU, and the data
is checked to tell the rule from the alternative apart.

Needs a GPU, a build with the CUDA kernels and torch with CUDA (otherwise skipped). VBT_CUDA_TEST_DEVICE=cpu runs
the torch comparisons on vibetensor's CPU kernels against torch's CPU kernels (whose rules differ: only the
comparisons with torch run there)."""
import os

import numpy as np
import pytest
import torch

import vibetensor.torch as vt

DEV = os.environ.get("VBT_CUDA_TEST_DEVICE", "cuda")
HAS_GPU = vt.cuda.is_available()
HAS_OPS = vt.cuda._tensors.has_ops()
TORCH_DEV = torch.cuda.is_available() if DEV == "cuda" else True
pytestmark = pytest.mark.skipif(DEV == "cuda" and not (HAS_GPU and HAS_OPS and TORCH_DEV),
                                reason="needs a CUDA GPU, a build with the CUDA kernels and torch with CUDA "
                                       f"(is_available()={HAS_GPU}, has_ops()={HAS_OPS}, "
                                       f"torch.cuda={torch.cuda.is_available()})")
ON_CUDA = DEV == "cuda"

FLOATS = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}
S = 0.7


def data(tdt, n=200_000, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, generator=g, dtype=torch.float64) * 8).to(tdt)


def on_dev(t):
    return vt.from_dlpack(t.contiguous().clone()).to(DEV)


def back(v):
    return torch.from_dlpack(v.cpu()).clone()


def same(got, want):
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    bad = int(((got != want) & ~(got.isnan() & want.isnan())).sum())
    assert bad == 0, f"{bad} of {got.numel()} elements differ"


def compute_type(tdt):
    return (torch.float64, np.float64) if tdt == torch.float64 else (torch.float32, np.float32)


OPS = {
    "mul": lambda T, x: x * S,
    "rmul": lambda T, x: S * x,
    "mul_0d_cpu_tensor": lambda T, x: x * T.tensor(S, dtype=T.float64),
    "div": lambda T, x: x / S,
    "div_0d_cpu_tensor": lambda T, x: x / T.tensor(S),
    "div_0d_cpu_dividend": lambda T, x: T.div(T.tensor(S, dtype=T.float64), x),  # rounded to the dtype: not the rule
    "div_trunc": lambda T, x: T.div(x, S, rounding_mode="trunc"),
    "div_floor": lambda T, x: T.div(x, S, rounding_mode="floor"),
    "div_floor_negative": lambda T, x: T.div(x, -S, rounding_mode="floor"),
    "floordiv": lambda T, x: x // S,
    "add": lambda T, x: x + S,
    "radd": lambda T, x: S + x,
    "sub": lambda T, x: x - S,
    "rsub": lambda T, x: S - x,
    "add_alpha": lambda T, x: T.add(x, S, alpha=3),
    "sub_alpha": lambda T, x: T.sub(x, S, alpha=3),
    "rdiv": lambda T, x: S / x,
}


@pytest.mark.parametrize("dtype", sorted(FLOATS))
@pytest.mark.parametrize("name", sorted(OPS))
def test_scalar_operand_matches_torch_on_the_same_device(name, dtype):
    x = data(FLOATS[dtype])
    want = OPS[name](torch, x.to(DEV))
    got = OPS[name](vt, on_dev(x))
    assert got.device.type == DEV
    same(back(got), want.cpu())


def formulas(x, tdt):
    """The rules written with torch ops on the CPU: the scalar in the compute type A, 1/s computed in A."""
    A, npA = compute_type(tdt)
    xa = x.to(A)
    s = torch.tensor(npA(S), dtype=A)
    inv = torch.tensor(npA(1) / npA(S), dtype=A)
    return {
        "mul": (xa * s).to(tdt),
        "div": (xa * inv).to(tdt),
        "div_trunc": (xa * inv).trunc().to(tdt),
        "add": (xa + s).to(tdt),
        "rsub": (s - xa).to(tdt),
    }


@pytest.mark.skipif(not ON_CUDA, reason="the cuda rules (torch's CPU kernels round differently)")
@pytest.mark.parametrize("dtype", sorted(FLOATS))
def test_the_rules_formulas(dtype):
    tdt = FLOATS[dtype]
    x = data(tdt)
    f = formulas(x, tdt)
    same(back(on_dev(x) * S), f["mul"])
    same(back(on_dev(x) / S), f["div"])
    same(back(vt.div(on_dev(x), S, rounding_mode="trunc")), f["div_trunc"])
    same(back(on_dev(x) + S), f["add"])
    same(back(S - on_dev(x)), f["rsub"])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_the_data_tells_the_rules_apart(dtype):
    """Rounding the scalar to the dtype first, or dividing instead of multiplying by the reciprocal, gives other bits
    in many elements of this data (so the comparisons above can fail)."""
    tdt = FLOATS[dtype]
    x = data(tdt)
    A, _ = compute_type(tdt)
    rounded = torch.tensor(S, dtype=tdt).to(A)
    f = formulas(x, tdt)
    assert int((f["mul"] != (x.to(A) * rounded).to(tdt)).sum()) > 10_000
    assert int((f["add"] != (x.to(A) + rounded).to(tdt)).sum()) > 10_000


def test_float32_division_multiplies_by_the_reciprocal():
    x = data(torch.float32)
    f = formulas(x, torch.float32)
    divided = (x / torch.tensor(np.float32(S))).to(torch.float32)
    assert int((f["div"] != divided).sum()) > 10_000  # the data tells the two apart
    if ON_CUDA:
        same(back(on_dev(x) / S), f["div"])


@pytest.mark.parametrize("dtype", sorted(FLOATS))
def test_in_place_out_and_strided(dtype):
    tdt = FLOATS[dtype]
    x = data(tdt, n=300 * 200).reshape(300, 200)
    tx = x.to(DEV)
    v = on_dev(x)
    v.mul_(S)
    same(back(v), (tx * S).cpu())
    v = on_dev(x)
    v.div_(S)
    same(back(v), (tx / S).cpu())
    v = on_dev(x)
    v.sub_(S, alpha=2)
    same(back(v), tx.sub(S, alpha=2).cpu())
    out = on_dev(torch.zeros_like(x))
    vt.div(on_dev(x), S, rounding_mode="floor", out=out)
    same(back(out), torch.div(tx, S, rounding_mode="floor").cpu())
    same(back(on_dev(x).t() * S), (tx.t() * S).cpu())  # a transposed (strided) operand
    same(back(on_dev(x)[:, ::3] / S), (tx[:, ::3] / S).cpu())


@pytest.mark.parametrize("dtype", sorted(FLOATS))
def test_special_values(dtype):
    tdt = FLOATS[dtype]
    x = torch.tensor([0.0, -0.0, 1.0, -1.0, float("inf"), -float("inf"), float("nan"), 3.5, -2.1], dtype=tdt)
    tx, v = x.to(DEV), on_dev(x)
    for s in (0.0, -0.0, S, -S, float("inf"), 1e-30, 3.0):
        for op in (lambda T, a: a * s, lambda T, a: a / s, lambda T, a: a + s, lambda T, a: a - s,
                   lambda T, a: T.div(a, s, rounding_mode="trunc"), lambda T, a: T.div(a, s, rounding_mode="floor")):
            want, got = op(torch, tx).cpu(), back(op(vt, v))
            same(got, want)
            num = ~want.isnan()
            assert torch.equal(got.signbit()[num], want.signbit()[num])  # signed zeros too


def test_integer_tensors_keep_their_rules():
    x = torch.arange(-20, 20, dtype=torch.int64)
    tx, v = x.to(DEV), on_dev(x)
    same(back(v * 3), (tx * 3).cpu())
    same(back(v * 0.5), (tx * 0.5).cpu())
    same(back(vt.div(v, 3, rounding_mode="floor")), torch.div(tx, 3, rounding_mode="floor").cpu())
    same(back(vt.div(v, 3, rounding_mode="trunc")), torch.div(tx, 3, rounding_mode="trunc").cpu())
    same(back(v / 3), (tx / 3).cpu())
    same(back(v + 2), (tx + 2).cpu())


@pytest.mark.parametrize("dtype", sorted(FLOATS))
def test_lerp_starts_from_the_nearer_end_and_keeps_a_scalar_weight_in_the_compute_type(dtype):
    """torch's lerp picks its end by |w| < 0.5 (a weight of -0.7 starts from `end`) and a 16-bit lerp uses a scalar
    weight in float; the parity run on an H200 found cuda starting from `self` for -0.7 and rounding the weight."""
    tdt = FLOATS[dtype]
    a, b = data(tdt), data(tdt, seed=1)
    ta, tb = a.to(DEV), b.to(DEV)
    for w in (0.3, 0.7, -0.7, 1.3, -0.2, 0.5, -0.5):
        same(back(vt.lerp(on_dev(a), on_dev(b), w)), torch.lerp(ta, tb, w).cpu())
    w = (torch.rand(a.numel(), generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 3 - 1.5).to(tdt)
    same(back(vt.lerp(on_dev(a), on_dev(b), on_dev(w))), torch.lerp(ta, tb, w.to(DEV)).cpu())  # a tensor weight
    v = on_dev(a)
    v.lerp_(on_dev(b), -0.7)
    same(back(v), torch.lerp(ta, tb, -0.7).cpu())
    if dtype == "float32":  # the data tells the two ends apart
        assert int(((a + (-0.7) * (b - a)) != torch.lerp(a, b, -0.7)).sum()) > 1000
