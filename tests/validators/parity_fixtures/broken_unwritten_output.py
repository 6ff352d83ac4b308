"""Parity fixture: torch, except that ``add`` never writes its result: the functional form returns uninitialised
memory (torch.empty) and the out= form leaves the out buffer as it was.

The gate must fail elementwise.add* (values / NaN positions differ; out= buffer not overwritten).
"""
import torch as _torch

from _torch_proxy import forward_to_torch as __getattr__  # noqa: F401


def add(a, b, alpha=1, out=None):
    shape = _torch.broadcast_shapes(_torch.as_tensor(a).shape, _torch.as_tensor(b).shape)
    if out is not None:
        return out
    return _torch.empty(shape, dtype=_torch.result_type(a, b))
