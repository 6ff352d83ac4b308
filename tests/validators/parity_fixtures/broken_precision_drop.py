"""Parity fixture: torch, except that ``exp`` silently computes float64 inputs in float32.

The gate must fail elementwise.exp in float64 only (values differ) and pass it in float32.
"""
import torch as _torch

from _torch_proxy import forward_to_torch as __getattr__  # noqa: F401


def exp(x, out=None):
    if x.dtype == _torch.float64:
        result = _torch.exp(x.float()).double()
        return result if out is None else out.copy_(result)
    return _torch.exp(x) if out is None else _torch.exp(x, out=out)
