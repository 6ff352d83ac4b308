"""vibetensor.torch: the torch-compatible public API of vibetensor (``import vibetensor.torch as vt``).

Design note (the Tensor class): ``vt.Tensor`` IS the native nanobind class ``vibetensor._C.Tensor``
(bound with ``nb::dynamic_attr``), and _tensor.py attaches torch's methods, operators, indexing and
repr to it from Python. We chose this over a Python subclass because every op result comes out of C++
as a ``_C.Tensor``: a subclass would need a wrapping step (an allocation and a Python call) on every
result, and ``type(x)`` would differ between ops. With methods on the native class, ``x + y`` costs one
Python-level method call into ``_C.call`` and results need no conversion; ``isinstance(x, vt.Tensor)``
holds for every tensor, and subsystems (autograd, cuda) extend the same class.

Layout: _dtype.py (dtypes, finfo/iinfo), _ops.py (op-table driven functions and methods),
_tensor.py (Tensor surface), _creation.py (factories, random), _functions.py (top-level overloads),
_functional.py (NN helpers, re-exported by nn.functional), _subsystems.py (optional subpackages).
"""
from .. import _C
from . import _dtype
from ._dtype import (  # noqa: F401
    dtype, bool, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64, short, int, long, half,
    float, double, finfo, iinfo, get_default_dtype, set_default_dtype, promote_types, is_floating_point, is_complex,
)
from ._ops import OPS as _OPS, call as _call, make_function as _make_function
from ._size import Size  # noqa: F401
from . import _tensor
from ._tensor import Tensor, device  # noqa: F401

# every op of the table as a top-level function (hand-written overloads below replace some)
for _name in _OPS:
    globals()[_name] = _make_function(_name)
del _name

from ._creation import (  # noqa: E402,F401
    Generator, tensor, as_tensor, from_numpy, zeros, ones, empty, full, zeros_like, ones_like, empty_like,
    full_like, rand_like, randn_like, randint_like, arange, linspace, eye, rand, randn, randint, randperm, normal,
    bernoulli, multinomial, manual_seed, seed, initial_seed, default_generator, get_rng_state, set_rng_state,
    scalar_tensor,
)
from ._functions import (  # noqa: E402,F401
    max, min, var, std, var_mean, std_mean, norm, amax, amin, logsumexp, all, any, softmax, log_softmax, where, cat,
    stack, hstack, vstack, split, reshape, permute, squeeze, flip, tile, movedim, flatten, nonzero, argwhere,
    count_nonzero, clamp_min, clamp_max, floor_divide, true_divide, numel, is_tensor, is_nonzero, broadcast_shapes,
    broadcast_tensors, broadcast_to, chunk, unbind, transpose, einsum, sort, argsort, msort, topk, kthvalue, allclose,
    isclose, equal, result_type, can_cast,
)
from ._functional import (  # noqa: E402,F401
    layer_norm, rms_norm, dropout, scaled_dot_product_attention, one_hot,
)

# aliases torch has at the top level
concat = concatenate = cat
clip = clamp  # noqa: F821 (generated)
absolute = abs  # noqa: F821
negative = neg  # noqa: F821
multiply = mul  # noqa: F821
subtract = sub  # noqa: F821
divide = div  # noqa: F821
greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne  # noqa: F821
swapaxes = swapdims = transpose
moveaxis = movedim
Storage = None
strided = "torch.strided"
contiguous_format = preserve_format = "torch.contiguous_format"

from math import e, inf, nan, pi  # noqa: E402,F401


def is_grad_enabled():
    """False until the autograd subsystem replaces it."""
    return False


class no_grad:
    """A no-op context manager until the autograd subsystem replaces it."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __call__(self, fn):
        return fn


enable_grad = inference_mode = no_grad


def get_num_threads():
    return _C.get_num_threads()


def set_num_threads(n):
    """Threads of the CPU kernels' pool (OpenMP), which also splits large matmuls (OpenBLAS stays at one thread),
    like torch.set_num_threads."""
    import builtins  # `int` here is the dtype

    if not isinstance(n, builtins.int) or isinstance(n, builtins.bool):
        raise RuntimeError(f"set_num_threads expects an int, but got {type(n).__name__}")
    if n <= 0:
        raise RuntimeError("set_num_threads expects a positive integer")
    _C.set_num_threads(n)


def cuda_is_available():
    return False


# optional subpackages (autograd, nn, optim, cuda, library, ...): must stay last
from . import _subsystems  # noqa: E402

_subsystems.load(__name__)
