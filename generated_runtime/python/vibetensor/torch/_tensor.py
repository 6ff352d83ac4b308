"""Tensor methods, operators, indexing, repr and conversions, attached to the native ``_C.Tensor``.

Design (see the comment at the top of torch/__init__.py): the Python-visible Tensor class IS the
nanobind class ``_C.Tensor`` (bound with ``nb::dynamic_attr`` so subsystems such as autograd may keep
per-tensor Python state); this module attaches torch's methods to it. Every op result coming from C++
therefore already has the full torch-like surface, with no wrapping cost per call.
"""
import builtins
import collections
import math
import numbers

import numpy as np

from .. import _C
from . import _dtype as D
from ._ops import OPS, call, inplace_op_names, make_inplace_method, make_method
from ._size import Size

Tensor = _C.Tensor
device = _C.device

_pyfloat, _pyint, _pybool = builtins.float, builtins.int, builtins.bool

# Hooks for optional subsystems -------------------------------------------------------------------
# device_copy_hook(tensor, device) -> tensor on `device`; installed by vibetensor.torch.cuda.
device_copy_hook = None
# Functions tensor -> str|None adding ", <suffix>" to the repr (e.g. autograd's grad_fn=...).
repr_suffix_hooks = []

ReturnMax = collections.namedtuple("max", ["values", "indices"])
ReturnMin = collections.namedtuple("min", ["values", "indices"])
ReturnSort = collections.namedtuple("sort", ["values", "indices"])
ReturnTopk = collections.namedtuple("topk", ["values", "indices"])
ReturnKthvalue = collections.namedtuple("kthvalue", ["values", "indices"])


def _shape_args(args, what="size"):
    """(2, 3) / ((2, 3),) / ([2, 3],) / (Size,) -> [2, 3]."""
    if len(args) == 1:
        a = args[0]
        if type(a) is int:  # fast path (factories in a loop): no ABC isinstance, no comprehension
            return [a]
        if not isinstance(a, numbers.Integral) and not isinstance(a, Tensor):
            args = a
    return [s if type(s) is int else _index_int(s, what) for s in args]


def _index_int(v, what):
    if type(v) is int:  # the common case first: isinstance against numbers.Integral (an ABC) costs ~0.4 us
        return v
    if isinstance(v, Tensor):
        return _pyint(v.item())
    if isinstance(v, numbers.Integral) and not isinstance(v, _pybool):
        return _pyint(v)
    try:
        return v.__index__()
    except AttributeError:
        raise TypeError(f"{what} must be a sequence of ints, but got an element of type {type(v).__name__}") from None


def _is_number(v):
    return isinstance(v, (numbers.Number, np.generic)) and not isinstance(v, Tensor)


# ---- geometry --------------------------------------------------------------------------------------

def _size(self, dim=None):
    if dim is None:
        return Size(self._sizes())
    nd = self.ndim
    if not -builtins.max(nd, 1) <= dim < builtins.max(nd, 1):
        raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {dim})")
    return self._sizes()[dim]


def _stride(self, dim=None):
    if dim is None:
        return tuple(self._strides())
    nd = self.ndim
    if not -builtins.max(nd, 1) <= dim < builtins.max(nd, 1):
        raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {dim})")
    return self._strides()[dim]


Tensor.shape = property(lambda self: Size(self._sizes()))
Tensor.size = _size
Tensor.stride = _stride
Tensor.nelement = lambda self: self.numel()
Tensor.is_floating_point = lambda self: self.dtype.is_floating_point
Tensor.is_complex = lambda self: False
Tensor.is_cpu = property(lambda self: self.device.type == "cpu")
Tensor.itemsize = property(lambda self: self.element_size())
Tensor.nbytes = property(lambda self: self.numel() * self.element_size())
Tensor.layout = property(lambda self: "torch.strided")
Tensor.get_device = lambda self: -1 if self.device.type == "cpu" else (self.device.index or 0)
Tensor.__hash__ = object.__hash__


# ---- generated methods: every op whose first argument is the tensor --------------------------------
for _name, _info in OPS.items():
    if _info.is_method and not _name.startswith("_"):
        setattr(Tensor, _name, make_method(_name))
for _name in inplace_op_names():
    setattr(Tensor, _name + "_", make_inplace_method(_name))
del _name, _info

# Factories that are ops but not methods
for _n in ("empty", "zeros", "ones", "full", "arange", "linspace", "eye", "rand", "randn", "randint", "randperm",
           "index", "one_hot", "embedding", "cat", "stack", "where", "to_dtype", "max_dim", "min_dim", "split_with_sizes",
           "view_dtype"):
    if _n in Tensor.__dict__:
        delattr(Tensor, _n)


# ---- views and shape methods with torch's varargs signatures -------------------------------------

