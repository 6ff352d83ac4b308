"""Helpers for the core pytest suite (imported explicitly; there is no conftest.py).

Inputs are made once in NumPy float64 and converted by BOTH frameworks to the dtype under test, so both
see bit-identical values; results are compared after widening to float64, with per-dtype tolerances.
The result dtype and shape must match PyTorch's exactly."""
import numpy as np
import torch

import vibetensor.torch as vt

DTYPE_NAMES = ["float32", "float64", "float16", "bfloat16", "int8", "uint8", "int16", "int32", "int64", "bool"]
FLOAT_NAMES = ["float32", "float64", "float16", "bfloat16"]
INT_NAMES = ["int8", "uint8", "int16", "int32", "int64"]

TOL = {  # (rtol, atol)
    "float64": (1e-9, 1e-10),
    "float32": (1e-5, 1e-6),
    "float16": (1e-2, 1e-3),
    "bfloat16": (2e-2, 1e-2),
}


def vdt(name):
    return getattr(vt, name)


def tdt(name):
    return getattr(torch, name)


def make_np(shape, name, rng, low=-3.0, high=3.0):
    """float64 NumPy data suitable for dtype `name` (integers for integer dtypes)."""
    if name == "bool":
        return rng.random(shape) > 0.5
    if name == "uint8":
        return rng.integers(0, 12, shape).astype(np.float64)
    if name in INT_NAMES:
        return rng.integers(int(max(low, -10)), int(min(high, 10)) + 1, shape).astype(np.float64)
    return rng.uniform(low, high, shape)


def pair(arr, name):
    """The same values as (vibetensor, torch) tensors of dtype `name`."""
    t = torch.tensor(arr).to(tdt(name))
    v = vt.tensor(arr).to(vdt(name))
    return v, t


def layout(v, t, kind):
    """Applies the same view to both: 'contig', 'transposed' (2-d+), 'strided' (step 2 on the last dim)."""
    if kind == "contig":
        return v, t
    if kind == "transposed":
        return v.transpose(0, -1), t.transpose(0, -1)
    if kind == "strided":
        return v[..., ::2], t[..., ::2]
    raise ValueError(kind)


def to_np(x):
    if isinstance(x, torch.Tensor):
        if x.dtype == torch.bfloat16:
            x = x.float()
        return x.numpy()
    if x.dtype is vt.bfloat16:
        x = x.float()
    return x.numpy()


def assert_same(v, t, rtol=None, atol=None, check_dtype=True):
    """vibetensor result `v` equals torch result `t` (shape, dtype, values within tolerance)."""
    if isinstance(t, (tuple, list)):
        assert isinstance(v, (tuple, list)) and len(v) == len(t), (type(v), len(v), len(t))
        for a, b in zip(v, t):
            assert_same(a, b, rtol, atol, check_dtype)
        return
    if not isinstance(t, torch.Tensor):
        assert not isinstance(v, vt.Tensor)
        if isinstance(t, float):
            np.testing.assert_allclose(v, t, rtol=rtol or 1e-6, atol=atol or 1e-7)
        else:
            assert v == t
        return
    assert isinstance(v, vt.Tensor), type(v)
    assert tuple(v.shape) == tuple(t.shape), f"shape {tuple(v.shape)} != torch {tuple(t.shape)}"
    tname = str(t.dtype).replace("torch.", "")
    if check_dtype:
        assert v.dtype.name == tname, f"dtype {v.dtype.name} != torch {tname}"
    a, b = to_np(v).astype(np.float64), to_np(t).astype(np.float64)
    r, at = TOL.get(tname, (0.0, 0.0))
    r = r if rtol is None else rtol
    at = at if atol is None else atol
    np.testing.assert_allclose(a, b, rtol=r, atol=at, equal_nan=True)
