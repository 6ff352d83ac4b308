"""vibetensor.torch.autograd: reverse-mode automatic differentiation.

The engine, grad mode, backward formulas and saved-tensor checks are C++ (src/vbt/autograd, a
wrapper layer of the dispatcher); this package exposes them with torch's Python API: the Tensor
properties/methods (requires_grad, grad, grad_fn, is_leaf, backward, detach, register_hook,
retain_grad), ``vt.autograd.grad/backward``, ``Function``, and no_grad/enable_grad/set_grad_enabled,
which it also installs at the top level of vibetensor.torch.
"""
import atexit
import sys
import weakref

from ... import _C

if not hasattr(_C, "_ag_backward"):
    raise ImportError("vibetensor.torch.autograd: the native extension was built without the autograd subsystem "
                      "(cmake/autograd.cmake); rebuild with it, or set VBT_SKIP_SUBSYSTEMS=autograd,nn,optim")

from .. import _tensor
from .._tensor import Tensor
from .grad_mode import (  # noqa: F401
    no_grad, enable_grad, set_grad_enabled, inference_mode, is_grad_enabled, is_inference_mode_enabled,
)
from .function import Function, FunctionCtx, once_differentiable  # noqa: F401
from . import grad_mode, function  # noqa: F401
from .gradcheck import gradcheck, GradcheckError  # noqa: F401


def _as_list(x):
    if x is None:
        return None
    if isinstance(x, Tensor):
        return [x]
    return list(x)


def _grads_list(grads, n):
    if grads is None:
        return [None] * n
    grads = _as_list(grads)
    out = []
    for g in grads:
        if g is not None and not isinstance(g, Tensor):
            from .. import tensor as _tensor_ctor
            g = _tensor_ctor(g)
        out.append(g)
    if len(out) != n:
        raise RuntimeError(f"grad_tensors has {len(out)} elements but tensors has {n}")
    return out


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, grad_variables=None, inputs=None):
    tensors = _as_list(tensors)
    if grad_tensors is None:
        grad_tensors = grad_variables
    if retain_graph is None:
        retain_graph = create_graph
    inputs = _as_list(inputs)
    if inputs is not None and len(inputs) == 0:
        raise RuntimeError("'inputs' argument to backward() cannot be empty.")
    _C._ag_backward(tensors, _grads_list(grad_tensors, len(tensors)), bool(retain_graph), bool(create_graph), inputs)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, only_inputs=True,
         allow_unused=None, is_grads_batched=False, materialize_grads=False):
    outputs = _as_list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = _as_list(inputs)
    if retain_graph is None:
        retain_graph = create_graph
    if allow_unused is None:
        allow_unused = materialize_grads
    res = _C._ag_run_grad(outputs, _grads_list(grad_outputs, len(outputs)), inputs, bool(retain_graph),
                          bool(create_graph), bool(allow_unused))
    if materialize_grads:
        from .. import zeros_like
        res = [zeros_like(i) if r is None else r for r, i in zip(res, inputs)]
    return tuple(res)


# ---- Tensor surface --------------------------------------------------------------------------------

class RemovableHandle:
    def __init__(self):
        self.removed = False

    def remove(self):
        self.removed = True
        slot = getattr(self, "_slot", None)
        if slot is not None:
            slot.fn = None  # the tensor may outlive the handle: let the hook go now

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _set_requires_grad(self, value):
    _C._ag_set_requires_grad(self, bool(value))


def _requires_grad_(self, requires_grad=True):
    _C._ag_set_requires_grad(self, bool(requires_grad))
    return self


def _get_grad(self):
    return _C._ag_grad(self)


def _set_grad(self, value):
    if value is not None and not isinstance(value, Tensor):
        raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type {type(value).__name__}")
    _C._ag_set_grad(self, value)


def _backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    backward([self], None if gradient is None else [gradient], retain_graph, create_graph, inputs=inputs)


