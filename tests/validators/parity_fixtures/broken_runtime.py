"""Parity fixture: torch with one planted defect per op, each a way a runtime (or an agent) gets parity wrong.

    add      writes into its first input after computing a correct result     -> "op wrote into its inputs"
    mul      returns the result cached for the first call with the same shapes -> call 2 fails after call 1 passed
    maximum  out= form leaves the (poisoned) out buffer unwritten              -> "out= buffer ..." values differ
    sub      broadcasts by repeating flat data cyclically (numpy.resize style) -> wrong values on [3,1]x[1,5] only
    exp      computes float64 inputs in float32 (silently dropped precision)   -> fails float64, passes float32
    neg      segfaults (a real SIGSEGV)                                        -> crash named, later ops still run
    div      hangs                                                             -> timed out
    cumsum   does not exist                                                    -> "missing op" (a failure)
    autograd does not exist                                                    -> "no autograd in runtime"
    nn       does not exist (a core-only build): with the gate option functional_module=core_functional,
             T.nn.functional comes from that module and nn.layer_norm passes
Everything else is torch's. It also imports torch, which the gate's ``forbid_torch`` check reports.
"""
import ctypes
import math
import time

import torch as _torch


def __getattr__(name):
    if name in ("cumsum", "autograd", "nn"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(_torch, name)


def add(a, b, alpha=1, out=None):
    result = _torch.add(a, b, alpha=alpha) if out is None else _torch.add(a, b, alpha=alpha, out=out)
    if isinstance(a, _torch.Tensor) and a.numel():
        first = (0,) * a.dim()
        a[first] = ~a[first] if a.dtype == _torch.bool else a[first] + 1
    return result


_cache = {}


def mul(a, b, out=None):
    if out is not None:
        return _torch.mul(a, b, out=out)
    key = tuple((tuple(t.shape), tuple(t.stride()), t.dtype) for t in (a, b))
    if key not in _cache:
        _cache[key] = _torch.mul(a, b)
    return _cache[key]


def maximum(a, b, out=None):
    return out if out is not None else _torch.maximum(a, b)


def _cyclic(t, shape):
    n = math.prod(shape)
    flat = t.reshape(-1)
    if flat.numel() == 0 or n == 0:
        return t.expand(shape)
    return flat.repeat(-(-n // flat.numel()))[:n].reshape(shape)


def sub(a, b, alpha=1, out=None):
    if isinstance(a, _torch.Tensor) and isinstance(b, _torch.Tensor) and a.shape != b.shape:
        shape = _torch.broadcast_shapes(a.shape, b.shape)
        a, b = _cyclic(a, shape), _cyclic(b, shape)
    return _torch.sub(a, b, alpha=alpha) if out is None else _torch.sub(a, b, alpha=alpha, out=out)


def exp(x, out=None):
    if x.dtype == _torch.float64:
        result = _torch.exp(x.float()).double()
        return result if out is None else out.copy_(result)
    return _torch.exp(x) if out is None else _torch.exp(x, out=out)


def neg(x, out=None):
    ctypes.string_at(0)  # reads address 0: SIGSEGV


def div(a, b, rounding_mode=None, out=None):
    time.sleep(3600)
