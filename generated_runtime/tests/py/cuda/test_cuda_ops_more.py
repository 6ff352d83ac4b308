"""CUDA kernels of the scans, arg-reductions, norms, shape copies and scatters (src/vbt/cuda/ops/scan_index.cu and
their host side in cuda_ops.cpp) vs PyTorch on the CPU: argmax/argmin, max/min with dim, prod, norm, cumsum/cumprod,
flip, roll, repeat, index_add, scatter/scatter_add, masked_select, advanced indexing (index / index_put_).

Each op runs on contiguous and non-contiguous inputs, a zero-size input, and the integer / float dtypes its CPU
kernel supports; results are copied back to the host and compared with torch. Every test needs a GPU and a build
with the CUDA kernels; without them the whole module is skipped with the reason."""
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt

HAS_GPU = vt.cuda.is_available()
HAS_OPS = vt.cuda._tensors.has_ops()
pytestmark = pytest.mark.skipif(not (HAS_GPU and HAS_OPS),
                                reason="needs a CUDA GPU and a build with the CUDA kernels "
                                       f"(is_available()={HAS_GPU}, has_ops()={HAS_OPS})")

TDT = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16,
       "int64": torch.int64, "int32": torch.int32, "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8,
       "bool": torch.bool}
TOL = {torch.float32: (1e-5, 1e-5), torch.float64: (1e-10, 1e-10), torch.float16: (2e-3, 2e-3),
       torch.bfloat16: (1.6e-2, 1.6e-2)}


def make(shape, dt, seed=0, lo=-20, hi=20):
    g = torch.Generator().manual_seed(seed)
    tdt = TDT[dt]
    if tdt == torch.bool:
        return torch.rand(shape, generator=g) > 0.5
    if tdt.is_floating_point:
        return torch.randn(shape, generator=g, dtype=torch.float64).to(tdt)
    if tdt == torch.uint8:
        lo = 0
    return torch.randint(lo, hi, shape, generator=g, dtype=tdt)


def to_vt(t, device="cuda"):
    """A vibetensor copy of torch tensor t on `device` (contiguous)."""
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        v = vt.tensor(t.float().numpy()).to(vt.bfloat16)
    else:
        v = vt.tensor(t.numpy())
    return v.to(device)


def to_torch(v):
    v = v.cpu()
    if v.dtype == vt.bfloat16:
        return torch.from_numpy(np.asarray(v.float().numpy())).to(torch.bfloat16)
    return torch.from_numpy(np.array(v.numpy()))


def check(vres, tres):
    assert vres.device.type == "cuda", vres.device
    host = to_torch(vres)
    assert tuple(host.shape) == tuple(tres.shape), (tuple(host.shape), tuple(tres.shape))
    assert host.dtype == tres.dtype, (host.dtype, tres.dtype)
    if tres.dtype.is_floating_point:
        rtol, atol = TOL[tres.dtype]
        torch.testing.assert_close(host, tres, rtol=rtol, atol=atol, equal_nan=True)
    else:
        assert torch.equal(host, tres), (host, tres)


def variants(shape, dt, seed=0, **kw):
    """(name, torch input, vibetensor CUDA input) for a contiguous, a transposed and a strided-slice input of
    `shape` (at least 2-D), and a zero-size one."""
    t = make(shape, dt, seed, **kw)
    yield "contiguous", t, to_vt(t)
    tt = make((shape[1], shape[0]) + tuple(shape[2:]), dt, seed + 1, **kw)
    yield "transposed", tt.transpose(0, 1), to_vt(tt).transpose(0, 1)
    wide = make((shape[0], 2 * shape[1]) + tuple(shape[2:]), dt, seed + 2, **kw)
    yield "sliced", wide[:, ::2], to_vt(wide)[:, ::2]
    z = make((0,) + tuple(shape[1:]), dt, seed + 3, **kw)
    yield "empty", z, to_vt(z)


def idx(values, device="cuda"):
    return torch.tensor(values, dtype=torch.int64), vt.tensor(np.array(values, dtype=np.int64)).to(device)