# Note [Hooks released at exit]: the C++ autograd metadata of a tensor holds its hooks. A hook that refers (through
# its closure or its module's globals) back to the tensor makes a cycle through C++ that Python's GC cannot see, so
# tensors alive at exit (a model's parameters under DDP, say) would still be alive when the extension is torn down
# (nanobind then reports "leaked instances"). Each hook therefore sits in a _HookSlot that the C++ side holds, and at
# exit every live slot drops its hook, which breaks those cycles; RemovableHandle.remove() drops it early too.
class _HookSlot:
    __slots__ = ("fn", "__weakref__")

    def __init__(self, fn):
        self.fn = fn


_LIVE_HOOK_SLOTS = weakref.WeakSet()


@atexit.register
def _release_hooks():
    for slot in list(_LIVE_HOOK_SLOTS):
        slot.fn = None


def _register_hook(self, hook):
    if not self.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    handle = RemovableHandle()
    slot = _HookSlot(hook)
    _LIVE_HOOK_SLOTS.add(slot)
    handle._slot = slot

    def wrapper(g):
        fn = slot.fn
        if handle.removed or fn is None:
            return None
        return fn(g)

    _C._ag_register_hook(self, wrapper)
    return handle


def _retain_grad(self):
    _C._ag_retain_grad(self)


def _get_data(self):
    return _C._ag_detach(self)


def _set_data(self, value):
    # Same storage/geometry semantics as torch for the common case (same shape and dtype): copy in place
    # without recording and without bumping versions seen by autograd users.
    if not isinstance(value, Tensor):
        raise TypeError("data must be a Tensor")
    if list(value.shape) != list(self.shape) or value.dtype != self.dtype:
        raise RuntimeError("vibetensor: assigning .data of a different shape or dtype is not supported")
    with no_grad():
        _C.call("copy_", _C._ag_detach(self), value)


Tensor.requires_grad = property(lambda self: _C._ag_requires_grad(self), _set_requires_grad)
Tensor.requires_grad_ = _requires_grad_
Tensor.grad = property(_get_grad, _set_grad)
Tensor.grad_fn = property(lambda self: _C._ag_grad_fn(self))
Tensor.is_leaf = property(lambda self: _C._ag_is_leaf(self))
Tensor.output_nr = property(lambda self: _C._ag_output_nr(self))
Tensor.retains_grad = property(lambda self: _C._ag_retains_grad(self))
Tensor.backward = _backward
Tensor.detach = lambda self: _C._ag_detach(self)
Tensor.detach_ = lambda self: (_C._ag_detach_(self), self)[1]
Tensor.register_hook = _register_hook
Tensor.retain_grad = _retain_grad
Tensor.data = property(_get_data, _set_data)


def _deepcopy(self, memo):
    if id(self) in memo:
        return memo[id(self)]
    if not self.is_leaf:
        raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) support the deepcopy protocol "
                           "at the moment.")
    with no_grad():
        new = _C.call("clone", self)
    if self.requires_grad:
        new.requires_grad_(True)
    for attr in ("_is_param", "_is_buffer", "_persistent"):
        if hasattr(self, attr):
            setattr(new, attr, getattr(self, attr))
    memo[id(self)] = new
    memo.setdefault(id(memo), []).append(self)  # keep self alive: Python wrappers are created per access
    g = self.grad
    if g is not None:
        with no_grad():
            new.grad = _C.call("clone", g)
    return new


Tensor.__deepcopy__ = _deepcopy


def _repr_suffix(t):
    fn = _C._ag_grad_fn(t)
    if fn is not None:
        return f"grad_fn=<{fn.name()}>"
    if _C._ag_requires_grad(t):
        return "requires_grad=True"
    return None


if _repr_suffix not in _tensor.repr_suffix_hooks:
    _tensor.repr_suffix_hooks.append(_repr_suffix)


def ops_with_backward():
    """Names of op-table ops that have a backward formula."""
    return list(_C._ag_ops_with_backward())


def nondifferentiable_ops():
    return list(_C._ag_nondifferentiable_ops())


# torch-level names: replace the core's no-op placeholders
_vt = sys.modules[__name__.rsplit(".", 1)[0]]
for _n, _v in (("no_grad", no_grad), ("enable_grad", enable_grad), ("set_grad_enabled", set_grad_enabled),
               ("inference_mode", inference_mode), ("is_grad_enabled", is_grad_enabled),
               ("is_inference_mode_enabled", is_inference_mode_enabled)):
    setattr(_vt, _n, _v)
del _n, _v
