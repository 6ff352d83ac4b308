"""torch.nn.functional.pad checked against PyTorch CPU: constant (any value, negative pads crop), reflect,
replicate and circular over the last 1/2/3 dims, every dtype, non-contiguous input, gradients (pad is composed
of differentiable ops) and torch's errors."""
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import vibetensor.torch as vt
import vibetensor.torch.nn.functional as F
from vt_core_helpers import DTYPE_NAMES, make_np, pair, to_np

CASES = [
    ("constant", (2, 3), (1, 2)),
    ("constant", (2, 3), (1, 2, -1, 3)),
    ("constant", (2, 3, 4), (-1, -1)),
    ("constant", (2, 3, 4), (0, 0)),
    ("constant", (2, 3, 4), (-3, 4)),
    ("constant", (2, 3, 4), (1, 1, 2, 2, 3, 3)),
    ("constant", (5,), (2, 0)),
    ("constant", (0, 3), (1, 1, 1, 1)),
    ("constant", (2, 3, 4, 5), (1, 0, 0, 2, -1, 1)),
    ("reflect", (3, 5), (2, 3)),
    ("reflect", (1, 2, 5), (2, 3)),
    ("reflect", (1, 2, 5), (-1, 3)),
    ("reflect", (2, 4, 5), (1, 2, 3, 0)),
    ("reflect", (2, 3, 4, 5), (1, 2, 3, 0)),
    ("reflect", (2, 3, 4, 5), (1, 2, 3, 3, 1, 1)),
    ("reflect", (0, 2, 5), (1, 1)),
    ("replicate", (3, 5), (2, 7)),
    ("replicate", (3, 4, 5), (7, -2)),
    ("replicate", (2, 3, 4, 5), (1, 2, 0, 3)),
    ("replicate", (2, 3, 4, 5, 6), (1, 2, 3, 0, 2, 2)),
    ("replicate", (3, 4, 5, 6), (1, 1, 1, 1, 1, 1)),
    ("circular", (3, 5), (2, 5)),
    ("circular", (2, 3, 4, 5), (1, 2, 3, 3)),
    ("circular", (1, 1, 5), (2, -2)),
    ("circular", (1, 1, 5), (-2, 2)),
    ("circular", (1, 1, 5), (1, -1)),
    ("circular", (2, 2, 3, 4, 5), (1, 1, 2, 0, 0, 3)),
]
IDS = [f"{m}-{s}-{p}" for m, s, p in CASES]


def _check(r, t):
    assert tuple(r.shape) == tuple(t.shape)
    assert r.dtype.name == str(t.dtype).replace("torch.", "")
    np.testing.assert_array_equal(to_np(r.detach()), t.detach().double().numpy() if t.dtype != torch.bool else t.numpy())


