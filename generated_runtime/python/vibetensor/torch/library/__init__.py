"""vibetensor.torch.library: custom ops and overrides from Python (after ``torch.library``), plus the
``vt.ops`` namespace (``vt.ops.load_library(path)`` for C plugins, ``vt.ops.<plugin_op>(...)``,
``vt.ops.<ns>.<custom_op>(...)``).

* ``custom_op("mylib::scale", mutates_args=())`` turns an annotated function into a new op (schema
  inferred from the annotations, or given with ``schema=``); ``op.register_kernel("cpu")`` adds a
  per-device implementation; ``op.register_autograd(backward, setup_context=...)`` attaches a backward.
* ``register_autograd(op, backward, setup_context=...)`` also takes an op of a loaded C plugin (its name or
  ``vt.ops.<name>``): the backward runs in the dispatcher's Python layer, so gradients flow through the
  plugin's kernel however it is called. Without one, backward through a plugin op raises NotImplementedError.
* ``Library(ns, "DEF" | "FRAGMENT" | "IMPL")`` with ``define(schema)`` and ``impl(name, fn, key)``;
  ``impl`` on a built-in op (``Library("aten", "IMPL").impl("add", fn, "CPU")``) overrides it: every call of
  that op on that device, from Python or from inside other kernels, runs ``fn`` (inside ``fn`` the op
  itself and all others run their normal kernels). ``lib._destroy()`` removes what the library added.

Importing this package also installs the DLPack protocol on Tensor and ``vt.from_dlpack``
(vibetensor.interop).
"""
import importlib
import importlib.util
import inspect
import os
import re
import sys
import threading

from ... import _C
from ... import interop as _interop

__all__ = ["Library", "custom_op", "define", "impl", "register_kernel", "register_autograd", "CustomOpDef", "ops",
           "load_library", "unload_library"]

_lock = threading.RLock()
_custom_ops = {}          # "ns::name" -> CustomOpDef
_builtin_overrides = {}   # built-in op name -> {device: fn}
_plugin_autograd = {}     # plugin op name -> autograd.Function subclass (register_autograd on a plugin op)
_library_ops = {}         # plugin library path (as given to load_library) -> names of the ops it defined
_layer_fns = {}           # op name -> the function installed in the Python layer (_install_builtin_override)

_SCHEMA_RE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*\((.*)\)\s*->\s*(.+?)\s*$")
_TYPES = {"Tensor", "Tensor?", "int", "int?", "float", "float?", "bool", "bool?", "Scalar", "Scalar?", "str", "str?",
          "int[]", "Tensor[]"}


def _parse_default(text):
    if text == "None":
        return None
    if text in ("True", "False"):
        return text == "True"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        pass
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    raise ValueError(f"unsupported default value {text!r}")


class _Schema:
    """A parsed schema: name, [(name, type, kwarg_only, has_default, default)], returns."""

    def __init__(self, text):
        m = _SCHEMA_RE.match(text)
        if not m:
            raise ValueError(f"invalid schema {text!r}: expected 'name(args) -> returns'")
        self.text = text.strip()
        self.name, body, self.returns = m.group(1), m.group(2), m.group(3)
        self.args = []
        kwonly = False
        depth, cur, parts = 0, "", []
        for ch in body:
            depth += ch == "["
            depth -= ch == "]"
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        if cur.strip():
            parts.append(cur)
        seen = set()
        for p in parts:
            p = p.strip()
            if p == "*":
                kwonly = True
                continue
            decl, has_def, default = p, False, None
            if "=" in p:
                decl, d = p.split("=", 1)
                has_def, default = True, _parse_default(d.strip())
            bits = decl.strip().rsplit(" ", 1)
            if len(bits) != 2:
                raise ValueError(f"invalid schema {text!r}: argument {p!r} needs a type and a name")
            typ, name = bits[0].strip(), bits[1].strip()
            if typ not in _TYPES:
                raise ValueError(f"invalid schema {text!r}: unsupported type {typ!r}")
            if name in seen:
                raise ValueError(f"invalid schema {text!r}: argument {name!r} appears twice")
            seen.add(name)
            self.args.append((name, typ, kwonly, has_def, default))

    def bind(self, op, args, kwargs):
        """Positional values for every argument (defaults filled), in schema order."""
        if len(args) > len(self.args):
            raise TypeError(f"{op}() takes {len(self.args)} arguments but {len(args)} were given")
        out = list(args)
        for i in range(len(args), len(self.args)):
            name, _typ, _kw, has_def, default = self.args[i]
            if name in kwargs:
                out.append(kwargs.pop(name))
            elif has_def:
                out.append(default)
            else:
                raise TypeError(f"{op}() missing required argument '{name}'")
        for k in kwargs:
            if any(a[0] == k for a in self.args):
                raise TypeError(f"{op}() got multiple values for argument '{k}'")
            raise TypeError(f"{op}() got an unexpected keyword argument '{k}'")
        return out


