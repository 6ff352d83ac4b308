"""Parity fixture: torch, except that ``mul`` returns the result of the first call it saw for the same input
shapes, strides and dtype (a stale cache). The first call is right; later calls with fresh inputs are not.

The gate must fail elementwise.mul, naming call 2 after call 1 passed.
"""
import torch as _torch

from _torch_proxy import forward_to_torch as __getattr__  # noqa: F401

_cache = {}


def mul(a, b, out=None):
    if out is not None:
        return _torch.mul(a, b, out=out)
    key = tuple((tuple(t.shape), tuple(t.stride()), t.dtype) for t in (a, b))
    if key not in _cache:
        _cache[key] = _torch.mul(a, b)
    return _cache[key]