def _view(self, *shape, dtype=None):
    if dtype is None and len(shape) == 1 and isinstance(shape[0], D.dtype):
        dtype, shape = shape[0], ()
    if dtype is not None:  # view(dtype): the same bytes as another dtype; never differentiable (as in torch)
        if shape:
            raise TypeError("view() received an invalid combination of arguments: a dtype and a size")
        return call("view_dtype", self.detach() if self.requires_grad else self, dtype)
    return call("view", self, _shape_args(shape))


def _reshape(self, *shape):
    return call("reshape", self, _shape_args(shape))


def _permute(self, *dims):
    return call("permute", self, _shape_args(dims, "dims"))


def _expand(self, *sizes):
    return call("expand", self, _shape_args(sizes))


def _repeat(self, *sizes):
    return call("repeat", self, _shape_args(sizes, "repeats"))


def _tile(self, *dims):
    dims = _shape_args(dims, "dims")
    if len(dims) < self.ndim:
        dims = [1] * (self.ndim - len(dims)) + dims
    return call("repeat", self, dims)


def _flip(self, *dims):
    return call("flip", self, _shape_args(dims, "dims"))


def _squeeze(self, dim=None):
    return call("squeeze", self, dim)


def _split(self, split_size_or_sections, dim=0):
    if isinstance(split_size_or_sections, (list, tuple)):
        return call("split_with_sizes", self, list(split_size_or_sections), dim)
    return call("split", self, split_size_or_sections, dim)


def _transpose(self, dim0, dim1):
    return call("transpose", self, dim0, dim1)


def _flatten(self, start_dim=0, end_dim=-1):
    return call("flatten", self, start_dim, end_dim)


def _movedim(self, source, destination):
    src = [source] if isinstance(source, numbers.Integral) else list(source)
    dst = [destination] if isinstance(destination, numbers.Integral) else list(destination)
    return call("movedim", self, src, dst)


def _T(self):
    if self.ndim <= 2:
        return call("permute", self, list(range(self.ndim))[::-1])
    return call("permute", self, list(range(self.ndim))[::-1])


def _mT(self):
    if self.ndim < 2:
        raise RuntimeError(f"tensor.mT is only supported on matrices or batches of matrices. Got {self.ndim}-D tensor.")
    return call("transpose", self, -2, -1)


Tensor.view = _view
Tensor.reshape = _reshape
Tensor.permute = _permute
Tensor.expand = _expand
Tensor.repeat = _repeat
Tensor.tile = _tile
Tensor.flip = _flip
Tensor.squeeze = _squeeze
Tensor.split = _split
Tensor.transpose = _transpose
Tensor.swapaxes = _transpose
Tensor.swapdims = _transpose
Tensor.flatten = _flatten
Tensor.movedim = _movedim
Tensor.moveaxis = _movedim
Tensor.T = property(_T)
Tensor.mT = property(_mT)
Tensor.view_as = lambda self, other: call("view", self, other._sizes())
Tensor.reshape_as = lambda self, other: call("reshape", self, other._sizes())
Tensor.expand_as = lambda self, other: call("expand", self, other._sizes())
Tensor.unsqueeze = lambda self, dim: call("unsqueeze", self, dim)
Tensor.contiguous = lambda self, memory_format=None: call("contiguous", self)
Tensor.clone = lambda self, memory_format=None: call("clone", self)
Tensor.unflatten = lambda self, dim, sizes: call("unflatten", self, dim, list(sizes))


def _detach(self):
    """An alias of self sharing storage (autograd, when present, replaces this)."""
    return call("as_strided", self, self._sizes(), self._strides(), self.storage_offset())


Tensor.detach = _detach
Tensor.detach_ = lambda self: self
if not hasattr(Tensor, "requires_grad"):
    Tensor.requires_grad = property(lambda self: False)
    Tensor.grad = property(lambda self: None)
    Tensor.grad_fn = property(lambda self: None)
    Tensor.is_leaf = property(lambda self: True)


def _requires_grad_(self, requires_grad=True):
    if requires_grad:
        raise NotImplementedError("vibetensor: requires_grad needs the autograd subsystem, which is not installed")
    return self


Tensor.requires_grad_ = _requires_grad_


# ---- reductions with torch's overloads ---------------------------------------------------------

def _max(self, dim=None, keepdim=False, *, out=None):
    if isinstance(dim, Tensor):
        return call("maximum", self, dim)
    if dim is None:
        if self.numel() == 0:
            raise RuntimeError("max(): Expected reduction dim to be specified for input.numel() == 0. "
                               "Specify the reduction dim with the 'dim' argument.")
        return call("amax", self, [])
    v, i = call("max_dim", self, dim, keepdim)
    return ReturnMax(v, i)