def _device_of(values):
    for v in values:
        if isinstance(v, _C.Tensor):
            return "cuda" if v.is_cuda else "cpu"
        if isinstance(v, (list, tuple)):
            for x in v:
                if isinstance(x, _C.Tensor):
                    return "cuda" if x.is_cuda else "cpu"
    return "cpu"


def _norm_device(key):
    k = str(key).lower()
    if k in ("", "default", "compositeimplicitautograd", "compositeexplicitautograd"):
        return "default"
    if k.startswith("cuda"):
        return "cuda"
    if k.startswith("cpu"):
        return "cpu"
    raise ValueError(f"unsupported device / dispatch key {key!r} (use 'cpu', 'cuda' or 'CompositeImplicitAutograd')")


def _autograd():
    """vibetensor.torch.autograd if that subsystem is installed, else None."""
    if importlib.util.find_spec("vibetensor.torch.autograd") is None:
        return None
    return importlib.import_module("vibetensor.torch.autograd")


# ---- custom ops ------------------------------------------------------------------------------------

class CustomOpDef:
    """A Python-defined op: a schema, per-device implementations and an optional backward."""

    def __init__(self, qualname, schema, fn=None):
        if "::" not in qualname:
            raise ValueError(f"custom op name must be 'namespace::name', got {qualname!r}")
        self.namespace, self.name = qualname.split("::", 1)
        self.qualname = qualname
        self._schema = _Schema(schema)
        if self._schema.name != self.name:
            raise ValueError(f"schema name {self._schema.name!r} does not match op name {self.name!r}")
        self._impls = {}
        if fn is not None:
            self._impls["default"] = fn
        self._backward = None
        self._setup_context = None
        self._function = None
        self.__name__ = self.name
        self.__doc__ = getattr(fn, "__doc__", None)

    @property
    def schema(self):
        return self._schema.text

    def register_kernel(self, device_types, fn=None):
        """Registers ``fn`` for one device type or several ("cpu", "cuda"); usable as a decorator."""
        devices = [device_types] if isinstance(device_types, str) or device_types is None else list(device_types)

        def deco(f):
            with _lock:
                for d in devices:
                    self._impls[_norm_device(d or "default")] = f
            return f
        return deco(fn) if fn is not None else deco

    def register_autograd(self, backward, *, setup_context=None):
        """``backward(ctx, *grads) -> grads per input``; ``setup_context(ctx, inputs, output)`` saves state."""
        self._backward = backward
        self._setup_context = setup_context
        self._function = None

    def _kernel_for(self, device):
        impl = self._impls.get(device) or self._impls.get("default")
        if impl is None:
            raise NotImplementedError(f"{self.qualname}: no implementation for device '{device}' "
                                      f"(registered: {sorted(self._impls)})")
        return impl

    def _autograd_function(self):
        ag = _autograd()
        Function = getattr(ag, "Function", None) if ag else None
        if Function is None:
            raise NotImplementedError(f"{self.qualname}: a backward is registered but vibetensor.torch.autograd is "
                                      "not available in this build")
        if self._function is None:
            op = self

            class _Fn(Function):
                @staticmethod
                def forward(ctx, *args):
                    out = op._kernel_for(_device_of(args))(*args)
                    if op._setup_context is not None:
                        op._setup_context(ctx, args, out)
                    return out

                @staticmethod
                def backward(ctx, *grads):
                    g = op._backward(ctx, *grads)
                    g = g if isinstance(g, tuple) else (g,)
                    return g + (None,) * (len(op._schema.args) - len(g))

            _Fn.__name__ = f"{self.name}Backward"
            self._function = _Fn
        return self._function

    def __call__(self, *args, **kwargs):
        values = self._schema.bind(self.qualname, args, dict(kwargs))
        if self._backward is not None and any(isinstance(v, _C.Tensor) and getattr(v, "requires_grad", False)
                                              for v in values):
            return self._autograd_function().apply(*values)
        return self._kernel_for(_device_of(values))(*values)

    def __repr__(self):
        return f"<CustomOpDef({self.qualname}: {self.schema})>"


