"""Gradients through partial views (spec 02) on every device: slices (with a step, partial, negative, empty),
narrow, select and as_strided scatter the gradient into zeros of the input's shape. On cuda their positions must
live on the device too (the parity gate on an H200 found index_put_ refusing host positions, 2026-12-02). Values,
devices and second derivatives against torch."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt

DEVICES = ["cpu"] + (["cuda"] if vt.cuda.is_available() and vt.cuda._tensors.has_ops() else [])

VIEWS = {
    "slice_step": lambda x: x[..., ::2],
    "slice_partial": lambda x: x[1:3],
    "slice_negative": lambda x: x[:, -3:],
    "slice_step_offset": lambda x: x[:, 1::4],
    "slice_empty": lambda x: x[:, 5:5],
    "slice_full": lambda x: x[:, 0:6:1],
    "narrow": lambda x: x.narrow(1, 1, 3),
    "narrow_negative": lambda x: x.narrow(0, -2, 2),
    "select": lambda x: x.select(1, 2),
    "select_negative": lambda x: x[:, -1],
    "as_strided": lambda x: x.as_strided((2, 2), (1, 2)),
    "as_strided_offset": lambda x: x.as_strided((3,), (4,), 1),
    "chained": lambda x: x[1:, ::2].select(0, 1),
}


def _numpy(t):
    return torch.from_dlpack(t.detach()).cpu().numpy()


def _pair(a: np.ndarray, device: str, dtype: str):
    t = torch.tensor(a, dtype=getattr(torch, dtype), device="cpu", requires_grad=True)
    v = vt.tensor(a, dtype=getattr(vt, dtype))
    if device == "cuda":
        v = v.cuda()
    return t, v.requires_grad_(True)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(VIEWS))
def test_gradient_through_a_partial_view_matches_torch(name, dtype, device):
    rng = np.random.default_rng(7)
    t, v = _pair(rng.standard_normal((4, 6)), device, dtype)
    view = VIEWS[name]
    w = rng.standard_normal(tuple(view(t).shape))
    (view(t) * torch.tensor(w, dtype=t.dtype)).sum().backward()
    wv = vt.tensor(w, dtype=v.dtype)
    (view(v) * (wv.cuda() if device == "cuda" else wv)).sum().backward()
    assert str(v.grad.device).startswith(device)
    np.testing.assert_array_equal(_numpy(v.grad), t.grad.numpy())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["slice_step", "narrow", "select", "as_strided"])
def test_second_derivative_through_a_partial_view_matches_torch(name, device):
    rng = np.random.default_rng(11)
    t, v = _pair(rng.standard_normal((4, 6)), device, "float64")
    view = VIEWS[name]
    (gt,) = torch.autograd.grad((view(t) ** 3).sum(), t, create_graph=True)
    (gv,) = vt.autograd.grad((view(v) ** 3).sum(), v, create_graph=True)
    np.testing.assert_allclose(_numpy(gv), gt.detach().numpy(), rtol=1e-12, atol=1e-12)
    (gt * gt).sum().backward()
    (gv * gv).sum().backward()
    assert str(v.grad.device).startswith(device)
    np.testing.assert_allclose(_numpy(v.grad), t.grad.numpy(), rtol=1e-12, atol=1e-12)