def _min(self, dim=None, keepdim=False, *, out=None):
    if isinstance(dim, Tensor):
        return call("minimum", self, dim)
    if dim is None:
        if self.numel() == 0:
            raise RuntimeError("min(): Expected reduction dim to be specified for input.numel() == 0. "
                               "Specify the reduction dim with the 'dim' argument.")
        return call("amin", self, [])
    v, i = call("min_dim", self, dim, keepdim)
    return ReturnMin(v, i)


def _correction(unbiased, correction):
    if correction is not None:
        return correction
    if unbiased is None:
        return 1
    return 1 if unbiased else 0


def _var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if isinstance(dim, _pybool):  # var(unbiased) overload
        dim, unbiased = None, dim
    return call("var", self, dim, correction=_correction(unbiased, correction), keepdim=keepdim)


def _std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if isinstance(dim, _pybool):
        dim, unbiased = None, dim
    return call("std", self, dim, correction=_correction(unbiased, correction), keepdim=keepdim)


def _norm(self, p="fro", dim=None, keepdim=False, dtype=None):
    if p == "fro" or p is None:
        p = 2
    elif isinstance(p, str):
        raise NotImplementedError(f"vibetensor: norm with p={p!r} is not supported")
    if isinstance(dim, numbers.Integral):
        dim = [dim]
    return call("norm", self, p, dim, keepdim, dtype=dtype)


def _amax(self, dim=(), keepdim=False):
    return call("amax", self, [dim] if isinstance(dim, numbers.Integral) else list(dim), keepdim)


def _amin(self, dim=(), keepdim=False):
    return call("amin", self, [dim] if isinstance(dim, numbers.Integral) else list(dim), keepdim)


def _logsumexp(self, dim, keepdim=False):
    return call("logsumexp", self, [dim] if isinstance(dim, numbers.Integral) else list(dim), keepdim)


def _softmax(self, dim, dtype=None):
    return call("softmax", self, dim, dtype)


def _log_softmax(self, dim, dtype=None):
    return call("log_softmax", self, dim, dtype)


def _all(self, dim=None, keepdim=False):
    return call("all", self, dim, keepdim)


def _any(self, dim=None, keepdim=False):
    return call("any", self, dim, keepdim)


# ---- sorting and selection: (values, indices) named tuples; out=(values, indices) ------------------
# The native ops have no backward formula. When the input requires grad, values are re-read from the input
# with gather at the returned indices, so they get gather's backward (the gradient is scattered into the
# selected positions: PyTorch's sort/topk/kthvalue backward).

def _select_grad(self, dim, values, indices):
    if self.ndim == 0:
        return call("clone", self) if values.numel() else values
    return call("gather", self, dim, indices)


def _pair_out(name, out, values, indices, cls):
    if out is None:
        return cls(values, indices)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(f"{name}(): argument 'out' must be a tuple of 2 Tensors")
    _C._write_out(name, out[0], values)
    _C._write_out(name, out[1], indices)
    return cls(out[0], out[1])


def _sort(self, dim=-1, descending=False, *, stable=False, out=None):
    if self.requires_grad:
        v, i = call("sort", self.detach(), dim, descending, stable=_pybool(stable))
        v = _select_grad(self, dim, v, i)
    else:
        v, i = call("sort", self, dim, descending, stable=_pybool(stable))
    return _pair_out("sort", out, v, i, ReturnSort)


def _argsort(self, dim=-1, descending=False, *, stable=False):
    return call("argsort", self, dim, descending, stable=_pybool(stable))


def _msort(self):
    return _sort(self, 0).values


def _topk(self, k, dim=-1, largest=True, sorted=True, *, out=None):  # noqa: A002
    if self.requires_grad:
        v, i = call("topk", self.detach(), k, dim, largest, sorted)
        v = _select_grad(self, dim, v, i)
    else:
        v, i = call("topk", self, k, dim, largest, sorted)
    return _pair_out("topk", out, v, i, ReturnTopk)


def _kthvalue(self, k, dim=-1, keepdim=False, *, out=None):
    if self.requires_grad:
        v, i = call("kthvalue", self.detach(), k, dim, True)
        v = _select_grad(self, dim, v, i)
        if not keepdim and self.ndim > 0:
            v, i = call("squeeze", v, [dim]), call("squeeze", i, [dim])
    else:
        v, i = call("kthvalue", self, k, dim, keepdim)
    return _pair_out("kthvalue", out, v, i, ReturnKthvalue)


