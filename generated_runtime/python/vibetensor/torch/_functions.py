"""Top-level torch functions whose Python signature differs from the op schema (overloads, varargs,
aliases). Everything else at the top level is generated from the op table (see __init__.py)."""
import builtins
import numbers

from . import _tensor as _T
from ._ops import call, write_out
from ._tensor import Tensor


def max(input, dim=None, keepdim=False, *, out=None):  # noqa: A001
    return _T._max(input, dim, keepdim)


def min(input, dim=None, keepdim=False, *, out=None):  # noqa: A001
    return _T._min(input, dim, keepdim)


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None, out=None):
    return write_out("var", out, _T._var(input, dim, unbiased, keepdim, correction=correction))


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None, out=None):
    return write_out("std", out, _T._std(input, dim, unbiased, keepdim, correction=correction))


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    c = _T._correction(unbiased, correction)
    return call("var", input, dim, correction=c, keepdim=keepdim), call("mean", input, dim, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    c = _T._correction(unbiased, correction)
    return call("std", input, dim, correction=c, keepdim=keepdim), call("mean", input, dim, keepdim)


def norm(input, p="fro", dim=None, keepdim=False, out=None, dtype=None):
    return write_out("norm", out, _T._norm(input, p, dim, keepdim, dtype))


def amax(input, dim=(), keepdim=False, *, out=None):
    return write_out("amax", out, _T._amax(input, dim, keepdim))


def amin(input, dim=(), keepdim=False, *, out=None):
    return write_out("amin", out, _T._amin(input, dim, keepdim))


def logsumexp(input, dim, keepdim=False, *, out=None):
    return write_out("logsumexp", out, _T._logsumexp(input, dim, keepdim))


def all(input, dim=None, keepdim=False, *, out=None):  # noqa: A001
    return call("all", input, dim, keepdim, out=out)


def any(input, dim=None, keepdim=False, *, out=None):  # noqa: A001
    return call("any", input, dim, keepdim, out=out)


def softmax(input, dim, dtype=None, *, out=None):
    return call("softmax", input, dim, dtype, out=out)


def log_softmax(input, dim, dtype=None, *, out=None):
    return call("log_softmax", input, dim, dtype, out=out)


def where(condition, input=None, other=None, *, out=None):
    if input is None and other is None:
        return _T._nonzero(condition, as_tuple=True)
    return call("where", condition, input, other, out=out)


def cat(tensors, dim=0, *, out=None):
    return write_out("cat", out, call("cat", list(tensors), dim))


def stack(tensors, dim=0, *, out=None):
    return write_out("stack", out, call("stack", list(tensors), dim))


def hstack(tensors):
    tensors = list(tensors)
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    return cat([t.unsqueeze(0) if t.ndim == 1 else t for t in tensors], 0)


def split(tensor, split_size_or_sections, dim=0):
    return _T._split(tensor, split_size_or_sections, dim)


def reshape(input, shape):
    return call("reshape", input, list(shape))


def permute(input, dims):
    return call("permute", input, list(dims))


def squeeze(input, dim=None):
    return call("squeeze", input, dim)


def flip(input, dims):
    return call("flip", input, [dims] if isinstance(dims, numbers.Integral) else list(dims))


def tile(input, dims):
    return _T._tile(input, dims)


def movedim(input, source, destination):
    return _T._movedim(input, source, destination)


def flatten(input, start_dim=0, end_dim=-1):
    return call("flatten", input, start_dim, end_dim)


def nonzero(input, *, out=None, as_tuple=False):
    return write_out("nonzero", out, _T._nonzero(input, as_tuple=as_tuple))


def argwhere(input):
    return call("nonzero", input)


def count_nonzero(input, dim=None):
    return _T._count_nonzero(input, dim)


def clamp_min(input, min):  # noqa: A002
    return call("clamp", input, min, None)


def clamp_max(input, max):  # noqa: A002
    return call("clamp", input, None, max)


def floor_divide(input, other, *, out=None):
    return call("div", input, other, rounding_mode="floor", out=out)


def true_divide(input, other, *, out=None):
    return call("div", input, other, out=out)


def numel(input):
    return input.numel()


def is_tensor(obj):
    return isinstance(obj, Tensor)


def is_nonzero(input):
    return bool(input)


def broadcast_shapes(*shapes):
    from ._size import Size
    out = []
    for s in shapes:
        s = [s] if isinstance(s, numbers.Integral) else list(s)
        n = builtins.max(len(out), len(s))
        a = [1] * (n - len(out)) + out
        b = [1] * (n - len(s)) + s
        r = []
        for x, y in zip(a, b):
            if x != y and x != 1 and y != 1:
                raise RuntimeError(f"Shape mismatch: objects cannot be broadcast to a single shape. "
                                   f"Mismatch is between {a} and {b}.")
            r.append(y if x == 1 else x)
        out = r
    return Size(out)


def broadcast_tensors(*tensors):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tensors[0]
    shape = broadcast_shapes(*[t._sizes() for t in tensors])
    return tuple(call("expand", t, list(shape)) for t in tensors)


def broadcast_to(input, size):
    return call("expand", input, list(size))


def chunk(input, chunks, dim=0):
    return call("chunk", input, chunks, dim)


def unbind(input, dim=0):
    return call("unbind", input, dim)


def transpose(input, dim0, dim1):
    return call("transpose", input, dim0, dim1)


def einsum(*args):
    raise NotImplementedError("vibetensor: einsum is not implemented")


def sort(input, dim=-1, descending=False, *, stable=False, out=None):
    return _T._sort(input, dim, descending, stable=stable, out=out)


def argsort(input, dim=-1, descending=False, *, stable=False):
    return _T._argsort(input, dim, descending, stable=stable)


def msort(input, *, out=None):
    return write_out("sort", out, _T._msort(input))


def topk(input, k, dim=-1, largest=True, sorted=True, *, out=None):  # noqa: A002
    return _T._topk(input, k, dim, largest, sorted, out=out)


def kthvalue(input, k, dim=-1, keepdim=False, *, out=None):
    return _T._kthvalue(input, k, dim, keepdim, out=out)


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(isclose(input, other, rtol, atol, equal_nan).all())


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    diff = call("abs", call("sub", input, other))
    tol = call("add", call("mul", call("abs", other), rtol), atol)
    close = call("logical_or", call("eq", input, other), call("le", diff, tol))
    if equal_nan:
        close = call("logical_or", close, call("logical_and", call("isnan", input), call("isnan", other)))
    return close


def equal(input, other):
    return input.shape == other.shape and bool(call("all", call("eq", input, other)))


def result_type(tensor1, tensor2):
    from .. import _C
    a = tensor1 if isinstance(tensor1, Tensor) else _C.scalar_tensor(tensor1, None)
    b = tensor2 if isinstance(tensor2, Tensor) else _C.scalar_tensor(tensor2, None)
    return _C.result_type_of([a, b])


def can_cast(from_, to):
    return not (from_.is_floating_point and not to.is_floating_point) and not (
        from_.name != "bool" and to.name == "bool")
