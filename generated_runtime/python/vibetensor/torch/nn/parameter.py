"""nn.Parameter. vt.Tensor is the native class (no Python subclass), so a Parameter is a leaf tensor
marked with ``_is_param``; ``isinstance(t, nn.Parameter)`` checks that mark."""
from .._tensor import Tensor


class _ParameterMeta(type):
    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and getattr(obj, "_is_param", False)


class Parameter(metaclass=_ParameterMeta):
    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            from .. import empty
            data = empty(0)
        t = data.detach()
        t.requires_grad_(requires_grad)
        t._is_param = True
        return t


class _BufferMeta(type):
    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and getattr(obj, "_is_buffer", False)


class Buffer(metaclass=_BufferMeta):
    def __new__(cls, data=None, *, persistent=True):
        t = data.detach()
        t._is_buffer = True
        t._persistent = persistent
        return t
