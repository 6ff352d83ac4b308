"""Reductions, scans, softmax and linear algebra forward-checked against PyTorch CPU."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vt_core_helpers import FLOAT_NAMES, assert_same, layout, make_np, pair

DIMS = [None, 0, 1, -1, (0, 2), (0, 1, 2)]


@pytest.mark.parametrize("layout_kind", ["contig", "transposed"])
@pytest.mark.parametrize("name", ["float32", "float64", "bfloat16", "int32", "int64", "bool"])
@pytest.mark.parametrize("op", ["sum", "mean", "prod"])
def test_sum_mean_prod(op, name, layout_kind):
    if op == "mean" and name in ("int32", "int64", "bool"):
        v, t = pair(np.ones((2, 3)), name)
        with pytest.raises(RuntimeError):
            torch.mean(t)
        with pytest.raises(RuntimeError):
            vt.mean(v)
        return
    rng = np.random.default_rng(1)
    v, t = layout(*pair(make_np((3, 4, 5), name, rng, -1.5, 1.5), name), layout_kind)
    for dim in DIMS:
        for keepdim in (False, True):
            if dim is None:
                if keepdim:
                    continue
                assert_same(getattr(vt, op)(v), getattr(torch, op)(t), rtol=2e-2 if name == "bfloat16" else None)
            elif op == "prod":
                if isinstance(dim, int):
                    assert_same(vt.prod(v, dim, keepdim), torch.prod(t, dim, keepdim))
            else:
                assert_same(getattr(vt, op)(v, dim, keepdim), getattr(torch, op)(t, dim, keepdim),
                            rtol=2e-2 if name == "bfloat16" else None)


def test_sum_dtype_and_zero_size():
    v, t = pair(np.ones((0, 3)), "float32")
    assert_same(vt.sum(v), torch.sum(t))
    assert_same(vt.sum(v, 0), torch.sum(t, 0))
    assert_same(vt.sum(v, 1), torch.sum(t, 1))
    assert_same(vt.prod(v, 0), torch.prod(t, 0))
    v, t = pair(np.arange(6.0).reshape(2, 3), "int32")
    assert_same(vt.sum(v, 1, dtype=vt.float64), torch.sum(t, 1, dtype=torch.float64))
    assert_same(v.sum(), t.sum())


@pytest.mark.parametrize("name", ["float32", "float64", "float16", "int64", "uint8"])
def test_max_min_arg(name):
    rng = np.random.default_rng(2)
    arr = make_np((4, 5, 3), name, rng)
    arr = arr + np.arange(arr.size).reshape(arr.shape) * 1e-3 if name in FLOAT_NAMES else arr  # no float ties
    v, t = pair(arr, name)
    assert_same(vt.max(v), torch.max(t))
    assert_same(vt.min(v), torch.min(t))
    for dim in [0, 1, -1]:
        for keepdim in (False, True):
            vm, tm = vt.max(v, dim, keepdim), torch.max(t, dim, keepdim)
            assert_same(vm.values, tm.values)
            if name in FLOAT_NAMES:
                assert_same(vm.indices, tm.indices)
            assert_same(vt.min(v, dim, keepdim).values, torch.min(t, dim, keepdim).values)
            assert_same(vt.amax(v, dim, keepdim), torch.amax(t, dim, keepdim))
            assert_same(vt.amin(v, dim, keepdim), torch.amin(t, dim, keepdim))
            if name in FLOAT_NAMES:
                assert_same(vt.argmax(v, dim, keepdim), torch.argmax(t, dim, keepdim))
                assert_same(vt.argmin(v, dim, keepdim), torch.argmin(t, dim, keepdim))
    assert_same(vt.amax(v, (0, 2)), torch.amax(t, (0, 2)))
    if name in FLOAT_NAMES:
        assert_same(vt.argmax(v), torch.argmax(t))
        assert_same(v.argmin(), t.argmin())


def test_max_nan_propagates():
    v, t = pair(np.array([[1.0, np.nan, 3.0], [2.0, 0.0, -1.0]]), "float32")
    assert_same(vt.max(v), torch.max(t))
    assert_same(vt.amax(v, 1), torch.amax(t, 1))
    assert_same(vt.max(v, 1).indices, torch.max(t, 1).indices)


@pytest.mark.parametrize("name", ["float32", "float64", "bfloat16"])
def test_var_std_norm_logsumexp(name):
    rng = np.random.default_rng(3)
    v, t = pair(make_np((4, 6, 3), name, rng), name)
    for dim in [None, 0, 1, (0, 2)]:
        for corr in [0, 1, 2]:
            assert_same(vt.var(v, dim, correction=corr), torch.var(t, dim, correction=corr))
            assert_same(vt.std(v, dim, correction=corr, keepdim=True), torch.std(t, dim, correction=corr,
                                                                                   keepdim=True))
    assert_same(v.var(), t.var())
    assert_same(v.std(1, unbiased=False), t.std(1, unbiased=False))
    assert_same(vt.var(v, 0, unbiased=True), torch.var(t, 0, unbiased=True))
    for p in [1, 2, 3, float("inf")]:
        assert_same(vt.norm(v, p), torch.norm(t, p))
        assert_same(vt.norm(v, p, dim=1, keepdim=True), torch.norm(t, p, dim=1, keepdim=True))
    assert_same(v.norm(), t.norm())
    assert_same(vt.logsumexp(v, 1), torch.logsumexp(t, 1))
    assert_same(vt.logsumexp(v, (0, 2), keepdim=True), torch.logsumexp(t, (0, 2), keepdim=True))


def test_all_any():
    rng = np.random.default_rng(4)
    for name in ["bool", "float32", "int64"]:
        v, t = pair(make_np((3, 4), name, rng), name)
        assert_same(vt.all(v), torch.all(t))
        assert_same(vt.any(v), torch.any(t))
        assert_same(v.all(1), t.all(1))
        assert_same(v.any(0, keepdim=True), t.any(0, keepdim=True))
    v, t = pair(np.zeros((0,)), "bool")
    assert_same(vt.all(v), torch.all(t))
    assert_same(vt.any(v), torch.any(t))


@pytest.mark.parametrize("name", ["float32", "float64", "int32", "int64"])
def test_cumsum_cumprod(name):
    rng = np.random.default_rng(5)
    v, t = pair(make_np((3, 5), name, rng, -2, 2), name)
    for dim in [0, 1, -1]:
        assert_same(vt.cumsum(v, dim), torch.cumsum(t, dim))
        assert_same(vt.cumprod(v, dim), torch.cumprod(t, dim))
        assert_same(v.t().cumsum(dim), t.t().cumsum(dim))
    assert_same(vt.cumsum(v, 1, dtype=vt.float64), torch.cumsum(t, 1, dtype=torch.float64))


@pytest.mark.parametrize("name", FLOAT_NAMES)
def test_softmax(name):
    rng = np.random.default_rng(6)
    v, t = pair(make_np((3, 4, 5), name, rng, -8, 8), name)
    for dim in [0, 1, -1]:
        assert_same(vt.softmax(v, dim), torch.softmax(t, dim))
        assert_same(vt.log_softmax(v, dim), torch.log_softmax(t, dim))
        assert_same(v.transpose(0, 2).softmax(dim), t.transpose(0, 2).softmax(dim))
    assert_same(vt.softmax(v, -1, dtype=vt.float64), torch.softmax(t, -1, dtype=torch.float64))
    big, tbig = pair(np.array([[1000.0, 0.0, -1000.0], [-np.inf, 0.0, 1.0]]), "float32")
    assert_same(vt.softmax(big, 1), torch.softmax(tbig, 1))
    assert_same(vt.log_softmax(big, 1), torch.log_softmax(tbig, 1))


MATMUL_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)),
                 ((2, 3), (5, 3, 4)), ((2, 1, 2, 3), (5, 3, 4)), ((0, 3), (3, 4)), ((2, 0), (0, 4)),
                 ((4, 2, 3), (4, 3, 2))]


@pytest.mark.parametrize("name", ["float32", "float64", "int64", "bfloat16"])
def test_matmul_shapes(name):
    rng = np.random.default_rng(7)
    for sa, sb in MATMUL_SHAPES:
        va, ta = pair(make_np(sa, name, rng), name)
        vb, tb = pair(make_np(sb, name, rng), name)
        tol = dict(rtol=3e-2, atol=5e-2) if name == "bfloat16" else {}
        assert_same(vt.matmul(va, vb), torch.matmul(ta, tb), **tol)
        assert_same(va @ vb, ta @ tb, **tol)


def test_mm_bmm_addmm_linear_noncontiguous():
    rng = np.random.default_rng(8)
    for name in ["float32", "float64"]:
        va, ta = pair(make_np((6, 4), name, rng), name)
        vb, tb = pair(make_np((5, 6), name, rng), name)
        assert_same(vt.mm(va.t(), vb.t()), torch.mm(ta.t(), tb.t()))
        assert_same(vt.mm(va[::2], vb[:4, ::2]), torch.mm(ta[::2], tb[:4, ::2]))
        vx, tx = pair(make_np((3, 4, 5), name, rng), name)
        vy, ty = pair(make_np((3, 5, 2), name, rng), name)
        assert_same(vt.bmm(vx, vy), torch.bmm(tx, ty))
        assert_same(vt.bmm(vx.transpose(1, 2).transpose(1, 2), vy), torch.bmm(tx, ty))
        vc, tc = pair(make_np((4, 2), name, rng), name)
        vm, tm = pair(make_np((4, 3), name, rng), name)
        vn, tn = pair(make_np((3, 2), name, rng), name)
        assert_same(vt.addmm(vc, vm, vn), torch.addmm(tc, tm, tn))
        assert_same(vt.addmm(vc, vm, vn, beta=0.5, alpha=2), torch.addmm(tc, tm, tn, beta=0.5, alpha=2))
        vw, tw = pair(make_np((7, 5), name, rng), name)
        vbias, tbias = pair(make_np((7,), name, rng), name)
        assert_same(vt.linear(vx, vw, vbias), torch.nn.functional.linear(tx, tw, tbias))
        assert_same(vt.linear(vx, vw), torch.nn.functional.linear(tx, tw))
        vp, tp = pair(make_np((5,), name, rng), name)
        vq, tq = pair(make_np((3,), name, rng), name)
        assert_same(vt.outer(vp, vq), torch.outer(tp, tq))
        assert_same(vt.dot(vp, vp), torch.dot(tp, tp))
        vbb, tbb = pair(make_np((3, 4, 2), name, rng), name)
        assert_same(vt.baddbmm(vbb, vx, vy, beta=0.5, alpha=1.5), torch.baddbmm(tbb, tx, ty, beta=0.5, alpha=1.5))


def test_matmul_large_blas():
    rng = np.random.default_rng(9)
    va, ta = pair(make_np((128, 96), "float32", rng), "float32")
    vb, tb = pair(make_np((96, 64), "float32", rng), "float32")
    assert_same(va @ vb, ta @ tb, rtol=1e-4, atol=1e-4)