# ---------------------------------------------------------------- arg-reductions
@pytest.mark.parametrize("dt", ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int8", "uint8"])
@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin(name, dt):
    for kind, t, v in variants((4, 6, 3), dt, lo=-3, hi=3):  # small integer range: ties resolve to the first
        for dim in (0, 1, -1):
            for keepdim in (False, True):
                if kind == "empty" and dim == 0:
                    with pytest.raises(IndexError):
                        getattr(vt, name)(v, dim, keepdim)
                    continue
                check(getattr(vt, name)(v, dim, keepdim), getattr(torch, name)(t, dim, keepdim))
        if kind != "empty":
            check(getattr(vt, name)(v), getattr(torch, name)(t))  # flattened: a 0-dim index
            check(getattr(vt, name)(v, keepdim=True), getattr(torch, name)(t, keepdim=True))
        else:
            with pytest.raises(RuntimeError):
                getattr(vt, name)(v)
    s = make((), dt)
    check(getattr(vt, name)(to_vt(s)), getattr(torch, name)(s))
    check(getattr(vt, name)(to_vt(s), 0), getattr(torch, name)(s, 0))


def test_argmax_nan_and_ties():
    t = torch.tensor([[1.0, float("nan"), 3.0, float("nan")], [2.0, 5.0, 5.0, -1.0], [-7.0, -7.0, 0.0, -7.0]])
    v = to_vt(t)
    for name in ("argmax", "argmin"):
        check(getattr(vt, name)(v, 1), getattr(torch, name)(t, 1))
        check(getattr(vt, name)(v, 0), getattr(torch, name)(t, 0))
        check(getattr(vt, name)(v), getattr(torch, name)(t))


@pytest.mark.parametrize("dt", ["float32", "float16", "int64", "int32", "bool"])
@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_dim(name, dt):
    for kind, t, v in variants((5, 4), dt, lo=-4, hi=4):
        for dim in (0, 1):
            if kind == "empty" and dim == 0:
                with pytest.raises(IndexError):
                    getattr(vt, name)(v, dim)
                continue
            for keepdim in (False, True):
                r, e = getattr(vt, name)(v, dim, keepdim), getattr(torch, name)(t, dim, keepdim)
                check(r.values, e.values)
                check(r.indices, e.indices)


# ---------------------------------------------------------------- prod / norm
@pytest.mark.parametrize("dt", ["float32", "float64", "float16", "int64", "int32", "int8", "uint8", "bool"])
def test_prod(dt):
    for kind, t, v in variants((3, 4, 2), dt, lo=-3, hi=4):
        check(vt.prod(v), torch.prod(t))
        for dim in (0, 1, -1):
            for keepdim in (False, True):
                check(vt.prod(v, dim, keepdim), torch.prod(t, dim, keepdim))
    t = make((3, 4), "int32", lo=-3, hi=4)
    check(vt.prod(to_vt(t), 1, dtype=vt.float64), torch.prod(t, 1, dtype=torch.float64))
    s = make((), "float32")
    check(vt.prod(to_vt(s)), torch.prod(s))


@pytest.mark.parametrize("dt", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("p", [2, 1, math.inf, -math.inf, 0, 3, 0.5])
def test_norm(p, dt):
    for kind, t, v in variants((4, 5, 3), dt):
        for dim in (None, [1], [0, 2], [-1]):
            for keepdim in (False, True):
                if kind == "empty" and (dim is None or 0 in dim) and p in (math.inf, -math.inf):
                    continue  # torch rejects an empty max/min reduction
                e = torch.linalg.vector_norm(t, ord=p, dim=dim, keepdim=keepdim)
                check(vt.norm(v, p, dim=dim, keepdim=keepdim), e)
    t = make((3, 4), "float32")
    t[1, 2] = float("nan")
    check(vt.norm(to_vt(t), 2, dim=1), torch.linalg.vector_norm(t, 2, dim=1))
    check(vt.norm(to_vt(t), math.inf, dim=1), torch.linalg.vector_norm(t, math.inf, dim=1))
    check(vt.norm(to_vt(t)), torch.norm(t))
    with pytest.raises(RuntimeError):
        vt.norm(to_vt(make((3,), "int64")))


# ---------------------------------------------------------------- scans
@pytest.mark.parametrize("dt", ["float32", "float64", "float16", "int64", "int32", "int8", "uint8", "bool"])
@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
def test_cumsum_cumprod(name, dt):
    for kind, t, v in variants((3, 5, 4), dt, lo=-2, hi=3):
        for dim in (0, 1, 2, -1):
            check(getattr(vt, name)(v, dim), getattr(torch, name)(t, dim))
    t = make((4, 6), "int32", lo=-2, hi=3)
    check(getattr(vt, name)(to_vt(t), 1, dtype=vt.float64), getattr(torch, name)(t, 1, dtype=torch.float64))
    s = make((), "float32")
    check(getattr(vt, name)(to_vt(s), 0), getattr(torch, name)(s, 0))
    # rows of >= 2048 elements are scanned in parallel chunks of 1024
    long_row = make((1, 3000), "int64", lo=0, hi=3) if name == "cumsum" else make((2, 40), "float64")
    check(getattr(vt, name)(to_vt(long_row), 1), getattr(torch, name)(long_row, 1))
    g = torch.Generator().manual_seed(61)
    if name == "cumsum":
        for t in (torch.randint(-5, 6, (3, 5000), generator=g), torch.randn((2, 4097), generator=g, dtype=torch.float64),
                  torch.randn((2, 2048), generator=g)):
            check(vt.cumsum(to_vt(t), 1), torch.cumsum(t, 1))
            check(vt.cumsum(to_vt(t.t().contiguous()), 0), torch.cumsum(t.t(), 0))
    else:
        t = 1 + 0.001 * torch.randn((3, 5000), generator=g, dtype=torch.float64)
        check(vt.cumprod(to_vt(t), 1), torch.cumprod(t, 1))
        i = torch.where(torch.rand((2, 3000), generator=g) < 0.01, -1, 1)
        check(vt.cumprod(to_vt(i), 1), torch.cumprod(i, 1))


# ---------------------------------------------------------------- shape ops that copy
@pytest.mark.parametrize("dt", ["float32", "float16", "int64", "int8", "bool"])
def test_flip(dt):
    for kind, t, v in variants((3, 4, 5), dt):
        for dims in ([0], [1], [-1], [0, 2], [0, 1, 2], []):
            check(vt.flip(v, dims), torch.flip(t, dims))
    s = make((), dt)
    check(vt.flip(to_vt(s), []), torch.flip(s, []))
    with pytest.raises(RuntimeError):
        vt.flip(to_vt(make((2, 3), dt)), [0, 0])


@pytest.mark.parametrize("dt", ["float32", "int64", "int32", "bool"])
def test_roll(dt):
    for kind, t, v in variants((4, 5, 2), dt):
        check(vt.roll(v, 1, 0), torch.roll(t, 1, 0))
        check(vt.roll(v, -7, 1), torch.roll(t, -7, 1))
        check(vt.roll(v, [2, -1], [0, 2]), torch.roll(t, [2, -1], [0, 2]))
        check(vt.roll(v, 3), torch.roll(t, 3))  # flattened
        check(vt.roll(v, 0, 1), torch.roll(t, 0, 1))
        check(vt.roll(v, 5, 1), torch.roll(t, 5, 1))  # a full turn: a copy


@pytest.mark.parametrize("dt", ["float32", "float64", "int64", "int16", "bool"])
def test_repeat(dt):
    for kind, t, v in variants((2, 3), dt):
        for reps in ((2, 1), (1, 3), (2, 2, 3), (0, 2), (3, 1, 1, 2)):
            check(v.repeat(*reps), t.repeat(*reps))
    s = make((), dt)
    check(to_vt(s).repeat(4), s.repeat(4))
    with pytest.raises(RuntimeError):
        to_vt(make((2, 3), dt)).repeat(2)


# ---------------------------------------------------------------- scatters
@pytest.mark.parametrize("dt", ["float32", "float64", "float16", "int64", "int32", "int8"])
def test_index_add(dt):
    alpha = 2.5 if TDT[dt].is_floating_point else 3
    for kind, t, v in variants((5, 4), dt):
        n = t.shape[0]
        # dim 1 (size 4): duplicates and every position
        ti, vi = idx([3, 0, 3, 1, 0, 2])
        src = make((n, 6), dt, 7)
        check(vt.index_add(v, 1, vi, to_vt(src)), torch.index_add(t, 1, ti, src))
        check(vt.index_add(v, 1, vi, to_vt(src), alpha=alpha), torch.index_add(t, 1, ti, src, alpha=alpha))
        if n:
            ti0, vi0 = idx([n - 1, 0, n - 1])
            srct = make((4, 3), dt, 8).t()  # a non-contiguous source of shape [3, 4]
            check(vt.index_add(v, 0, vi0, to_vt(srct.t()).t()), torch.index_add(t, 0, ti0, srct))
        te, ve = idx([])
        check(vt.index_add(v, 0, ve, to_vt(make((0, 4), dt))), torch.index_add(t, 0, te, make((0, 4), dt)))
    t = make((5, 4), dt)
    ti, vi = idx([0, 5])
    with pytest.raises(IndexError):
        vt.index_add(to_vt(t), 0, vi, to_vt(make((2, 4), dt)))
    # in-place form
    v = to_vt(t)
    ti, vi = idx([1, 1, 4])
    src = make((3, 4), dt, 9)
    v.index_add_(0, vi, to_vt(src))
    check(v, t.clone().index_add_(0, ti, src))


def scatter_index(shape, dim, size, seed):
    """An index of `shape` for scatter along dim without duplicates in a line (so scatter is well defined)."""
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(shape, dtype=torch.int64)
    moved = out.movedim(dim, -1)
    flat = moved.reshape(-1, shape[dim])
    for r in range(flat.shape[0]):
        flat[r] = torch.randperm(size, generator=g)[:shape[dim]]
    return flat.reshape(moved.shape).movedim(-1, dim).contiguous()


@pytest.mark.parametrize("dt", ["float32", "float64", "float16", "int64", "int32", "bool"])
def test_scatter(dt):
    for kind, t, v in variants((4, 6), dt):
        n = t.shape[0]
        for dim in (0, 1):
            if n == 0 and dim == 0:
                continue
            ishape = (n, 3) if dim == 1 else (2, 5)
            it = scatter_index(ishape, dim, t.shape[dim], 11)
            iv = to_vt(it)
            src = make((max(n, 2), 6), dt, 12)
            check(vt.scatter(v, dim, iv, to_vt(src)), torch.scatter(t, dim, it, src))
            if dt != "bool":
                value = 2.5 if TDT[dt].is_floating_point else 7
                check(vt.scatter(v, dim, iv, value), torch.scatter(t, dim, it, value))
            # a transposed index (non-contiguous)
            itt = it.t().contiguous().t()
            check(vt.scatter(v, dim, to_vt(it.t()).t(), to_vt(src)), torch.scatter(t, dim, itt, src))
    t = make((3, 4), dt)
    with pytest.raises(IndexError):
        vt.scatter(to_vt(t), 1, to_vt(torch.tensor([[4]])), to_vt(make((1, 1), dt)))


@pytest.mark.parametrize("dt", ["float32", "float64", "float16", "int64", "int32", "int8", "bool"])
def test_scatter_add(dt):
    for kind, t, v in variants((4, 6), dt):
        n = t.shape[0]
        g = torch.Generator().manual_seed(13)
        for dim in (0, 1):
            if n == 0 and dim == 0:
                it = torch.zeros((0, 6), dtype=torch.int64)
            else:
                it = torch.randint(0, t.shape[dim], (n, 6) if dim == 1 else (7, 5), generator=g)  # duplicates
            src = make((max(n, 7), 6), dt, 14)
            check(vt.scatter_add(v, dim, to_vt(it), to_vt(src)), torch.scatter_add(t, dim, it, src))
            srcw = make((max(n, 7), 12), dt, 15)
            check(vt.scatter_add(v, dim, to_vt(it), to_vt(srcw)[:, ::2]), torch.scatter_add(t, dim, it, srcw[:, ::2]))
    # in-place form
    t = make((3, 4), dt)
    it = torch.tensor([[0, 0, 3, 3], [1, 1, 1, 1]])
    src = make((2, 4), dt, 16)
    v = to_vt(t)
    v.scatter_add_(1, to_vt(it), to_vt(src))
    check(v, t.clone().scatter_add_(1, it, src))


# ---------------------------------------------------------------- masked_select / advanced indexing
@pytest.mark.parametrize("dt", ["float32", "float16", "int64", "int32", "int8", "bool"])
def test_masked_select(dt):
    for kind, t, v in variants((5, 7), dt):
        m = make(tuple(t.shape), "bool", 21)
        check(vt.masked_select(v, to_vt(m)), torch.masked_select(t, m))
        mrow = make((7,), "bool", 22)  # broadcast mask
        check(vt.masked_select(v, to_vt(mrow)), torch.masked_select(t, mrow))
        mt = make((7, 5), "bool", 23).t()  # non-contiguous mask
        if t.shape[0] == 5:
            check(vt.masked_select(v, to_vt(mt.t()).t()), torch.masked_select(t, mt))
        none = torch.zeros(tuple(t.shape), dtype=torch.bool)
        check(vt.masked_select(v, to_vt(none)), torch.masked_select(t, none))
    big = make((3000,), dt)
    mb = make((3000,), "bool", 24)
    check(vt.masked_select(to_vt(big), to_vt(mb)), torch.masked_select(big, mb))


@pytest.mark.parametrize("dt", ["float32", "float64", "int64", "int32", "bool"])
def test_index_getitem(dt):
    for kind, t, v in variants((5, 4, 3), dt):
        n = t.shape[0]
        rows = [n - 1, 0, -1, 2] if n else []
        ti, vi = idx([r for r in rows if -n <= r < n])
        check(v[vi], t[ti])
        tj, vj = idx([[3, 0], [1, 1]])
        check(v[:, vj], t[:, tj])
        tk, vk = idx([2, 0, 1])
        check(v[:, tj, tk[:2]] if False else v[:, vj, vk[:2]], t[:, tj, tk[:2]])
        if n:
            ta, va = idx([0, n - 1])
            tb, vb = idx([2, 0])
            check(v[va, :, vb], t[ta, :, tb])  # non-adjacent indexed dims: index dims first


@pytest.mark.parametrize("dt", ["float32", "float64", "int64", "int32", "bool"])
@pytest.mark.parametrize("accumulate", [False, True])
def test_index_put(dt, accumulate):
    for kind, t, v in variants((5, 4, 3), dt):
        n = t.shape[0]
        if n == 0:
            te, ve = idx([])
            vals = make((0, 4, 3), dt, 31)
            v2 = v.clone()
            v2.index_put_((ve,), to_vt(vals), accumulate)
            check(v2, t.clone().index_put_((te,), vals, accumulate))
            continue
        # accumulate: duplicates add up; otherwise distinct positions (torch leaves duplicates unspecified)
        ti, vi = idx([1, 3, 1, -1] if accumulate else [1, 3, 0, -1])
        vals = make((4, 4, 3), dt, 32)
        v2 = v.clone()
        assert v2.index_put_((vi,), to_vt(vals), accumulate) is v2
        check(v2, t.clone().index_put_((ti,), vals, accumulate))
        # two index tensors on dims 1 and 2, broadcast values
        tj, vj = idx([0, 3, 3])
        tk, vk = idx([2, 0, 2])
        vals = make((3,), dt, 33)
        v2 = v.clone()
        v2.index_put_((vi[:3].clone(), vj, vk), to_vt(vals), accumulate)
        check(v2, t.clone().index_put_((ti[:3], tj, tk), vals, accumulate))
        # a non-contiguous destination (a transposed view is written in place)
        base_t = make((3, 4, 5), dt, 34)
        base_v = to_vt(base_t)
        dst_v, dst_t = base_v.transpose(0, 2), base_t.transpose(0, 2)
        vals = make((4, 3), dt, 35)
        dst_v.index_put_((vi[:2].clone(),), to_vt(vals[:1].expand(2, 4, 3).contiguous()), accumulate)
        dst_t.index_put_((ti[:2],), vals[:1].expand(2, 4, 3), accumulate)
        check(base_v, base_t)
    t = make((5, 4), dt)
    v = to_vt(t)
    ti, vi = idx([5])
    with pytest.raises(IndexError):
        v.index_put_((vi,), to_vt(make((4,), dt)), accumulate)


@pytest.mark.parametrize("dt", ["float32", "float64", "int64", "int32", "uint8", "bool"])
def test_nonzero(dt):
    for kind, t, v in variants((4, 3, 5), dt, lo=-1, hi=2):
        check(vt.nonzero(v), torch.nonzero(t))
    t = make((6,), dt, lo=-1, hi=2)
    check(vt.nonzero(to_vt(t)), torch.nonzero(t))
    check(vt.nonzero(to_vt(torch.zeros((3, 2), dtype=TDT[dt]))), torch.nonzero(torch.zeros((3, 2), dtype=TDT[dt])))
    for s in (torch.ones((), dtype=TDT[dt]), torch.zeros((), dtype=TDT[dt])):
        check(vt.nonzero(to_vt(s)), torch.nonzero(s))
    if TDT[dt].is_floating_point:
        t = torch.tensor([0.0, float("nan"), -0.0, 2.0], dtype=TDT[dt])
        check(vt.nonzero(to_vt(t)), torch.nonzero(t))
    big = make((60, 90), dt, 7, lo=-1, hi=2)  # 5400 elements: the chunked prefix count
    check(vt.nonzero(to_vt(big)), torch.nonzero(big))


@pytest.mark.parametrize("dt", ["float32", "int64"])
def test_bool_mask_indexing(dt):
    t = make((4, 5), dt)
    m = make((4, 5), "bool", 41)
    v, vm = to_vt(t), to_vt(m)
    check(v[vm], t[m])
    mr = make((4,), "bool", 42)
    check(v[to_vt(mr)], t[mr])
    vals = make((int(m.sum()),), dt, 43)
    v2, t2 = v.clone(), t.clone()
    v2[vm] = to_vt(vals)
    t2[m] = vals
    check(v2, t2)


def test_long_rows():
    """Rows of >= 2048 elements take the block-per-row kernels (argmax/argmin, max/min, prod, norm)."""
    g = torch.Generator().manual_seed(51)
    ties = torch.randint(-3, 3, (3, 5000), generator=g, dtype=torch.int64)
    for dt in (torch.int64, torch.float16, torch.float32):
        t = ties.to(dt)
        for name in ("argmax", "argmin"):
            check(getattr(vt, name)(to_vt(t), 1), getattr(torch, name)(t, 1))
            check(getattr(vt, name)(to_vt(t)), getattr(torch, name)(t))
            check(getattr(vt, name)(to_vt(t.t().contiguous()), 0), getattr(torch, name)(t.t(), 0))
        r, e = vt.max(to_vt(t), 1), torch.max(t, 1)
        check(r.values, e.values)
        check(r.indices, e.indices)
    t = torch.randn((4, 4000), generator=g)
    t[0, 3000] = float("nan")
    t[0, 1000] = float("nan")
    t[1, 3999] = float("nan")
    t[2, 5] = float("nan")
    for name in ("argmax", "argmin"):
        check(getattr(vt, name)(to_vt(t), 1), getattr(torch, name)(t, 1))
    check(vt.argmax(to_vt(t[3])), torch.argmax(t[3]))
    for dt in (torch.float32, torch.float64):
        x = torch.randn((3, 5000), generator=g, dtype=dt)
        for p in (2, 1, math.inf, -math.inf, 0, 3, 0.5):
            check(vt.norm(to_vt(x), p, dim=[1]), torch.linalg.vector_norm(x, p, dim=1))
            check(vt.norm(to_vt(x), p), torch.linalg.vector_norm(x, p))
        xn = x.clone()
        xn[1, 2500] = float("nan")
        check(vt.norm(to_vt(xn), math.inf, dim=[1]), torch.linalg.vector_norm(xn, math.inf, dim=1))
    x = 1 + 0.01 * torch.randn((3, 5000), generator=g, dtype=torch.float64)
    check(vt.prod(to_vt(x), 1), torch.prod(x, 1))
    check(vt.prod(to_vt(x)), torch.prod(x))
    i = torch.where(torch.rand((2, 5000), generator=g) < 0.5, -1, 1).to(torch.int64)
    i[:, :40:2] = 2
    check(vt.prod(to_vt(i), 1), torch.prod(i, 1))
    check(vt.prod(to_vt(i.to(torch.int32))), torch.prod(i.to(torch.int32)))


@pytest.mark.parametrize("name", ["logical_and", "logical_or", "logical_xor"])
@pytest.mark.parametrize("dt", ["float32", "int64", "uint8", "bool"])
def test_logical_binary(name, dt):
    for kind, t, v in variants((3, 4), dt, lo=-1, hi=2):  # small integers: zeros and non-zeros both occur
        other = make(tuple(t.shape), dt, seed=5, lo=-1, hi=2)
        check(getattr(vt, name)(v, to_vt(other)), getattr(torch, name)(t, other))
    # broadcasting and mixed dtypes (the cross_entropy code path: bool masks from comparisons)
    a, b = make((4, 1), dt, lo=-1, hi=2), make((3,), "float32")
    check(getattr(vt, name)(to_vt(a), to_vt(b)), getattr(torch, name)(a, b))


@pytest.mark.parametrize("dt", ["float32", "float64", "int32"])
def test_round_half_to_even(dt):
    t = torch.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.7, -3.2]).to(TDT[dt]) if dt != "int32" else make((8,), dt)
    check(vt.round(to_vt(t)), torch.round(t))
    for kind, t, v in variants((3, 4), dt):
        check(vt.round(v * 3 if dt != "int32" else v), torch.round(t * 3 if dt != "int32" else t))
    with pytest.raises(NotImplementedError, match="decimals"):
        vt.round(to_vt(make((2,), "float32")), decimals=1)


