"""The contiguous elementwise path of the CUDA kernels (VecNote in src/vbt/cuda/ops/elementwise.cu: 16-byte packs,
2 packs per thread, 128-thread blocks, one block per 256 packs, the < 1 pack tail on the first threads) and gelu
(GeluNote: torch's CUDA formula) vs PyTorch: sizes around the pack, tail and block-chunk boundaries of every pack
width (V = 16 / element size: 2 for float64, 4 for float32/int32, 8 for float16/bfloat16, 16 for int8), views with
storage offset 1 (no 16-byte alignment: the element-wise loads of the path), every input mode (dense, a broadcast
scalar as either operand, a row vector [C] against [N, C], a column [N, 1] against [N, C], aligned and not), a
cast (the output's element size differs from the input's) and a comparison (bool output), and gelu at the special
values.

The reference is torch on CUDA when this torch has CUDA (the same kernels' formulas: results must be equal bit for
bit, gelu included), else torch on the CPU (exact for the exact ops, a tolerance for exp/gelu).

Every test needs a GPU and a build with the CUDA kernels; without them the module is skipped. To check the tests
themselves on a machine without a GPU, run them against vibetensor's CPU kernels:
    VBT_CUDA_TEST_DEVICE=cpu pytest tests/py/cuda/test_cuda_elementwise_contig.py"""
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
# torch on CUDA as the reference only when vibetensor's side runs on CUDA too
TORCH_CUDA = DEV == "cuda" and torch.cuda.is_available()
REF_DEV = "cuda" if TORCH_CUDA else "cpu"

TDT = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16,
       "int32": torch.int32, "int8": torch.int8, "bool": torch.bool}
VDT = {"float32": vt.float32, "float64": vt.float64, "float16": vt.float16, "bfloat16": vt.bfloat16,
       "int32": vt.int32, "int8": vt.int8, "bool": vt.bool}
FLOATS = ["float32", "float64", "float16", "bfloat16"]
DTYPES = FLOATS + ["int32", "int8"]
PACK = {"float64": 2, "float32": 4, "int32": 4, "float16": 8, "bfloat16": 8, "int8": 16}  # elements per 16 bytes
CHUNK = 2 * 128  # packs per block

# loose tolerances for a CPU reference of the transcendental ops (CUDA's and torch CPU's libm differ by ulps)
TOL = {torch.float32: (1e-5, 1e-5), torch.float64: (1e-10, 1e-10), torch.float16: (2e-3, 2e-3),
       torch.bfloat16: (1.6e-2, 1.6e-2)}


def sizes_for(dt):
    """n around 1, the pack width, the tail, one block's chunk and its neighbours, and a large odd size."""
    v = PACK[dt]
    c = CHUNK * v
    base = [1, 3, 4, 5, 7, 8, 9, 127, 128 * 8 - 1, 128 * 8, 128 * 8 + 1, 2 ** 20 + 3]
    extra = [v - 1, v, v + 1, 2 * v + 1, c - 1, c, c + 1, 2 * c + v - 1, 3 * c + 1]
    return sorted({n for n in base + extra if n >= 1})


def make(shape, dt, seed=0):
    g = torch.Generator().manual_seed(seed)
    tdt = TDT[dt]
    if tdt.is_floating_point:
        return (3 * torch.randn(shape, generator=g, dtype=torch.float64)).to(tdt)
    return torch.randint(-100, 100, shape, generator=g, dtype=tdt)


def to_vt(t):
    """A vibetensor copy of torch tensor t on DEV (contiguous)."""
    t = t.contiguous()
    v = vt.tensor(t.float().numpy()).to(vt.bfloat16) if t.dtype == torch.bfloat16 else vt.tensor(t.numpy())
    return v.to(DEV)


def to_torch(v):
    v = v.cpu()
    if v.dtype == vt.bfloat16:
        return torch.from_numpy(np.array(v.float().numpy())).to(torch.bfloat16)
    return torch.from_numpy(np.array(v.numpy()))


