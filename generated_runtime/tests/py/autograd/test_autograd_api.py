"""The Python autograd API and its error cases, compared with torch's behaviour and messages."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from ag_helpers import leaves, assert_close


def both(arrays, **kw):
    return leaves([np.asarray(a, dtype=np.float32) for a in arrays], **kw)


def test_leaf_flags_grad_fn_and_repr():
    (x,), (tx,) = both([[1.0, 2.0]])
    y, ty = x * 2, tx * 2
    assert x.is_leaf and x.requires_grad and x.grad_fn is None
    assert not y.is_leaf and y.requires_grad
    assert y.grad_fn.name() == type(ty.grad_fn).__name__ == "MulBackward0"
    assert "grad_fn=<MulBackward0>" in repr(y)
    assert "requires_grad=True" in repr(x)
    nf = y.grad_fn.next_functions
    assert nf[0][0].name() == "AccumulateGrad" and nf[1][0] is None  # the wrapped number has no edge
    z = vt.ones(2)
    assert not z.requires_grad and z.is_leaf


def test_backward_twice_without_retain_graph_raises():
    (x,), (tx,) = both([[1.0, 2.0]])
    y, ty = (x.exp() * x).sum(), (tx.exp() * tx).sum()
    y.backward(retain_graph=True)
    ty.backward(retain_graph=True)
    y.backward()
    ty.backward()
    assert_close(x.grad, tx.grad)
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        ty.backward()


def test_non_scalar_backward_without_gradient_raises():
    (x,), (tx,) = both([[1.0, 2.0]])
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        (tx * 2).backward()


def test_gradient_shape_mismatch_raises():
    (x,), _ = both([[1.0, 2.0]])
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 2).backward(vt.ones(3))


def test_backward_of_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad and does not have a grad_fn"):
        vt.ones(2).sum().backward()
    with pytest.raises(RuntimeError, match="does not require grad and does not have a grad_fn"):
        torch.ones(2).sum().backward()


def test_inplace_change_of_saved_tensor_raises_like_torch():
    for T in (vt, torch):
        x = T.tensor([1.0, 2.0], requires_grad=True)
        y = x.exp()
        z = (y * 3).sum() + y.sum()
        w = y.sigmoid()
        with T.no_grad():
            pass
        y.add_(1)  # y saved by sigmoid? no: exp saved its output y
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            (w.sum() + z).backward()


def test_inplace_on_leaf_requiring_grad_raises():
    for T in (vt, torch):
        x = T.tensor([1.0, 2.0], requires_grad=True)
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
            x.add_(1)
        with T.no_grad():
            x.add_(1)  # allowed (optimizer updates)
        assert float(x.detach().sum().item()) == 5.0


def test_inplace_on_non_leaf_is_differentiated():
    (x,), (tx,) = both([[1.0, -2.0, 3.0]])
    outs = []
    for T, a in ((vt, x), (torch, tx)):
        y = a * 2
        y.mul_(a)  # y = 2a * a
        y.add_(1)
        y.relu_()
        y.sum().backward()
        outs.append(y)
    assert_close(outs[0], outs[1])
    assert_close(x.grad, tx.grad)


def test_no_grad_enable_grad_set_grad_enabled():
    x = vt.ones(2, requires_grad=True)
    with vt.no_grad():
        assert not vt.is_grad_enabled()
        y = x * 2
        with vt.enable_grad():
            z = x * 2
    assert not y.requires_grad and z.requires_grad and vt.is_grad_enabled()
    with vt.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert vt.is_grad_enabled()
    vt.set_grad_enabled(False)
    assert not vt.is_grad_enabled()
    vt.set_grad_enabled(True)

    @vt.no_grad()
    def f(a):
        return a * 2
    assert not f(x).requires_grad
    with vt.inference_mode():
        assert not (x * 2).requires_grad


def test_detach_and_requires_grad_rules():
    x = vt.ones(3, requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.is_leaf
    d[0] = 5.0  # shares storage
    assert float(y[0].item()) == 5.0
    with pytest.raises(RuntimeError, match="only change requires_grad flags of leaf variables"):
        y.requires_grad_(False)
    with pytest.raises(RuntimeError, match="floating point"):
        vt.ones(2, dtype=vt.int64).requires_grad_()
    y2 = x * 3
    y2.detach_()
    assert not y2.requires_grad and y2.is_leaf


def test_grad_accumulates_and_can_be_reset():
    (x,), (tx,) = both([[1.0, 2.0]])
    for _ in range(3):
        (x * x).sum().backward()
        (tx * tx).sum().backward()
    assert_close(x.grad, tx.grad)
    x.grad = None
    assert x.grad is None
    with pytest.raises(RuntimeError):
        x.grad = vt.ones(3)


def test_autograd_grad_and_create_graph():
    (x, w), (tx, tw) = both([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7]])
    res = []
    for T, a, b in ((vt, x, w), (torch, tx, tw)):
        y = (a.tanh() * b * a).sum()
        (ga,) = T.autograd.grad(y, a, create_graph=True)
        gg = T.autograd.grad((ga * ga).sum(), [a, b])
        res.append((ga, gg))
        assert a.grad is None
    assert_close(res[0][0], res[1][0])
    assert_close(res[0][1][0], res[1][1][0], rtol=1e-5, atol=1e-6)
    assert_close(res[0][1][1], res[1][1][1], rtol=1e-5, atol=1e-6)


def test_autograd_grad_unused_input():
    x = vt.ones(2, requires_grad=True)
    u = vt.ones(2, requires_grad=True)
    y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        vt.autograd.grad(y, [x, u], retain_graph=True)
    gx, gu = vt.autograd.grad(y, [x, u], allow_unused=True)
    assert gu is None and np.all(gx.numpy() == 2)


def test_hooks_and_retain_grad():
    (x,), (tx,) = both([[1.0, 2.0, 3.0]])
    seen = []
    for T, a in ((vt, x), (torch, tx)):
        y = a * a
        y.retain_grad()
        h = y.register_hook(lambda g: g * 10)
        a.register_hook(lambda g, T=T: seen.append(type(g).__name__))
        (y * 2).sum().backward()
        seen.append(y.grad)
        h.remove()
    assert_close(x.grad, tx.grad)
    assert_close(seen[1], seen[3])


def test_backward_with_inputs_only_accumulates_there():
    a = vt.ones(2, requires_grad=True)
    b = vt.ones(2, requires_grad=True)
    (a * b * 3).sum().backward(inputs=[a])
    assert a.grad is not None and b.grad is None


class Cube(object):
    pass


def _cube_fn(T):
    class CubeFn(T.autograd.Function):
        @staticmethod
        def forward(ctx, x, k):
            ctx.save_for_backward(x)
            ctx.k = k
            return x * x * x * k

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            assert ctx.needs_input_grad[0] and not ctx.needs_input_grad[1]
            return g * 3 * x * x * ctx.k, None
    return CubeFn


def test_custom_function_matches_torch():
    (x,), (tx,) = both([[1.0, -2.0, 0.5]])
    yv = _cube_fn(vt).apply(x, 2.0)
    yt = _cube_fn(torch).apply(tx, 2.0)
    assert yv.grad_fn is not None and yv.requires_grad
    (yv.sin()).sum().backward()
    (yt.sin()).sum().backward()
    assert_close(yv, yt)
    assert_close(x.grad, tx.grad)


def test_custom_function_saved_tensor_version_check_and_free():
    x = vt.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    out = _cube_fn(vt).apply(y, 1.0)
    with vt.no_grad():
        y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()
    out2 = _cube_fn(vt).apply(x * 1, 1.0)
    s = out2.sum()
    s.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        s.backward()


def test_custom_function_multiple_outputs():
    class SplitScale(vt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, ga, gb):
            return ga * 2 + gb * 3

    x = vt.ones(3, requires_grad=True)
    a, b = SplitScale.apply(x)
    (a.sum() + 2 * b.sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 8.0))
    y = vt.ones(3, requires_grad=True)
    a, _ = SplitScale.apply(y)
    a.sum().backward()  # unused output gets a zero gradient
    np.testing.assert_allclose(y.grad.numpy(), np.full(3, 2.0))


def test_coverage_lists():
    have = set(vt.autograd.ops_with_backward())
    for op in ("mm", "matmul", "bmm", "linear", "softmax", "log_softmax", "gelu", "embedding", "cat", "masked_fill",
               "tril", "reshape", "permute", "expand", "index", "gather", "sum", "mean", "where", "clamp"):
        assert op in have


def test_setitem_and_copy_into_non_leaf_are_differentiated():
    (x, v, z), (tx, tv, tz) = both([[1.0, 2.0, 3.0, 4.0], [10.0, 20.0], [5.0, 6.0, 7.0, 8.0]])
    outs = []
    for T, a, b, c in ((vt, x, v, z), (torch, tx, tv, tz)):
        y = a * 2
        y[T.tensor([0, 2])] = b * 3        # index_put_ on a non-leaf
        w = a * 1
        w.copy_(c * c)                     # copy_ replaces w's history
        out = (y * y).sum() + (w * a).sum()
        out.backward()
        outs.append(out)
    assert_close(outs[0], outs[1])
    for a, b in ((x, tx), (v, tv), (z, tz)):
        assert_close(a.grad, b.grad)


VIEW_INPLACE = [
    ("mul_on_slice_and_setitem", lambda T, x, w: _v1(T, x, w)),
    ("setitem_into_plain_buffer", lambda T, x, w: _v2(T, x, w)),
    ("zero_and_add_on_transposed_view", lambda T, x, w: _v3(T, x, w)),
    ("index_put_on_view_of_view", lambda T, x, w: _v4(T, x, w)),
]


def _v1(T, x, w):
    y = x * 2
    y[1:3].mul_(w[:2])
    y[0] = w[2] * 3
    return (y * y).sum()


def _v2(T, x, w):
    buf = T.zeros(2, 3, dtype=x.dtype)
    buf[0] = x[:3] * 2
    buf[1, 1:] = w[:2]
    return (buf * buf.sum()).sum() + (buf[0] * x[3]).sum()


def _v3(T, x, w):
    y = (x * 1).reshape(2, 2)
    y[:, 0].zero_()
    y.t()[1].add_(w[:2])
    return (y.exp() * w[2]).sum()


def _v4(T, x, w):
    y = x.unsqueeze(0).repeat(3, 1)
    row = y[1]
    row[T.tensor([0, 3])] = w[:2] * 5
    return (y * y.sin()).sum()


@pytest.mark.parametrize("name,fn", VIEW_INPLACE, ids=[v[0] for v in VIEW_INPLACE])
def test_inplace_on_views_matches_torch(name, fn):
    (x, w), (tx, tw) = both([[0.3, -1.2, 2.0, 0.7], [1.5, -0.4, 0.9]])
    lv, lt = fn(vt, x, w), fn(torch, tx, tw)
    assert_close(lv, lt, 1e-5, 1e-5)
    lv.backward()
    lt.backward()
    assert_close(x.grad, tx.grad, 1e-5, 1e-5)
    assert_close(w.grad, tw.grad, 1e-5, 1e-5)


def test_inplace_on_view_of_leaf_raises_like_torch():
    for T in (vt, torch):
        x = T.ones(3, requires_grad=True)
        with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad is being used in an "
                                               "in-place operation"):
            x[0].mul_(2)


def test_very_deep_graph_backward_and_free():
    x = vt.ones(1, requires_grad=True)
    y = x
    for _ in range(20000):
        y = y * 1.0
    y.sum().backward()
    assert float(x.grad.item()) == 1.0
    del y


def test_custom_function_saving_its_output_matches_torch():
    def make(T):
        class Exp(T.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                y = x.exp()
                ctx.save_for_backward(y)
                return y

            @staticmethod
            def backward(ctx, g):
                (y,) = ctx.saved_tensors
                return g * y
        return Exp
    (x,), (tx,) = both([[0.1, -0.5, 1.0]])
    (make(vt).apply(x) * 2).sum().backward()
    (make(torch).apply(tx) * 2).sum().backward()
    assert_close(x.grad, tx.grad)


def test_gradcheck_float64():
    rng = np.random.default_rng(3)
    a = vt.from_numpy(rng.standard_normal((3, 4))).requires_grad_()
    b = vt.from_numpy(rng.standard_normal((4, 2))).requires_grad_()
    assert vt.autograd.gradcheck(lambda x, y: T_softmax_mm(x, y), (a, b))

    class WrongGrad(vt.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * x

        @staticmethod
        def backward(ctx, g):
            return g  # wrong on purpose: d(x*x)/dx is 2x

    with pytest.raises(vt.autograd.GradcheckError):
        vt.autograd.gradcheck(WrongGrad.apply, (a,))


def T_softmax_mm(x, y):
    return vt.softmax(x @ y, dim=-1).tanh()
