"""out= for non-elementwise ops (Note [out= by the dispatcher]) and all/any result dtypes, against PyTorch CPU."""
import warnings

import numpy as np
import pytest
import torch

import vibetensor.torch as vt

RNG = np.random.default_rng(7)


def both(*shape, dtype="float32"):
    a = RNG.uniform(-2, 2, shape)
    return vt.tensor(a, dtype=getattr(vt, dtype)), torch.tensor(a, dtype=getattr(torch, dtype))


def idx(vals):
    return vt.tensor(vals, dtype=vt.int64), torch.tensor(vals, dtype=torch.int64)


def cases():
    a, ta = both(3, 4)
    b, tb = both(4, 5)
    c, tc = both(3, 5)
    b3, tb3 = both(2, 3, 4)
    b4, tb4 = both(2, 4, 5)
    c3, tc3 = both(2, 3, 5)
    v3, tv3 = both(3)
    v4, tv4 = both(4)
    gi, tgi = idx([[0, 3, 1, 1], [2, 2, 0, 3], [1, 0, 0, 0]])
    si, tsi = idx([2, 0])
    mask_np = RNG.random((3, 4)) > 0.5
    m, tm = vt.tensor(mask_np), torch.tensor(mask_np)
    return {
        "mm": (lambda T, x, y, **k: T.mm(x, y, **k), (a, b), (ta, tb)),
        "matmul": (lambda T, x, y, **k: T.matmul(x, y, **k), (b3, b4), (tb3, tb4)),
        "bmm": (lambda T, x, y, **k: T.bmm(x, y, **k), (b3, b4), (tb3, tb4)),
        "dot": (lambda T, x, y, **k: T.dot(x, y, **k), (v4, v4), (tv4, tv4)),
        "outer": (lambda T, x, y, **k: T.outer(x, y, **k), (v3, v4), (tv3, tv4)),
        "addmm": (lambda T, s, x, y, **k: T.addmm(s, x, y, beta=0.5, alpha=2, **k), (c, a, b), (tc, ta, tb)),
        "baddbmm": (lambda T, s, x, y, **k: T.baddbmm(s, x, y, **k), (c3, b3, b4), (tc3, tb3, tb4)),
        "gather": (lambda T, x, i, **k: T.gather(x, 1, i, **k), (a, gi), (ta, tgi)),
        "index_select": (lambda T, x, i, **k: T.index_select(x, 1, i, **k), (a, si), (ta, tsi)),
        "masked_select": (lambda T, x, mm, **k: T.masked_select(x, mm, **k), (a, m), (ta, tm)),
        "tril": (lambda T, x, **k: T.tril(x, 1, **k), (a,), (ta,)),
        "triu": (lambda T, x, **k: T.triu(x, -1, **k), (a,), (ta,)),
        "amax": (lambda T, x, **k: T.amax(x, 1, **k), (a,), (ta,)),
        "argmax": (lambda T, x, **k: T.argmax(x, 0, **k), (a,), (ta,)),
        "softmax": (lambda T, x, **k: T.softmax(x, 1, **k), (a,), (ta,)),
        "logsumexp": (lambda T, x, **k: T.logsumexp(x, 1, **k), (a,), (ta,)),
        "sum": (lambda T, x, **k: T.sum(x, 0, **k), (a,), (ta,)),
        "cumsum": (lambda T, x, **k: T.cumsum(x, 1, **k), (a,), (ta,)),
        "mean": (lambda T, x, **k: T.mean(x, 1, **k), (a,), (ta,)),
        "cat": (lambda T, x, **k: T.cat([x, x], **k), (a,), (ta,)),
    }


CASES = cases()


def _np(t):
    return np.asarray(t.numpy() if hasattr(t, "numpy") else t, dtype=np.float64)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("start", ["empty", "right_shape", "wrong_shape"])
def test_out_matches_torch(name, start):
    fn, vargs, targs = CASES[name]
    expect = fn(torch, *targs)
    shape = {"empty": (0,), "right_shape": tuple(expect.shape), "wrong_shape": (2, 2)}[start]
    vo = vt.empty(shape, dtype=getattr(vt, str(expect.dtype).split(".")[1]))
    to = torch.empty(shape, dtype=expect.dtype)
    with warnings.catch_warnings(record=True) as tw:
        warnings.simplefilter("always")
        tr = fn(torch, *targs, out=to)
    with warnings.catch_warnings(record=True) as vw:
        warnings.simplefilter("always")
        vr = fn(vt, *vargs, out=vo)
    assert tr is to
    assert vr is vo or vr._is_same(vo)
    assert tuple(vo.shape) == tuple(to.shape)
    assert str(vo.dtype) == str(to.dtype)
    np.testing.assert_allclose(_np(vo), _np(to), rtol=1e-5, atol=1e-5)
    # torch warns exactly when a non-empty out was resized
    assert (len(vw) > 0) == (len(tw) > 0)