Tensor.sort = _sort
Tensor.argsort = _argsort
Tensor.msort = _msort
Tensor.topk = _topk
Tensor.kthvalue = _kthvalue
Tensor.max = _max
Tensor.min = _min
Tensor.var = _var
Tensor.std = _std
Tensor.norm = _norm
Tensor.amax = _amax
Tensor.amin = _amin
Tensor.logsumexp = _logsumexp
Tensor.softmax = _softmax
Tensor.log_softmax = _log_softmax
Tensor.all = _all
Tensor.any = _any
Tensor.clip = Tensor.clamp
Tensor.clip_ = Tensor.clamp_
Tensor.absolute = Tensor.abs
Tensor.negative = Tensor.neg
Tensor.multiply = Tensor.mul
Tensor.subtract = Tensor.sub
Tensor.divide = Tensor.div
Tensor.true_divide = Tensor.div
Tensor.greater = Tensor.gt
Tensor.greater_equal = Tensor.ge
Tensor.less = Tensor.lt
Tensor.less_equal = Tensor.le
Tensor.not_equal = Tensor.ne
Tensor.sigmoid_ = Tensor.sigmoid_


def _clamp_min(self, min):  # noqa: A002
    return call("clamp", self, min, None)


def _clamp_max(self, max):  # noqa: A002
    return call("clamp", self, None, max)


Tensor.clamp_min = _clamp_min
Tensor.clamp_max = _clamp_max
Tensor.clamp_min_ = lambda self, min: (call("clamp", self, min, None, out=self), self)[1]  # noqa: A002
Tensor.clamp_max_ = lambda self, max: (call("clamp", self, None, max, out=self), self)[1]  # noqa: A002
Tensor.floor_divide = lambda self, other: call("div", self, other, rounding_mode="floor")
Tensor.floor_divide_ = lambda self, other: (call("div", self, other, rounding_mode="floor", out=self), self)[1]


def _nonzero(self, *, as_tuple=False):
    nz = call("nonzero", self)
    if as_tuple:
        if self.ndim == 0:
            return (call("nonzero", call("reshape", self, [1])).reshape(-1),)
        return tuple(nz.select(1, d) for d in range(self.ndim))
    return nz


Tensor.nonzero = _nonzero
Tensor.argwhere = lambda self: call("nonzero", self)


def _count_nonzero(self, dim=None):
    return call("sum", call("ne", self, 0), dim)


Tensor.count_nonzero = _count_nonzero


# ---- in-place forms of ops without out= (computed, then copied back: copy_ bumps the version) ------

def _copy_back(name):
    def method(self, *args, **kwargs):
        r = call(name, self, *args, **kwargs)
        call("copy_", self, r)
        return self
    method.__name__ = name + "_"
    return method


for _n in ("masked_fill", "scatter", "scatter_add", "index_add", "tril", "triu"):
    setattr(Tensor, _n + "_", _copy_back(_n))


def _index_put_(self, indices, values, accumulate=False):
    idx = list(indices)
    if not isinstance(values, Tensor):
        values = call("scalar_tensor_like", self, values) if False else _scalar_like(values, self)
    call("index_put_", self, idx, list(range(len(idx))), values, accumulate)
    return self


Tensor.index_put_ = _index_put_
Tensor.index_put = lambda self, indices, values, accumulate=False: _index_put_(self.clone(), indices, values,
                                                                            accumulate)


def _scalar_like(v, like):
    t = _C.scalar_tensor(v, None)
    return call("to_dtype", t, like.dtype, True)


# fill/zero/random in-place forms are ops already (fill_, zero_, normal_, uniform_).

def _bernoulli_(self, p=0.5, *, generator=None):
    if isinstance(p, Tensor):
        r = call("bernoulli", call("expand", p, self._sizes()), generator=generator)
    else:
        r = call("bernoulli", self, _pyfloat(p), generator=generator)
    call("copy_", self, r)
    return self


def _bernoulli(self, p=None, *, generator=None):
    return call("bernoulli", self, p, generator=generator)


Tensor.bernoulli = _bernoulli
Tensor.bernoulli_ = _bernoulli_


def _random_(self, low=0, high=None, *, generator=None):
    if high is None:
        low, high = 0, low if low else (2 ** 24 if self.dtype.is_floating_point else D.iinfo(self.dtype).max)
    r = call("randint", low, high, self._sizes(), generator=generator, dtype=D.int64)
    call("copy_", self, r)
    return self


def _exponential_(self, lambd=1.0, *, generator=None):
    u = call("rand", self._sizes(), generator=generator, dtype=D.float64)
    call("copy_", self, call("div", call("neg", call("log1p", call("neg", u))), lambd))
    return self


Tensor.random_ = _random_
Tensor.exponential_ = _exponential_


# ---- conversions -------------------------------------------------------------------------------

def _parse_to(args, kwargs):
    dev, dt = kwargs.pop("device", None), kwargs.pop("dtype", None)
    copy = kwargs.pop("copy", False)
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"to() got an unexpected keyword argument '{next(iter(kwargs))}'")
    for a in args:
        if isinstance(a, Tensor):
            dev, dt = a.device, a.dtype
        elif isinstance(a, D.dtype):
            dt = a
        elif isinstance(a, (str, device, int)) and not isinstance(a, _pybool):
            dev = a
        elif isinstance(a, _pybool):
            pass  # non_blocking / copy positional
        elif a is None:
            pass
        else:
            dt = D.to_dtype(a)
    if dev is not None:
        dev = dev if isinstance(dev, device) else (device("cuda", dev) if isinstance(dev, int) else device(str(dev)))
    return dev, (D.to_dtype(dt) if dt is not None else None), copy


