"""Factories and random: tensor/as_tensor/from_numpy, zeros/ones/full/empty/arange/linspace/eye,
*_like, rand/randn/randint/randperm/normal/bernoulli, manual_seed and Generator."""
import builtins
import numbers

import numpy as np

from .. import _C
from . import _dtype as D
from ._ops import call
from ._tensor import Tensor, _shape_args, device

Generator = _C.Generator
_pybool, _pyint, _pyfloat = builtins.bool, builtins.int, builtins.float


def _finish(t, requires_grad):
    if requires_grad:
        t.requires_grad_(True)
    return t


def _dt(dtype):
    return None if dtype is None else D.to_dtype(dtype)


def _infer_flat(data):
    """Flattens nested lists/tuples of numbers (or 1-element tensors); returns (flat, shape, kind)
    with kind 0=bool, 1=int, 2=float."""
    shape = []
    probe = data
    while isinstance(probe, (list, tuple)):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    if isinstance(probe, Tensor) and probe.ndim > 0:
        # a list of tensors: stack them
        return None, None, None
    flat = []
    kind = 0

    def walk(x, depth):
        nonlocal kind
        if depth == len(shape):
            if isinstance(x, (list, tuple)):
                raise ValueError(f"expected sequence of length {shape[depth - 1] if depth else 0} at dim {depth}")
            if isinstance(x, Tensor):
                if x.numel() != 1:
                    raise ValueError("only one element tensors can be converted to Python scalars")
                x = x.item()
            elif isinstance(x, np.generic):
                x = x.item()
            if isinstance(x, _pybool):
                pass
            elif isinstance(x, numbers.Integral):
                kind = builtins.max(kind, 1)
            elif isinstance(x, numbers.Real):
                kind = 2
            else:
                raise TypeError(f"new(): invalid data type '{type(x).__name__}'")
            flat.append(x)
            return
        if not isinstance(x, (list, tuple)) or len(x) != shape[depth]:
            got = len(x) if isinstance(x, (list, tuple)) else type(x).__name__
            raise ValueError(f"expected sequence of length {shape[depth]} at dim {depth} (got {got})")
        for y in x:
            walk(y, depth + 1)

    walk(data, 0)
    if not flat:
        kind = 2  # an empty list makes a tensor of the default float dtype
    return flat, shape, kind


def tensor(data, *, dtype=None, device=None, requires_grad=False, pin_memory=False):
    dtype = _dt(dtype)
    if isinstance(data, Tensor):
        t = call("clone", data)
        if hasattr(t, "detach"):
            t = t.detach()
        if dtype is not None:
            t = call("to_dtype", t, dtype, False)
    elif isinstance(data, np.ndarray):
        arr = data
        if arr.dtype == np.float64 and dtype is None:
            dtype = D.float64
        if arr.dtype.kind not in "biuf" or arr.dtype.itemsize > 8 or arr.dtype in (np.uint16, np.uint32, np.uint64):
            raise TypeError(f"can't convert np.ndarray of type {arr.dtype}. The only supported types are: float64, "
                            "float32, float16, int64, int32, int16, int8, uint8, and bool.")
        if any(st < 0 for st in arr.strides):
            arr = arr.copy()
        t = call("clone", _C.from_numpy(arr))
        if dtype is not None:
            t = call("to_dtype", t, dtype, False)
    elif isinstance(data, np.generic):
        return tensor(np.asarray(data), dtype=dtype, device=device, requires_grad=requires_grad)
    elif isinstance(data, numbers.Number):
        v = data
        if isinstance(v, complex):
            raise TypeError("vibetensor: complex numbers are not supported")
        if dtype is None:
            dtype = D.bool if isinstance(v, _pybool) else (D.int64 if isinstance(v, numbers.Integral)
                                                          else D.get_default_dtype())
        t = _C.tensor_from_flat([v], [], dtype)
    elif isinstance(data, (list, tuple)):
        flat, shape, kind = _infer_flat(data)
        if flat is None:
            t = call("stack", [tensor(x) for x in data], 0)
            if dtype is not None:
                t = call("to_dtype", t, dtype, False)
        else:
            if dtype is None:
                dtype = (D.bool, D.int64, D.get_default_dtype())[kind]
            t = _C.tensor_from_flat(flat, shape, dtype)
    else:
        raise TypeError(f"tensor(): could not infer dtype of {type(data).__name__}")
    if device is not None:
        t = t.to(device)
    return _finish(t, requires_grad)