@pytest.mark.parametrize("name", ["mm", "matmul", "bmm", "dot", "addmm", "baddbmm", "gather",
                                  "index_select", "masked_select", "tril", "triu", "amax", "softmax"])
def test_out_wrong_dtype_raises_like_torch(name):
    fn, vargs, targs = CASES[name]
    with pytest.raises(RuntimeError):
        fn(torch, *targs, out=torch.empty(0, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="float32.*float64|float64.*float32"):
        fn(vt, *vargs, out=vt.empty(0, dtype=vt.float64))


@pytest.mark.parametrize("name", ["outer", "mean", "cat"])
def test_out_casting_ops_follow_torch(name):
    fn, vargs, targs = CASES[name]
    for dt in ("float64", "int64"):
        to = torch.empty(0, dtype=getattr(torch, dt))
        vo = vt.empty(0, dtype=getattr(vt, dt))
        try:
            fn(torch, *targs, out=to)
        except (RuntimeError, TypeError):
            with pytest.raises((RuntimeError, TypeError)):
                fn(vt, *vargs, out=vo)
            continue
        fn(vt, *vargs, out=vo)
        assert str(vo.dtype) == str(to.dtype)
        np.testing.assert_allclose(_np(vo), _np(to), rtol=1e-5, atol=1e-5)


def test_out_aliasing_input_and_noncontiguous_out():
    a, ta = both(4, 4)
    vt.tril(a, out=a)
    torch.tril(ta, out=ta)
    np.testing.assert_allclose(_np(a), _np(ta))
    vbuf = vt.zeros(5, 3).t()  # non-contiguous out of the right shape keeps its strides
    tbuf = torch.zeros(5, 3).t()
    x, tx = both(3, 4)
    y, ty = both(4, 5)
    vt.mm(x, y, out=vbuf)
    torch.mm(tx, ty, out=tbuf)
    assert tuple(vbuf.stride()) == tuple(tbuf.stride())
    np.testing.assert_allclose(_np(vbuf), _np(tbuf), rtol=1e-5, atol=1e-5)


def test_inplace_forms_only_where_torch_has_them():
    for name in ("tril_", "triu_", "addmm_", "baddbmm_"):
        assert hasattr(torch.Tensor, name) and hasattr(vt.Tensor, name), name
    for name in ("mm_", "matmul_", "dot_", "gather_", "index_select_", "sum_", "amax_"):
        assert not hasattr(torch.Tensor, name) and not hasattr(vt.Tensor, name), name


@pytest.mark.parametrize("dtype", ["uint8", "bool", "int8", "int64", "float32"])
@pytest.mark.parametrize("op", ["all", "any"])
@pytest.mark.parametrize("dim", [None, 0])
def test_all_any_result_dtype(op, dtype, dim):
    data = RNG.integers(0, 3, (3, 4))
    v, t = vt.tensor(data, dtype=getattr(vt, dtype)), torch.tensor(data, dtype=getattr(torch, dtype))
    vr = getattr(vt, op)(v) if dim is None else getattr(vt, op)(v, dim)
    tr = getattr(torch, op)(t) if dim is None else getattr(torch, op)(t, dim)
    assert str(vr.dtype) == str(tr.dtype)
    np.testing.assert_array_equal(_np(vr), _np(tr))


@pytest.mark.parametrize("op", ["add", "mul", "exp", "where"])
def test_elementwise_out_resize_like_torch(op):
    x, tx = both(3, 4)
    c, tc = vt.tensor(np.ones((3, 4), dtype=bool)), torch.ones(3, 4, dtype=torch.bool)
    call = {"add": lambda T, a, m, **k: T.add(a, a, **k), "mul": lambda T, a, m, **k: T.mul(a, 2, **k),
            "exp": lambda T, a, m, **k: T.exp(a, **k), "where": lambda T, a, m, **k: T.where(m, a, a * 0, **k)}[op]
    for shape in ((0,), (2, 2), (7,)):
        vo, to = vt.ones(shape), torch.ones(shape)
        with warnings.catch_warnings(record=True) as tw:
            warnings.simplefilter("always")
            call(torch, tx, tc, out=to)
        with warnings.catch_warnings(record=True) as vw:
            warnings.simplefilter("always")
            call(vt, x, c, out=vo)
        assert tuple(vo.shape) == tuple(to.shape)
        assert (len(vw) > 0) == (len(tw) > 0)
        np.testing.assert_allclose(_np(vo), _np(to), rtol=1e-6)


def test_inplace_broadcast_self_still_raises_like_torch():
    v, t = vt.ones(1, 3), torch.ones(1, 3)
    with pytest.raises(RuntimeError):
        t.add_(torch.ones(3, 3))
    with pytest.raises(RuntimeError):
        v.add_(vt.ones(3, 3))