def _to(self, *args, **kwargs):
    dev, dt, copy = _parse_to(args, kwargs)
    t = self
    if dev is not None and dev != t.device and not (dev.type == t.device.type and dev.index is None):
        if device_copy_hook is None:
            raise RuntimeError(f"vibetensor: cannot move a tensor to {dev}: this build has no CUDA support "
                               "(the cuda subsystem is not installed)")
        t = device_copy_hook(t, dev)
        copy = False
    if dt is not None and dt is not t.dtype:
        return call("to_dtype", t, dt, False)
    if copy and t is self:
        return call("clone", t)
    return t


Tensor.to = _to
Tensor.cpu = lambda self: _to(self, "cpu")


def _cuda(self, device=None, non_blocking=False):
    return _to(self, "cuda" if device is None else (f"cuda:{device}" if isinstance(device, int) else device))


Tensor.cuda = _cuda


def _cast(dt):
    def method(self, memory_format=None):
        return call("to_dtype", self, dt, False)
    return method


for _n, _d in (("float", D.float32), ("double", D.float64), ("half", D.float16), ("bfloat16", D.bfloat16),
               ("int", D.int32), ("long", D.int64), ("short", D.int16), ("char", D.int8), ("byte", D.uint8),
               ("bool", D.bool)):
    setattr(Tensor, _n, _cast(_d))

_TYPE_NAMES = {D.float32: "torch.FloatTensor", D.float64: "torch.DoubleTensor", D.float16: "torch.HalfTensor",
               D.bfloat16: "torch.BFloat16Tensor", D.int8: "torch.CharTensor", D.uint8: "torch.ByteTensor",
               D.int16: "torch.ShortTensor", D.int32: "torch.IntTensor", D.int64: "torch.LongTensor",
               D.bool: "torch.BoolTensor"}
_TYPE_BY_NAME = {v: k for k, v in _TYPE_NAMES.items()}


def _type(self, dtype=None, non_blocking=False, **kwargs):
    if dtype is None:
        return _TYPE_NAMES[self.dtype]
    if isinstance(dtype, str) and dtype in _TYPE_BY_NAME:
        dtype = _TYPE_BY_NAME[dtype]
    return call("to_dtype", self, D.to_dtype(dtype), False)


Tensor.type = _type
Tensor.type_as = lambda self, other: call("to_dtype", self, other.dtype, False)


def _numpy(self, *, force=False):
    if getattr(self, "requires_grad", False) and not force:
        raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
    if self.device.type != "cpu":
        if not force:
            raise TypeError(f"can't convert {self.device} device type tensor to numpy. Use Tensor.cpu() to copy the "
                            "tensor to host memory first.")
        return _numpy(self.cpu(), force=True)
    return self._numpy_view()


def _array(self, dtype=None, copy=None):
    t = self
    if t.device.type != "cpu":
        t = t.cpu()
    if t.dtype is D.bfloat16:
        t = call("to_dtype", t, D.float32, False)
    a = t._numpy_view()
    if dtype is not None:
        a = a.astype(dtype, copy=False)
    return a


def _host_values(self):
    """A NumPy array with the values (bfloat16 widened to float32)."""
    t = self
    if t.device.type != "cpu":
        t = t.cpu()
    if t.dtype is D.bfloat16:
        t = call("to_dtype", t, D.float32, False)
    return t._numpy_view()


def _tolist(self):
    return _host_values(self).tolist()


def _item(self):
    return call("item", self)


def _bool(self):
    n = self.numel()
    if n != 1:
        if n == 0:
            raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    return _pybool(call("item", self))


def _float(self):
    if self.numel() != 1:
        raise TypeError("only one element tensors can be converted to Python scalars")
    return _pyfloat(call("item", self))


def _int(self):
    if self.numel() != 1:
        raise TypeError("only one element tensors can be converted to Python scalars")
    return _pyint(call("item", self))


def _index(self):
    if self.numel() != 1 or self.dtype.is_floating_point:
        raise TypeError("only integer tensors of a single element can be converted to an index")
    return _pyint(call("item", self))


def _len(self):
    if self.ndim == 0:
        raise TypeError("len() of a 0-d tensor")
    return self._sizes()[0]


def _iter(self):
    if self.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return iter(call("unbind", self, 0))


