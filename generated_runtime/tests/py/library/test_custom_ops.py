"""Python-level custom ops and overrides (vibetensor.torch.library, after torch.library), checked
against the same computation in PyTorch."""
import importlib.util

import pytest
import torch

import vibetensor.torch as vt
import vibetensor.torch.library as library


def _vt(t):
    return vt.from_dlpack(t.clone())


def _torch(t):
    return torch.from_dlpack(t).clone()


def test_custom_op_schema_inference_and_call():
    @library.custom_op("vttest::scaled_sum")
    def scaled_sum(x: vt.Tensor, y: vt.Tensor, alpha: float = 2.0) -> vt.Tensor:
        return x + y * alpha

    assert scaled_sum.schema == "scaled_sum(Tensor x, Tensor y, float alpha=2.0) -> Tensor"
    x, y = torch.randn(3, 4), torch.randn(4)
    torch.testing.assert_close(_torch(vt.ops.vttest.scaled_sum(_vt(x), _vt(y))), x + y * 2.0)
    torch.testing.assert_close(_torch(scaled_sum(_vt(x), _vt(y), alpha=-1.0)), x - y)
    with pytest.raises(TypeError, match="missing required argument 'y'"):
        scaled_sum(_vt(x))
    with pytest.raises(TypeError, match="unexpected keyword"):
        scaled_sum(_vt(x), _vt(y), beta=1.0)
    with pytest.raises(RuntimeError, match="already defined"):
        library.custom_op("vttest::scaled_sum", lambda x: x, schema="scaled_sum(Tensor x) -> Tensor")


def test_per_device_implementations():
    op = library.define("vttest::twice", "(Tensor x) -> Tensor")
    with pytest.raises(NotImplementedError, match="no implementation for device 'cpu'"):
        op(vt.ones(2))
    seen = []
    library.impl("vttest::twice", "cuda", lambda x: seen.append("cuda") or x * 2)
    with pytest.raises(NotImplementedError):
        op(vt.ones(2))  # only a CUDA kernel so far
    op.register_kernel("cpu", lambda x: seen.append("cpu") or x * 2)
    x = torch.arange(5.0)
    torch.testing.assert_close(_torch(vt.ops.vttest.twice(_vt(x))), 2 * x)
    assert seen == ["cpu"]


def test_library_define_impl_and_destroy():
    lib = library.Library("vtlib", "DEF")
    assert lib.define("axpy(Tensor x, Tensor y, float a=1.0) -> Tensor") == "axpy"
    lib.impl("axpy", lambda x, y, a: x * a + y, "CPU")
    x, y = torch.randn(6), torch.randn(6)
    torch.testing.assert_close(_torch(vt.ops.vtlib.axpy(_vt(x), _vt(y), a=0.5)), 0.5 * x + y)
    lib._destroy()
    with pytest.raises(AttributeError):
        vt.ops.vtlib.axpy
    with pytest.raises(ValueError, match="unsupported type"):
        library.Library("vtlib2", "DEF").define("bad(Tensor x, complex z) -> Tensor")


def test_override_builtin_op_everywhere_and_restore():
    calls = []

    def my_mul(self, other):
        calls.append(1)
        return vt.add(self, other)  # inside the override, ops run their normal kernels

    lib = library.Library("aten", "IMPL")
    lib.impl("mul", my_mul, "CPU")
    a, b = torch.randn(4), torch.randn(4)
    va, vb = _vt(a), _vt(b)
    torch.testing.assert_close(_torch(vt.mul(va, vb)), a + b)
    torch.testing.assert_close(_torch(va * vb), a + b)
    out = _vt(a)
    out.mul_(vb)  # the in-place form goes through the same op (with out=self)
    torch.testing.assert_close(_torch(out), a + b)
    assert len(calls) == 3
    lib._destroy()
    torch.testing.assert_close(_torch(vt.mul(va, vb)), a * b)
    assert len(calls) == 3


def test_override_for_another_device_falls_through_on_cpu():
    lib = library.Library("aten", "IMPL")
    lib.impl("sub", lambda self, other, alpha=1: pytest.fail("must not run on CPU"), "CUDA")
    try:
        a, b = torch.randn(3), torch.randn(3)
        torch.testing.assert_close(_torch(vt.sub(_vt(a), _vt(b))), a - b)
    finally:
        lib._destroy()


def test_override_errors_propagate_and_unknown_ops_rejected():
    lib = library.Library("aten", "IMPL")

    def boom(self, other, *, alpha=1):
        raise KeyError("from the override")

    lib.impl("add", boom, "CPU")
    try:
        with pytest.raises(KeyError, match="from the override"):
            vt.add(vt.ones(1), vt.ones(1))
    finally:
        lib._destroy()
    torch.testing.assert_close(_torch(vt.add(vt.ones(1), vt.ones(1))), torch.full((1,), 2.0))
    with pytest.raises(RuntimeError, match="unknown op"):
        library.impl("no_such_op_anywhere", "cpu", lambda x: x)


@pytest.mark.skipif(importlib.util.find_spec("vibetensor.torch.autograd") is None,
                    reason="vibetensor.torch.autograd is not part of this build: custom-op backward untested")
def test_custom_op_backward_matches_torch():
    @library.custom_op("vttest::cube")
    def cube(x: vt.Tensor) -> vt.Tensor:
        return x * x * x

    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x * x

    cube.register_autograd(backward, setup_context=setup_context)
    x = torch.randn(5, dtype=torch.float64)
    vx = _vt(x).requires_grad_()
    y = cube(vx)
    y.sum().backward()
    tx = x.clone().requires_grad_()
    (tx ** 3).sum().backward()
    torch.testing.assert_close(_torch(vx.grad), tx.grad)
    torch.testing.assert_close(_torch(y.detach()), x ** 3)


@pytest.mark.skipif(importlib.util.find_spec("vibetensor.torch.autograd") is None,
                    reason="vibetensor.torch.autograd is not part of this build")
def test_register_autograd_signature_and_targets():
    # torch.library.register_autograd(op, backward, /, *, setup_context=None, lib=None); the module-level
    # function takes a custom op by name as well (plugin ops: tests/py/plugins/test_plugin_autograd.py)
    @library.custom_op("vttest::twice_ag")
    def twice_ag(x: vt.Tensor) -> vt.Tensor:
        return x * 2

    vt.library.register_autograd("vttest::twice_ag", lambda ctx, g: g * 2)
    x = _vt(torch.randn(4)).requires_grad_()
    twice_ag(x).sum().backward()
    torch.testing.assert_close(_torch(x.grad), torch.full((4,), 2.0))
    with pytest.raises(TypeError):
        vt.library.register_autograd(op="vttest::twice_ag", backward=lambda ctx, g: g)  # positional-only
    with pytest.raises(RuntimeError, match="'add' is a built-in op"):
        vt.library.register_autograd("add", lambda ctx, g: g)
    with pytest.raises(RuntimeError, match="unknown op 'nobody::nothing'"):
        vt.library.register_autograd("nobody::nothing", lambda ctx, g: g)
