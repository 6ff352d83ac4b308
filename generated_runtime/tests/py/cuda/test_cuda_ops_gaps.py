"""CUDA kernels that closed parity gaps found on an H200 (reports/gpu/README.md): softplus (forward, and its
composed backward), gelu at +-inf, bitwise and/or/xor/not, nan_to_num, randint and randperm; vs PyTorch on the
CPU (results copied back to the host).

Every test needs a GPU and a build with the CUDA kernels; without them the module is skipped. To check the tests
themselves on a machine without a GPU, run them against vibetensor's CPU kernels:
    VBT_CUDA_TEST_DEVICE=cpu pytest tests/py/cuda/test_cuda_ops_gaps.py"""
import importlib.util
import math
import os

import numpy as np
import pytest
import torch

import vibetensor.torch as vt

DEV = os.environ.get("VBT_CUDA_TEST_DEVICE", "cuda")
HAS_GPU = vt.cuda.is_available()
HAS_OPS = vt.cuda._tensors.has_ops()
pytestmark = pytest.mark.skipif(DEV == "cuda" and not (HAS_GPU and HAS_OPS),
                                reason="needs a CUDA GPU and a build with the CUDA kernels "
                                       f"(is_available()={HAS_GPU}, has_ops()={HAS_OPS}); "
                                       "VBT_CUDA_TEST_DEVICE=cpu runs the checks on the CPU kernels")
HAS_AUTOGRAD = importlib.util.find_spec("vibetensor.torch.autograd") is not None

TDT = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16,
       "int64": torch.int64, "int32": torch.int32, "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8,
       "bool": torch.bool}
VDT = {"float32": vt.float32, "float64": vt.float64, "float16": vt.float16, "bfloat16": vt.bfloat16,
       "int64": vt.int64, "int32": vt.int32, "int16": vt.int16, "int8": vt.int8, "uint8": vt.uint8, "bool": vt.bool}
FLOATS = ["float32", "float64", "float16", "bfloat16"]
INTEGRAL = ["bool", "uint8", "int8", "int16", "int32", "int64"]
TOL = {torch.float32: (1e-5, 1e-5), torch.float64: (1e-10, 1e-10), torch.float16: (2e-3, 2e-3),
       torch.bfloat16: (1.6e-2, 1.6e-2)}
SPECIALS = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, 30.0, -30.0, -10.0, -5.0, 1e30, -1e30]


def make(shape, dt, seed=0, lo=-100, hi=100):
    g = torch.Generator().manual_seed(seed)
    tdt = TDT[dt]
    if tdt == torch.bool:
        return torch.rand(shape, generator=g) > 0.5
    if tdt.is_floating_point:
        return (3 * torch.randn(shape, generator=g, dtype=torch.float64)).to(tdt)
    if tdt == torch.uint8:
        lo, hi = 0, 256
    return torch.randint(lo, hi, shape, generator=g, dtype=tdt)