Tensor.numpy = _numpy
Tensor.__array__ = _array
Tensor.__array_priority__ = 1000
Tensor.tolist = _tolist
Tensor.item = _item
Tensor.__bool__ = _bool
Tensor.__float__ = _float
Tensor.__int__ = _int
Tensor.__index__ = _index
Tensor.__len__ = _len
Tensor.__iter__ = _iter
Tensor.__contains__ = lambda self, v: _pybool(call("any", call("eq", self, v)).item())
Tensor.__deepcopy__ = lambda self, memo: call("clone", self)
Tensor.__copy__ = lambda self: self


def _reduce_ex(self, proto):
    from . import _creation
    return (_creation._rebuild, (_host_values(self).copy(), self.dtype.name))


Tensor.__reduce_ex__ = _reduce_ex


def _format_spec(self, spec):
    if self.ndim == 0:
        return self.item().__format__(spec)
    return object.__format__(repr(self), spec)


Tensor.__format__ = _format_spec


# ---- new_* factories -------------------------------------------------------------------------

def _new_factory(op):
    def method(self, *size, dtype=None, device=None, requires_grad=False, **kw):
        fill = kw.pop("fill_value", None)
        if op == "full":
            size, fill = size[0], size[1]
        sz = _shape_args(size) if op != "full" else _shape_args((size,))
        args = [sz] + ([fill] if op == "full" else [])
        t = call(op, *args, dtype=dtype or self.dtype, device=device or self.device)
        if requires_grad:
            t.requires_grad_(True)
        return t
    return method


Tensor.new_zeros = _new_factory("zeros")
Tensor.new_ones = _new_factory("ones")
Tensor.new_empty = _new_factory("empty")
Tensor.new_full = _new_factory("full")


def _new_tensor(self, data, dtype=None, device=None, requires_grad=False):
    from ._creation import tensor
    return tensor(data, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)


Tensor.new_tensor = _new_tensor


# ---- operators ---------------------------------------------------------------------------------

def _rsub(self, other):
    return call("sub", other, self)


def _rdiv(self, other):
    # s / x is x.reciprocal() * s, as torch's __rtruediv__: the same bits as torch (dividing s by x directly
    # differs by one unit in the last place in about a quarter of the elements) and the same autograd graph
    return call("mul", call("reciprocal", self), other)


def _rfloordiv(self, other):
    return call("div", other, self, rounding_mode="floor")


def _rpow(self, other):
    return call("pow", other, self)


def _rmod(self, other):
    return call("remainder", other, self)


def _rmatmul(self, other):
    return call("matmul", other, self)


def _binop(name, **kw):
    if kw:
        def f(self, other):
            if not isinstance(other, (Tensor, numbers.Number)):
                return NotImplemented
            return call(name, self, other, **kw)
    else:
        def f(self, other):
            if not isinstance(other, (Tensor, numbers.Number)):
                return NotImplemented
            return call(name, self, other)
    return f


def _ibinop(name, **kw):
    def f(self, other):
        call(name, self, other, out=self, **kw)
        return self
    return f


def _bitwise_or_logical(bitname):
    def f(self, other):
        if not isinstance(other, (Tensor, numbers.Number)):
            return NotImplemented
        return call(bitname, self, other)
    return f


Tensor.__add__ = _binop("add")
Tensor.__radd__ = _binop("add")
Tensor.__iadd__ = _ibinop("add")
Tensor.__sub__ = _binop("sub")
Tensor.__rsub__ = _rsub
Tensor.__isub__ = _ibinop("sub")
Tensor.__mul__ = _binop("mul")
Tensor.__rmul__ = _binop("mul")
Tensor.__imul__ = _ibinop("mul")
Tensor.__truediv__ = _binop("div")
Tensor.__rtruediv__ = _rdiv
Tensor.__itruediv__ = _ibinop("div")
Tensor.__floordiv__ = _binop("div", rounding_mode="floor")
Tensor.__rfloordiv__ = _rfloordiv
Tensor.__ifloordiv__ = _ibinop("div", rounding_mode="floor")
Tensor.__mod__ = _binop("remainder")
Tensor.__rmod__ = _rmod
Tensor.__imod__ = _ibinop("remainder")
Tensor.__pow__ = _binop("pow")
Tensor.__rpow__ = _rpow
Tensor.__ipow__ = _ibinop("pow")
Tensor.__matmul__ = lambda self, other: call("matmul", self, other)
Tensor.__rmatmul__ = _rmatmul
Tensor.__neg__ = lambda self: call("neg", self)
Tensor.__pos__ = lambda self: self
Tensor.__abs__ = lambda self: call("abs", self)
Tensor.__invert__ = lambda self: call("bitwise_not", self)
Tensor.__and__ = _bitwise_or_logical("bitwise_and")
Tensor.__rand__ = _bitwise_or_logical("bitwise_and")
Tensor.__iand__ = _ibinop("bitwise_and")
Tensor.__or__ = _bitwise_or_logical("bitwise_or")
Tensor.__ror__ = _bitwise_or_logical("bitwise_or")
Tensor.__ior__ = _ibinop("bitwise_or")
Tensor.__xor__ = _bitwise_or_logical("bitwise_xor")
Tensor.__rxor__ = _bitwise_or_logical("bitwise_xor")
Tensor.__ixor__ = _ibinop("bitwise_xor")
Tensor.__eq__ = _binop("eq")
Tensor.__ne__ = _binop("ne")
Tensor.__lt__ = _binop("lt")
Tensor.__le__ = _binop("le")
Tensor.__gt__ = _binop("gt")
Tensor.__ge__ = _binop("ge")
Tensor.__hash__ = object.__hash__


