"""CUDA sorting and multinomial (src/vbt/cuda/ops/sort.cu, Note [CUDA sort]; host side sort_ops.cpp): sort,
argsort, msort, topk, kthvalue vs PyTorch (on CUDA when this torch has it, else on the CPU), and multinomial's
distribution, errors and reproducibility.

Stable sorts have one right answer, so values and indices are compared exactly (NaN after +inf, negative NaNs
too; -0.0 ties with 0.0 and keeps index order, as torch's CPU sort; those cases use torch's CPU result as the
reference since that is the documented order). Unstable sorts, topk and kthvalue with ties may pick another of
equal elements: there the values are compared and the indices must point at those values.

Every test needs a GPU and a build with the CUDA kernels; without them the module is skipped. To check the tests
themselves on a machine without a GPU, run them against vibetensor's CPU kernels:
    VBT_CUDA_TEST_DEVICE=cpu pytest tests/py/cuda/test_cuda_sort.py"""
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
# the reference: torch on CUDA when available (and we test CUDA), else torch on the CPU
REF = "cuda" if DEV == "cuda" and torch.cuda.is_available() else "cpu"

TDT = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16,
       "int64": torch.int64, "int32": torch.int32, "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8,
       "bool": torch.bool}
FLOATS = ["float32", "float64", "float16", "bfloat16"]
INTS = ["uint8", "int8", "int16", "int32", "int64"]
ALL = FLOATS + INTS + ["bool"]
SPECIALS = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, 1.0, -0.0, 0.0, math.nan, -1e30,
            1e30, 2.0, -math.inf, math.inf, 0.5]


def make(shape, dt, seed=0, lo=-20, hi=20):
    """Random values with many ties (small integer range; floats rounded to quarters)."""
    g = torch.Generator().manual_seed(seed)
    tdt = TDT[dt]
    if tdt == torch.bool:
        return torch.rand(shape, generator=g) > 0.5
    if tdt.is_floating_point:
        return (torch.round(4 * torch.randn(shape, generator=g, dtype=torch.float64)) / 4).to(tdt)
    if tdt == torch.uint8:
        lo, hi = 0, 256
    if tdt == torch.int8:
        lo, hi = -128, 128
    return torch.randint(lo, hi, shape, generator=g, dtype=tdt)