_ANNOT = {"Tensor": "Tensor", "int": "int", "float": "float", "bool": "bool", "str": "str"}


def _infer_schema(name, fn):
    sig = inspect.signature(fn)
    parts = []
    for p in sig.parameters.values():
        ann = p.annotation
        tname = getattr(ann, "__name__", str(ann))
        if ann is inspect.Parameter.empty:
            raise ValueError(f"custom_op {name!r}: parameter {p.name!r} needs a type annotation (or pass schema=)")
        if tname not in _ANNOT:
            raise ValueError(f"custom_op {name!r}: unsupported annotation {tname!r} for {p.name!r}")
        decl = f"{_ANNOT[tname]} {p.name}"
        if p.default is not inspect.Parameter.empty:
            decl += f"={p.default!r}"
        parts.append(decl)
    return f"{name}({', '.join(parts)}) -> Tensor"


def custom_op(name, fn=None, *, mutates_args=(), device_types=None, schema=None):
    """Defines a new op ``name`` ("ns::op") from ``fn``; returns a CustomOpDef (usable as a decorator)."""
    def deco(f):
        with _lock:
            if name in _custom_ops:
                raise RuntimeError(f"custom_op: {name!r} is already defined")
            short = name.split("::", 1)[-1]
            op = CustomOpDef(name, schema or _infer_schema(short, f))
            op.register_kernel(device_types, f)
            _custom_ops[name] = op
        return op
    return deco(fn) if fn is not None else deco


def define(qualname, schema, *, lib=None, tags=()):
    """Defines op ``qualname`` ("ns::name") with ``schema`` (the text after the name may omit it)."""
    with _lock:
        if qualname in _custom_ops:
            raise RuntimeError(f"define: {qualname!r} is already defined")
        short = qualname.split("::", 1)[-1]
        text = schema if schema.lstrip().startswith(short + "(") else short + schema
        op = CustomOpDef(qualname, text)
        _custom_ops[qualname] = op
        if lib is not None:
            lib._defined.append(qualname)
        return op


def _builtin_schema(name):
    for s in _C.op_schemas():
        if s.split("(", 1)[0].strip() == name:
            return _Schema(s)
    return None


def _grad_needed(args):
    if not _C._ag_is_grad_enabled():
        return False
    def req(x):
        return isinstance(x, _C.Tensor) and bool(getattr(x, "requires_grad", False))
    return any(req(a) or (isinstance(a, (list, tuple)) and any(req(x) for x in a)) for a in args)