def ref(fn, *ts):
    """fn applied by torch on REF_DEV to the (host) tensors / numbers ts, back on the host."""
    args = [t.to(REF_DEV) if isinstance(t, torch.Tensor) else t for t in ts]
    return fn(*args).cpu()


def same_bits(host, want):
    """Equal values, NaN where NaN, and the same sign of zero."""
    assert host.dtype == want.dtype, (host.dtype, want.dtype)
    assert tuple(host.shape) == tuple(want.shape), (tuple(host.shape), tuple(want.shape))
    if not want.dtype.is_floating_point:
        assert torch.equal(host, want)
        return
    h, w = host.double(), want.double()
    hn, wn = torch.isnan(h), torch.isnan(w)
    assert torch.equal(hn, wn), f"NaN at {torch.nonzero(hn != wn)[:8].flatten().tolist()}"
    bad = ~hn & ((h != w) | (torch.signbit(h) != torch.signbit(w)))
    if bad.any():
        i = torch.nonzero(bad)[:8].flatten().tolist()
        raise AssertionError(f"{int(bad.sum())} of {h.numel()} differ, e.g. at {i}: got "
                             f"{h.flatten()[i].tolist()} want {w.flatten()[i].tolist()}")


def check(vres, want, exact=True):
    """vres (vibetensor, on DEV) against torch's want; exact: bit for bit (signed zeros and NaN included)."""
    assert vres.device.type == DEV, vres.device
    host = to_torch(vres)
    if exact or not want.dtype.is_floating_point:
        same_bits(host, want)
    else:
        rtol, atol = TOL[want.dtype]
        assert host.dtype == want.dtype and tuple(host.shape) == tuple(want.shape)
        torch.testing.assert_close(host, want, rtol=rtol, atol=atol, equal_nan=True)


# ---------------------------------------------------------------- sizes around the pack / tail / chunk edges
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("offset", [0, 1])
def test_sizes_and_offsets(dt, offset):
    """Every n of sizes_for(dt), aligned (offset 0) and at storage offset 1 (not aligned to a 16-byte pack)."""
    is_float = TDT[dt].is_floating_point
    for n in sizes_for(dt):
        a = make((n + offset,), dt, seed=n)
        b = make((n + offset,), dt, seed=n + 7)
        va, vb = to_vt(a), to_vt(b)
        ta, tb = a[offset:], b[offset:]
        sa, sb = va[offset:], vb[offset:]
        assert sa.numel() == n
        check(vt.add(sa, sb), ref(torch.add, ta, tb))
        check(vt.mul(sa, sb), ref(torch.mul, ta, tb))
        check(vt.sub(sa, vb[:n]), ref(torch.sub, ta, b[:n]))     # one operand at offset 0, the other not
        check(vt.relu(sa), ref(torch.relu, ta))
        check(vt.neg(sa), ref(torch.neg, ta))
        check(sa.clone(), ta.clone())
        check(vt.mul(sa, 3), ref(lambda x: x * 3, ta))            # a Python number: a stride-0 operand
        check(vt.eq(sa, sb), ref(torch.eq, ta, tb))               # bool output (1-byte packs of the output)
        if is_float:
            check(sa.to(vt.float32 if dt != "float32" else vt.float64),
                  ta.to(torch.float32 if dt != "float32" else torch.float64))  # a cast: the output's width differs
            check(vt.exp(sa), ref(torch.exp, ta), exact=False)
            check(vt.add(sa, sb, alpha=0.5), ref(lambda x, y: torch.add(x, y, alpha=0.5), ta, tb), exact=False)


