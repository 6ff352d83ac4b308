"""Parity fixture: torch, except that ``add`` broadcasts by repeating each operand's flat data cyclically up to
the result's size (numpy.resize style) instead of along its size-1 dimensions. Same-shape inputs, 0-dim operands
and trailing-dimension broadcasts still come out right; [3,1] + [1,5] does not.

The gate must fail elementwise.add on the [3,1]x[1,5] broadcast case only (values differ).
"""
import math

import torch as _torch

from _torch_proxy import forward_to_torch as __getattr__  # noqa: F401


def _cyclic(t, shape):
    n = math.prod(shape)
    flat = t.reshape(-1)
    if flat.numel() == 0 or n == 0:
        return t.expand(shape)
    return flat.repeat(-(-n // flat.numel()))[:n].reshape(shape)


def add(a, b, alpha=1, out=None):
    if isinstance(a, _torch.Tensor) and isinstance(b, _torch.Tensor) and a.shape != b.shape:
        shape = _torch.broadcast_shapes(a.shape, b.shape)
        a, b = _cyclic(a, shape), _cyclic(b, shape)
    return _torch.add(a, b, alpha=alpha) if out is None else _torch.add(a, b, alpha=alpha, out=out)