def _install_builtin_override(name):
    """(Re)installs the Python-layer function of a dispatcher op: the overrides of ``impl`` and, for a plugin
    op, the backward of ``register_autograd`` (Note [Python override layer] in plugins_bindings.cpp)."""
    impls = _builtin_overrides.get(name) or {}
    if not impls and name not in _plugin_autograd:
        _C._set_python_override(name, None)
        _layer_fns.pop(name, None)
        return
    schema = _builtin_schema(name)
    kwonly = [a[0] for a in schema.args if a[2]]
    npos = len(schema.args) - len(kwonly)

    # `out=` (also how in-place forms call the kernel) is not passed to the override: it computes the
    # value and the result is written into `out` here, as an out= overload would.
    out_index = next((i for i, a in enumerate(schema.args) if a[0] == "out"), None)

    def run_impl(device, args):
        f = impls.get(device) or impls.get("default")
        if f is None:
            return NotImplemented
        out = None
        if out_index is not None:
            args = list(args)
            out = args[out_index]
            del args[out_index]
        names = [k for k in kwonly if k != "out"]
        result = f(*args[:npos], **dict(zip(names, args[npos:])))
        if out is not None:
            if list(out._sizes()) != list(result._sizes()):
                raise RuntimeError(f"{name}: override produced shape {list(result._sizes())}, but out= has shape "
                                   f"{list(out._sizes())}")
            _C.call("copy_", out, result)
            return out
        return result

    def dispatch(device, args):
        # Looked up per call: a registration dropped by unload_library / Library._destroy stops applying.
        fn = _plugin_autograd.get(name)
        if fn is not None and _grad_needed(args):
            return fn.apply(device, *args)
        return run_impl(device, args)

    def forward_below(device, args):
        # Inside the Python layer (switched off while it runs) with grad mode off: an impl() override, else
        # the op's own kernel through the dispatcher.
        r = run_impl(device, args)
        return _C.call(name, *args) if r is NotImplemented else r
    dispatch.forward_below = forward_below
    _C._set_python_override(name, dispatch)
    _layer_fns[name] = dispatch


def impl(qualname, types="default", func=None, *, lib=None):
    """Registers ``func`` for ``qualname`` on a device ("cpu", "cuda", "default"); a decorator if func is None.
    ``qualname`` names a custom op ("ns::name") or a built-in op ("add" or "aten::add") to override."""
    devices = [types] if isinstance(types, str) else list(types)

    def deco(f):
        with _lock:
            name = qualname
            if name in _custom_ops:
                op = _custom_ops[name]
                for d in devices:
                    op._impls[_norm_device(d)] = f
                    if lib is not None:
                        lib._impls.append((name, _norm_device(d)))
                return f
            if name.startswith("aten::"):
                name = name[len("aten::"):]
            if _builtin_schema(name) is None:
                raise RuntimeError(f"impl: unknown op {qualname!r} (define it first)")
            table = _builtin_overrides.setdefault(name, {})
            for d in devices:
                table[_norm_device(d)] = f
                if lib is not None:
                    lib._impls.append((name, _norm_device(d)))
            _install_builtin_override(name)
        return f
    return deco(func) if func is not None else deco


def register_kernel(op, device_types, func=None):
    """``torch.library.register_kernel``: a per-device implementation for a custom op (or its name)."""
    op = _custom_ops[op] if isinstance(op, str) else op
    return op.register_kernel(device_types, func)