def as_tensor(data, dtype=None, device=None):
    dtype = _dt(dtype)
    if isinstance(data, Tensor):
        t = data if dtype is None else data.to(dtype)
        return t if device is None else t.to(device)
    if isinstance(data, np.ndarray) and data.dtype.kind in "biuf":
        try:
            t = _C.from_numpy(data)
        except (TypeError, ValueError):
            return tensor(data, dtype=dtype, device=device)
        if dtype is not None and dtype is not t.dtype:
            t = call("to_dtype", t, dtype, False)
        return t if device is None else t.to(device)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(arr):
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(arr).__name__})")
    D.from_numpy_dtype(arr.dtype)
    return _C.from_numpy(arr)


def _rebuild(arr, dtype_name):
    return tensor(arr, dtype=getattr(D, dtype_name))


def _factory(op):
    def f(*size, out=None, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False,
          memory_format=None):
        t = call(op, _shape_args(size), dtype=_dt(dtype), device=device)
        return _finish(t, requires_grad)
    f.__name__ = op
    return f


zeros = _factory("zeros")
ones = _factory("ones")
empty = _factory("empty")


def full(size, fill_value, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    dtype = _dt(dtype)
    if dtype is None:
        if isinstance(fill_value, Tensor):
            fill_value = fill_value.item()
        if isinstance(fill_value, _pybool):
            dtype = D.bool
        elif isinstance(fill_value, numbers.Integral):
            dtype = D.int64
        else:
            dtype = D.get_default_dtype()
    t = call("full", _shape_args((size,)), fill_value, dtype=dtype, device=device)
    return _finish(t, requires_grad)


def _like(op):
    def f(input, *, dtype=None, layout=None, device=None, requires_grad=False, memory_format=None):
        t = call(op, input._sizes(), dtype=_dt(dtype) or input.dtype, device=device or input.device)
        return _finish(t, requires_grad)
    f.__name__ = op + "_like"
    return f


zeros_like = _like("zeros")
ones_like = _like("ones")
empty_like = _like("empty")


def full_like(input, fill_value, *, dtype=None, layout=None, device=None, requires_grad=False, memory_format=None):
    t = call("full", input._sizes(), fill_value, dtype=_dt(dtype) or input.dtype, device=device or input.device)
    return _finish(t, requires_grad)


def rand_like(input, *, dtype=None, device=None, requires_grad=False, generator=None):
    t = call("rand", input._sizes(), generator=generator, dtype=_dt(dtype) or input.dtype,
             device=device or input.device)
    return _finish(t, requires_grad)


def randn_like(input, *, dtype=None, device=None, requires_grad=False, generator=None):
    t = call("randn", input._sizes(), generator=generator, dtype=_dt(dtype) or input.dtype,
             device=device or input.device)
    return _finish(t, requires_grad)


def randint_like(input, low=0, high=None, *, dtype=None, device=None, requires_grad=False, generator=None):
    if high is None:
        low, high = 0, low
    t = call("randint", low, high, input._sizes(), generator=generator, dtype=_dt(dtype) or input.dtype,
             device=device or input.device)
    return _finish(t, requires_grad)


def _num(v):
    return v.item() if isinstance(v, Tensor) else v


def arange(start, end=None, step=1, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    start, end, step = _num(start), _num(end), _num(step)
    dtype = _dt(dtype)
    if dtype is None:
        is_int = all(isinstance(v, numbers.Integral) for v in (start, end, step))
        dtype = D.int64 if is_int else D.get_default_dtype()
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError(f"arange: upper bound and larger bound inconsistent with step sign "
                           f"(start={start}, end={end}, step={step})")
    t = call("arange", start, end, step, dtype=dtype, device=device)
    return _finish(t, requires_grad)


def linspace(start, end, steps, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    t = call("linspace", _num(start), _num(end), steps, dtype=_dt(dtype) or D.get_default_dtype(), device=device)
    return _finish(t, requires_grad)


def eye(n, m=None, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    t = call("eye", n, m, dtype=_dt(dtype) or D.get_default_dtype(), device=device)
    return _finish(t, requires_grad)


def _rand_factory(op):
    def f(*size, generator=None, out=None, dtype=None, layout=None, device=None, requires_grad=False,
          pin_memory=False):
        dt = _dt(dtype) or D.get_default_dtype()
        if not dt.is_floating_point:
            raise TypeError(f"{op}(): expected a floating point dtype, got {dt.name}")
        t = call(op, _shape_args(size), generator=generator, dtype=dt, device=device)
        return _finish(t, requires_grad)
    f.__name__ = op
    return f


rand = _rand_factory("rand")
randn = _rand_factory("randn")


def randint(low=0, high=None, size=None, *, generator=None, out=None, dtype=None, layout=None, device=None,
            requires_grad=False):
    if size is None:  # randint(high, size)
        if high is None:
            raise TypeError("randint() missing required argument 'size'")
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    t = call("randint", low, high, _shape_args((size,)), generator=generator, dtype=_dt(dtype) or D.int64,
             device=device)
    return _finish(t, requires_grad)


def randperm(n, *, generator=None, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    if n < 0:
        raise RuntimeError(f"randperm: n must be non-negative, got {n}")
    t = call("randperm", n, generator=generator, dtype=_dt(dtype) or D.int64, device=device)
    return _finish(t, requires_grad)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, out=None, dtype=None, device=None,
           requires_grad=False):
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        shape = (mean if isinstance(mean, Tensor) else std)._sizes()
        if isinstance(mean, Tensor) and isinstance(std, Tensor):
            shape = call("add", mean, std)._sizes()
        like = mean if isinstance(mean, Tensor) else std
        z = call("randn", shape, generator=generator, dtype=like.dtype, device=like.device)
        return call("add", call("mul", z, std), mean)
    if std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    t = call("randn", _shape_args((size,)), generator=generator, dtype=_dt(dtype) or D.get_default_dtype(),
             device=device)
    t = call("normal_", t, _pyfloat(mean), _pyfloat(std), generator=generator)
    return _finish(t, requires_grad)


def bernoulli(input, p=None, *, generator=None, out=None):
    return call("bernoulli", input, p, generator=generator)


def multinomial(input, num_samples, replacement=False, *, generator=None):
    return call("multinomial", input, num_samples, replacement, generator=generator)


def manual_seed(seed):
    seed = _pyint(seed)
    _C.manual_seed(seed)
    for hook in seed_hooks:
        hook(seed)
    return default_generator


def seed():
    import random as _random
    s = _random.getrandbits(63)
    manual_seed(s)
    return s


def initial_seed():
    return _C.initial_seed()


# Subsystems with their own generators (e.g. CUDA) register here to be seeded by manual_seed.
seed_hooks = []

default_generator = _C.default_generator()


def get_rng_state():
    """The default CPU generator's state as a uint8 tensor (Generator.get_state)."""
    return default_generator.get_state()


def set_rng_state(new_state):
    """Restores the default CPU generator from a get_rng_state() result."""
    default_generator.set_state(new_state)


def scalar_tensor(s, *, dtype=None, device=None, requires_grad=False):
    return tensor(s, dtype=dtype or D.get_default_dtype(), device=device, requires_grad=requires_grad)