@pytest.mark.parametrize("mode,shape,pads", CASES, ids=IDS)
def test_pad_forward_and_grad(mode, shape, pads):
    rng = np.random.default_rng(sum(shape) + len(pads))
    a = rng.standard_normal(shape)
    kw = {"value": 1.5} if mode == "constant" else {}
    ta, va = torch.tensor(a, requires_grad=True), vt.tensor(a, requires_grad=True)
    t, r = TF.pad(ta, pads, mode, **kw), F.pad(va, pads, mode, **kw)
    _check(r, t)
    w = rng.standard_normal(tuple(t.shape))
    (t * torch.tensor(w)).sum().backward()
    (r * vt.tensor(w)).sum().backward()
    np.testing.assert_allclose(va.grad.numpy(), ta.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", DTYPE_NAMES)
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_dtypes_noncontiguous(name, mode):
    rng = np.random.default_rng(5)
    v, t = pair(make_np((3, 4, 6), name, rng), name)
    v, t = v.transpose(1, 2), t.transpose(1, 2)  # (3, 6, 4), non-contiguous
    pads = (2, 1, 1, 3)
    if mode == "constant":
        val = True if name == "bool" else 7
        _check(F.pad(v, pads, value=val), TF.pad(t, pads, value=val))
        _check(F.pad(v, pads), TF.pad(t, pads))
    elif name == "bool":  # torch has no bool reflect/replicate kernels: compare with its uint8 result
        _check(F.pad(v, pads, mode), TF.pad(t.to(torch.uint8), pads, mode).bool())
    else:
        _check(F.pad(v, pads, mode), TF.pad(t, pads, mode))


def test_pad_result_is_new_storage():
    x = vt.ones(2, 3)
    for mode in ("constant", "reflect"):
        y = F.pad(x, (0, 0), mode)
        y.add_(1)
        assert x.sum().item() == 6.0  # never an alias of the input
    # an integer tensor padded with a float value truncates like torch
    _check(F.pad(vt.arange(6).reshape(2, 3), (1, 1), value=2.7), TF.pad(torch.arange(6).reshape(2, 3), (1, 1),
                                                                        value=2.7))


ERRORS = [
    ((1, 2, 3), (1,), "constant", RuntimeError, "Padding length must be divisible by 2"),
    ((1, 2, 3), (1,) * 8, "constant", RuntimeError,
     "Padding length should be less than or equal to two times the input dimension but got padding length 8 and "
     "input of dimension 3"),
    ((1, 2, 3), (1, 1), "foo", NotImplementedError, "Unrecognised padding mode foo"),
    ((1, 2, 3), (3, 0), "reflect", RuntimeError,
     "Padding size should be less than the corresponding input dimension, but got: padding (3, 0) at dimension 2 of "
     "input [1, 2, 3]"),
    ((1, 2, 3), (1, 1, 1, 1, 1, 1), "reflect", NotImplementedError,
     "Padding size 6 is not supported for 3D input tensor."),
    ((3,), (1, 1), "replicate", NotImplementedError, "Padding size 2 is not supported for 1D input tensor."),
    ((2, 3, 4, 5, 6), (1, 1, 1, 1), "circular", NotImplementedError,
     "Padding size 4 is not supported for 5D input tensor."),
    ((1, 2, 3), (4, 0), "circular", RuntimeError, "Padding value causes wrapping around more than once."),
    ((1, 0, 3), (1, 1), "replicate", RuntimeError,
     "Expected 2D or 3D (batch mode) tensor with possibly 0 batch size and other non-zero dimensions for input, but "
     "got: [1, 0, 3]"),
    ((1, 2, 0), (1, 1), "reflect", RuntimeError, "other non-zero dimensions for input"),
]


@pytest.mark.parametrize("shape,pads,mode,exc,msg", ERRORS, ids=[f"{e[2]}-{e[1]}" for e in ERRORS])
def test_pad_errors(shape, pads, mode, exc, msg):
    with pytest.raises(exc, match=re.escape(msg)):
        TF.pad(torch.zeros(shape), pads, mode)
    with pytest.raises(exc, match=re.escape(msg)):
        F.pad(vt.zeros(shape), pads, mode)


def test_pad_errors_own_messages():
    # torch 2.13 reports these through narrow(); ours name the dim and sizes
    for pads in [(-2, -2), (-4, 0)]:
        with pytest.raises(RuntimeError):
            TF.pad(torch.zeros(1, 2, 3), pads)
        with pytest.raises(RuntimeError, match=r"input size 3, plus negative padding .* negative output size"):
            F.pad(vt.zeros(1, 2, 3), pads)
    with pytest.raises(RuntimeError, match="doesn't take in value argument"):
        TF.pad(torch.zeros(1, 2, 3), (1, 1), "reflect", 1.0)
    with pytest.raises(RuntimeError, match="doesn't take in value argument"):
        F.pad(vt.zeros(1, 2, 3), (1, 1), "reflect", 1.0)
    with pytest.raises(TypeError):
        F.pad(vt.zeros(2, 3), (1, 1.5))
