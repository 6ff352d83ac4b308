"""The fused NN ops with a backward (Note [Fused NN ops] in src/vbt/cpu/reduce_kernels.cpp) on the CPU against
torch: nn.functional.cross_entropy (class-index targets, ignore_index, label_smoothing, every reduction) and
layer_norm with grad (dx, dweight, dbias), forward and backward, float32/float64, odd sizes; the ops themselves
(_fused_cross_entropy(_backward), _fused_layer_norm_fwd/_backward) and their checks. The CUDA kernels compute the
same quantities: tests/py/cuda/test_cuda_fused_nn.py."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt

F = vt.nn.functional
TF = torch.nn.functional
DT = {"float32": (vt.float32, torch.float32, 2e-5), "float64": (vt.float64, torch.float64, 1e-11)}


def _vt(a, dt, grad=False):
    t = vt.tensor(a).to(DT[dt][0])
    return t.requires_grad_() if grad else t


def _th(a, dt, grad=False):
    t = torch.tensor(a).to(DT[dt][1])
    return t.requires_grad_() if grad else t


def _np(t):
    if isinstance(t, vt.Tensor):
        return np.asarray(t.detach().to(vt.float64).numpy())
    return t.detach().double().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, np.float64)


def _close(a, b, tol):
    np.testing.assert_allclose(_np(a), _np(b), rtol=tol, atol=tol, equal_nan=True)


def _targets(rng, n, C, ignore=None, frac=0.0):
    t = rng.integers(0, C, size=n)
    if ignore is not None and frac > 0:
        t[rng.random(n) < frac] = ignore
    return t


def _ce_both(x, t, dt, gout=None, **kw):
    res = []
    for T, mk in ((vt, _vt), (torch, _th)):
        X = mk(x, dt, True)
        tg = T.tensor(t)
        loss = (F if T is vt else TF).cross_entropy(X, tg, **kw)
        g = mk(gout, dt) if gout is not None else None
        loss.backward(g) if g is not None else loss.backward()
        res.append((loss, X.grad))
    return res


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(7, 1), (5, 3), (33, 37), (64, 1000), (3, 4097)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_forward_backward(dt, shape, reduction):
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape) * 3
    t = _targets(rng, shape[0], shape[1], -100, 0.3)
    gout = rng.standard_normal(shape[0]) if reduction == "none" else None
    (lv, gv), (lt, gt) = _ce_both(x, t, dt, gout, reduction=reduction)
    tol = DT[dt][2] * (10 if shape[1] > 1000 else 1)
    assert lv.shape == tuple(lt.shape) and lv.dtype == DT[dt][0]
    _close(lv, lt, tol)
    _close(gv, gt, tol)
    assert lv.grad_fn is not None and type(lv.grad_fn).__name__ != "" and "Nll" in lv.grad_fn.name()


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("eps", [0.1, 1.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_label_smoothing_and_ignore_index(dt, eps, reduction):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 33))
    t = _targets(rng, 40, 33, 5, 0.0)
    t[::4] = 5  # ignore_index=5 is also a valid class: those rows are ignored
    gout = rng.standard_normal(40) if reduction == "none" else None
    (lv, gv), (lt, gt) = _ce_both(x, t, dt, gout, reduction=reduction, ignore_index=5, label_smoothing=eps)
    _close(lv, lt, DT[dt][2])
    _close(gv, gt, DT[dt][2])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_all_ignored(reduction):
    x = np.random.default_rng(4).standard_normal((6, 9))
    t = np.full(6, -100)
    (lv, gv), (lt, gt) = _ce_both(x, t, "float32", np.ones(6) if reduction == "none" else None, reduction=reduction)
    _close(lv, lt, 1e-6)  # mean: NaN (0 / 0) as torch
    _close(gv, gt, 1e-6)  # zero gradient
    assert not np.isnan(_np(gv)).any()


def test_cross_entropy_higher_dims_and_1d():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 5, 3, 4))
    t = _targets(rng, 24, 5).reshape(2, 3, 4)
    t[0, 1, 2] = -100
    for red in ("mean", "none"):
        gout = rng.standard_normal((2, 3, 4)) if red == "none" else None
        (lv, gv), (lt, gt) = _ce_both(x, t, "float64", gout, reduction=red)
        _close(lv, lt, 1e-11)
        _close(gv, gt, 1e-11)
    x1 = rng.standard_normal(7)
    (lv, gv), (lt, gt) = _ce_both(x1, np.array(3), "float64")
    assert lv.shape == ()
    _close(lv, lt, 1e-12)
    _close(gv, gt, 1e-12)


def test_cross_entropy_extreme_logits():
    x = np.array([[1000.0, -1000.0, 0.0], [-1e4, -1e4, -1e4], [50.0, 50.0, -50.0]])
    (lv, gv), (lt, gt) = _ce_both(x, np.array([1, 2, 0]), "float32", reduction="sum")
    _close(lv, lt, 1e-5)
    _close(gv, gt, 1e-6)


def test_cross_entropy_errors():
    x = vt.tensor(np.zeros((3, 4), np.float32))
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(x, vt.tensor(np.array([0, 4, 1])))
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(x, vt.tensor(np.array([0, -1, 1])))
    with pytest.raises(ValueError, match="batch_size"):
        F.cross_entropy(x, vt.tensor(np.array([0, 1])))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, vt.tensor(np.array([0, 1, 2])), reduction="avg")
    with pytest.raises(RuntimeError, match="_fused_cross_entropy"):
        vt._fused_cross_entropy(vt.tensor(np.zeros(4, np.float32)), vt.tensor(np.array([0])))


def test_cross_entropy_ops_directly():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((9, 13)).astype(np.float32)
    t = _targets(rng, 9, 13, -100, 0.3)
    loss, stats, total = vt._fused_cross_entropy(vt.tensor(x), vt.tensor(t), -100, 0.0, "sum")
    xt = torch.tensor(x)
    assert stats.shape == (9, 2)  # row max, log of the sum of exp(x - max)
    _close(stats[:, 0], xt.amax(1), 0)
    _close(stats[:, 0] + stats[:, 1], torch.logsumexp(xt, 1), 1e-6)
    assert float(total.item()) == float((t != -100).sum())
    _close(loss, TF.cross_entropy(xt, torch.tensor(t), reduction="sum"), 1e-5)
    g = vt._fused_cross_entropy_backward(vt.tensor(np.float32(2.0)), vt.tensor(x), vt.tensor(t), stats, total, -100,
                                         0.0, "sum")
    X = xt.clone().requires_grad_()
    (TF.cross_entropy(X, torch.tensor(t), reduction="sum") * 2).backward()
    _close(g, X.grad, 1e-6)


def test_cross_entropy_int32_target_and_weight_fallback():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((8, 5))
    t = _targets(rng, 8, 5).astype(np.int32)
    w = np.abs(rng.standard_normal(5)) + 0.5
    lv = F.cross_entropy(_vt(x, "float64"), vt.tensor(t))
    _close(lv, TF.cross_entropy(_th(x, "float64"), torch.tensor(t).long()), 1e-12)
    lv = F.cross_entropy(_vt(x, "float64"), vt.tensor(t), weight=_vt(w, "float64"))  # composite path
    _close(lv, TF.cross_entropy(_th(x, "float64"), torch.tensor(t).long(), weight=_th(w, "float64")), 1e-12)


# ---- layer_norm with grad


def _ln_both(x, shape, dt, w, b, gout, eps=1e-5):
    res = []
    for T, mk in ((vt, _vt), (torch, _th)):
        X = mk(x, dt, True)
        W = mk(w, dt, True) if w is not None else None
        B = mk(b, dt, True) if b is not None else None
        y = (F if T is vt else TF).layer_norm(X, shape, W, B, eps)
        y.backward(mk(gout, dt))
        res.append((y, X.grad, W.grad if W is not None else None, B.grad if B is not None else None))
    return res


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("shape,ns", [((4, 1), (1,)), ((5, 7), (7,)), ((3, 6, 33), (33,)), ((17, 1024), (1024,)),
                                      ((2, 3, 5, 7), (5, 7)), ((300, 40), (40,))])
@pytest.mark.parametrize("affine", ["wb", "w", "b", "none"])
def test_layer_norm_forward_backward(dt, shape, ns, affine):
    rng = np.random.default_rng(len(shape) * 100 + shape[-1])
    x = rng.standard_normal(shape) * 2 + 0.5
    w = rng.standard_normal(ns) if "w" in affine else None
    b = rng.standard_normal(ns) if "b" in affine else None
    g = rng.standard_normal(shape)
    (yv, dxv, dwv, dbv), (yt, dxt, dwt, dbt) = _ln_both(x, ns, dt, w, b, g)
    tol = DT[dt][2] * 5
    _close(yv, yt, tol)
    _close(dxv, dxt, tol * (10 if ns == (1,) else 1))
    for ours, theirs in ((dwv, dwt), (dbv, dbt)):
        assert (ours is None) == (theirs is None)
        if ours is not None:
            _close(ours, theirs, tol * 4)
    assert yv.grad_fn.name() == "NativeLayerNormBackward0"


def test_layer_norm_only_weight_requires_grad_and_module():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((6, 10)).astype(np.float32)
    m = vt.nn.LayerNorm(10)
    tm = torch.nn.LayerNorm(10)
    y = m(vt.tensor(x))
    ty = tm(torch.tensor(x))
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    _close(y, ty, 1e-5)
    _close(m.weight.grad, tm.weight.grad, 1e-4)
    _close(m.bias.grad, tm.bias.grad, 1e-4)


def test_layer_norm_ops_directly_and_checks():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((5, 8))
    y, mean, rstd = vt._fused_layer_norm_fwd(vt.tensor(x), [8], None, None, 1e-5)
    _close(mean, x.mean(1), 1e-12)
    _close(rstd, 1 / np.sqrt(x.var(1) + 1e-5), 1e-12)
    g = rng.standard_normal((5, 8))
    outs = vt._fused_layer_norm_backward(vt.tensor(g), vt.tensor(x), mean, rstd, None, [8], True)
    assert len(outs) == 2  # dx, dbias
    _close(outs[1], g.sum(0), 1e-12)
    with pytest.raises(RuntimeError, match="_fused_layer_norm_fwd"):
        vt._fused_layer_norm_fwd(vt.tensor(x), [5])
    with pytest.raises(RuntimeError, match="_fused_layer_norm_fwd"):
        vt._fused_layer_norm_fwd(vt.tensor(x), [8], vt.tensor(np.ones(8, np.float32)))


def test_layer_norm_double_backward_matches_torch():
    rng = np.random.default_rng(10)
    x, w = rng.standard_normal((3, 6)), rng.standard_normal(6)
    res = []
    for T, fn in ((vt, F), (torch, TF)):
        X, W = T.tensor(x).requires_grad_(), T.tensor(w).requires_grad_()
        gx, gw = T.autograd.grad((fn.layer_norm(X, (6,), W) ** 3).sum(), [X, W], create_graph=True)
        res.append(T.autograd.grad((gx * gx).sum() + gw.sum(), [X, W]))
    for a, b in zip(*res):
        _close(a, b, 1e-9)


def test_cross_entropy_double_backward_matches_torch():
    rng = np.random.default_rng(11)
    x, t = rng.standard_normal((5, 4)), np.array([0, 3, -100, 1, 2])
    res = []
    for T, fn in ((vt, F), (torch, TF)):
        X = T.tensor(x).requires_grad_()
        (gx,) = T.autograd.grad(fn.cross_entropy(X, T.tensor(t), label_smoothing=0.2), [X], create_graph=True)
        res.append(T.autograd.grad((gx * gx * T.tensor(x)).sum(), [X])[0])
    _close(res[0], res[1], 1e-10)
