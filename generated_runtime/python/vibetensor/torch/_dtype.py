"""dtype objects, torch-style aliases, finfo/iinfo and dtype helpers.

The dtype objects are the native ``_C.dtype`` singletons (one per ScalarType), so ``is`` and ``==``
work as in torch. Type promotion itself is done in C++ (TensorIterator, Note [Type promotion]);
``promote_types`` and ``result_type`` expose it.
"""
import builtins

import numpy as np

from .. import _C

dtype = _C.dtype
bool = _C.bool  # noqa: A001 (shadows builtins on purpose, like torch.bool)
uint8 = _C.uint8
int8 = _C.int8
int16 = _C.int16
int32 = _C.int32
int64 = _C.int64
float16 = _C.float16
bfloat16 = _C.bfloat16
float32 = _C.float32
float64 = _C.float64

# torch's aliases
short = int16
int = int32  # noqa: A001
long = int64
half = float16
float = float32  # noqa: A001
double = float64

ALL_DTYPES = (bool, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64)
_BY_NAME = {d.name: d for d in ALL_DTYPES}
_BY_NAME.update({"short": int16, "int": int32, "long": int64, "half": float16, "float": float32,
                 "double": float64})

_NP_TO_DTYPE = {
    np.dtype(np.bool_): bool, np.dtype(np.uint8): uint8, np.dtype(np.int8): int8,
    np.dtype(np.int16): int16, np.dtype(np.int32): int32, np.dtype(np.int64): int64,
    np.dtype(np.float16): float16, np.dtype(np.float32): float32, np.dtype(np.float64): float64,
}
_DTYPE_TO_NP = {v.name: k for k, v in _NP_TO_DTYPE.items()}

_default_dtype = float32


def to_dtype(d):
    """Normalises a dtype-like (dtype object, name, Python type, numpy dtype) to a dtype object."""
    if isinstance(d, dtype):
        return d
    if d is builtins.float:
        return float64
    if d is builtins.int:
        return int64
    if d is builtins.bool:
        return bool
    if isinstance(d, str):
        name = d[len("torch."):] if d.startswith("torch.") else d
        if name in _BY_NAME:
            return _BY_NAME[name]
        raise TypeError(f"invalid dtype name {d!r}")
    if hasattr(d, "name") and type(d).__name__ == "dtype" and getattr(d, "name", None) in _BY_NAME:
        return _BY_NAME[d.name]  # e.g. a torch.dtype
    try:
        return _NP_TO_DTYPE[np.dtype(d)]
    except (TypeError, KeyError):
        raise TypeError(f"expected a dtype, got {d!r}") from None


def numpy_dtype(d):
    """The numpy dtype of a vibetensor dtype (bfloat16 has none: TypeError)."""
    try:
        return _DTYPE_TO_NP[d.name]
    except KeyError:
        raise TypeError(f"Got unsupported ScalarType {d.name}") from None


def from_numpy_dtype(npd):
    try:
        return _NP_TO_DTYPE[np.dtype(npd)]
    except KeyError:
        raise TypeError(f"can't convert np.ndarray of type {np.dtype(npd)}. The only supported types are: "
                        "float64, float32, float16, int64, int32, int16, int8, uint8, and bool.") from None


def get_default_dtype():
    return _default_dtype


def set_default_dtype(d):
    d = to_dtype(d)
    if d is not float32:
        raise NotImplementedError("vibetensor: set_default_dtype supports only float32 (the native default)")


def promote_types(a, b):
    return _C.promote_types(to_dtype(a), to_dtype(b))


def is_floating_point(t):
    return t.dtype.is_floating_point


def is_complex(t):
    return False


class finfo:
    """Machine limits of a floating dtype (torch.finfo)."""

    _TABLE = {
        "float16": (np.finfo(np.float16), 16),
        "float32": (np.finfo(np.float32), 32),
        "float64": (np.finfo(np.float64), 64),
    }

    def __init__(self, type=None):  # noqa: A002
        d = float32 if type is None else to_dtype(type)
        if not d.is_floating_point:
            raise TypeError(f"torch.finfo() requires a floating point input type, got {d.name}")
        self.dtype = d.name
        if d is bfloat16:
            self.bits, self.eps, self.max, self.min = 16, 2.0 ** -7, 3.3895313892515355e38, -3.3895313892515355e38
            self.tiny = self.smallest_normal = 1.1754943508222875e-38
            self.resolution = 0.01
        else:
            fi, bits = self._TABLE[d.name]
            self.bits, self.eps, self.max, self.min = bits, builtins.float(fi.eps), builtins.float(fi.max), builtins.float(fi.min)
            self.tiny = self.smallest_normal = builtins.float(fi.tiny)
            self.resolution = builtins.float(fi.resolution)

    def __repr__(self):
        return f"finfo(resolution={self.resolution}, min={self.min}, max={self.max}, eps={self.eps}, dtype={self.dtype})"


class iinfo:
    """Limits of an integer dtype (torch.iinfo)."""

    def __init__(self, type):  # noqa: A002
        d = to_dtype(type)
        if d.is_floating_point:
            raise TypeError(f"torch.iinfo() requires an integer input type, got {d.name}")
        self.dtype = d.name
        if d is bool:
            self.bits, self.min, self.max = 8, 0, 1
        else:
            ii = np.iinfo(numpy_dtype(d))
            self.bits, self.min, self.max = ii.bits, builtins.int(ii.min), builtins.int(ii.max)

    def __repr__(self):
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"
