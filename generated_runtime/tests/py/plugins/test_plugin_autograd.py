"""Autograd through plugin ops (run-time ops in the dispatcher's autograd layer):
* without a registered backward, a plugin op called on inputs that require grad returns an output that
  requires grad, and backward through it raises NotImplementedError naming the op (as PyTorch does for an
  op without a derivative) instead of silently dropping the history;
* vibetensor.torch.library.register_autograd(<plugin op>, backward, setup_context=...) attaches a Python
  backward (torch.library.register_autograd's signature): gradients flow through the plugin's kernel whether
  it is called as vt.ops.<name> or _C.call, and match PyTorch's analytic gradients and finite differences.
"""
import importlib.util

import pytest
import torch

import vibetensor.torch as vt
from vibetensor import _C
from vbt_plugin_paths import plugin_path

pytestmark = pytest.mark.skipif(importlib.util.find_spec("vibetensor.torch.autograd") is None,
                                reason="vibetensor.torch.autograd is not part of this build")

library = importlib.import_module("vibetensor.torch.library")
AXPBY, HYPOT = "vbt_example_axpby", "vbt_example_hypot"


def _vt(t, requires_grad=False):
    v = vt.from_dlpack(t.detach().clone())
    return v.requires_grad_() if requires_grad else v


def _torch(t):
    return torch.from_dlpack(t.detach()).clone()


@pytest.fixture
def axpby():
    vt.ops.load_library(plugin_path(AXPBY))
    yield vt.ops.vbt_example_axpby
    library._drop_plugin_autograd([AXPBY])  # leave no registration behind for other tests


@pytest.fixture
def hypot():
    vt.ops.load_library(plugin_path(HYPOT))
    yield vt.ops.vbt_example_hypot
    library._drop_plugin_autograd([HYPOT])


def _axpby_backward(ctx, grad):
    return grad * ctx.alpha, grad * ctx.beta, None, None


def _axpby_setup(ctx, inputs, output):
    _, _, ctx.alpha, ctx.beta = inputs


def test_without_backward_the_output_requires_grad_and_backward_names_the_op(axpby):
    g = torch.Generator().manual_seed(1)
    x, y = _vt(torch.randn(4, 3, generator=g), True), _vt(torch.randn(4, 3, generator=g))
    for out in (axpby(x, y, alpha=2.0), _C.call(AXPBY, x, y, 2.0, 1.0)):
        assert out.requires_grad and out.grad_fn is not None
        assert AXPBY in out.grad_fn.name()
        with pytest.raises(NotImplementedError, match=f"derivative for '{AXPBY}' is not implemented"):
            out.sum().backward()
    # also when the plugin op sits in the middle of a graph
    z = (axpby(x * 2, y) * 3).sum()
    with pytest.raises(NotImplementedError, match="register_autograd"):
        z.backward()
    assert x.grad is None
    # no input requires grad, or grad mode is off: no history
    assert not axpby(y, y).requires_grad
    with vt.no_grad():
        assert not axpby(x, y).requires_grad
    # the value itself is unaffected
    torch.testing.assert_close(_torch(axpby(x, y, alpha=2.0)), 2 * _torch(x) + _torch(y))


def test_registered_backward_matches_torch_gradients(axpby):
    library.register_autograd(AXPBY, _axpby_backward, setup_context=_axpby_setup)
    g = torch.Generator().manual_seed(2)
    tx, ty = torch.randn(5, 4, generator=g, dtype=torch.float64), torch.randn(5, 4, generator=g, dtype=torch.float64)
    w = torch.randn(5, 4, generator=g, dtype=torch.float64)
    for call in (lambda a, b: axpby(a, b, alpha=1.5, beta=-0.5),
                 lambda a, b: vt.ops.vbt_example_axpby(a, b, 1.5, -0.5),
                 lambda a, b: _C.call(AXPBY, a, b, alpha=1.5, beta=-0.5)):
        x, y = _vt(tx, True), _vt(ty, True)
        out = call(x, y)
        assert out.grad_fn is not None and AXPBY in out.grad_fn.name()
        (out * _vt(w) * x).sum().backward()  # the plugin op inside a larger graph
        rx, ry = tx.clone().requires_grad_(), ty.clone().requires_grad_()
        ((1.5 * rx - 0.5 * ry) * w * rx).sum().backward()
        torch.testing.assert_close(_torch(x.grad), rx.grad)
        torch.testing.assert_close(_torch(y.grad), ry.grad)
    # only one input requires grad
    x, y = _vt(tx, True), _vt(ty)
    axpby(x, y, alpha=3.0).sum().backward()
    torch.testing.assert_close(_torch(x.grad), torch.full_like(tx, 3.0))
    assert y.grad is None