def specials(dt, shape=(4, 8)):
    """A float tensor of `shape` holding NaN, +-inf, signed zeros, large and ordinary values."""
    vals = (SPECIALS * (math.prod(shape) // len(SPECIALS) + 1))[:math.prod(shape)]
    return torch.tensor(vals, dtype=torch.float64).reshape(shape).to(TDT[dt])


def to_vt(t):
    """A vibetensor copy of torch tensor t on DEV (contiguous)."""
    t = t.contiguous()
    v = vt.tensor(t.float().numpy()).to(vt.bfloat16) if t.dtype == torch.bfloat16 else vt.tensor(t.numpy())
    return v.to(DEV)


def to_torch(v):
    v = v.cpu()
    if v.dtype == vt.bfloat16:
        return torch.from_numpy(np.asarray(v.float().numpy())).to(torch.bfloat16)
    return torch.from_numpy(np.array(v.numpy()))


def check(vres, tres, tol=None):
    assert vres.device.type == DEV, vres.device
    host = to_torch(vres)
    assert tuple(host.shape) == tuple(tres.shape), (tuple(host.shape), tuple(tres.shape))
    assert host.dtype == tres.dtype, (host.dtype, tres.dtype)
    if tres.dtype.is_floating_point:
        rtol, atol = tol or TOL[tres.dtype]
        torch.testing.assert_close(host, tres, rtol=rtol, atol=atol, equal_nan=True)
    else:
        assert torch.equal(host, tres), (host, tres)


def layouts(shape, dt, seed=0, **kw):
    """(name, torch input, vibetensor input on DEV): contiguous, transposed, strided slice, zero-size."""
    t = make(shape, dt, seed, **kw)
    yield "contiguous", t, to_vt(t)
    tt = make((shape[1], shape[0]), dt, seed + 1, **kw)
    yield "transposed", tt.t(), to_vt(tt).t()
    wide = make((shape[0], 2 * shape[1]), dt, seed + 2, **kw)
    yield "sliced", wide[:, ::2], to_vt(wide)[:, ::2]
    z = make((0, shape[1]), dt, seed + 3, **kw)
    yield "empty", z, to_vt(z)


# ---------------------------------------------------------------- softplus
@pytest.mark.parametrize("dt", FLOATS)
def test_softplus_forward(dt):
    F, TF = vt.nn.functional, torch.nn.functional
    for beta, threshold in ((1, 20), (2, 1), (0.5, 5), (-1, 20), (3, -2)):
        for kind, t, v in layouts((5, 7), dt, lo=-30, hi=30):
            check(F.softplus(v, beta, threshold), TF.softplus(t, beta, threshold))
        check(F.softplus(to_vt(make((6,), dt)), beta=beta, threshold=threshold),
              TF.softplus(make((6,), dt), beta=beta, threshold=threshold))
    s = specials(dt)  # infinities, NaN, values past the threshold either way
    for beta in (1, 2, -1):
        check(F.softplus(to_vt(s), beta), TF.softplus(s, beta))
    out = vt.empty(3, 4, dtype=VDT[dt], device=DEV)
    x = make((3, 4), dt, 5)
    vt.softplus(to_vt(x), 1.5, 10, out=out)
    check(out, TF.softplus(x, 1.5, 10))


@pytest.mark.skipif(not HAS_AUTOGRAD, reason="build without the autograd subsystem")
@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_softplus_backward(dt):
    for beta, threshold in ((1, 20), (2, 1), (-1, 3)):
        x = make((4, 6), dt, seed=7)
        g = make((4, 6), dt, seed=8)
        tx = x.clone().requires_grad_(True)
        torch.nn.functional.softplus(tx, beta, threshold).backward(g)
        vx = to_vt(x).requires_grad_(True)
        vt.nn.functional.softplus(vx, beta, threshold).backward(to_vt(g))
        check(vx.grad, tx.grad)


# ---------------------------------------------------------------- gelu at the special values
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_specials(dt, approximate):
    s = specials(dt)
    got = vt.nn.functional.gelu(to_vt(s), approximate=approximate)
    want = torch.nn.functional.gelu(s, approximate=approximate)
    # gelu(+inf) is +inf (the limit, and torch 2.13's answer); torch 2.11's vectorised CPU path gives NaN there
    want = torch.where(s == math.inf, torch.full_like(want, math.inf), want)
    check(got, want, tol=(TOL[TDT[dt]][0], max(TOL[TDT[dt]][1], 1e-6)))
    host = to_torch(got).double()
    assert math.isnan(host[0, 2].item()) and host[0, 1].item() == math.inf  # gelu(-inf) = NaN, gelu(inf) = inf
    x = make((5, 7), dt)
    check(vt.nn.functional.gelu(to_vt(x), approximate=approximate),
          torch.nn.functional.gelu(x, approximate=approximate))


# ---------------------------------------------------------------- bitwise ops
@pytest.mark.parametrize("dt", INTEGRAL)
@pytest.mark.parametrize("name", ["bitwise_and", "bitwise_or", "bitwise_xor"])
def test_bitwise_binary(name, dt):
    op = {"bitwise_and": lambda a, b: a & b, "bitwise_or": lambda a, b: a | b, "bitwise_xor": lambda a, b: a ^ b}[name]
    for kind, t, v in layouts((5, 6), dt):
        o = make(tuple(t.shape), dt, seed=11)
        check(getattr(vt, name)(v, to_vt(o)), getattr(torch, name)(t, o))
        check(op(v, to_vt(o)), op(t, o))
    a, b = make((3, 1), dt, seed=12), make((4,), dt, seed=13)  # broadcast
    check(getattr(vt, name)(to_vt(a), to_vt(b)), getattr(torch, name)(a, b))
    scalar = True if dt == "bool" else 5
    check(op(to_vt(a), scalar), op(a, scalar))
    check(op(scalar, to_vt(a)), op(scalar, a))
    out = vt.empty(3, 4, dtype=VDT[dt], device=DEV)
    getattr(vt, name)(to_vt(a), to_vt(b), out=out)
    check(out, getattr(torch, name)(a, b))
    x = to_vt(make((3, 4), dt, seed=14))
    ref = getattr(torch, name)(make((3, 4), dt, seed=14), b)
    getattr(x, name + "_")(to_vt(b))  # in place
    check(x, ref)


def test_bitwise_promotion_and_errors():
    a, b = make((4, 5), "int8", seed=1), make((4, 5), "int32", seed=2)
    check(vt.bitwise_and(to_vt(a), to_vt(b)), torch.bitwise_and(a, b))  # int8 & int32 -> int32
    m, i = make((4, 5), "bool", seed=3), make((4, 5), "int16", seed=4)
    check(vt.bitwise_or(to_vt(m), to_vt(i)), torch.bitwise_or(m, i))  # bool | int16 -> int16
    f = make((4, 5), "float32")
    for name in ("bitwise_and", "bitwise_or", "bitwise_xor"):
        with pytest.raises(RuntimeError):
            getattr(torch, name)(f, f)
        with pytest.raises(RuntimeError):
            getattr(vt, name)(to_vt(f), to_vt(f))
    with pytest.raises(RuntimeError):
        vt.bitwise_not(to_vt(f))


@pytest.mark.parametrize("dt", INTEGRAL)
def test_bitwise_not(dt):
    for kind, t, v in layouts((5, 6), dt):
        check(vt.bitwise_not(v), torch.bitwise_not(t))
        check(~v, ~t)
    x = make((3, 4), dt, seed=3)
    v = to_vt(x)
    v.bitwise_not_()
    check(v, torch.bitwise_not(x))


# ---------------------------------------------------------------- nan_to_num
@pytest.mark.parametrize("dt", FLOATS)
def test_nan_to_num_float(dt):
    s = specials(dt)
    check(vt.nan_to_num(to_vt(s)), torch.nan_to_num(s))  # infinities to the dtype's finite extremes
    for kw in ({"nan": 2.0}, {"posinf": 7.5}, {"neginf": -9.0}, {"nan": -1.0, "posinf": 100.0, "neginf": -100.0},
               {"posinf": 1e300, "neginf": -1e300}):
        check(vt.nan_to_num(to_vt(s), **kw), torch.nan_to_num(s, **kw))
    st = s.t()
    check(vt.nan_to_num(to_vt(s).t(), nan=3.0), torch.nan_to_num(st, nan=3.0))  # non-contiguous
    v = to_vt(s)
    v.nan_to_num_(nan=0.25)
    check(v, torch.nan_to_num(s, nan=0.25))
    out = vt.empty(0, dtype=VDT[dt], device=DEV)  # empty out= is resized
    vt.nan_to_num(to_vt(s), out=out)
    check(out, torch.nan_to_num(s))
    z = torch.empty(0, 3, dtype=TDT[dt])
    check(vt.nan_to_num(to_vt(z)), torch.nan_to_num(z))


@pytest.mark.parametrize("dt", INTEGRAL)
def test_nan_to_num_integral_is_identity(dt):
    x = make((4, 5), dt)
    kw = {"nan": 1.0, "posinf": 2.0, "neginf": -3.0}
    check(vt.nan_to_num(to_vt(x), **kw), torch.nan_to_num(x, **kw))


# ---------------------------------------------------------------- randint / randperm
# The CUDA random ops draw from a counter-based generator (elementwise.cu, RandomNote), not PyTorch's stream:
# these tests check ranges, dtypes, frequencies and reproducibility under manual_seed.
def test_randint_range_and_frequencies():
    n = 200_000
    vt.manual_seed(5)
    r = vt.randint(-3, 7, (n,), device=DEV)
    assert r.device.type == DEV and r.dtype == vt.int64
    h = to_torch(r)
    assert h.min().item() == -3 and h.max().item() == 6
    counts = torch.bincount(h + 3, minlength=10).double() / n
    assert (counts - 0.1).abs().max().item() < 0.01, counts
    assert abs(h.double().mean().item() - 1.5) < 0.05
    b = to_torch(vt.randint(0, 2**40, (1000,), device=DEV))  # a range past 32 bits
    assert b.min().item() >= 0 and b.max().item() < 2**40 and b.max().item() > 2**39


@pytest.mark.parametrize("dt", ["int32", "int16", "uint8", "float32", "float64", "bfloat16"])
def test_randint_dtypes_and_shapes(dt):
    r = vt.randint(0, 10, (3, 4, 5), dtype=VDT[dt], device=DEV)
    assert r.dtype == VDT[dt] and tuple(r.shape) == (3, 4, 5)
    h = to_torch(r).double()
    assert h.min().item() >= 0 and h.max().item() <= 9 and torch.equal(h, h.round())
    assert tuple(vt.randint(5, (0, 3), device=DEV).shape) == (0, 3)
    assert to_torch(vt.randint(4, 5, (7,), device=DEV)).eq(4).all()
    with pytest.raises(RuntimeError):
        vt.randint(5, 5, (3,), device=DEV)


def test_randint_reproducible():
    vt.manual_seed(77)
    a = to_torch(vt.randint(0, 1000, (256,), device=DEV))
    b = to_torch(vt.randint(0, 1000, (256,), device=DEV))
    vt.manual_seed(77)
    a2 = to_torch(vt.randint(0, 1000, (256,), device=DEV))
    assert torch.equal(a, a2) and not torch.equal(a, b)
    g = vt.Generator().manual_seed(3)
    c = to_torch(vt.randint(0, 1000, (256,), generator=g, device=DEV))
    g2 = vt.Generator().manual_seed(3)
    assert torch.equal(c, to_torch(vt.randint(0, 1000, (256,), generator=g2, device=DEV)))


@pytest.mark.parametrize("n", [0, 1, 2, 17, 1000])
def test_randperm_is_a_permutation(n):
    p = vt.randperm(n, device=DEV)
    assert p.device.type == DEV and p.dtype == vt.int64 and tuple(p.shape) == (n,)
    h = to_torch(p)
    assert torch.equal(torch.sort(h).values, torch.arange(n))
    if n == 1000:
        assert not torch.equal(h, torch.arange(n))


def test_randperm_dtype_seed_and_cpu_agreement():
    p = vt.randperm(50, dtype=vt.int32, device=DEV)
    assert p.dtype == vt.int32 and torch.equal(torch.sort(to_torch(p).long()).values, torch.arange(50))
    f = vt.randperm(30, dtype=vt.float32, device=DEV)
    assert f.dtype == vt.float32 and torch.equal(torch.sort(to_torch(f)).values, torch.arange(30.0))
    vt.manual_seed(9)
    a = to_torch(vt.randperm(100, device=DEV))
    vt.manual_seed(9)
    cpu = to_torch(vt.randperm(100))  # drawn on the host from the same Generator: the same permutation
    assert torch.equal(a, cpu)
    g = vt.Generator().manual_seed(4)
    b = to_torch(vt.randperm(100, generator=g, device=DEV))
    assert torch.equal(b, to_torch(vt.randperm(100, generator=vt.Generator().manual_seed(4), device=DEV)))
