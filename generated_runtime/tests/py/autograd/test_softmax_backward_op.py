"""softmax / log_softmax backward (spec 02): without create_graph each node's backward is one
_softmax_backward_data / _log_softmax_backward_data call, with create_graph the differentiable ops (mul, sum, sub),
so the gradient can be differentiated again. Gradients and second derivatives against torch. Which path ran is seen
through an override of mul (vibetensor.torch.library) that counts its calls and runs mul's own kernel: the one-op
path calls no mul, the differentiable ops do."""
import pytest
import torch

import vibetensor.torch as vt
import vibetensor.torch.library as library

CASES = [("_softmax_backward_data", "softmax"), ("_log_softmax_backward_data", "log_softmax")]


def _vt(t):
    return vt.from_dlpack(t.detach().clone())


def _torch(t):
    return torch.from_dlpack(t.detach()).clone()


class Counted:
    """Counts the CPU mul calls made inside a with block (an override that runs mul's own kernel)."""

    def __enter__(self):
        self.calls = 0

        def mul(*args, **kwargs):
            self.calls += 1
            return vt.mul(*args, **kwargs)  # inside an override, ops run their own kernels
        self.lib = library.Library("aten", "IMPL")
        self.lib.impl("mul", mul, "CPU")
        return self

    def __exit__(self, *exc):
        self.lib._destroy()


@pytest.mark.parametrize("opname,fn", CASES)
@pytest.mark.parametrize("dim", [-1, 0, 1])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_backward_is_one_op_call(opname, fn, dim, dtype):
    gen = torch.Generator().manual_seed(dim + 5)
    x = torch.randn(4, 6, 5, generator=gen, dtype=dtype, requires_grad=True)
    g = torch.randn(4, 6, 5, generator=gen, dtype=dtype)
    getattr(torch, fn)(x, dim).backward(g)
    xv = _vt(x).requires_grad_()
    y = getattr(vt, fn)(xv, dim)
    with Counted() as c:
        y.backward(_vt(g))
    assert c.calls == 0  # one _softmax_backward_data / _log_softmax_backward_data call, no mul
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(_torch(xv.grad), x.grad, rtol=tol, atol=tol)


@pytest.mark.parametrize("opname,fn", CASES)
def test_create_graph_takes_differentiable_ops(opname, fn):
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(3, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 7, generator=gen, dtype=torch.float64)
    (gx,) = torch.autograd.grad((getattr(torch, fn)(x, -1) * w).sum(), x, create_graph=True)
    (gx * gx).sum().backward()
    xv, wv = _vt(x).requires_grad_(), _vt(w)
    loss = (getattr(vt, fn)(xv, -1) * wv).sum()
    with Counted() as c:
        (gxv,) = vt.autograd.grad(loss, xv, create_graph=True)
    assert c.calls >= 1 and gxv.requires_grad  # made of differentiable ops
    (gxv * gxv).sum().backward()
    torch.testing.assert_close(_torch(gxv), gx.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(_torch(xv.grad), x.grad, rtol=1e-10, atol=1e-12)
