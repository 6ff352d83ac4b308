"""Parity fixture: torch, except that ``add`` writes into its first input after computing a correct result.

The gate must fail elementwise.add* with "op wrote into its inputs".
"""
import torch as _torch

from _torch_proxy import forward_to_torch as __getattr__  # noqa: F401


def add(a, b, alpha=1, out=None):
    result = _torch.add(a, b, alpha=alpha) if out is None else _torch.add(a, b, alpha=alpha, out=out)
    if isinstance(a, _torch.Tensor) and a.numel():
        first = (0,) * a.dim()
        a[first] = ~a[first] if a.dtype == _torch.bool else a[first] + 1
    return result