def test_zero_dim_reshape_and_flatten():
    s = make((), "float32")
    check(to_vt(s).reshape(1, 1), s.reshape(1, 1))
    check(to_vt(s).view(1), s.view(1))
    # flatten of a non-viewable (transposed) CUDA tensor copies on the device
    t = make((3, 4, 5), "float32")
    v = to_vt(t).transpose(0, 2)
    check(v.flatten(), t.transpose(0, 2).flatten())
    check(v.flatten(1), t.transpose(0, 2).flatten(1))


def test_bool_add_and_mul_are_logical():
    a, b = make((3, 1), "bool", seed=1), make((4,), "bool", seed=2)
    check(to_vt(a) + to_vt(b), a + b)
    check(to_vt(a) * to_vt(b), a * b)
    for alpha in (0, 2):
        check(vt.add(to_vt(a), to_vt(b), alpha=alpha), torch.add(a, b, alpha=alpha))


@pytest.mark.parametrize("dt", ["float32", "int64"])
def test_outer_and_take_along_dim(dt):
    x, y = make((5,), dt, seed=3), make((4,), dt, seed=4)
    check(vt.outer(to_vt(x), to_vt(y)), torch.outer(x, y))
    t = make((4, 6), dt, seed=5)
    idx = torch.randint(0, 6, (4, 3), generator=torch.Generator().manual_seed(6))
    check(vt.take_along_dim(to_vt(t), to_vt(idx), dim=1), torch.take_along_dim(t, idx, dim=1))
    flat_idx = torch.randint(0, 24, (7,), generator=torch.Generator().manual_seed(7))
    check(vt.take_along_dim(to_vt(t), to_vt(flat_idx)), torch.take_along_dim(t, flat_idx))
    col = torch.randint(0, 4, (2, 1), generator=torch.Generator().manual_seed(8))  # broadcast over the other dim
    check(vt.take_along_dim(to_vt(t), to_vt(col), dim=0), torch.take_along_dim(t, col, dim=0))


def test_causal_attention_on_cuda():
    q, k, v = (make((2, 3, 5, 8), "float32", seed=s) for s in (9, 10, 11))
    got = vt.nn.functional.scaled_dot_product_attention(to_vt(q), to_vt(k), to_vt(v), is_causal=True)
    check(got, torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True))
