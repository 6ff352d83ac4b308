"""Helpers for the autograd tests: the same NumPy inputs as vibetensor and torch leaves, and comparison."""
import numpy as np
import torch

import vibetensor.torch as vt


def leaves(arrays, requires_grad=None):
    """arrays: list of np arrays (float ones require grad unless told otherwise) -> (vt list, torch list)."""
    vs, ts = [], []
    for i, a in enumerate(arrays):
        rg = a.dtype.kind == "f" if requires_grad is None else requires_grad[i]
        v = vt.from_numpy(np.ascontiguousarray(a).copy())
        t = torch.from_numpy(np.ascontiguousarray(a).copy())
        if rg:
            v.requires_grad_(True)
            t.requires_grad_(True)
        vs.append(v)
        ts.append(t)
    return vs, ts


def np_of(x):
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    return x.detach().numpy()


def assert_close(v, t, rtol=1e-5, atol=1e-6, what=""):
    a, b = np_of(v), np_of(t)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs torch {b.shape}"
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=what)


def check_grads(fn, arrays, requires_grad=None, rtol=1e-5, atol=1e-6, upstream_seed=0):
    """Runs fn(T, *inputs) in both frameworks, backprops the same random upstream gradient and compares
    outputs and the gradients of every input that requires grad."""
    vs, ts = leaves(arrays, requires_grad)
    out_v, out_t = fn(vt, *vs), fn(torch, *ts)
    if not isinstance(out_t, (tuple, list)):
        out_v, out_t = [out_v], [out_t]
    rng = np.random.default_rng(upstream_seed)
    gv, gt, ov, ot = [], [], [], []
    for a, b in zip(out_v, out_t):
        assert_close(a, b, rtol, atol, "forward")
        if not b.requires_grad:
            continue
        g = rng.standard_normal(tuple(b.shape)).astype(np.float64 if b.dtype == torch.float64 else np.float32)
        gv.append(vt.from_numpy(g.copy()))
        gt.append(torch.from_numpy(g.copy()))
        ov.append(a)
        ot.append(b)
    torch.autograd.backward(ot, gt)
    vt.autograd.backward(ov, gv)
    n = 0
    for i, (a, b) in enumerate(zip(vs, ts)):
        if b.requires_grad:
            if b.grad is None:
                assert a.grad is None or np.all(np_of(a.grad) == 0), f"input {i}: torch has no grad"
                continue
            assert a.grad is not None, f"input {i}: vibetensor computed no gradient"
            assert_close(a.grad, b.grad, rtol, atol, f"grad of input {i}")
            n += 1
    return n