# ---- indexing ----------------------------------------------------------------------------------

def _to_index_tensor(v):
    from ._creation import tensor as _tensor_ctor
    if isinstance(v, np.ndarray):
        return _C.from_numpy(v.copy())
    return _tensor_ctor(v)


def _expand_index(self, index):
    """Applies basic indexing (ints, slices, None, Ellipsis) as views and collects advanced
    indices. Returns (view, [index tensors], [dims of view they index])."""
    if not isinstance(index, tuple):
        index = (index,)
    # normalise: lists/arrays -> tensors; count the dims each item consumes
    items = []
    consumed = 0
    has_ellipsis = False
    for it in index:
        if it is None:
            items.append(it)
        elif it is Ellipsis:
            if has_ellipsis:
                raise IndexError("an index can only have a single ellipsis ('...')")
            has_ellipsis = True
            items.append(it)
        elif isinstance(it, _pybool):
            raise NotImplementedError("vibetensor: indexing with a Python bool is not supported")
        elif isinstance(it, (numbers.Integral, np.integer)):
            items.append(_pyint(it))
            consumed += 1
        elif isinstance(it, slice):
            items.append(it)
            consumed += 1
        else:
            if not isinstance(it, Tensor):
                if isinstance(it, (list, tuple, np.ndarray)):
                    it = _to_index_tensor(it)
                else:
                    raise IndexError("only integers, slices (`:`), ellipsis (`...`), None and long or byte or bool "
                                     f"tensors are valid indices (got {type(it).__name__})")
            dt = it.dtype
            if dt is D.bool or dt is D.uint8:
                consumed += builtins.max(it.ndim, 1) if it.ndim else 0
            elif dt.is_floating_point:
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
            else:
                consumed += 1
            items.append(it)
    nd = self.ndim
    if consumed > nd:
        raise IndexError(f"too many indices for tensor of dimension {nd}")
    t = self
    d = 0
    adv_idx, adv_dims = [], []
    for it in items:
        if it is None:
            t = call("unsqueeze", t, d)
            d += 1
        elif it is Ellipsis:
            d += nd - consumed
        elif type(it) is _pyint:
            size = t._sizes()[d]
            if it < -size or it >= size:
                raise IndexError(f"index {it} is out of bounds for dimension {d} with size {size}")
            t = call("select", t, d, it)
        elif isinstance(it, slice):
            step = 1 if it.step is None else _pyint(it.step)
            if step <= 0:
                raise ValueError("step must be greater than zero")
            if not (it.start is None and it.stop is None and step == 1):
                start = None if it.start is None else _pyint(it.start)
                stop = None if it.stop is None else _pyint(it.stop)
                t = call("slice", t, d, start, stop, step)
            d += 1
        else:  # tensor
            if it.dtype is D.bool or it.dtype is D.uint8:
                if it.ndim == 0:
                    if not _pybool(it.item()):
                        raise NotImplementedError("vibetensor: indexing with a False 0-dim mask is not supported")
                    t = call("unsqueeze", t, d)
                    d += 1
                    continue
                sizes = t._sizes()
                for k, m in enumerate(it._sizes()):
                    if d + k >= len(sizes) or sizes[d + k] != m:
                        raise IndexError(f"The shape of the mask {list(it._sizes())} at index {k} does not match the "
                                         f"shape of the indexed tensor {list(sizes)} at index {d + k}")
                nz = call("nonzero", it)
                for k in range(it.ndim):
                    adv_idx.append(call("select", nz, 1, k))
                    adv_dims.append(d + k)
                d += it.ndim
            else:
                adv_idx.append(it)
                adv_dims.append(d)
                d += 1
    return t, adv_idx, adv_dims


def _getitem(self, index):
    # fast paths
    if type(index) is _pyint:
        if self.ndim == 0:
            raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python or "
                             "`tensor.item<T>()` in C++ to convert a 0-dim tensor to a number")
        size = self._sizes()[0]
        if index < -size or index >= size:
            raise IndexError(f"index {index} is out of bounds for dimension 0 with size {size}")
        return call("select", self, 0, index)
    t, adv, dims = _expand_index(self, index)
    if adv:
        return call("index", t, adv, dims)
    if t is self:  # x[...], x[:]: an alias (a view through ops autograd knows)
        if self.ndim == 0:
            return call("select", call("unsqueeze", self, 0), 0, 0)
        return call("slice", self, 0, None, None, 1)
    return t