def register_autograd(op, backward, /, *, setup_context=None, lib=None):
    """``torch.library.register_autograd``: ``backward(ctx, *grads)`` returns one gradient per input of the op
    (a tensor or None; a single value for a one-input op), ``setup_context(ctx, inputs, output)`` saves what the
    backward needs (``ctx.save_for_backward``). ``op`` is a custom op (CustomOpDef or "ns::name") or an op of a
    loaded C plugin (its name or ``vt.ops.<name>``): gradients then flow through the plugin's kernel, whichever
    way it is called (``vt.ops.<name>``, ``_C.call``, from C++). Without a registered backward, backward through
    a plugin op raises NotImplementedError naming it. ``lib``: a Library whose ``_destroy()`` drops the
    registration; unloading the plugin drops it too."""
    if isinstance(op, CustomOpDef):
        return op.register_autograd(backward, setup_context=setup_context)
    name = op.name if isinstance(op, _PluginOp) else op
    if not isinstance(name, str):
        raise TypeError(f"register_autograd: expected a custom op, a plugin op or an op name, got {type(op).__name__}")
    if name in _custom_ops:
        return _custom_ops[name].register_autograd(backward, setup_context=setup_context)
    if not callable(backward):
        raise TypeError("register_autograd: backward must be callable")
    if setup_context is not None and not callable(setup_context):
        raise TypeError("register_autograd: setup_context must be callable or None")
    if not _C._has_ext_op(name):
        if _builtin_schema(name) is not None:
            raise RuntimeError(f"register_autograd: {name!r} is a built-in op (it has its own derivative); only "
                               "custom ops and plugin ops take a registered backward")
        raise RuntimeError(f"register_autograd: unknown op {name!r} (load its plugin or define the custom op first)")
    with _lock:
        nargs = len(_builtin_schema(name).args)
        _plugin_autograd[name] = _plugin_autograd_function(name, backward, setup_context, nargs)
        if lib is not None:
            lib._autograd.append(name)
        _install_builtin_override(name)


def _plugin_autograd_function(name, backward, setup_context, nargs):
    """An autograd.Function running plugin op ``name`` (the kernel below the Python layer) with the registered
    backward. Its first argument is the call's device (it gets no gradient)."""
    ag = _autograd()
    Function = getattr(ag, "Function", None) if ag else None
    if Function is None:
        raise NotImplementedError(f"register_autograd({name!r}): vibetensor.torch.autograd is not available in "
                                  "this build")

    def forward(ctx, device, *args):
        ctx.needs_input_grad = ctx.needs_input_grad[1:]  # indexed by the op's arguments, as in torch
        out = _layer_fns[name].forward_below(device, list(args))
        if setup_context is not None:
            setup_context(ctx, args, out)
        return out

    def backward_(ctx, *grads):
        g = backward(ctx, *grads)
        g = tuple(g) if isinstance(g, (tuple, list)) else (g,)
        if len(g) > nargs:
            raise RuntimeError(f"{name}: the registered backward returned {len(g)} gradients, but the op has "
                               f"{nargs} inputs")
        return (None,) + g + (None,) * (nargs - len(g))

    return type(name, (Function,), {"forward": staticmethod(forward), "backward": staticmethod(backward_)})


def _drop_plugin_autograd(names):
    with _lock:
        for n in names:
            if _plugin_autograd.pop(n, None) is not None and _C._has_ext_op(n):
                _install_builtin_override(n)


class Library:
    """``torch.library.Library``: a handle for defining ops in a namespace (kind "DEF"/"FRAGMENT") or
    implementing ops of another one (kind "IMPL"); ``_destroy()`` undoes its registrations."""

    def __init__(self, ns, kind, dispatch_key=""):
        if kind not in ("DEF", "IMPL", "FRAGMENT"):
            raise ValueError(f"Library: kind must be DEF, IMPL or FRAGMENT, got {kind!r}")
        if kind == "DEF" and any(q.startswith(ns + "::") for q in _custom_ops):
            raise RuntimeError(f"Library: namespace {ns!r} already has a DEF library; use FRAGMENT")
        self.ns, self.kind, self.dispatch_key = ns, kind, dispatch_key
        self._defined, self._impls, self._autograd = [], [], []

    def define(self, schema, alias_analysis="", *, tags=()):
        if self.kind == "IMPL":
            raise RuntimeError("Library.define: an IMPL library cannot define ops")
        name = _Schema(schema).name
        define(f"{self.ns}::{name}", schema, lib=self)
        return name

    def impl(self, op_name, fn, dispatch_key="", *, with_keyset=False):
        # "aten" names the built-in ops (overrides); any other namespace holds custom ops.
        name = op_name if ("::" in op_name or self.ns == "aten") else f"{self.ns}::{op_name}"
        impl(name, dispatch_key or self.dispatch_key or "default", fn, lib=self)

    def _destroy(self):
        with _lock:
            for name, device in self._impls:
                if name in _custom_ops:
                    _custom_ops[name]._impls.pop(device, None)
                elif name in _builtin_overrides:
                    _builtin_overrides[name].pop(device, None)
                    if not _builtin_overrides[name]:
                        del _builtin_overrides[name]
                    _install_builtin_override(name)
            for q in self._defined:
                _custom_ops.pop(q, None)
            _drop_plugin_autograd(self._autograd)
            self._impls, self._defined, self._autograd = [], [], []


