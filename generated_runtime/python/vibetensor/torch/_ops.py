"""Functions generated from the native op table (src/vbt/ops/op_table.cpp).

Every op is reachable as ``_ops.call(name, *args, **kwargs)`` (the native ``_C.call``, which converts
arguments by the op's schema, applies type promotion for Python numbers and raises TypeError for bad
arguments). This module reads the schemas once and builds:
  * ``OPS``: name -> parsed schema (argument names, whether the op has ``out=``, the first argument type),
  * plain functions ``vt.<name>`` for every op (hand-written overloads in _torch_funcs.py replace some),
  * the list of ops that have an in-place ``<name>_`` form (ops with ``out=`` whose first argument is
    ``Tensor self``): the in-place form is the same kernel called with ``out=self``.
"""
import functools
import re

from .. import _C

call = _C.call

_SCHEMA = re.compile(r"^\s*(\w+)\((.*)\)\s*->\s*(.*)$")


class OpInfo:
    __slots__ = ("name", "schema", "args", "has_out", "first_type", "returns")

    def __init__(self, schema):
        m = _SCHEMA.match(schema)
        self.name, body, self.returns = m.group(1), m.group(2), m.group(3)
        self.schema = schema
        self.args = []
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
        self.first_type = None
        for p in parts:
            p = p.strip()
            if p == "*":
                continue
            decl = p.split("=")[0].strip()
            typ, name = decl.rsplit(" ", 1)
            if self.first_type is None:
                self.first_type = typ
            self.args.append(name)
        self.has_out = "out" in self.args

    @property
    def is_method(self):
        return self.first_type == "Tensor" and self.args[0] in ("self", "input", "condition")

    def __repr__(self):
        return f"OpInfo({self.schema!r})"


# name -> how its out= is honoured: "kernel" (the kernel writes out; in-place form = out=self) or a
# dispatcher mode ("exact", "cast", "dtype_from_out": Note [out= by the dispatcher] in dispatcher.h)
OUT_MODES = dict(_C.op_out_modes())
# dispatcher-out ops that torch also has as in-place Tensor methods (out=self is correct for these)
_INPLACE_BY_OUT = ("tril", "triu", "addmm", "baddbmm", "scatter", "scatter_add", "index_add")

OPS = {}
for _s in _C.op_schemas():
    _info = OpInfo(_s)
    OPS[_info.name] = _info


def make_function(name):
    """A module-level function for op `name` (C-level partial: minimal call overhead)."""
    f = functools.partial(call, name)
    return f


def make_method(name):
    """A Tensor method for op `name` (a real function so that it binds `self`). In-place ops
    (name ends with `_`) return `self` itself, as torch does (C++ hands back a new Python handle)."""
    if name.endswith("_"):
        def method(self, *args, **kwargs):
            call(name, self, *args, **kwargs)
            return self
    else:
        def method(self, *args, **kwargs):
            return call(name, self, *args, **kwargs)
    method.__name__ = name
    method.__qualname__ = "Tensor." + name
    method.__doc__ = OPS[name].schema
    return method


def make_inplace_method(name):
    """`Tensor.<name>_`: the op with out=self (the kernel bumps the version counter)."""
    def method(self, *args, **kwargs):
        call(name, self, *args, out=self, **kwargs)
        return self
    method.__name__ = name + "_"
    method.__qualname__ = "Tensor." + name + "_"
    method.__doc__ = "In-place form of " + OPS[name].schema
    return method


def inplace_op_names():
    return [n for n, i in OPS.items() if i.has_out and i.first_type == "Tensor" and not n.endswith("_")
            and (OUT_MODES.get(n) == "kernel" or n in _INPLACE_BY_OUT)]


def write_out(name, out, result):
    """out= for overlay functions that compute `result` themselves: op `name`'s dtype rule, resize, copy."""
    return result if out is None else _C._write_out(name, out, result)
