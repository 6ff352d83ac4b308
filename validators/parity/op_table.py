"""The parity op table: every op the parity gate checks, declared once.

An entry says how to call the op in a framework ``T`` (torch or the module under test: one lambda, ``T`` first),
which input cases to feed it (shapes with broadcast pairs, non-contiguous layouts, zero-size, 0-dim), which dtypes
it supports, per-dtype tolerance overrides, and its in-place / out= forms. Ops are named ``category.name``
(``elementwise.add``); variants of one op carry a suffix (``elementwise.add_alpha``) and ``requires`` names the
attribute the module must have (missing attribute = "missing op", a failure).

Conventions:
- ``fn(T, *tensors, **kw)`` returns a tensor, a tuple, or a dict {label: tensor|tuple} (labels name the call in
  failure messages). ``out=True`` means ``fn(T, *tensors, out=o)`` is the out= form (single-tensor ops only).
- ``inplace(*tensors)`` mutates ``tensors[0]`` and returns it.
- ``grad=True``: differentiable in every input of the dtype under test (or ``grad=(i, ...)``: in those arguments);
  backward is checked in float64 against torch's gradients and against finite differences.
Cases whose in-place/out= form torch itself rejects (broadcast self, int self with a float result) are simply not
checked in that form; a case torch rejects in functional form is a table bug (reported as status "error").
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Callable

from validators.parity.tensors import DTYPES, FLOATS, INTS, SIGNED_INTS, TensorArg

NUMERIC = FLOATS + INTS
SIGNED = FLOATS + SIGNED_INTS
ALL = DTYPES
UFLOAT = FLOATS + ("int32", "int64")  # float functions; ints promote to the default float dtype


@dataclass(frozen=True)
class Case:
    label: str
    args: tuple[TensorArg, ...]


@dataclass(frozen=True)
class OpSpec:
    name: str  # "category.op"
    fn: Callable
    cases: tuple[Case, ...]
    dtypes: tuple[str, ...]
    requires: tuple[str, ...] | None = None  # attribute paths on the module ("nn.functional.gelu"); None: the name
    tol: dict[str, tuple[float, float]] = field(default_factory=dict)  # dtype -> (atol, rtol) overrides
    inplace: Callable | None = None
    out: bool = False
    grad: bool | tuple[int, ...] = False  # True: every input of the dtype under test; or those argument indices
    # torch's side when it must differ from fn: a formula whose float32 result depends on the CPU torch runs on
    reference: Callable | None = None

    @property
    def category(self) -> str:
        return self.name.split(".", 1)[0]


def a(*shape, **kw) -> TensorArg:
    return TensorArg(tuple(shape), **kw)


def case(label: str, *args: TensorArg) -> Case:
    return Case(label, tuple(args))


def unary_cases(domain: str = "any", specials: bool = False) -> tuple[Case, ...]:
    cases = [case("contiguous[3,5]", a(3, 5, domain=domain)),
             case("transposed[3,5]", a(3, 5, domain=domain, layout="transposed")),
             case("strided[2,3,4]", a(2, 3, 4, domain=domain, layout="strided")),
             case("zero_size[0,4]", a(0, 4, domain=domain)),
             case("scalar_0d", a(domain=domain))]
    if specials:
        cases.append(case("nan_inf[4,5]", a(4, 5, domain="specials")))
    return tuple(cases)


def binary_cases(da: str = "any", db: str = "any") -> tuple[Case, ...]:
    return (case("same[3,5]", a(3, 5, domain=da), a(3, 5, domain=db)),
            case("broadcast[3,1]x[1,5]", a(3, 1, domain=da), a(1, 5, domain=db)),
            case("broadcast_rank[2,3,4]x[4]", a(2, 3, 4, domain=da), a(4, domain=db)),
            case("noncontig[4,5]T x strided", a(4, 5, domain=da, layout="transposed"),
                 a(4, 5, domain=db, layout="strided")),
            case("expanded[3,4]", a(3, 4, domain=da), a(3, 4, domain=db, layout="expanded")),
            case("tensor_x_0d", a(3, 4, domain=da), a(domain=db)),
            case("zero_size[0,4]", a(0, 4, domain=da), a(0, 4, domain=db)))


def ternary_cases(da="any", db="any", dc="any") -> tuple[Case, ...]:
    return (case("same[3,4]", a(3, 4, domain=da), a(3, 4, domain=db), a(3, 4, domain=dc)),
            case("broadcast[3,4]x[4]x[3,1]", a(3, 4, domain=da), a(4, domain=db), a(3, 1, domain=dc)),
            case("noncontig", a(3, 4, domain=da, layout="transposed"), a(3, 4, domain=db, layout="strided"),
                 a(3, 4, domain=dc)),
            case("zero_size", a(0, 4, domain=da), a(0, 4, domain=db), a(0, 4, domain=dc)))


def reduce_cases(domain="any", zero_size=False) -> tuple[Case, ...]:
    cases = [case("matrix[4,5]", a(4, 5, domain=domain)),
             case("transposed[4,5]", a(4, 5, domain=domain, layout="transposed")),
             case("3d_strided[2,3,4]", a(2, 3, 4, domain=domain, layout="strided"))]
    if zero_size:
        cases.append(case("zero_size[0,5]", a(0, 5, domain=domain)))
    return tuple(cases)


MASK = dict(dtype="bool", domain="mask")
LOW_PRECISION_MATH = {"float32": (1e-4, 1e-4), "float16": (1e-2, 1e-2), "bfloat16": (5e-2, 5e-2)}

OPS: list[OpSpec] = []


def op(name, fn, cases, dtypes, **kw) -> None:
    OPS.append(OpSpec(name, fn, tuple(cases), tuple(dtypes), **kw))


# ---- elementwise ------------------------------------------------------------------------------------------------
E = "elementwise."
op(E + "add", lambda T, x, y, **kw: T.add(x, y, **kw), binary_cases(), ALL, inplace=lambda x, y: x.add_(y),
   out=True, grad=True)
op(E + "add_alpha", lambda T, x, y, **kw: T.add(x, y, alpha=2, **kw), binary_cases(), NUMERIC, requires=("add",),
   inplace=lambda x, y: x.add_(y, alpha=2), out=True, grad=True)
op(E + "add_scalar", lambda T, x: {"add(x, 2.5)": T.add(x, 2.5), "x + 3": x + 3, "2 * x": 2 * x},
   unary_cases(), NUMERIC, requires=("add",), grad=True)
op(E + "sub", lambda T, x, y, **kw: T.sub(x, y, alpha=2, **kw), binary_cases(), NUMERIC,
   inplace=lambda x, y: x.sub_(y, alpha=2), out=True, grad=True)
op(E + "mul", lambda T, x, y, **kw: T.mul(x, y, **kw), binary_cases(), ALL, inplace=lambda x, y: x.mul_(y),
   out=True, grad=True)
op(E + "div", lambda T, x, y, **kw: T.div(x, y, **kw), binary_cases("any", "nonzero"), NUMERIC,
   inplace=lambda x, y: x.div_(y), out=True, grad=True)
op(E + "div_trunc", lambda T, x, y, **kw: T.div(x, y, rounding_mode="trunc", **kw), binary_cases("any", "nonzero"),
   NUMERIC, requires=("div",), inplace=lambda x, y: x.div_(y, rounding_mode="trunc"), out=True)
op(E + "div_floor", lambda T, x, y, **kw: T.div(x, y, rounding_mode="floor", **kw), binary_cases("any", "nonzero"),
   NUMERIC, requires=("div",), inplace=lambda x, y: x.div_(y, rounding_mode="floor"), out=True)
op(E + "remainder", lambda T, x, y, **kw: T.remainder(x, y, **kw), binary_cases("any", "nonzero"), NUMERIC,
   inplace=lambda x, y: x.remainder_(y), out=True)
op(E + "pow", lambda T, x, y, **kw: T.pow(x, y, **kw), binary_cases("positive", "small"), FLOATS,
   inplace=lambda x, y: x.pow_(y), out=True, grad=True, tol=LOW_PRECISION_MATH)
op(E + "pow_scalar", lambda T, x: {"pow(x, 3)": T.pow(x, 3), "x ** 2": x ** 2}, unary_cases(), SIGNED,
   requires=("pow",), grad=True, tol=LOW_PRECISION_MATH)

UNARY_MATH = [("exp", "any", True), ("exp2", "any", True), ("log", "positive", True), ("log2", "positive", True),
              ("log1p", "positive", True), ("expm1", "any", True), ("sqrt", "positive", True),
              ("rsqrt", "positive", True), ("reciprocal", "nonzero", True), ("sin", "any", True),
              ("cos", "any", True), ("tan", "small", True), ("tanh", "any", True), ("sigmoid", "any", True),
              ("erf", "any", True)]
for _name, _domain, _grad in UNARY_MATH:
    op(E + _name, (lambda n: lambda T, x, **kw: getattr(T, n)(x, **kw))(_name), unary_cases(_domain, specials=True),
       UFLOAT, inplace=(lambda n: lambda x: getattr(x, n + "_")())(_name), out=True, grad=_grad,
       tol=LOW_PRECISION_MATH)
for _name in ("neg", "abs"):
    op(E + _name, (lambda n: lambda T, x, **kw: getattr(T, n)(x, **kw))(_name), unary_cases(specials=True), SIGNED,
       inplace=(lambda n: lambda x: getattr(x, n + "_")())(_name), out=True, grad=True)
op(E + "sign", lambda T, x, **kw: T.sign(x, **kw), unary_cases(specials=True), NUMERIC, inplace=lambda x: x.sign_(),
   out=True)
for _name in ("floor", "ceil", "round", "trunc"):
    op(E + _name, (lambda n: lambda T, x, **kw: getattr(T, n)(x, **kw))(_name), unary_cases(specials=True), NUMERIC,
       inplace=(lambda n: lambda x: getattr(x, n + "_")())(_name), out=True)
op(E + "relu", lambda T, x: {"relu": T.relu(x), "F.relu": T.nn.functional.relu(x)}, unary_cases(specials=True),
   SIGNED, inplace=lambda x: x.relu_(), grad=True)
# The reference is torch's float64 gelu rounded to the dtype: torch 2.13's float32 vector loop gives NaN for +inf on
# some CPUs (an AVX-512 EPYC) and inf on others; its float64 formula gives inf (x/2 * (1 + erf(x/sqrt2))).
op(E + "gelu", lambda T, x: T.nn.functional.gelu(x), unary_cases(specials=True), FLOATS,
   requires=("nn.functional.gelu",), grad=True, tol=LOW_PRECISION_MATH,
   reference=lambda T, x: T.nn.functional.gelu(x.double()).to(x.dtype))
op(E + "gelu_tanh", lambda T, x: T.nn.functional.gelu(x, approximate="tanh"), unary_cases(specials=True), FLOATS,
   requires=("nn.functional.gelu",), grad=True, tol=LOW_PRECISION_MATH)
op(E + "silu", lambda T, x: T.nn.functional.silu(x), unary_cases(specials=True), FLOATS,
   requires=("nn.functional.silu",), grad=True, tol=LOW_PRECISION_MATH)
op(E + "softplus", lambda T, x: {"softplus()": T.nn.functional.softplus(x),
                                 "softplus(beta=2, threshold=3)": T.nn.functional.softplus(x, beta=2, threshold=3)},
   unary_cases(), FLOATS, requires=("nn.functional.softplus",), grad=True, tol=LOW_PRECISION_MATH)
op(E + "clamp", lambda T, x, **kw: T.clamp(x, min=1, max=4, **kw), unary_cases(specials=True), NUMERIC,
   inplace=lambda x: x.clamp_(min=1, max=4), out=True, grad=True)
op(E + "clamp_tensor", lambda T, x, lo, hi: T.clamp(x, lo, hi), ternary_cases(), NUMERIC, requires=("clamp",))
op(E + "where", lambda T, c, x, y, **kw: T.where(c, x, y, **kw),
   (case("same[3,4]", a(3, 4, **MASK), a(3, 4), a(3, 4)),
    case("broadcast[3,1]x[4]x[3,4]", a(3, 1, **MASK), a(4), a(3, 4)),
    case("noncontig", a(3, 4, **MASK, layout="transposed"), a(3, 4, layout="strided"), a(3, 4)),
    case("zero_size", a(0, 4, **MASK), a(0, 4), a(0, 4))), ALL, out=True, grad=True)
for _name in ("maximum", "minimum"):
    op(E + _name, (lambda n: lambda T, x, y, **kw: getattr(T, n)(x, y, **kw))(_name),
       binary_cases() + (case("nan_inf[4,5]", a(4, 5, domain="specials"), a(4, 5, domain="specials")),),
       NUMERIC, out=True, grad=True)
op(E + "lerp", lambda T, x, y: {"lerp(x, y, 0.3)": T.lerp(x, y, 0.3)}, binary_cases(), FLOATS,
   inplace=lambda x, y: x.lerp_(y, 0.3), grad=True, tol=LOW_PRECISION_MATH)
op(E + "lerp_tensor", lambda T, x, y, w, **kw: T.lerp(x, y, w, **kw), ternary_cases(dc="small"), FLOATS,
   requires=("lerp",), out=True, grad=True, tol=LOW_PRECISION_MATH)
op(E + "addcmul", lambda T, x, y, z, **kw: T.addcmul(x, y, z, value=0.5, **kw), ternary_cases(), FLOATS,
   inplace=lambda x, y, z: x.addcmul_(y, z, value=0.5), out=True, grad=True, tol=LOW_PRECISION_MATH)
op(E + "addcdiv", lambda T, x, y, z, **kw: T.addcdiv(x, y, z, value=0.5, **kw), ternary_cases(dc="nonzero"), FLOATS,
   inplace=lambda x, y, z: x.addcdiv_(y, z, value=0.5), out=True, grad=True, tol=LOW_PRECISION_MATH)
for _name in ("eq", "ne", "lt", "le", "gt", "ge"):
    op(E + _name, (lambda n: lambda T, x, y, **kw: getattr(T, n)(x, y, **kw))(_name), binary_cases(), ALL, out=True)
op(E + "compare_scalar", lambda T, x: {"x < 0.5": x < 0.5, "x >= 1": x >= 1, "x == 2": x == 2, "x != 0": x != 0,
                                      "gt(x, -1)": T.gt(x, -1)}, unary_cases(), NUMERIC, requires=("gt",))
for _name in ("logical_and", "logical_or", "logical_xor"):
    op(E + _name, (lambda n: lambda T, x, y, **kw: getattr(T, n)(x, y, **kw))(_name),
       binary_cases("sparse", "sparse"), ALL, out=True)
op(E + "logical_not", lambda T, x, **kw: T.logical_not(x, **kw), unary_cases("sparse"), ALL, out=True)
for _name in ("isnan", "isinf", "isfinite"):
    op(E + _name, (lambda n: lambda T, x: getattr(T, n)(x))(_name), unary_cases(specials=True), NUMERIC)

# ---- reductions -------------------------------------------------------------------------------------------------
R = "reduction."
REDUCE_TOL = {"float32": (1e-5, 1e-5), "float16": (5e-3, 5e-3), "bfloat16": (5e-2, 5e-2)}
op(R + "sum", lambda T, x: {"sum(x)": T.sum(x), "sum(x, dim=-1)": T.sum(x, dim=-1),
                            "sum(x, dim=(0, -1), keepdim=True)": T.sum(x, dim=(0, -1), keepdim=True),
                            "x.sum(0)": x.sum(0)}, reduce_cases(zero_size=True), ALL, grad=True, tol=REDUCE_TOL)
op(R + "mean", lambda T, x: {"mean(x)": T.mean(x), "mean(x, dim=-1)": T.mean(x, dim=-1),
                             "mean(x, dim=(0, -1), keepdim=True)": T.mean(x, dim=(0, -1), keepdim=True)},
   reduce_cases(), FLOATS, grad=True, tol=REDUCE_TOL)
op(R + "prod", lambda T, x: {"prod(x)": T.prod(x), "prod(x, dim=-1)": T.prod(x, dim=-1),
                             "prod(x, 0, keepdim=True)": T.prod(x, 0, keepdim=True)},
   reduce_cases("small", zero_size=True), ALL, grad=True, tol=REDUCE_TOL)
for _name in ("max", "min"):
    op(R + _name, (lambda n: lambda T, x: {f"{n}(x)": getattr(T, n)(x), f"{n}(x, dim=-1)": getattr(T, n)(x, dim=-1),
                                           f"{n}(x, 0, keepdim=True)": getattr(T, n)(x, 0, keepdim=True)})(_name),
       reduce_cases() + (case("nan_inf[4,5]", a(4, 5, domain="specials")),), NUMERIC, grad=True)
for _name in ("amax", "amin"):
    op(R + _name, (lambda n: lambda T, x: {f"{n}(x, dim=-1)": getattr(T, n)(x, dim=-1),
                                           f"{n}(x, dim=(0, -1), keepdim=True)":
                                               getattr(T, n)(x, dim=(0, -1), keepdim=True)})(_name),
       reduce_cases(), NUMERIC, grad=True)
for _name in ("argmax", "argmin"):
    op(R + _name, (lambda n: lambda T, x: {f"{n}(x)": getattr(T, n)(x), f"{n}(x, dim=-1)": getattr(T, n)(x, dim=-1),
                                           f"{n}(x, 0, keepdim=True)": getattr(T, n)(x, 0, keepdim=True)})(_name),
       reduce_cases(), NUMERIC)
for _name in ("var", "std"):
    op(R + _name, (lambda n: lambda T, x: {f"{n}(x)": getattr(T, n)(x),
                                           f"{n}(x, dim=-1)": getattr(T, n)(x, dim=-1),
                                           f"{n}(x, dim=-1, correction=0)": getattr(T, n)(x, dim=-1, correction=0),
                                           f"{n}(x, dim=(0, -1), keepdim=True, correction=2)":
                                               getattr(T, n)(x, dim=(0, -1), keepdim=True, correction=2)})(_name),
       reduce_cases(), FLOATS, grad=True, tol=REDUCE_TOL)
op(R + "norm", lambda T, x: {"norm(x)": T.norm(x), "norm(x, dim=-1)": T.norm(x, dim=-1),
                             "norm(x, p=1, dim=-1, keepdim=True)": T.norm(x, p=1, dim=-1, keepdim=True)},
   reduce_cases(), FLOATS, grad=True, tol=REDUCE_TOL)
op(R + "logsumexp", lambda T, x: {"logsumexp(x, dim=-1)": T.logsumexp(x, dim=-1),
                                  "logsumexp(x, dim=(0, -1), keepdim=True)": T.logsumexp(x, dim=(0, -1), keepdim=True)},
   reduce_cases(), FLOATS, grad=True, tol=REDUCE_TOL)
for _name in ("all", "any"):
    op(R + _name, (lambda n: lambda T, x: {f"{n}(x)": getattr(T, n)(x), f"{n}(x, dim=-1)": getattr(T, n)(x, dim=-1),
                                           f"{n}(x, 0, keepdim=True)": getattr(T, n)(x, 0, keepdim=True)})(_name),
       reduce_cases("sparse", zero_size=True), ALL)
op(R + "cumsum", lambda T, x: {"cumsum(x, dim=-1)": T.cumsum(x, dim=-1), "cumsum(x, 0)": T.cumsum(x, 0)},
   reduce_cases(zero_size=True), ALL, grad=True, tol=REDUCE_TOL)
op(R + "cumprod", lambda T, x: {"cumprod(x, dim=-1)": T.cumprod(x, dim=-1), "cumprod(x, 0)": T.cumprod(x, 0)},
   reduce_cases("small", zero_size=True), NUMERIC, grad=True, tol=REDUCE_TOL)
op(R + "softmax", lambda T, x: {"softmax(x, dim=-1)": T.softmax(x, dim=-1),
                                "F.softmax(x, dim=0)": T.nn.functional.softmax(x, dim=0)},
   reduce_cases(), FLOATS, grad=True, tol=REDUCE_TOL)
op(R + "log_softmax", lambda T, x: {"log_softmax(x, dim=-1)": T.log_softmax(x, dim=-1),
                                    "F.log_softmax(x, dim=0)": T.nn.functional.log_softmax(x, dim=0)},
   reduce_cases(), FLOATS, grad=True, tol=REDUCE_TOL)

# ---- linalg -----------------------------------------------------------------------------------------------------
L = "linalg."
MM_TOL = {"float32": (1e-4, 1e-4), "float16": (2e-2, 1e-2), "bfloat16": (1e-1, 3e-2)}
op(L + "matmul", lambda T, x, y, **kw: T.matmul(x, y, **kw),
   (case("mat_mat[3,4]x[4,5]", a(3, 4), a(4, 5)),
    case("batched[2,3,4]x[4,5]", a(2, 3, 4), a(4, 5)),
    case("broadcast[2,1,3,4]x[3,4,5]", a(2, 1, 3, 4), a(3, 4, 5)),
    case("vec_mat[4]x[4,5]", a(4), a(4, 5)),
    case("mat_vec[3,4]x[4]", a(3, 4), a(4)),
    case("vec_vec[4]x[4]", a(4), a(4)),
    case("transposed", a(3, 4, layout="transposed"), a(4, 5, layout="strided")),
    case("zero_k[3,0]x[0,5]", a(3, 0), a(0, 5))), FLOATS, out=True, grad=True, tol=MM_TOL)
op(L + "mm", lambda T, x, y, **kw: T.mm(x, y, **kw),
   (case("[3,4]x[4,5]", a(3, 4), a(4, 5)), case("transposed", a(3, 4, layout="transposed"), a(4, 5, layout="offset")),
    case("zero_size[0,4]x[4,5]", a(0, 4), a(4, 5))), FLOATS, out=True, grad=True, tol=MM_TOL)
op(L + "bmm", lambda T, x, y, **kw: T.bmm(x, y, **kw),
   (case("[2,3,4]x[2,4,5]", a(2, 3, 4), a(2, 4, 5)),
    case("transposed", a(2, 3, 4, layout="transposed"), a(2, 4, 5, layout="strided"))),
   FLOATS, out=True, grad=True, tol=MM_TOL)
op(L + "addmm", lambda T, c, x, y, **kw: T.addmm(c, x, y, beta=0.5, alpha=2, **kw),
   (case("bias_row[5]", a(5), a(3, 4), a(4, 5)), case("full[3,5]", a(3, 5), a(3, 4, layout="transposed"), a(4, 5))),
   FLOATS, out=True, grad=True, tol=MM_TOL)
op(L + "linear", lambda T, x, w, b: {"linear(x, w, b)": T.nn.functional.linear(x, w, b),
                                     "linear(x, w)": T.nn.functional.linear(x, w)},
   (case("[2,3,4]x[5,4]", a(2, 3, 4), a(5, 4), a(5)), case("noncontig", a(3, 4, layout="transposed"), a(5, 4), a(5))),
   FLOATS, requires=("nn.functional.linear",), grad=True, tol=MM_TOL)
op(L + "outer", lambda T, x, y, **kw: T.outer(x, y, **kw), (case("[3]x[4]", a(3), a(4)),), FLOATS + INTS, out=True,
   grad=True, tol=MM_TOL)
op(L + "dot", lambda T, x, y, **kw: T.dot(x, y, **kw), (case("[7]x[7]", a(7), a(7)),
                                                      case("strided", a(7, layout="strided"), a(7, layout="offset"))),
   FLOATS, out=True, grad=True, tol=MM_TOL)
op(L + "baddbmm", lambda T, c, x, y, **kw: T.baddbmm(c, x, y, beta=0.5, alpha=2, **kw),
   (case("[2,3,5]", a(2, 3, 5), a(2, 3, 4), a(2, 4, 5)), case("broadcast_c[5]", a(5), a(2, 3, 4), a(2, 4, 5))),
   FLOATS, out=True, grad=True, tol=MM_TOL)

# ---- indexing and shape -----------------------------------------------------------------------------------------
I = "indexing."
GRID = (case("[4,5]", a(4, 5)), case("transposed[4,5]", a(4, 5, layout="transposed")))
op(I + "getitem", lambda T, x: {"x[1]": x[1], "x[:, 1:3]": x[:, 1:3], "x[..., ::2]": x[..., ::2],
                                "x[None, -1]": x[None, -1], "x[1:, -2]": x[1:, -2], "x[2, 3]": x[2, 3]},
   GRID, ALL, requires=(), grad=True)
op(I + "getitem_tensor", lambda T, x, i, m: {"x[idx]": x[i], "x[:, idx]": x[:, i], "x[mask]": x[m]},
   (case("[4,5]", a(4, 5), a(3, domain="index", high=4, dtype="int64"), a(4, 5, **MASK)),
    case("transposed", a(4, 5, layout="transposed"), a(3, domain="index", high=4, dtype="int64"), a(4, 5, **MASK))),
   ALL, requires=(), grad=True)
op(I + "index_select", lambda T, x, i, **kw: T.index_select(x, 1, i, **kw),
   (case("[4,5]", a(4, 5), a(6, domain="index", high=5, dtype="int64")),
    case("transposed", a(4, 5, layout="transposed"), a(2, domain="index", high=5, dtype="int64"))),
   ALL, out=True, grad=True)
op(I + "gather", lambda T, x, i, **kw: T.gather(x, 1, i, **kw),
   (case("[4,5]", a(4, 5), a(4, 3, domain="index", high=5, dtype="int64")),
    case("transposed", a(4, 5, layout="transposed"), a(4, 7, domain="index", high=5, dtype="int64"))),
   ALL, out=True, grad=True)
op(I + "scatter", lambda T, x, i, s: T.scatter(x, 1, i, s),
   (case("[4,5]", a(4, 5), a(4, 3, domain="unique_index", high=5, dtype="int64"), a(4, 3)),
    case("transposed", a(4, 5, layout="transposed"), a(4, 2, domain="unique_index", high=5, dtype="int64"),
         a(4, 2, layout="strided"))), ALL, inplace=lambda x, i, s: x.scatter_(1, i, s), grad=True)
op(I + "scatter_add", lambda T, x, i, s: T.scatter_add(x, 1, i, s),
   (case("[4,5]", a(4, 5), a(4, 6, domain="index", high=5, dtype="int64"), a(4, 6)),
    case("transposed", a(4, 5, layout="transposed"), a(4, 6, domain="index", high=5, dtype="int64"), a(4, 6))),
   NUMERIC, inplace=lambda x, i, s: x.scatter_add_(1, i, s), grad=True, tol=REDUCE_TOL)
op(I + "index_add", lambda T, x, i, s: T.index_add(x, 0, i, s, alpha=2),
   (case("[4,5]", a(4, 5), a(6, domain="index", high=4, dtype="int64"), a(6, 5)),),
   NUMERIC, inplace=lambda x, i, s: x.index_add_(0, i, s, alpha=2), grad=True, tol=REDUCE_TOL)
op(I + "masked_fill", lambda T, x, m: T.masked_fill(x, m, 3),
   (case("[3,4]", a(3, 4), a(3, 4, **MASK)), case("broadcast_mask[1,4]", a(3, 4), a(1, 4, **MASK)),
    case("transposed", a(3, 4, layout="transposed"), a(3, 4, **MASK))), NUMERIC,
   inplace=lambda x, m: x.masked_fill_(m, 3), grad=True)
op(I + "masked_select", lambda T, x, m, **kw: T.masked_select(x, m, **kw),
   (case("[3,4]", a(3, 4), a(3, 4, **MASK)), case("broadcast_mask[1,4]", a(3, 4), a(1, 4, **MASK)),
    case("transposed", a(3, 4, layout="transposed"), a(3, 4, **MASK))), ALL, out=True, grad=True)
op(I + "take_along_dim", lambda T, x, i: {"dim=1": T.take_along_dim(x, i, dim=1), "flat": T.take_along_dim(x, i)},
   (case("[4,5]", a(4, 5), a(4, 3, domain="index", high=5, dtype="int64")),), ALL, grad=True)
op(I + "cat", lambda T, x, y, z: {"cat([x, y], 0)": T.cat([x, y], 0), "cat([x, z], dim=-1)": T.cat([x, z], dim=-1),
                                  "cat((x,))": T.cat((x,))},
   (case("[2,3]+[4,3]+[2,5]", a(2, 3), a(4, 3), a(2, 5)),
    case("noncontig", a(2, 3, layout="transposed"), a(4, 3, layout="strided"), a(2, 5, layout="offset")),
    case("zero_size", a(0, 3), a(4, 3), a(0, 5))), ALL, grad=True)
op(I + "stack", lambda T, x, y: {"stack([x, y])": T.stack([x, y]), "stack([x, y], dim=-1)": T.stack([x, y], dim=-1)},
   (case("[3,4]", a(3, 4), a(3, 4)), case("noncontig", a(3, 4, layout="transposed"), a(3, 4, layout="strided")),
    case("0d", a(), a())), ALL, grad=True)
op(I + "split", lambda T, x: {"split(x, 2, dim=1)": T.split(x, 2, dim=1), "split(x, [1, 3])": T.split(x, [1, 3])},
   GRID, ALL, grad=True)
op(I + "chunk", lambda T, x: {"chunk(x, 3, dim=-1)": T.chunk(x, 3, dim=-1), "x.chunk(2)": x.chunk(2)},
   GRID, ALL, grad=True)
op(I + "repeat", lambda T, x: {"x.repeat(2, 3)": x.repeat(2, 3), "x.repeat(2, 1, 1)": x.repeat(2, 1, 1)},
   GRID, ALL, requires=(), grad=True)
op(I + "tile", lambda T, x: {"tile(x, (2,))": T.tile(x, (2,)), "tile(x, (2, 1, 2))": T.tile(x, (2, 1, 2))},
   GRID, ALL, grad=True)
op(I + "flip", lambda T, x: {"flip(x, (0,))": T.flip(x, (0,)), "flip(x, dims=(0, 1))": T.flip(x, dims=(0, 1))},
   GRID, ALL, grad=True)
op(I + "roll", lambda T, x: {"roll(x, 2, 1)": T.roll(x, 2, 1), "roll(x, (1, -1), (0, 1))": T.roll(x, (1, -1), (0, 1)),
                             "roll(x, 3)": T.roll(x, 3)}, GRID, ALL, grad=True)
op(I + "tril", lambda T, x, **kw: T.tril(x, **kw), GRID + (case("batched[2,3,4]", a(2, 3, 4)),), ALL,
   inplace=lambda x: x.tril_(), out=True, grad=True)
op(I + "triu", lambda T, x, **kw: T.triu(x, 1, **kw), GRID + (case("batched[2,3,4]", a(2, 3, 4)),), ALL,
   inplace=lambda x: x.triu_(1), out=True, grad=True)
op(I + "tril_diagonal", lambda T, x: {"tril(x, -1)": T.tril(x, -1), "triu(x, diagonal=-2)": T.triu(x, diagonal=-2)},
   GRID, ALL, requires=("tril", "triu"), grad=True)
op(I + "one_hot", lambda T, i: {"one_hot(i, 5)": T.nn.functional.one_hot(i, 5),
                                "one_hot(i)": T.nn.functional.one_hot(i)},
   (case("[6]", a(6, domain="index", high=5)), case("[2,3]", a(2, 3, domain="index", high=5))), ("int64",),
   requires=("nn.functional.one_hot",))
op(I + "embedding", lambda T, i, w: T.nn.functional.embedding(i, w),
   (case("[2,3]x[6,4]", a(2, 3, domain="index", high=6, dtype="int64"), a(6, 4)),
    case("transposed_weight", a(5, domain="index", high=6, dtype="int64"), a(6, 4, layout="transposed"))),
   FLOATS, requires=("nn.functional.embedding",), grad=True)

# ---- nn ---------------------------------------------------------------------------------------------------------
N = "nn."
NN_TOL = {"float32": (1e-5, 1e-4), "float16": (1e-2, 1e-2), "bfloat16": (5e-2, 5e-2)}
op(N + "layer_norm", lambda T, x, w, b: {"layer_norm(x, (5,), w, b)": T.nn.functional.layer_norm(x, (5,), w, b),
                                         "layer_norm(x, (3, 5), eps=1e-3)":
                                             T.nn.functional.layer_norm(x, (3, 5), eps=1e-3)},
   (case("[2,3,5]", a(2, 3, 5), a(5), a(5)), case("noncontig", a(2, 3, 5, layout="transposed"), a(5), a(5))),
   FLOATS, requires=("nn.functional.layer_norm",), grad=True, tol=NN_TOL)
op(N + "rms_norm", lambda T, x, w: {"rms_norm(x, (5,), w)": T.nn.functional.rms_norm(x, (5,), w),
                                    "rms_norm(x, (3, 5), eps=1e-3)": T.nn.functional.rms_norm(x, (3, 5), eps=1e-3)},
   (case("[2,3,5]", a(2, 3, 5), a(5)), case("noncontig", a(2, 3, 5, layout="strided"), a(5))),
   FLOATS, requires=("nn.functional.rms_norm",), grad=True, tol=NN_TOL)
_IDX5 = dict(domain="index", high=5, dtype="int64")
op(N + "cross_entropy", lambda T, x, t: {
    "cross_entropy(x, t)": T.nn.functional.cross_entropy(x, t),
    "reduction='none'": T.nn.functional.cross_entropy(x, t, reduction="none"),
    "ignore_index=1": T.nn.functional.cross_entropy(x, t, ignore_index=1),
    "label_smoothing=0.1, reduction='sum'": T.nn.functional.cross_entropy(x, t, label_smoothing=0.1,
                                                                          reduction="sum")},
   (case("[6,5]", a(6, 5), a(6, **_IDX5)), case("[2,5,3]", a(2, 5, 3), a(2, 3, **_IDX5)),
    case("transposed", a(6, 5, layout="transposed"), a(6, **_IDX5))),
   FLOATS, requires=("nn.functional.cross_entropy",), grad=True, tol=NN_TOL)
op(N + "nll_loss", lambda T, x, t, w: {
    "nll_loss(x, t)": T.nn.functional.nll_loss(x, t),
    "reduction='none'": T.nn.functional.nll_loss(x, t, reduction="none"),
    "ignore_index=2, reduction='sum'": T.nn.functional.nll_loss(x, t, ignore_index=2, reduction="sum"),
    "weight=w": T.nn.functional.nll_loss(x, t, weight=w)},
   (case("[6,5]", a(6, 5), a(6, **_IDX5), a(5, domain="positive")),), FLOATS,
   requires=("nn.functional.nll_loss",), grad=(0,), tol=NN_TOL)
op(N + "mse_loss", lambda T, x, y: {"mse_loss(x, y)": T.nn.functional.mse_loss(x, y),
                                    "reduction='none'": T.nn.functional.mse_loss(x, y, reduction="none"),
                                    "reduction='sum'": T.nn.functional.mse_loss(x, y, reduction="sum")},
   (case("[3,5]", a(3, 5), a(3, 5)), case("noncontig", a(3, 5, layout="transposed"), a(3, 5, layout="strided"))),
   FLOATS, requires=("nn.functional.mse_loss",), grad=True, tol=NN_TOL)
op(N + "scaled_dot_product_attention",
   lambda T, q, k, v: {"is_causal=True": T.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True),
                       "is_causal=False": T.nn.functional.scaled_dot_product_attention(q, k, v)},
   (case("[2,3,4,8]", a(2, 3, 4, 8), a(2, 3, 4, 8), a(2, 3, 4, 8)),
    case("noncontig", a(2, 3, 4, 8, layout="transposed"), a(2, 3, 4, 8, layout="strided"), a(2, 3, 4, 8))),
   FLOATS, requires=("nn.functional.scaled_dot_product_attention",), grad=True, tol=MM_TOL)

# ---- views ------------------------------------------------------------------------------------------------------
V = "view."
CUBE = (case("[2,3,4]", a(2, 3, 4)), case("offset[2,3,4]", a(2, 3, 4, layout="offset")))
CUBE_ANY = CUBE + (case("transposed[2,3,4]", a(2, 3, 4, layout="transposed")),)
op(V + "view", lambda T, x: {"x.view(6, 4)": x.view(6, 4), "x.view(-1)": x.view(-1), "x.view(2, -1, 2)": x.view(2, -1, 2)},
   CUBE, ALL, requires=(), grad=True)
op(V + "reshape", lambda T, x: {"reshape(x, (4, 6))": T.reshape(x, (4, 6)), "x.reshape(-1, 2)": x.reshape(-1, 2)},
   CUBE_ANY, ALL, grad=True)
op(V + "permute", lambda T, x: {"permute(x, (2, 0, 1))": T.permute(x, (2, 0, 1)), "x.permute(1, 0, 2)": x.permute(1, 0, 2)},
   CUBE_ANY, ALL, grad=True)
op(V + "transpose", lambda T, x: {"transpose(x, 0, 2)": T.transpose(x, 0, 2), "x.transpose(-1, -2)": x.transpose(-1, -2),
                                  "x.mT": x.mT}, CUBE_ANY, ALL, grad=True)
op(V + "expand", lambda T, x: {"x.expand(3, 4, 5)": x.expand(3, 4, 5), "x.expand(2, -1, 5)": x.expand(2, -1, 5)},
   (case("[4,1]", a(4, 1)), case("[1,5]", a(1, 5))), ALL, requires=(), grad=True)
op(V + "narrow", lambda T, x: {"narrow(x, 1, 1, 2)": T.narrow(x, 1, 1, 2), "x.narrow(-1, 0, 3)": x.narrow(-1, 0, 3)},
   CUBE_ANY, ALL, grad=True)
op(V + "select", lambda T, x: {"select(x, 1, 2)": T.select(x, 1, 2), "x.select(-1, -1)": x.select(-1, -1)},
   CUBE_ANY, ALL, grad=True)
op(V + "squeeze", lambda T, x: {"squeeze(x)": T.squeeze(x), "x.squeeze(0)": x.squeeze(0), "x.squeeze(-1)": x.squeeze(-1),
                                "squeeze(x, (0, 2))": T.squeeze(x, (0, 2))},
   (case("[1,3,1]", a(1, 3, 1)), case("[1,4,2]", a(1, 4, 2))), ALL, grad=True)
op(V + "unsqueeze", lambda T, x: {"unsqueeze(x, 0)": T.unsqueeze(x, 0), "x.unsqueeze(-1)": x.unsqueeze(-1),
                                  "x.unsqueeze(1)": x.unsqueeze(1)}, CUBE_ANY, ALL, grad=True)
op(V + "flatten", lambda T, x: {"flatten(x)": T.flatten(x), "x.flatten(1)": x.flatten(1),
                                "flatten(x, 0, 1)": T.flatten(x, 0, 1)}, CUBE_ANY, ALL, grad=True)
op(V + "unflatten", lambda T, x: {"unflatten(x, 2, (2, 2))": T.unflatten(x, 2, (2, 2)),
                                  "x.unflatten(1, (-1, 1))": x.unflatten(1, (-1, 1))}, CUBE_ANY, ALL, grad=True)
op(V + "as_strided", lambda T, x: {"as_strided(x, (2, 2), (1, 2))": T.as_strided(x, (2, 2), (1, 2)),
                                   "as_strided(x, (3,), (4,), 1)": T.as_strided(x, (3,), (4,), 1)},
   (case("[3,4]", a(3, 4)),), ALL, grad=True)

# ---- selection --------------------------------------------------------------------------------------------------
OPS_BY_NAME = {spec.name: spec for spec in OPS}
CATEGORIES = tuple(dict.fromkeys(spec.category for spec in OPS))
assert len(OPS_BY_NAME) == len(OPS), "duplicate op names in the parity table"


def required_attributes(spec: OpSpec) -> tuple[str, ...]:
    """Attribute paths the module must have for ``spec``: explicit ``requires``, else the op's own name. (Methods
    and operators are found missing when the call raises AttributeError.)"""
    return spec.requires if spec.requires is not None else (spec.name.split(".", 1)[1],)


def select_ops(patterns: str | list[str] | None) -> list[OpSpec]:
    """Ops matching ``patterns``: "all"/None, a name ("add" or "elementwise.add"), or a glob ("elementwise.*",
    "*norm*"). Raises ValueError naming a pattern that matches nothing."""
    if patterns in (None, "all", ["all"]):
        return list(OPS)
    if isinstance(patterns, str):
        patterns = [p for p in patterns.replace(",", " ").split() if p]
    chosen: dict[str, OpSpec] = {}
    for pattern in patterns:
        hits = [s for s in OPS if fnmatch.fnmatchcase(s.name, pattern) or fnmatch.fnmatchcase(s.name.split(".", 1)[1], pattern)
                or s.category == pattern]
        if not hits:
            raise ValueError(f"parity: no op matches {pattern!r} (categories: {', '.join(CATEGORIES)})")
        chosen.update((s.name, s) for s in hits)
    return [s for s in OPS if s.name in chosen]
