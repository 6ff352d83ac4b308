"""Custom differentiable functions from Python (torch.autograd.Function).

``MyFn.apply(*args)`` runs ``MyFn.forward(ctx, *args)`` with grad mode off, then attaches a C++
LambdaNode (src/vbt/autograd/autograd_meta.cpp) as grad_fn of the tensor outputs; the node calls
``MyFn.backward(ctx, *grad_outputs)`` and routes its results to the tensor arguments' edges.
"""
from ... import _C
from .._tensor import Tensor


def _version_error(t, expected):
    return RuntimeError(
        "one of the variables needed for gradient computation has been modified by an inplace operation: "
        f"[{t.dtype} {list(t.shape)}] is at version {t._version}; expected version {expected} instead. Hint: the "
        "backtrace further above can point to the operation that failed to compute its gradient. The variable in "
        "question was changed in there or anywhere later. Good luck!")


_FREED = ("Trying to backward through the graph a second time (or directly access saved tensors after they have "
          "already been freed). Saved intermediate values of the graph are freed when you call .backward() or "
          "autograd.grad(). Specify retain_graph=True if you need to backward through the graph a second time or "
          "if you need to access saved tensors after calling backward.")


class FunctionCtx:
    def __init__(self):
        self._saved = ()
        self._versions = ()
        self._released = False
        self.needs_input_grad = ()
        self.materialize_grads = True
        self._non_differentiable = []

    def save_for_backward(self, *tensors):
        self._saved = tensors
        self._versions = tuple(t._version if isinstance(t, Tensor) else None for t in tensors)

    @property
    def saved_tensors(self):
        if self._released:
            raise RuntimeError(_FREED)
        for t, v in zip(self._saved, self._versions):
            if isinstance(t, Tensor) and t._version != v:
                raise _version_error(t, v)
        return self._saved

    def mark_non_differentiable(self, *tensors):
        self._non_differentiable.extend(tensors)

    def mark_dirty(self, *tensors):
        pass

    def set_materialize_grads(self, value):
        self.materialize_grads = bool(value)


class _FunctionMeta(type):
    pass


class Function(metaclass=_FunctionMeta):
    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for your custom "
                                  "autograd.Function to use it with backward mode AD.")

    @classmethod
    def apply(cls, *args, **kwargs):
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        prev = _C._ag_is_grad_enabled()
        _C._ag_set_grad_enabled(False)
        try:
            out = cls.forward(ctx, *args, **kwargs)
        finally:
            _C._ag_set_grad_enabled(prev)
        if not (prev and any(ctx.needs_input_grad)):
            return out
        is_tuple = isinstance(out, tuple)
        outs = list(out) if is_tuple else [out]
        inputs = [a if isinstance(a, Tensor) else None for a in args]
        node_outs = []
        for i, o in enumerate(outs):
            if not isinstance(o, Tensor):
                node_outs.append(None)
                continue
            if any(isinstance(a, Tensor) and o._is_same(a) for a in args):
                o = _C._ag_detach(o)  # returned an input: give the output its own metadata
                outs[i] = o
            if any(o._is_same(n) for n in ctx._non_differentiable if isinstance(n, Tensor)):
                node_outs.append(None)
            else:
                node_outs.append(o)
        # A saved output is kept as a detached alias (same storage and version counter): the output
        # owns the node, so a strong reference from the node's context back to it would be a cycle.
        ctx._saved = tuple(_C._ag_detach(t) if isinstance(t, Tensor) and any(
            isinstance(o, Tensor) and t._is_same(o) for o in outs) else t for t in ctx._saved)
        n_in = len(args)
        # The closure must not reference the outputs (they own the node that owns the closure: a
        # reference cycle through C++ that Python's GC cannot see).
        differentiable = [o is not None for o in node_outs]
        arg_is_tensor = [isinstance(a, Tensor) for a in args]

        def backward_fn(grads):
            if not ctx.materialize_grads:
                grads = [g if differentiable[i] else None for i, g in enumerate(grads)]
            r = cls.backward(ctx, *grads)
            if not isinstance(r, tuple):
                r = (r,)
            if len(r) < n_in:
                raise RuntimeError(f"function {cls.__name__}Backward returned an incorrect number of gradients "
                                   f"(expected {n_in}, got {len(r)})")
            return [g if isinstance(g, Tensor) and arg_is_tensor[i] else None for i, g in enumerate(r[:n_in])]

        def release():
            ctx._released = True
            ctx._saved = ()

        _C._ag_make_custom_node(cls.__name__ + "Backward", inputs, node_outs, backward_fn, release)
        return tuple(outs) if is_tuple else outs[0]


class once_differentiable:  # decorator accepted for compatibility
    def __new__(cls, fn):
        return fn