def _setitem(self, index, value):
    t, adv, dims = _expand_index(self, index)
    if not isinstance(value, Tensor):
        if isinstance(value, (numbers.Number, np.generic)):
            if not adv:
                call("fill_", t, value)
                return
            value = _scalar_like(value, self)
        else:
            from ._creation import tensor as _tensor_ctor
            value = _tensor_ctor(value, dtype=self.dtype)
    if value.device != self.device:
        raise RuntimeError(f"__setitem__: value is on {value.device} but the indexed tensor is on {self.device}")
    if adv:
        call("index_put_", t, adv, dims, value, False)
    else:
        call("copy_", t, value)


Tensor.__getitem__ = _getitem
Tensor.__setitem__ = _setitem


# ---- repr --------------------------------------------------------------------------------------

_DEFAULT_REPR_DTYPES = (D.float32, D.int64, D.bool)
_EDGE = 3
_THRESHOLD = 1000


class _Formatter:
    def __init__(self, vals, is_float):
        self.is_float = is_float
        self.sci = False
        self.int_mode = True
        if is_float:
            finite = vals[np.isfinite(vals)] if vals.size else vals
            nz = np.abs(finite[finite != 0]) if finite.size else finite
            self.int_mode = builtins.bool(finite.size == 0 or np.all(np.ceil(finite) == finite))
            if nz.size:
                mx, mn = _pyfloat(nz.max()), _pyfloat(nz.min())
                if self.int_mode:
                    self.sci = mx > 1e8
                else:
                    self.sci = mx / mn > 1000.0 or mx > 1e8 or mn < 1e-4
        flat = vals.reshape(-1)
        if is_float and flat.size:
            flat = flat[np.isfinite(flat)]
        strs = [self.fmt1(v) for v in flat] if flat.size else []
        self.width = builtins.max((len(s) for s in strs), default=1)

    def fmt1(self, v):
        if not self.is_float:
            return str(v)
        v = _pyfloat(v)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if self.sci:
            return f"{v:.4e}"
        if self.int_mode:
            return f"{v:.0f}."
        return f"{v:.4f}"

    def fmt(self, v):
        return self.fmt1(v).rjust(self.width)


def _format_array(a, fmt, indent, summarize):
    if a.ndim == 0:
        return fmt.fmt(a.item() if a.dtype != np.bool_ else builtins.bool(a))
    n = a.shape[0]
    if a.ndim == 1:
        if a.dtype == np.bool_:
            items = [str(builtins.bool(x)).rjust(fmt.width) for x in a]
        else:
            items = [fmt.fmt(x) for x in a]
        if summarize and n > 2 * _EDGE:
            items = items[:_EDGE] + [" ..."] + items[-_EDGE:]
        return "[" + ", ".join(items) + "]"
    rows = range(n)
    if summarize and n > 2 * _EDGE:
        rows = list(range(_EDGE)) + [None] + list(range(n - _EDGE, n))
    parts = []
    for r in rows:
        parts.append("..." if r is None else _format_array(a[r], fmt, indent + 1, summarize))
    sep = "," + "\n" * (a.ndim - 1) + " " * (indent + 1)
    return "[" + sep.join(parts) + "]"


def _repr(self):
    vals = _host_values(self)
    summarize = vals.size > _THRESHOLD
    is_float = self.dtype.is_floating_point
    if vals.dtype == np.bool_:
        fmt_vals = np.zeros(0)
        fmt = _Formatter(fmt_vals, False)
        fmt.width = 5 if np.any(vals == False) else 4  # noqa: E712
    else:
        sample = vals
        if summarize:
            sample = np.concatenate([vals.reshape(-1)[:_THRESHOLD // 2], vals.reshape(-1)[-_THRESHOLD // 2:]])
        fmt = _Formatter(sample.astype(np.float64) if is_float else sample, is_float)
    prefix = "tensor("
    suffixes = []
    if self.numel() == 0 and self.ndim != 1:
        body = "[]"
        suffixes.append(f"size={tuple(self._sizes())}")
    else:
        body = _format_array(vals, fmt, len(prefix), summarize)
    if self.device.type != "cpu":
        suffixes.append(f"device='{self.device}'")
    if self.dtype not in _DEFAULT_REPR_DTYPES:
        suffixes.append(f"dtype=torch.{self.dtype.name}")
    for hook in repr_suffix_hooks:
        s = hook(self)
        if s:
            suffixes.append(s)
    return prefix + body + "".join(", " + s for s in suffixes) + ")"


Tensor.__repr__ = _repr
Tensor.__str__ = _repr