@pytest.mark.parametrize("n", [1, 5, 128 * 8 + 1, 2 ** 20 + 3])
def test_inplace_and_misaligned_destination(n):
    a = make((n + 1,), "float32", seed=1)
    b = make((n + 1,), "float32", seed=2)
    va, vb = to_vt(a), to_vt(b)
    va[1:].add_(vb[:-1])                                        # misaligned output, aligned input
    want = a.clone()
    want[1:] += b[:-1]
    check(va, want)
    dst = vt.zeros(n + 1, device=DEV, dtype=vt.float16)
    dst[1:].copy_(vb[1:])                                       # misaligned cast on copy_
    w = torch.zeros(n + 1, dtype=torch.float16)
    w[1:] = b[1:].half()
    check(dst, w)


# ---------------------------------------------------------------- input modes
@pytest.mark.parametrize("dt", DTYPES)
def test_scalar_operand_modes(dt):
    """A 0-d device tensor (stride 0, loaded once per thread) as the first or the second operand, and a Python
    number, over sizes with and without a tail; also a 1-element broadcast [1] operand."""
    for n in (1, 7, CHUNK * PACK[dt] + 3, 2 ** 20 + 3):
        x = make((n,), dt, seed=n)
        s = make((), dt, seed=99)
        vx, vs = to_vt(x), to_vt(s)
        assert vs.dim() == 0
        check(vt.mul(vx, vs), ref(torch.mul, x, s))
        check(vt.sub(vs, vx), ref(torch.sub, s, x))                # the scalar first
        check(vt.add(vs, vx[1:]), ref(torch.add, s, x[1:]))        # the scalar first, a misaligned dense second
        one = make((1,), dt, seed=98)
        check(vt.maximum(vx, to_vt(one)), ref(torch.maximum, x, one))
        check(vt.sub(vx, 2), ref(lambda t: t - 2, x))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("rows,cols", [(3, 5), (7, 16), (33, 64), (129, 1000), (5, 4099), (1000, 8)])
def test_row_and_column_broadcasts(dt, rows, cols):
    """[N, C] op [C] (a row vector: a pack is one vector load when C is a multiple of the pack width, and the
    pointers aligned) and [N, C] op [N, 1] (a column: one element per pack), also at storage offset 1."""
    x = make((rows, cols), dt, seed=rows)
    r = make((cols,), dt, seed=cols)
    c = make((rows, 1), dt, seed=rows + cols)
    vx, vr, vc = to_vt(x), to_vt(r), to_vt(c)
    check(vt.add(vx, vr), ref(torch.add, x, r))
    check(vt.mul(vr, vx), ref(torch.mul, r, x))                    # the row vector first
    check(vt.sub(vx, vc), ref(torch.sub, x, c))
    check(vt.mul(vc, vx), ref(torch.mul, c, x))                    # the column first
    check(vt.add(vc, vr), ref(torch.add, c, r))                    # both broadcast: [N, 1] op [C] -> [N, C]
    check(vt.maximum(vx, vr), ref(torch.maximum, x, r))
    # misaligned: the row vector and the matrix at storage offset 1
    rb = make((cols + 1,), dt, seed=5)
    xb = make((rows * cols + 1,), dt, seed=6)
    vrb, vxb = to_vt(rb)[1:], to_vt(xb)[1:].reshape(rows, cols)
    tr, tx = rb[1:], xb[1:].reshape(rows, cols)
    check(vt.add(vx, vrb), ref(torch.add, x, tr))
    check(vt.add(vxb, vr), ref(torch.add, tx, r))
    check(vt.mul(vxb, vc), ref(torch.mul, tx, c))
    check(vt.eq(vx, vr), ref(torch.eq, x, r))                      # bool output with a row vector
    # three dims, [A, B, C] op [C]: coalesced to a 2-D loop
    x3 = make((2, rows, cols), dt, seed=11)
    check(vt.add(to_vt(x3), vr), ref(torch.add, x3, r))


