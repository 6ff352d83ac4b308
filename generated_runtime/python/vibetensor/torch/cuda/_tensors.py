"""CUDA tensors: installs the core overlay's ``_tensor.device_copy_hook`` so that ``Tensor.to("cuda")``,
``.cuda()``, ``.cpu()`` and ``vt.tensor(..., device="cuda")`` copy between host and device memory (the
caching allocator's CUDA backend). The CUDA op kernels themselves are registered by the extension
(``include/vbt/cuda/ops.h``); ``has_ops()`` says whether this build has them.

Pinned memory and non-blocking copies, with torch's API (Note [Non-blocking copies] in
src/vbt/cuda/ops/cuda_ops.cpp):

    p = t.pin_memory()                    # page-locked copy of a CPU tensor (cached pinned allocator)
    p.is_pinned()                         # True; False for pageable CPU tensors and CUDA tensors
    p = vt.empty(n, pin_memory=True)      # also zeros / ones / full / rand / randn / tensor
    d = p.to("cuda", non_blocking=True)   # or p.cuda(non_blocking=True): cudaMemcpyAsync, the host goes on
    h = d.to("cpu", non_blocking=True)    # h is pinned; valid after synchronizing (stream / event / device)
    p.copy_(d, non_blocking=True)         # either direction

From or to pageable memory ``non_blocking=True`` is a blocking copy, as in torch. Without a usable GPU,
``pin_memory()`` raises RuntimeError (like torch built without CUDA) and ``is_pinned()`` is False.
``Tensor.to`` / ``.cuda`` / ``.copy_`` are wrapped here: they pass ``non_blocking`` to the extension through a
per-thread flag (``_C._cuda_set_non_blocking``) around the original method, so autograd and the dispatcher
see the same calls as before.
"""
import contextlib
import functools
import threading

import vibetensor.torch as _vt
from vibetensor import _C
from vibetensor.torch import _tensor

from ._device import _require_cuda, is_available

Tensor = _C.Tensor
_state = threading.local()


def has_ops():
    """Whether this build carries the CUDA op kernels (built with nvcc)."""
    return bool(getattr(_C, "_cuda_has_ops", lambda: False)())


def _non_blocking_now():
    return getattr(_state, "non_blocking", False)


@contextlib.contextmanager
def _non_blocking(on):
    """Copies in the block are non-blocking (the Python hook and the extension's copy_ kernel both see it)."""
    on = bool(on)
    previous = _non_blocking_now()
    _state.non_blocking = on
    native_previous = _C._cuda_set_non_blocking(on) if has_ops() else False
    try:
        yield
    finally:
        _state.non_blocking = previous
        if has_ops():
            _C._cuda_set_non_blocking(native_previous)


def _device_copy(t, dev):
    if dev.type == "cuda" or t.device.type == "cuda":
        if not has_ops():
            raise RuntimeError(f"vibetensor: cannot move a tensor to {dev}: this build has no CUDA kernels "
                               "(it was compiled without nvcc)")
        _require_cuda("Tensor.to")
    return _C._cuda_to_device(t, str(dev), _non_blocking_now())


_tensor.device_copy_hook = _device_copy


# ---- non_blocking on Tensor.to / .cuda / .copy_ ---------------------------------------------------------

def _wrap_to(original):
    @functools.wraps(original)
    def to(self, *args, **kwargs):
        # torch: to(device, dtype, non_blocking, copy), to(dtype, non_blocking, copy), to(other, non_blocking, copy)
        non_blocking = kwargs.get("non_blocking", False)
        bools = [a for a in args if isinstance(a, bool)]
        if bools:
            non_blocking = non_blocking or bools[0]
            if len(bools) > 1 and "copy" not in kwargs:  # the second positional bool is copy
                args = tuple(a for a in args if not isinstance(a, bool))
                kwargs["copy"] = bools[1]
        if not non_blocking:
            return original(self, *args, **kwargs)
        with _non_blocking(True):
            return original(self, *args, **kwargs)
    return to


def _wrap_cuda(original):
    @functools.wraps(original)
    def cuda(self, device=None, non_blocking=False, memory_format=None):
        if not non_blocking:
            return original(self, device)
        with _non_blocking(True):
            return original(self, device)
    return cuda


def _wrap_copy_(original):
    @functools.wraps(original)
    def copy_(self, src, non_blocking=False):
        if not non_blocking:
            return original(self, src)
        with _non_blocking(True):
            return original(self, src)
    return copy_


if not getattr(Tensor.to, "_vbt_cuda_wrapped", False):
    for _name, _wrap in (("to", _wrap_to), ("cuda", _wrap_cuda), ("copy_", _wrap_copy_)):
        _fn = _wrap(getattr(Tensor, _name))
        _fn._vbt_cuda_wrapped = True
        setattr(Tensor, _name, _fn)


# ---- pinned memory ------------------------------------------------------------------------------------

def _require_pinning(what):
    if not has_ops():
        raise RuntimeError(f"vibetensor: {what} needs CUDA: this build has no CUDA kernels (it was compiled "
                           "without nvcc)")
    if not is_available():
        raise RuntimeError(f"vibetensor: {what} needs CUDA: no CUDA device is available (pinned memory is "
                           "page-locked host memory registered with the CUDA driver)")


def _pin_memory(self, device=None):
    """A copy of this CPU tensor in page-locked memory (this tensor when it already is)."""
    _require_pinning("Tensor.pin_memory()")
    if self.device.type != "cpu":
        raise RuntimeError(f"cannot pin '{self.device}' memory: only dense CPU tensors can be pinned")
    if _C._cuda_is_pinned(self):
        return self
    return _C._cuda_pin_memory(self)  # a copy outside autograd (torch's is differentiable)


def _is_pinned(self, device=None):
    """Whether this is a CPU tensor in page-locked memory."""
    if self.device.type != "cpu" or not has_ops() or not is_available():
        return False
    return bool(_C._cuda_is_pinned(self))


Tensor.pin_memory = _pin_memory
Tensor.is_pinned = _is_pinned


def empty_pinned(sizes, dtype=None):
    """An uninitialised contiguous CPU tensor in pinned memory (vt.empty(..., pin_memory=True))."""
    _require_pinning("pin_memory=True")
    proto = _vt.empty(0, dtype=dtype)
    return _C._cuda_empty_pinned([int(s) for s in sizes], proto)


def _wrap_factory(original, kind):
    """vt.<factory>(..., pin_memory=True): the result in pinned memory (CPU only, as in torch)."""
    @functools.wraps(original)
    def factory(*args, pin_memory=False, **kwargs):
        if not pin_memory:
            return original(*args, **kwargs)
        device = kwargs.get("device")
        if device is not None and str(device).split(":")[0] != "cpu":
            raise RuntimeError(f"{original.__name__}: only CPU tensors can be pinned (got device={device!r})")
        requires_grad = kwargs.pop("requires_grad", False)
        if kind == "empty":
            t = original(*args, **kwargs)
            out = empty_pinned(t.shape, t.dtype)
        else:
            out = _pin_memory(original(*args, **kwargs))
        if requires_grad:
            out.requires_grad_(True)
        return out
    factory._vbt_cuda_wrapped = True
    return factory


for _name, _kind in (("empty", "empty"), ("zeros", "copy"), ("ones", "copy"), ("full", "copy"), ("rand", "copy"),
                     ("randn", "copy"), ("tensor", "copy")):
    _f = getattr(_vt, _name, None)
    if _f is not None and not getattr(_f, "_vbt_cuda_wrapped", False):
        setattr(_vt, _name, _wrap_factory(_f, _kind))