def specials(dt, shape):
    """NaN (both signs), +-inf, signed zeros and repeated values, shuffled, of `shape`."""
    n = math.prod(shape)
    vals = torch.tensor((SPECIALS * (n // len(SPECIALS) + 1))[:n], dtype=torch.float64)
    vals = vals[torch.randperm(n, generator=torch.Generator().manual_seed(n))]
    vals[::7] = -vals[::7]  # flips some NaNs' sign bits too
    return vals.reshape(shape).to(TDT[dt])


def to_vt(t):
    """A vibetensor copy of torch tensor t on DEV (contiguous)."""
    t = t.detach().cpu().contiguous()
    v = vt.tensor(t.float().numpy()).to(vt.bfloat16) if t.dtype == torch.bfloat16 else vt.tensor(t.numpy())
    return v.to(DEV)


def to_torch(v):
    assert v.device.type == DEV, v.device
    v = v.cpu()
    if v.dtype == vt.bfloat16:
        return torch.from_numpy(np.asarray(v.float().numpy())).to(torch.bfloat16)
    return torch.from_numpy(np.array(v.numpy()))


def ref(fn, t, device=None):
    """fn(t) computed by torch on REF (or `device`), results on the CPU."""
    r = fn(t.to(device or REF))
    return tuple(x.cpu() for x in r) if isinstance(r, tuple) else r.cpu()


def same(host, expected):
    """Exact equality, shapes and dtypes included (NaN == NaN; -0.0 == 0.0)."""
    assert tuple(host.shape) == tuple(expected.shape), (tuple(host.shape), tuple(expected.shape))
    assert host.dtype == expected.dtype, (host.dtype, expected.dtype)
    if expected.dtype.is_floating_point:
        torch.testing.assert_close(host, expected, rtol=0, atol=0, equal_nan=True)
    else:
        assert torch.equal(host, expected), (host, expected)


def check_sort(vres, tres, exact_indices=True):
    vv, vi = to_torch(vres[0]), to_torch(vres[1])
    same(vv, tres[0])
    if exact_indices:
        same(vi, tres[1])
    return vv, vi


def consistent(x, dim, vals, idx):
    """The indices select the returned values from x (x a torch CPU tensor; 0-dim x: idx is 0)."""
    if x.dim() == 0:
        assert int(idx) == 0
        return
    same(torch.gather(x, dim, idx), vals)


def layouts(shape, dt, seed=0):
    """(name, torch input, vibetensor input on DEV): contiguous, transposed, strided slice, expanded."""
    t = make(shape, dt, seed)
    yield "contiguous", t, to_vt(t)
    tt = make((shape[1], shape[0]), dt, seed + 1)
    yield "transposed", tt.t(), to_vt(tt).t()
    wide = make((shape[0], 2 * shape[1]), dt, seed + 2)
    yield "sliced", wide[:, ::2], to_vt(wide)[:, ::2]
    row = make((1, shape[1]), dt, seed + 3)
    yield "expanded", row.expand(shape), to_vt(row).expand(*shape)


# ---------------------------------------------------------------- sort / argsort / msort
@pytest.mark.parametrize("dt", ALL)
@pytest.mark.parametrize("descending", [False, True])
def test_sort_stable_dtypes_dims_layouts(dt, descending):
    for name, t, v in layouts((6, 37), dt):
        for dim in (0, 1, -1):
            tres = ref(lambda x: tuple(torch.sort(x, dim=dim, descending=descending, stable=True)), t)
            vres = vt.sort(v, dim=dim, descending=descending, stable=True)
            check_sort(vres, tres)
            same(to_torch(vt.argsort(v, dim=dim, descending=descending, stable=True)), tres[1])


@pytest.mark.parametrize("dt", ["float32", "float16", "int32", "bool"])
def test_sort_unstable_values_and_consistent_indices(dt):
    t = make((9, 300), dt, seed=3)
    v = to_vt(t)
    for descending in (False, True):
        for dim in (0, 1):
            tres = ref(lambda x: tuple(torch.sort(x, dim=dim, descending=descending)), t)
            vv, vi = check_sort(vt.sort(v, dim, descending), tres, exact_indices=False)
            consistent(t, dim, vv, vi)
            ai = to_torch(v.argsort(dim, descending))
            same(torch.gather(t, dim, ai), tres[0])


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("shape", [(40,), (5, 40), (3, 2000)])
def test_sort_nan_inf_signed_zero(dt, descending, shape):
    t = specials(dt, shape)
    v = to_vt(t)
    # the order (NaN after +inf whatever its sign bit, -0.0 == 0.0 keeping index order) is torch's CPU sort's
    tres = ref(lambda x: tuple(torch.sort(x, dim=-1, descending=descending, stable=True)), t, device="cpu")
    vv, _ = check_sort(vt.sort(v, -1, descending, stable=True), tres)
    nan_pos = torch.isnan(vv)
    k = int(nan_pos[(0,) * (len(shape) - 1)].sum()) if len(shape) > 1 else int(nan_pos.sum())
    first = vv.reshape(-1, shape[-1])[0]
    if k:
        assert bool(torch.isnan(first[:k] if descending else first[-k:]).all())
    # values are the input's elements (the signs of zeros survive; NaN signs may not survive the test's copies)
    picked = torch.gather(t, -1, to_torch(vt.argsort(v, -1, descending, stable=True)))
    num = ~torch.isnan(vv)
    assert torch.equal(torch.signbit(vv)[num], torch.signbit(picked)[num])
    if REF == "cuda":  # torch CUDA agrees on the values (NaNs made positive: torch CUDA's order of NaNs with the
        tp = t.clone()  # sign bit set is not the documented one)
        tp[torch.isnan(tp)] = math.nan
        tres = ref(lambda x: tuple(torch.sort(x, dim=-1, descending=descending, stable=True)), tp)
        check_sort(vt.sort(to_vt(tp), -1, descending, stable=True), tres)


def test_sort_0d_and_empty():
    for dt in ("float32", "int64", "bool"):
        t = make((), dt)
        v = to_vt(t)
        vv, vi = to_torch(vt.sort(v)[0]), to_torch(vt.sort(v)[1])
        same(vv, t)
        same(vi, torch.tensor(0))
        same(to_torch(vt.argsort(v)), torch.tensor(0))
        for shape in ((0,), (3, 0), (0, 5)):
            z = make(shape, dt)
            for dim in range(len(shape)):
                tres = ref(lambda x: tuple(torch.sort(x, dim=dim, stable=True)), z)
                check_sort(vt.sort(to_vt(z), dim, stable=True), tres)
    with pytest.raises(IndexError):
        vt.sort(to_vt(make((3, 4), "float32")), 2)


@pytest.mark.parametrize("dt", ["float32", "int64", "bfloat16", "uint8"])
def test_sort_large_row(dt):
    n = 1 << 20
    t = make((n,), dt, seed=11)  # heavy ties: stability decides the indices
    v = to_vt(t)
    for descending in (False, True):
        tres = ref(lambda x: tuple(torch.sort(x, descending=descending, stable=True)), t)
        check_sort(vt.sort(v, descending=descending, stable=True), tres)
    t2 = make((3, n // 2), dt, seed=12)  # a few long segments
    tres = ref(lambda x: tuple(torch.sort(x, dim=1, stable=True)), t2)
    check_sort(vt.sort(to_vt(t2), 1, stable=True), tres)


@pytest.mark.parametrize("shape,dim", [((20000, 7), 1), ((3000, 129), 1), ((7, 20000), 0), ((64, 1), 1),
                                       ((2, 5000, 3), 1)])
def test_sort_many_short_rows(shape, dim):
    for dt in ("float32", "int16", "float64"):
        t = make(shape, dt, seed=sum(shape))
        v = to_vt(t)
        for descending in (False, True):
            tres = ref(lambda x: tuple(torch.sort(x, dim=dim, descending=descending, stable=True)), t)
            check_sort(vt.sort(v, dim, descending, stable=True), tres)


def test_msort_and_out():
    t = make((30, 5), "float32", seed=4)
    v = to_vt(t)
    tv = ref(lambda x: torch.msort(x), t)
    same(to_torch(vt.msort(v)), tv)
    same(to_torch(v.msort()), tv)
    out = vt.empty((30, 5), device=DEV)
    r = vt.msort(v, out=out)
    same(to_torch(out), tv)
    assert r is out or to_torch(r).equal(tv)
    tres = ref(lambda x: tuple(torch.sort(x, dim=0, stable=True)), t)
    ov, oi = vt.empty((30, 5), device=DEV), vt.empty((30, 5), dtype=vt.int64, device=DEV)
    vt.sort(v, dim=0, stable=True, out=(ov, oi))
    same(to_torch(ov), tres[0])
    same(to_torch(oi), tres[1])


# ---------------------------------------------------------------- topk
@pytest.mark.parametrize("dt", FLOATS + INTS)
@pytest.mark.parametrize("largest", [True, False])
def test_topk_values_and_indices(dt, largest):
    for name, t, v in layouts((6, 37), dt):
        for dim, k in ((1, 1), (1, 5), (-1, 37), (0, 3), (0, 0), (1, 0)):
            tres = ref(lambda x: tuple(torch.topk(x, k, dim=dim, largest=largest)), t)
            vv, vi = check_sort(vt.topk(v, k, dim=dim, largest=largest), tres, exact_indices=False)
            consistent(t, dim, vv, vi)
    # distinct values: the indices are unique too
    t = torch.randperm(500, generator=torch.Generator().manual_seed(1)).reshape(5, 100).to(TDT[dt]) \
        if dt not in ("uint8", "int8") else torch.randperm(100).reshape(4, 25).to(TDT[dt])
    if dt in ("float16", "bfloat16"):
        t = torch.randperm(200, generator=torch.Generator().manual_seed(1)).reshape(4, 50).to(TDT[dt])
    for k in (1, 7, t.shape[1]):
        tres = ref(lambda x: tuple(torch.topk(x, k, largest=largest)), t)
        check_sort(vt.topk(to_vt(t), k, largest=largest), tres)


@pytest.mark.parametrize("dt", FLOATS)
def test_topk_nan_inf(dt):
    t = specials(dt, (4, 30))
    v = to_vt(t)
    for largest in (True, False):
        for k in (1, 3, 10, 30):
            tres = ref(lambda x: tuple(torch.topk(x, k, largest=largest)), t, device="cpu")
            vv, vi = check_sort(v.topk(k, largest=largest), tres, exact_indices=False)
            consistent(t, 1, vv, vi)


def test_topk_large_row_0d_and_errors():
    n = 1 << 20
    t = torch.randn(n, generator=torch.Generator().manual_seed(2))
    v = to_vt(t)
    for k in (1, 100, 5000):
        tres = ref(lambda x: tuple(torch.topk(x, k)), t)
        check_sort(vt.topk(v, k), tres)  # random floats: no ties
    s = to_vt(torch.tensor(2.5))
    for k in (0, 1):
        same(to_torch(vt.topk(s, k)[0]), torch.tensor(2.5))
        same(to_torch(vt.topk(s, k)[1]), torch.tensor(0))
    with pytest.raises(RuntimeError):
        vt.topk(to_vt(make((3, 4), "float32")), 5)
    with pytest.raises(RuntimeError):
        vt.topk(to_vt(make((3, 4), "float32")), -1)
    with pytest.raises(RuntimeError):
        vt.topk(to_vt(make((3, 4), "bool")), 1)
    out = (vt.empty((3, 2), device=DEV), vt.empty((3, 2), dtype=vt.int64, device=DEV))
    tt = torch.randn(3, 4, generator=torch.Generator().manual_seed(3))
    vt.topk(to_vt(tt), 2, out=out)
    tres = ref(lambda x: tuple(torch.topk(x, 2)), tt)
    same(to_torch(out[0]), tres[0])
    same(to_torch(out[1]), tres[1])


# ---------------------------------------------------------------- kthvalue
@pytest.mark.parametrize("dt", FLOATS + INTS)
def test_kthvalue(dt):
    for name, t, v in layouts((6, 37), dt):
        for dim, k in ((1, 1), (1, 19), (-1, 37), (0, 1), (0, 6), (0, 4)):
            for keepdim in (False, True):
                tres = ref(lambda x: tuple(torch.kthvalue(x, k, dim=dim, keepdim=keepdim)), t)
                vv, vi = check_sort(vt.kthvalue(v, k, dim, keepdim), tres, exact_indices=False)
                consistent(t, dim, vv if keepdim else vv.unsqueeze(dim), vi if keepdim else vi.unsqueeze(dim))


@pytest.mark.parametrize("dt", FLOATS)
def test_kthvalue_nan_and_errors(dt):
    t = specials(dt, (3, 20))
    v = to_vt(t)
    for k in (1, 5, 18, 20):
        tres = ref(lambda x: tuple(torch.kthvalue(x, k)), t, device="cpu")
        vv, vi = check_sort(v.kthvalue(k), tres, exact_indices=False)
        consistent(t, 1, vv.unsqueeze(1), vi.unsqueeze(1))
    s = to_vt(torch.tensor(1.5))
    same(to_torch(vt.kthvalue(s, 1)[0]), torch.tensor(1.5))
    same(to_torch(vt.kthvalue(s, 1)[1]), torch.tensor(0))
    with pytest.raises(RuntimeError):
        vt.kthvalue(v, 21)
    with pytest.raises(RuntimeError):
        vt.kthvalue(v, 0)
    with pytest.raises(IndexError):
        vt.kthvalue(to_vt(make((3, 0), "float32")), 1)
    with pytest.raises(RuntimeError):
        vt.kthvalue(to_vt(make((3, 4), "bool")), 1)


def test_kthvalue_large_row():
    n = 1 << 20
    t = make((n,), "float32", seed=21)
    for k in (1, 12345, n // 2, n):
        tres = ref(lambda x: tuple(torch.kthvalue(x, k)), t)
        vv, vi = check_sort(vt.kthvalue(to_vt(t), k), tres, exact_indices=False)
        assert float(t[int(vi)]) == float(vv)


# ---------------------------------------------------------------- multinomial
def _freq(samples, ncat):
    return np.bincount(samples.reshape(-1), minlength=ncat) / samples.size


@pytest.mark.parametrize("dt", FLOATS)
def test_multinomial_replacement_frequencies(dt):
    vt.manual_seed(1234)
    w = torch.tensor([[1.0, 0.0, 3.0, 6.0, 0.0, 10.0], [0.0, 5.0, 0.0, 0.0, 5.0, 0.0]])
    n = 20000
    s = to_torch(vt.multinomial(to_vt(w.to(TDT[dt])), n, replacement=True))
    assert s.shape == (2, n) and s.dtype == torch.int64
    s = s.numpy()
    for r in range(2):
        p = (w[r] / w[r].sum()).numpy()
        f = _freq(s[r], 6)
        assert np.all(f[p == 0] == 0), f  # zero weights never drawn
        # binomial standard error is at most 0.0036 here: 0.02 is > 5 sigma
        assert np.abs(f - p).max() < 0.02, (f, p)


def test_multinomial_replacement_many_categories_and_1d():
    vt.manual_seed(7)
    ncat = 100000
    w = torch.zeros(ncat, dtype=torch.float64)
    w[::1000] = 1.0
    w[5] = 100.0
    s = to_torch(vt.multinomial(to_vt(w), 50000, True))
    assert s.shape == (50000,)
    assert bool((w[s] > 0).all())
    p5 = 100.0 / float(w.sum())
    assert abs(float((s == 5).double().mean()) - p5) < 0.02
    # one sample per row of many rows
    rows = torch.rand(4096, 3, generator=torch.Generator().manual_seed(3)) + torch.tensor([0.0, 0.0, 2.0])
    s1 = to_torch(vt.multinomial(to_vt(rows), 1, True))
    assert s1.shape == (4096, 1) and bool(((s1 >= 0) & (s1 < 3)).all())
    assert float((s1 == 2).double().mean()) > 0.6


@pytest.mark.parametrize("dt", ["float32", "float64", "float16"])
def test_multinomial_without_replacement(dt):
    vt.manual_seed(99)
    w = torch.tensor([2.0, 0.0, 1.0, 1.0, 4.0, 0.0, 2.0])
    rows = 3000
    W = w.expand(rows, 7).contiguous().to(TDT[dt])
    s = to_torch(vt.multinomial(to_vt(W), 5, replacement=False)).numpy()
    assert s.shape == (rows, 5)
    for r in range(rows):
        assert len(set(s[r].tolist())) == 5  # distinct
    assert not np.isin(s, [1, 5]).any()  # zero weights never drawn while others remain
    # the first draw follows the normalised weights
    p = (w / w.sum()).numpy()
    f = _freq(s[:, 0], 7)
    assert np.abs(f - p).max() < 0.04, (f, p)
    # drawing every category: a permutation, zero weights last
    s2 = to_torch(vt.multinomial(to_vt(W[:50]), 7, False)).numpy()
    for r in range(50):
        assert sorted(s2[r].tolist()) == list(range(7))
        assert set(s2[r, 5:].tolist()) == {1, 5}


def test_multinomial_reproducible():
    w = to_vt(torch.rand(8, 50, generator=torch.Generator().manual_seed(0)))
    for repl in (True, False):
        vt.manual_seed(42)
        a = to_torch(vt.multinomial(w, 10, repl))
        vt.manual_seed(42)
        b = to_torch(vt.multinomial(w, 10, repl))
        assert torch.equal(a, b)
        c = to_torch(vt.multinomial(w, 10, repl))
        assert not torch.equal(a, c)


def test_multinomial_noncontiguous_input():
    vt.manual_seed(3)
    base = torch.tensor([[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]]).repeat(1, 1)  # rows of the transposed: [0,0,1],[1,0,0]
    s = to_torch(vt.multinomial(to_vt(base).t(), 4, True))
    assert torch.equal(s, torch.tensor([[2, 2, 2, 2], [0, 0, 0, 0]]))


@pytest.mark.parametrize("bad", ["negative", "inf", "nan", "zero_row"])
def test_multinomial_invalid_weights(bad):
    w = torch.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    if bad == "negative":
        w[1, 1] = -0.5
    elif bad == "inf":
        w[0, 2] = math.inf
    elif bad == "nan":
        w[1, 0] = math.nan
    else:
        w[1] = 0.0
    for repl in (True, False):
        with pytest.raises(RuntimeError):
            # torch raises too (on the CPU: torch's CUDA kernel may stop the device with an assert, which would
            # break the CUDA context this process shares with vibetensor)
            ref(lambda x: torch.multinomial(x, 2, repl), w, device="cpu")
        with pytest.raises(RuntimeError):
            vt.multinomial(to_vt(w), 2, repl)


def test_multinomial_argument_errors():
    w = to_vt(torch.ones(2, 3))
    with pytest.raises(RuntimeError):
        vt.multinomial(w, 4, False)  # more samples than categories without replacement
    assert to_torch(vt.multinomial(w, 4, True)).shape == (2, 4)
    with pytest.raises(RuntimeError):
        vt.multinomial(w, 0, True)
    with pytest.raises(RuntimeError):
        vt.multinomial(to_vt(torch.ones(2, 2, 2)), 1, True)
    with pytest.raises(RuntimeError):
        vt.multinomial(to_vt(torch.ones(3, dtype=torch.int64)), 1, True)
