"""sort / argsort / msort / topk / kthvalue and Tensor.view(dtype), checked against PyTorch CPU.

Values must match exactly (sorting only moves elements). Indices must match exactly where the order is unique
(stable sorts, tie-free data); otherwise they must be a valid answer (a permutation / selection whose elements
are the returned values)."""
import re

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vt_core_helpers import DTYPE_NAMES, FLOAT_NAMES, INT_NAMES, layout, pair, tdt, to_np, vdt

SHAPES = [(7,), (3, 4, 5), (2, 1, 33), (40,)]


def tied_np(shape, name, rng, nan=True):
    """Data with many ties (and for floats NaNs and signed zeros)."""
    if name == "bool":
        return rng.random(shape) > 0.5
    if name == "uint8":
        return rng.integers(0, 6, shape).astype(np.float64)
    if name in INT_NAMES:
        return rng.integers(-5, 6, shape).astype(np.float64)
    a = rng.integers(-4, 5, shape).astype(np.float64) / 2
    flat = a.reshape(-1)
    if flat.size >= 4:
        flat[rng.integers(0, flat.size, max(1, flat.size // 8))] = -0.0
        if nan:
            flat[rng.integers(0, flat.size, max(1, flat.size // 6))] = np.nan
            flat[rng.integers(0, flat.size, 1)] = np.inf
            flat[rng.integers(0, flat.size, 1)] = -np.inf
    return a


def distinct_np(shape, name, rng):
    """Tie-free data where the dtype can hold it (a permutation); check with tie_free() after conversion."""
    n = int(np.prod(shape))
    vals = rng.permutation(n).astype(np.float64)
    if name == "int8":
        vals = vals - n // 2 if n < 250 else vals % 120
    elif name == "uint8":
        vals = vals % 250
    elif name in FLOAT_NAMES:
        vals = (vals - n / 2) / 4
    return vals.reshape(shape)


def tie_free(v, dim):
    """No two equal elements along any line of dim (NaN counts as a tie)."""
    a = np.moveaxis(np_of(v), dim, -1).reshape(-1, v.shape[dim]) if v.ndim else np_of(v).reshape(1, 1)
    return all(len(np.unique(r)) == r.size and not np.isnan(r).any() for r in a)


def np_of(x):
    return to_np(x).astype(np.float64)


def assert_exact(v, t, zero_sign=True):
    """Same shape, dtype, values (NaN == NaN) and signs of zeros."""
    assert tuple(v.shape) == tuple(t.shape), (tuple(v.shape), tuple(t.shape))
    assert v.dtype.name == str(t.dtype).replace("torch.", ""), (v.dtype, t.dtype)
    a, b = np_of(v), np_of(t)
    np.testing.assert_array_equal(a, b)
    z = (b == 0) & zero_sign
    np.testing.assert_array_equal(np.signbit(a[z]), np.signbit(b[z]))


def assert_valid_selection(x, dim, values, indices):
    """values == x gathered at indices along dim (NaN matching NaN); indices are int64."""
    assert indices.dtype is vt.int64
    assert tuple(values.shape) == tuple(indices.shape)
    if x.ndim == 0:
        assert indices.ndim == 0 and int(indices.item()) == 0
        return
    g = np.take_along_axis(np_of(x), to_np(indices).astype(np.int64), axis=dim)
    np.testing.assert_array_equal(g, np_of(values))


def assert_permutation(indices, dim):
    idx = np.sort(to_np(indices), axis=dim)
    n = indices.shape[dim]
    ref = np.arange(n).reshape([n if d == (dim % indices.ndim) else 1 for d in range(indices.ndim)])
    np.testing.assert_array_equal(idx, np.broadcast_to(ref, idx.shape))


def dims_of(shape):
    return list(range(-len(shape), len(shape)))


# ---- sort / argsort ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", DTYPE_NAMES)
@pytest.mark.parametrize("layout_kind", ["contig", "transposed", "strided"])
def test_sort_stable_matches_torch(name, layout_kind):
    rng = np.random.default_rng(3)
    for shape in SHAPES:
        if layout_kind == "transposed" and len(shape) < 2:
            continue
        v, t = layout(*pair(tied_np(shape, name, rng), name), layout_kind)
        for dim in dims_of(t.shape):
            for desc in (False, True):
                rv = vt.sort(v, dim=dim, descending=desc, stable=True)
                rt = torch.sort(t, dim=dim, descending=desc, stable=True)
                assert_exact(rv.values, rt.values)
                assert_exact(rv.indices, rt.indices)
                assert_exact(vt.argsort(v, dim=dim, descending=desc, stable=True),
                             torch.argsort(t, dim=dim, descending=desc, stable=True))
                assert_exact(v.sort(dim=dim, descending=desc, stable=True).indices, rt.indices)


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_sort_unstable_values_and_valid_indices(name):
    rng = np.random.default_rng(4)
    for shape in SHAPES + [(5, 300)]:
        v, t = pair(tied_np(shape, name, rng), name)
        for dim in dims_of(shape):
            for desc in (False, True):
                vals, idx = vt.sort(v, dim, descending=desc)
                assert_exact(vals, torch.sort(t, dim, descending=desc).values)
                assert_permutation(idx, dim)
                assert_valid_selection(v, dim, vals, idx)
                assert_permutation(vt.argsort(v, dim, desc), dim)


@pytest.mark.parametrize("name", [n for n in DTYPE_NAMES if n != "bool"])  # bool has ties whenever n > 2
def test_sort_tie_free_indices_match_torch(name):
    rng = np.random.default_rng(5)
    for shape in [(9,), (4, 6), (3, 1, 7)]:
        v, t = layout(*pair(distinct_np(shape, name, rng), name), "transposed" if len(shape) > 1 else "contig")
        for dim in dims_of(t.shape):
            assert tie_free(v, dim)
            for desc in (False, True):
                assert_exact(vt.sort(v, dim, desc).indices, torch.sort(t, dim, desc).indices)
                assert_exact(v.argsort(dim, desc), t.argsort(dim, desc))


def test_sort_nan_and_signed_zero_order():
    x = [float("nan"), 1.0, -0.0, float("-inf"), 0.0, float("nan"), float("inf"), -2.0, 0.0, -0.0]
    for name in FLOAT_NAMES:
        v, t = pair(np.array(x), name)
        for desc in (False, True):
            rv, rt = vt.sort(v, descending=desc, stable=True), torch.sort(t, descending=desc, stable=True)
            assert_exact(rv.values, rt.values)
            assert_exact(rv.indices, rt.indices)
    v = vt.tensor(x)
    assert np.isnan(to_np(vt.sort(v).values)[-2:]).all()
    assert np.isnan(to_np(vt.sort(v, descending=True).values)[:2]).all()


def test_sort_large_parallel_and_radix_like_paths():
    rng = np.random.default_rng(6)
    for shape, name, dim in [((64, 2000), "float32", 1), ((3000, 40), "float64", 0), ((50, 3, 700), "int32", 2),
                             ((300, 300), "bfloat16", 0)]:
        v, t = pair(tied_np(shape, name, rng), name)
        for desc in (False, True):
            rv = vt.sort(v, dim=dim, descending=desc, stable=True)
            rt = torch.sort(t, dim=dim, descending=desc, stable=True)
            assert_exact(rv.values, rt.values)
            assert_exact(rv.indices, rt.indices)
            # unstable: -0.0 / 0.0 ties may come in another order (it agrees with the C++ library PyTorch uses)
            assert_exact(vt.sort(v, dim, desc).values, torch.sort(t, dim, desc).values, zero_sign=False)
    # a 1-D integer ascending sort of >= 32768 elements is stable in PyTorch (radix sort): so is ours
    for name in ("int64", "int16", "uint8"):
        v, t = pair(rng.integers(0, 3, 40000).astype(np.float64), name)
        assert_exact(vt.sort(v).indices, torch.sort(t).indices)
        assert_exact(vt.sort(v).indices, vt.sort(v, stable=True).indices)


def test_sort_expanded_input_keeps_index_order():
    v, t = vt.tensor([2.0]).expand(100), torch.tensor([2.0]).expand(100)
    for desc in (False, True):
        assert_exact(vt.sort(v, descending=desc).indices, torch.sort(t, descending=desc).indices)
        np.testing.assert_array_equal(to_np(vt.sort(v, descending=desc).indices), np.arange(100))


def test_sort_zero_size_and_zero_dim():
    for shape in [(0,), (3, 0), (0, 4), (2, 0, 3)]:
        v, t = pair(np.zeros(shape), "float32")
        for dim in dims_of(shape):
            rv, rt = vt.sort(v, dim), torch.sort(t, dim)
            assert_exact(rv.values, rt.values)
            assert_exact(rv.indices, rt.indices)
            assert_exact(vt.argsort(v, dim), torch.argsort(t, dim))
    for name in ("float32", "int64", "bool"):
        v, t = pair(np.array(1.0), name)
        for dim in (0, -1):
            rv, rt = vt.sort(v, dim), torch.sort(t, dim)
            assert_exact(rv.values, rt.values)
            assert_exact(rv.indices, rt.indices)
        assert_exact(vt.msort(v), torch.msort(t))


def test_sort_returns_named_tuple_and_out():
    v, t = pair(np.array([[3.0, 1.0, 2.0], [0.0, -1.0, 5.0]]), "float32")
    r = vt.sort(v)
    assert type(r).__name__ == "sort" and r._fields == ("values", "indices")
    vals, idx = r
    assert vals is r[0] and idx is r[1]
    assert_exact(r.values, torch.sort(t).values)
    ov, oi = vt.empty(0), vt.empty(0, dtype=vt.int64)
    r2 = vt.sort(v, 0, True, out=(ov, oi))
    assert r2.values is ov and r2.indices is oi
    rt = torch.sort(t, 0, True)
    assert_exact(ov, rt.values)
    assert_exact(oi, rt.indices)
    assert_exact(v.msort(), t.msort())
    assert_exact(vt.msort(v), torch.msort(t))
    # the input is unchanged
    assert_exact(v, t)


def test_sort_bad_dim_errors():
    v, t = pair(np.zeros((2, 3)), "float32")
    for fn in (lambda T, x: T.sort(x, 2), lambda T, x: T.sort(x, -3), lambda T, x: T.argsort(x, 5),
               lambda T, x: T.topk(x, 1, 2), lambda T, x: T.kthvalue(x, 1, -3)):
        with pytest.raises(IndexError, match="Dimension out of range"):
            fn(torch, t)
        with pytest.raises(IndexError, match="Dimension out of range"):
            fn(vt, v)
    with pytest.raises(IndexError, match="Dimension out of range"):
        vt.sort(vt.tensor(1.0), 1)


# ---- topk ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in DTYPE_NAMES if n != "bool"])
@pytest.mark.parametrize("layout_kind", ["contig", "transposed"])
def test_topk_matches_torch(name, layout_kind):
    rng = np.random.default_rng(7)
    for shape in SHAPES + [(3, 200)]:
        if layout_kind == "transposed" and len(shape) < 2:
            continue
        for data in (tied_np(shape, name, rng), distinct_np(shape, name, rng)):
            v, t = layout(*pair(data, name), layout_kind)
            for dim in dims_of(t.shape):
                unique = tie_free(v, dim)
                n = t.shape[dim]
                for k in sorted({0, 1, 2, n // 2, n - 1, n} & set(range(n + 1))):
                    for largest in (True, False):
                        rt = torch.topk(t, k, dim, largest, True)
                        rv = vt.topk(v, k, dim, largest, True)
                        assert_exact(rv.values, rt.values)
                        assert_valid_selection(v, dim, rv.values, rv.indices)
                        if unique:
                            assert_exact(rv.indices, rt.indices)
                        # sorted=False: the same selection, in any order
                        su = vt.topk(v, k, dim, largest, sorted=False)
                        assert_valid_selection(v, dim, su.values, su.indices)
                        tu = torch.topk(t, k, dim, largest, sorted=False)
                        assert_exact(vt.sort(su.values, dim).values, torch.sort(tu.values, dim).values)
                        m = v.topk(k, dim=dim, largest=largest)
                        assert_exact(m.values, rt.values)


def test_topk_nan_is_largest():
    x = np.array([1.0, np.nan, 3.0, -np.inf, np.nan, 2.0])
    for name in FLOAT_NAMES:
        v, t = pair(x, name)
        for largest in (True, False):
            for k in range(7):
                rv, rt = vt.topk(v, k, largest=largest), torch.topk(t, k, largest=largest)
                assert_exact(rv.values, rt.values)
                assert_valid_selection(v, 0, rv.values, rv.indices)


def test_topk_zero_size_zero_dim_named_tuple_and_errors():
    for shape, k, dim in [((0, 3), 0, 0), ((2, 0), 0, 1), ((0, 3), 2, 1), ((4, 0), 3, 0)]:
        v, t = pair(np.zeros(shape), "float32")
        rv, rt = vt.topk(v, k, dim), torch.topk(t, k, dim)
        assert_exact(rv.values, rt.values)
        assert_exact(rv.indices, rt.indices)
    v, t = pair(np.array(3.0), "float32")
    for k in (0, 1):  # a 0-dim input: 0-dim outputs holding the element, even for k = 0
        rv, rt = vt.topk(v, k), torch.topk(t, k)
        assert_exact(rv.values, rt.values)
        assert_exact(rv.indices, rt.indices)
    r = vt.topk(vt.tensor([1.0, 5.0, 3.0]), 2)
    assert type(r).__name__ == "topk" and r._fields == ("values", "indices")
    vals, idx = r
    np.testing.assert_array_equal(to_np(vals), [5.0, 3.0])
    np.testing.assert_array_equal(to_np(idx), [1, 2])
    ov, oi = vt.empty(0), vt.empty(0, dtype=vt.int64)
    r = vt.topk(vt.tensor([1.0, 5.0, 3.0]), 2, largest=False, out=(ov, oi))
    assert r.values is ov and r.indices is oi
    np.testing.assert_array_equal(to_np(ov), [1.0, 3.0])
    np.testing.assert_array_equal(to_np(oi), [0, 2])
    v, t = pair(np.zeros((2, 3)), "float32")
    for k, dim in [(4, 1), (-1, 1), (3, 0)]:
        with pytest.raises(RuntimeError, match="selected index k out of range"):
            torch.topk(t, k, dim)
        with pytest.raises(RuntimeError, match="selected index k out of range"):
            vt.topk(v, k, dim)
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        vt.topk(vt.tensor(1.0), 2)
    with pytest.raises(RuntimeError, match="topk does not support bool"):
        torch.topk(torch.tensor([True, False]), 1)
    with pytest.raises(RuntimeError, match="topk does not support bool"):
        vt.topk(vt.tensor([True, False]), 1)


# ---- kthvalue ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in DTYPE_NAMES if n != "bool"])
def test_kthvalue_matches_torch(name):
    rng = np.random.default_rng(8)
    for shape in SHAPES:
        for data in (tied_np(shape, name, rng), distinct_np(shape, name, rng)):
            v, t = pair(data, name)
            for dim in dims_of(shape):
                unique = tie_free(v, dim)
                n = shape[dim]
                for k in sorted({1, 2, n // 2 + 1, n} & set(range(1, n + 1))):
                    for keepdim in (False, True):
                        rv, rt = vt.kthvalue(v, k, dim, keepdim), torch.kthvalue(t, k, dim, keepdim)
                        assert type(rv).__name__ == "kthvalue"
                        # -0.0 and 0.0 tie: which one is selected may differ from PyTorch
                        assert_exact(rv.values, rt.values, zero_sign=False)
                        kv = rv.values if keepdim else rv.values.unsqueeze(dim)
                        ki = rv.indices if keepdim else rv.indices.unsqueeze(dim)
                        assert_valid_selection(v, dim % len(shape), kv, ki)
                        if unique:
                            assert_exact(rv.indices, rt.indices)
                        assert_exact(v.kthvalue(k, dim, keepdim).values, rt.values, zero_sign=False)


def test_kthvalue_edges_and_errors():
    v, t = pair(np.array(3.0), "float32")
    for keepdim in (False, True):
        rv, rt = vt.kthvalue(v, 1, 0, keepdim), torch.kthvalue(t, 1, 0, keepdim)
        assert_exact(rv.values, rt.values)
        assert_exact(rv.indices, rt.indices)
    v, t = pair(np.zeros((0, 3)), "float32")
    rv, rt = vt.kthvalue(v, 2, 1), torch.kthvalue(t, 2, 1)
    assert_exact(rv.values, rt.values)
    assert_exact(rv.indices, rt.indices)
    v, t = pair(np.array([np.nan, 1.0, 2.0]), "float32")
    for k in (1, 2, 3):
        assert_exact(vt.kthvalue(v, k).values, torch.kthvalue(t, k).values)
    v, t = pair(np.zeros((2, 3)), "float32")
    for k, dim in [(4, 1), (0, 1), (3, 0), (-1, 0)]:
        with pytest.raises(RuntimeError, match="selected number k out of range"):
            torch.kthvalue(t, k, dim)
        with pytest.raises(RuntimeError, match="selected number k out of range"):
            vt.kthvalue(v, k, dim)
    for x in (torch.tensor([True, False]), torch.zeros(0, 3, dtype=torch.bool)):
        with pytest.raises(NotImplementedError, match="not implemented for 'Bool'"):
            torch.kthvalue(x, 1)
        with pytest.raises(NotImplementedError, match="not implemented for 'Bool'"):
            vt.kthvalue(vt.tensor(x.numpy()), 1)
    v, t = pair(np.array(1.0), "bool")  # 0-dim bool is fine
    rv, rt = vt.kthvalue(v, 1), torch.kthvalue(t, 1)
    assert_exact(rv.values, rt.values)
    assert_exact(rv.indices, rt.indices)
    with pytest.raises(IndexError, match="to have non-zero size"):
        torch.kthvalue(torch.empty(0), 1)
    with pytest.raises(IndexError, match="to have non-zero size"):
        vt.kthvalue(vt.empty(0), 1)
    ov, oi = vt.empty(0), vt.empty(0, dtype=vt.int64)
    r = vt.kthvalue(vt.tensor([[3.0, 1.0, 2.0]]), 2, 1, out=(ov, oi))
    assert r.values is ov and r.indices is oi
    np.testing.assert_array_equal(to_np(ov), [2.0])
    np.testing.assert_array_equal(to_np(oi), [2])


# ---- autograd through the values (when the autograd subsystem is present) -----------------------------

def _has_autograd():
    return hasattr(vt, "autograd") and hasattr(vt.Tensor, "backward")


@pytest.mark.skipif(not _has_autograd(), reason="autograd subsystem not installed")
def test_values_gradient_matches_torch():
    rng = np.random.default_rng(9)
    data = rng.integers(-3, 4, (3, 5)).astype(np.float64)  # ties: the gradient follows the chosen indices
    w = rng.standard_normal((3, 5))
    # (fn, weights of the output, whether the chosen indices are unique: with ties an unstable sort / kthvalue
    # may pick another of the equal elements, so only the multiset of gradient entries must agree)
    cases = [
        (lambda T, x: T.sort(x, dim=1, stable=True).values, w, True),
        (lambda T, x: T.sort(x, dim=0, descending=True, stable=True).values, w, True),
        (lambda T, x: x.sort(dim=-1).values, np.ones((3, 5)), True),
        (lambda T, x: T.topk(x, 2, 1).values, w[:, :2], False),
        (lambda T, x: T.topk(x, 3, 0, largest=False).values, w, True),
        (lambda T, x: T.kthvalue(x, 2, 1).values, w[:, 0], False),
        (lambda T, x: T.kthvalue(x, 2, 0, keepdim=True).values, w[:1], False),
        (lambda T, x: T.msort(x), w, True),
    ]
    for fn, wt, exact in cases:
        xv = vt.tensor(data, requires_grad=True)
        xt = torch.tensor(data, requires_grad=True)
        yv, yt = fn(vt, xv), fn(torch, xt)
        assert yv.requires_grad
        np.testing.assert_array_equal(np_of(yv.detach()), yt.detach().numpy())
        (yv * vt.tensor(wt)).sum().backward()
        (yt * torch.tensor(wt)).sum().backward()
        gv, gt = np_of(xv.grad), xt.grad.numpy()
        if exact:
            np.testing.assert_allclose(gv, gt)
        else:
            np.testing.assert_allclose(np.sort(gv, axis=None), np.sort(gt, axis=None))
    xv = vt.tensor(data, requires_grad=True)
    assert not vt.sort(xv).indices.requires_grad
    assert not vt.topk(xv, 2).indices.requires_grad
    # view(dtype) is not differentiable (torch: no grad_fn, requires_grad False), whatever the dtypes
    for dt in (vt.float64, vt.int64):
        y = xv.view(dt)
        assert not y.requires_grad and y.grad_fn is None


# ---- Tensor.view(dtype) ------------------------------------------------------------------------------

SAME_SIZE = [("float32", "int32"), ("int32", "float32"), ("float64", "int64"), ("int64", "float64"),
             ("float16", "int16"), ("int16", "bfloat16"), ("bfloat16", "float16"), ("uint8", "int8"),
             ("int8", "uint8"), ("bool", "uint8"), ("bool", "int8"), ("float32", "float32")]


def _raw(name, rng, shape):
    """Values of dtype `name` whose bit patterns are ordinary (no NaN payload games)."""
    if name == "bool":
        return rng.random(shape) > 0.5
    if name in FLOAT_NAMES:
        return rng.uniform(-100, 100, shape)
    return rng.integers(0 if name == "uint8" else -100, 100, shape).astype(np.float64)


def _bytes_equal(v, t):
    assert tuple(v.shape) == tuple(t.shape) and tuple(v.stride()) == tuple(t.stride())
    assert v.storage_offset() == t.storage_offset()
    assert v.dtype.name == str(t.dtype).replace("torch.", "")
    bits = {"float16": "int16", "bfloat16": "int16", "float32": "int32", "float64": "int64"}.get(v.dtype.name)
    if bits:  # compare floats through their bits (a float copy may canonicalise NaN payloads)
        v, t = v.view(vdt(bits)), t.view(tdt(bits))
    a = np.ascontiguousarray(to_np(v.contiguous())).reshape(-1).view(np.uint8)
    b = np.ascontiguousarray(t.contiguous().numpy()).reshape(-1).view(np.uint8)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("src,dst", SAME_SIZE)
def test_view_dtype_same_size(src, dst):
    rng = np.random.default_rng(10)
    v, t = pair(_raw(src, rng, (3, 4)), src)
    for kind in ("contig", "transposed", "strided"):
        lv, lt = layout(v, t, kind)
        _bytes_equal(lv.view(vdt(dst)), lt.view(tdt(dst)))
    _bytes_equal(v[1:, 1:].view(vdt(dst)), t[1:, 1:].view(tdt(dst)))
    _bytes_equal(v[0, 0].view(vdt(dst)), t[0, 0].view(tdt(dst)))  # 0-dim is fine for equal sizes
    _bytes_equal(v.view(dtype=vdt(dst)), t.view(dtype=tdt(dst)))


def test_view_dtype_shares_storage_and_version():
    x = vt.tensor([1.0, -2.0, 0.5])
    y = x.view(vt.int32)
    np.testing.assert_array_equal(to_np(y), np.array([1.0, -2.0, 0.5], dtype=np.float32).view(np.int32))
    v0 = x._version if hasattr(x, "_version") else None
    y[1] = 0
    assert to_np(x)[1] == 0.0
    if v0 is not None:
        assert x._version > v0
    z = vt.tensor([1, 0, 1], dtype=vt.uint8).view(vt.bool)
    np.testing.assert_array_equal(to_np(z), [True, False, True])


@pytest.mark.parametrize("src,dst", [("float32", "int16"), ("float32", "uint8"), ("int64", "int8"),
                                     ("float64", "float16"), ("int16", "float32"), ("int8", "int64"),
                                     ("uint8", "float64"), ("bfloat16", "uint8"), ("bool", "float32")])
def test_view_dtype_different_sizes(src, dst):
    rng = np.random.default_rng(11)
    v, t = pair(_raw(src, rng, (4, 16)), src)
    views = [lambda x: x, lambda x: x[1:3], lambda x: x[::2], lambda x: x[:, 8:], lambda x: x[:, :8],
             lambda x: x[2], lambda x: x.unsqueeze(1)]
    for f in views:
        try:
            rt = f(t).view(tdt(dst))
        except RuntimeError as e:
            with pytest.raises(RuntimeError, match=re.escape(str(e).split(" to view ")[0])):
                f(v).view(vdt(dst))
            continue
        _bytes_equal(f(v).view(vdt(dst)), rt)


def test_view_dtype_errors():
    cases = [
        (lambda T: T.zeros(()).view(T.int16), "self.dim() cannot be 0 to view"),
        (lambda T: T.zeros(4, 3).t().view(T.int16), "self.stride(-1) must be 1 to view"),
        (lambda T: T.zeros(3, dtype=T.int16).view(T.float32), "self.size(-1) must be divisible by 2 to view"),
        (lambda T: T.zeros(5, dtype=T.int16)[1:].view(T.float32), "self.storage_offset() must be divisible by 2"),
        (lambda T: T.zeros(3, 4, dtype=T.int8)[:, :2].view(T.int16), None),
        (lambda T: T.zeros(3, 6, dtype=T.int8)[:, :2].view(T.int32), None),
        (lambda T: T.zeros(3, 6, dtype=T.int8)[:, :4].view(T.int32), None),
    ]
    for fn, msg in cases:
        try:
            rt = fn(torch)
        except RuntimeError as e:
            m = re.escape(msg or str(e).split(" to view ")[0])
            with pytest.raises(RuntimeError, match=m):
                fn(torch)
            with pytest.raises(RuntimeError, match=m):
                fn(vt)
            continue
        rv = fn(vt)
        assert tuple(rv.shape) == tuple(rt.shape) and tuple(rv.stride()) == tuple(rt.stride())