# ---- vt.ops ------------------------------------------------------------------------------------------

def load_library(path):
    """Loads a C plugin (vbt_plugin.h) and returns the names of the ops it defined. Raises RuntimeError
    when the library is rejected (missing entry point, ABI version mismatch, failed init, duplicate op
    name); nothing it registered stays registered."""
    path = os.fspath(path)
    names = list(_C._load_library(path))
    with _lock:
        _library_ops[path] = names
    return names


def unload_library(path):
    """Rolls back everything the plugin at ``path`` registered: its ops leave the dispatcher (and vt.ops),
    built-in kernels it overrode are restored, backwards and overrides attached to its ops from Python
    (register_autograd, impl) are dropped. Returns False when it was not loaded."""
    path = os.fspath(path)
    with _lock:
        names = _library_ops.pop(path, [])
        for n in names:
            had_impl = _builtin_overrides.pop(n, None) is not None
            if (_plugin_autograd.pop(n, None) is not None or had_impl) and _C._has_ext_op(n):
                _install_builtin_override(n)  # removes the Python-layer function while the op still exists
    return bool(_C._unload_library(path))


class _PluginOp:
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __call__(self, *args, **kwargs):
        return _C._ext_call(self.name, *args, **kwargs)

    @property
    def schema(self):
        return _C._ext_schema(self.name)

    def __repr__(self):
        return f"<plugin op {self.schema}>"


class _Namespace:
    def __init__(self, ns):
        self._ns = ns

    def __getattr__(self, name):
        q = f"{self._ns}::{name}"
        op = _custom_ops.get(q)
        if op is not None:
            return op
        if _C._has_ext_op(q):  # a plugin op named "ns::name" (plugin ABI 1.2)
            return _PluginOp(q)
        if self._ns == "aten" and _builtin_schema(name) is not None:
            return lambda *a, **k: _C.call(name, *a, **k)
        raise AttributeError(f"vt.ops.{self._ns} has no op {name!r}")


class _Ops:
    """``vt.ops``: ``load_library``, plugin ops by name, custom ops as ``vt.ops.<ns>.<name>``, built-in ops as
    ``vt.ops.aten.<name>``."""

    load_library = staticmethod(load_library)
    unload_library = staticmethod(unload_library)

    @property
    def overridden_ops(self):
        """Built-in ops whose CPU kernel a loaded plugin overrides."""
        return set(_C._overridden_ops())

    @property
    def loaded_libraries(self):
        return set(_C._loaded_libraries())

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if _C._has_ext_op(name):
            return _PluginOp(name)
        if (name == "aten" or any(q.startswith(name + "::") for q in _custom_ops)
                or any(q.startswith(name + "::") for q in _C._ext_ops())):
            return _Namespace(name)
        raise AttributeError(f"vt.ops has no op or namespace {name!r}")


ops = _Ops()


def _attach():
    _interop.install()
    vt = sys.modules.get("vibetensor.torch")
    if vt is not None and not hasattr(vt, "ops"):
        vt.ops = ops


_attach()