# ---------------------------------------------------------------- gelu
GELU_SPECIALS = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-45, -1e-45, 1e-30, -1e-30, 0.5, -0.5, 1.0, -1.0,
                 -2.5, 3.0, -5.0, -5.5, -5.9, -6.0, -7.0, -10.0, -20.0, -30.0, 30.0, 100.0, -100.0, 1e30, -1e30,
                 3.4e38, -3.4e38, 65504.0, -65504.0]


def gelu_inputs(dt, n_random=4099):
    """The specials (those that fit dt), then values over [-12, 12] and random ones."""
    s = torch.tensor(GELU_SPECIALS, dtype=torch.float64).to(TDT[dt])
    lin = torch.linspace(-12, 12, 2001, dtype=torch.float64).to(TDT[dt])
    return torch.cat([s, lin, make((n_random,), dt, seed=3)])


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("offset", [0, 1])
def test_gelu_specials_vs_torch(dt, approximate, offset):
    """gelu over the specials (-inf -> NaN, +inf -> +inf, NaN -> NaN, -0 -> -0, a large negative x -> -0) and a
    range of values, through the contiguous path (offset 0: packs; offset 1: element loads) and a strided view
    (the generic loop). Against torch on CUDA: bit for bit for approximate='none' (GeluNote: torch's formula in
    torch's compute type); 'tanh' within a few ulps (torch's expression tree too, but tanhf may differ between
    the CUDA versions torch and vibetensor are built with)."""
    x = gelu_inputs(dt)
    xb = torch.cat([torch.zeros(offset, dtype=x.dtype), x])
    vx = to_vt(xb)[offset:]
    got = vt.nn.functional.gelu(vx, approximate=approximate)
    want = ref(lambda t: torch.nn.functional.gelu(t, approximate=approximate), x)
    host = to_torch(got).double()
    # the special values themselves, whatever the reference
    xs = x.double()
    assert torch.isnan(host[torch.isnan(xs)]).all()
    assert torch.isnan(host[xs == -math.inf]).all()                 # -inf * 0
    assert (host[xs == math.inf] == math.inf).all()
    zero = xs == 0
    assert (host[zero] == 0).all() and torch.equal(torch.signbit(host[zero]), torch.signbit(xs[zero]))
    big_neg = torch.isfinite(xs) & (xs < -20)                        # Phi(x) underflows: -0 (torch: -0 too)
    assert (host[big_neg] == 0).all()
    exact = TORCH_CUDA and approximate == "none"
    if exact:
        check(got, want)
    else:
        rtol, atol = TOL[TDT[dt]]
        if TORCH_CUDA:
            rtol, atol = {torch.float32: (5e-7, 1e-6), torch.float64: (1e-14, 1e-14)}.get(TDT[dt], (rtol, atol))
        # torch 2.11's vectorised CPU path gives NaN for gelu(+inf); the checks above pin +inf
        want = torch.where(x == math.inf, torch.full_like(want, math.inf), want)
        torch.testing.assert_close(to_torch(got), want, rtol=rtol, atol=atol, equal_nan=True)
    # the generic loop (a strided view) gives the same values as the contiguous path
    x2 = torch.stack([x, x], 1)
    got2 = vt.nn.functional.gelu(to_vt(x2)[:, 1], approximate=approximate)
    same_bits(to_torch(got2), to_torch(got))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_large_sizes(approximate):
    """gelu over sizes around the block chunk and a large odd size, float32 and bfloat16."""
    for dt in ("float32", "bfloat16"):
        for n in (CHUNK * PACK[dt] - 1, CHUNK * PACK[dt] + 1, 2 ** 20 + 3):
            x = make((n,), dt, seed=n)
            got = vt.nn.functional.gelu(to_vt(x), approximate=approximate)
            want = ref(lambda t: torch.nn.functional.gelu(t, approximate=approximate), x)
            if TORCH_CUDA and approximate == "none":
                check(got, want)
            else:
                rtol, atol = TOL[TDT[dt]]
                torch.testing.assert_close(to_torch(got), want, rtol=rtol, atol=atol, equal_nan=True)