def test_registered_backward_passes_gradcheck_and_saves_tensors(hypot):
    # hypot(a, b) = sqrt(a^2 + b^2): d/da = a / out, d/db = b / out (output saved in setup_context)
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], inputs[1], output)

    def backward(ctx, grad):
        assert ctx.needs_input_grad == (True, True)  # one flag per op argument
        a, b, out = ctx.saved_tensors
        return grad * a / out, grad * b / out

    library.register_autograd(vt.ops.vbt_example_hypot, backward, setup_context=setup_context)
    g = torch.Generator().manual_seed(3)
    ta, tb = torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(3, 4, generator=g, dtype=torch.float64)
    a, b = _vt(ta, True), _vt(tb, True)
    assert vt.autograd.gradcheck(lambda p, q: hypot(p, q), (a, b), eps=1e-6, atol=1e-6)
    out = hypot(a, b)
    grads = vt.autograd.grad([out.sum()], [a, b])
    ra, rb = ta.clone().requires_grad_(), tb.clone().requires_grad_()
    torch.hypot(ra, rb).sum().backward()
    torch.testing.assert_close(_torch(grads[0]), ra.grad)
    torch.testing.assert_close(_torch(grads[1]), rb.grad)
    # PyTorch's own finite differences through the plugin kernel agree with the registered backward
    def f(p, q):
        return _torch(hypot(_vt(p), _vt(q)))
    eps = 1e-6
    e = torch.zeros_like(ta)
    e[1, 2] = eps
    fd = ((f(ta + e, tb) - f(ta - e, tb)) / (2 * eps)).sum()
    torch.testing.assert_close(_torch(grads[0])[1, 2], fd, rtol=1e-6, atol=1e-8)


def test_backward_returning_a_single_tensor_and_wrong_counts(axpby):
    library.register_autograd(AXPBY, lambda ctx, g: g * 2)  # only x's gradient
    x, y = _vt(torch.ones(3), True), _vt(torch.ones(3), True)
    axpby(x, y).sum().backward()
    torch.testing.assert_close(_torch(x.grad), torch.full((3,), 2.0))
    assert y.grad is None
    library.register_autograd(AXPBY, lambda ctx, g: (g,) * 5)
    with pytest.raises(RuntimeError, match="returned 5 gradients, but the op has 4 inputs"):
        axpby(_vt(torch.ones(3), True), y).sum().backward()


def test_registration_errors_and_removal(axpby):
    with pytest.raises(RuntimeError, match="built-in op"):
        library.register_autograd("mul", _axpby_backward)
    with pytest.raises(RuntimeError, match="unknown op"):
        library.register_autograd("no_such_plugin_op", _axpby_backward)
    with pytest.raises(TypeError, match="callable"):
        library.register_autograd(AXPBY, None)
    # a Library handle owns the registration: _destroy() puts the not-implemented behaviour back
    lib = library.Library("vttest_plugin_ag", "FRAGMENT")
    library.register_autograd(AXPBY, _axpby_backward, setup_context=_axpby_setup, lib=lib)
    x, y = _vt(torch.ones(2), True), _vt(torch.ones(2))
    axpby(x, y, alpha=4.0).sum().backward()
    torch.testing.assert_close(_torch(x.grad), torch.full((2,), 4.0))
    lib._destroy()
    assert AXPBY not in _C._python_overrides()
    with pytest.raises(NotImplementedError, match=AXPBY):
        axpby(x, y).sum().backward()


def test_unload_drops_the_registration(hypot):
    library.register_autograd(HYPOT, lambda ctx, g: (g, g))
    assert HYPOT in _C._python_overrides()
    path = plugin_path(HYPOT)
    assert vt.ops.unload_library(path)
    try:
        assert HYPOT not in _C._python_overrides()
        assert HYPOT not in library._plugin_autograd
    finally:
        vt.ops.load_library(path)
    a = _vt(torch.ones(2), True)
    with pytest.raises(NotImplementedError, match=HYPOT):
        hypot(a, a).sum().backward()
