"""Elementwise ops forward-checked against PyTorch CPU: several dtypes, broadcasting, non-contiguous,
zero-size and 0-dim operands, Python scalars, in-place and out= forms."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vt_core_helpers import FLOAT_NAMES, assert_same, layout, make_np, pair

RNG_SEED = 1234

# op name -> (input domain, dtypes to check)
UNARY = {
    "exp": ((-3, 3), FLOAT_NAMES), "exp2": ((-3, 3), FLOAT_NAMES), "log": ((0.1, 4), FLOAT_NAMES),
    "log2": ((0.1, 4), FLOAT_NAMES), "log10": ((0.1, 4), FLOAT_NAMES), "log1p": ((-0.5, 4), FLOAT_NAMES),
    "expm1": ((-2, 2), FLOAT_NAMES), "sqrt": ((0.0, 4), FLOAT_NAMES), "rsqrt": ((0.1, 4), FLOAT_NAMES),
    "reciprocal": ((0.2, 3), FLOAT_NAMES), "sin": ((-3, 3), FLOAT_NAMES), "cos": ((-3, 3), FLOAT_NAMES),
    "tan": ((-1.2, 1.2), FLOAT_NAMES), "asin": ((-0.9, 0.9), FLOAT_NAMES), "acos": ((-0.9, 0.9), FLOAT_NAMES),
    "atan": ((-3, 3), FLOAT_NAMES), "sinh": ((-2, 2), FLOAT_NAMES), "cosh": ((-2, 2), FLOAT_NAMES),
    "tanh": ((-3, 3), FLOAT_NAMES), "sigmoid": ((-5, 5), FLOAT_NAMES), "silu": ((-5, 5), FLOAT_NAMES),
    "erf": ((-2, 2), FLOAT_NAMES), "erfc": ((-2, 2), FLOAT_NAMES), "relu": ((-3, 3), FLOAT_NAMES + ["int32", "int64"]),
    "neg": ((-3, 3), FLOAT_NAMES + ["int8", "int16", "int32", "int64"]),
    "abs": ((-3, 3), FLOAT_NAMES + ["int8", "int32", "int64"]),
    "sign": ((-3, 3), FLOAT_NAMES + ["int32", "int64"]),
    "floor": ((-3, 3), FLOAT_NAMES), "ceil": ((-3, 3), FLOAT_NAMES), "trunc": ((-3, 3), FLOAT_NAMES),
    "round": ((-3, 3), FLOAT_NAMES), "frac": ((-3, 3), FLOAT_NAMES),
    "square": ((-3, 3), FLOAT_NAMES + ["int32", "int64"]),
    "isnan": ((-3, 3), FLOAT_NAMES + ["int64"]), "isinf": ((-3, 3), FLOAT_NAMES + ["int64"]),
    "isfinite": ((-3, 3), FLOAT_NAMES + ["int64"]), "logical_not": ((-3, 3), FLOAT_NAMES + ["int64", "bool"]),
    "bitwise_not": ((-3, 3), ["int32", "int64", "bool", "uint8"]),
}
LAYOUTS = ["contig", "transposed", "strided"]


def tfn(op):
    return getattr(torch, op, None) or getattr(torch.nn.functional, op)


@pytest.mark.parametrize("layout_kind", LAYOUTS)
@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary(op, layout_kind):
    (lo, hi), dtypes = UNARY[op]
    rng = np.random.default_rng([RNG_SEED, len(op)])
    for name in dtypes:
        arr = make_np((5, 6), name, rng, lo, hi)
        v, t = layout(*pair(arr, name), layout_kind)
        assert_same(getattr(vt, op)(v), tfn(op)(t))
        if hasattr(t, op):
            assert_same(getattr(v, op)(), getattr(t, op)())


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary_zero_size_and_scalar(op):
    (lo, hi), dtypes = UNARY[op]
    name = dtypes[0]
    rng = np.random.default_rng(7)
    for shape in [(0,), (3, 0), ()]:
        arr = make_np(shape, name, rng, lo, hi)
        v, t = pair(arr, name)
        assert_same(getattr(vt, op)(v), tfn(op)(t))


def test_special_values():
    arr = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -5.5, 2.5])
    for name in ["float32", "float64"]:
        v, t = pair(arr, name)
        for op in ["exp", "log", "sqrt", "sigmoid", "tanh", "isnan", "isinf", "isfinite", "sign", "round", "abs",
                   "relu", "nan_to_num", "floor", "erf"]:
            assert_same(getattr(vt, op)(v), getattr(torch, op)(t))


def test_gelu_softplus():
    rng = np.random.default_rng(3)
    for name in FLOAT_NAMES:
        v, t = pair(make_np((4, 7), name, rng, -4, 4), name)
        assert_same(vt.gelu(v), torch.nn.functional.gelu(t))
        assert_same(vt.gelu(v, approximate="tanh"), torch.nn.functional.gelu(t, approximate="tanh"))
        assert_same(vt.softplus(v), torch.nn.functional.softplus(t))
        assert_same(vt.softplus(v, 2.0, 1.0), torch.nn.functional.softplus(t, 2.0, 1.0))


BINARY = ["add", "sub", "mul", "div", "remainder", "fmod", "maximum", "minimum", "atan2", "pow", "eq", "ne", "lt",
          "le", "gt", "ge", "logical_and", "logical_or", "logical_xor"]
BITWISE = ["bitwise_and", "bitwise_or", "bitwise_xor"]
SHAPES = [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((4,), (2, 3, 4)), ((0, 4), (4,)), ((), (3,)),
          ((), ())]
DTYPE_PAIRS = [("float32", "float32"), ("float64", "float32"), ("int64", "float32"), ("int32", "int64"),
               ("float16", "float16"), ("bfloat16", "float32"), ("uint8", "int8"), ("bool", "int32"),
               ("float16", "bfloat16")]


def _binary_inputs(op, na, nb, sa, sb, rng):
    a = make_np(sa, na, rng)
    b = make_np(sb, nb, rng)
    if op in ("div", "remainder", "fmod") and (na != "bool" and nb != "bool"):
        b = np.where(np.abs(b) < 0.5, 1.0, b) if b.dtype != np.bool_ else b
        if nb in ("uint8",):
            b = np.where(b == 0, 3.0, b)
    if op == "pow":
        if na not in FLOAT_NAMES and nb not in FLOAT_NAMES:
            b = np.abs(b) % 3
        else:
            a = np.abs(a) + 0.5 if a.dtype != np.bool_ else a
    return a, b


@pytest.mark.parametrize("dtypes", DTYPE_PAIRS, ids=str)
@pytest.mark.parametrize("op", BINARY)
def test_binary(op, dtypes):
    for shapes in SHAPES:
        _check_binary(op, dtypes, shapes)


def _check_binary(op, dtypes, shapes):
    na, nb = dtypes
    if op in ("remainder", "fmod", "div") and "bool" in dtypes and op != "div":
        return
    rng = np.random.default_rng([len(op), len(na), len(shapes[0])])
    a, b = _binary_inputs(op, na, nb, *shapes, rng)
    va, ta = pair(a, na)
    vb, tb = pair(b, nb)
    if op in ("atan2",) and not (na in FLOAT_NAMES or nb in FLOAT_NAMES):
        assert_same(vt.atan2(va, vb), torch.atan2(ta, tb))
        return
    try:
        expected = getattr(torch, op)(ta, tb)
    except RuntimeError:
        with pytest.raises((RuntimeError, TypeError, ValueError, NotImplementedError)):
            getattr(vt, op)(va, vb)
        return
    assert_same(getattr(vt, op)(va, vb), expected)


@pytest.mark.parametrize("op", BITWISE)
def test_bitwise(op):
    rng = np.random.default_rng(5)
    for name in ["bool", "uint8", "int32", "int64"]:
        va, ta = pair(make_np((3, 4), name, rng), name)
        vb, tb = pair(make_np((4,), name, rng), name)
        assert_same(getattr(vt, op)(va, vb), getattr(torch, op)(ta, tb))


@pytest.mark.parametrize("mode", [None, "floor", "trunc"])
def test_div_rounding(mode):
    rng = np.random.default_rng(11)
    for name in ["float32", "int64", "int32"]:
        a = make_np((4, 5), name, rng, -9, 9)
        b = make_np((4, 5), name, rng, -9, 9)
        b = np.where(b == 0, 2, b)
        va, ta = pair(a, name)
        vb, tb = pair(b, name)
        assert_same(vt.div(va, vb, rounding_mode=mode), torch.div(ta, tb, rounding_mode=mode))
    va, ta = pair(np.array([-7.0, 7.0, -3.5]), "int64")
    assert_same(va // 2, ta // 2)
    assert_same(va % 3, ta % 3)
    assert_same(-7 // va, -7 // ta)


@pytest.mark.parametrize("layout_kind", LAYOUTS)
def test_binary_noncontiguous(layout_kind):
    rng = np.random.default_rng(2)
    va, ta = layout(*pair(make_np((4, 6), "float32", rng), "float32"), layout_kind)
    vb, tb = layout(*pair(make_np((4, 6), "float32", rng), "float32"), layout_kind)
    for op in ["add", "mul", "sub", "maximum", "lt"]:
        assert_same(getattr(vt, op)(va, vb), getattr(torch, op)(ta, tb))
    assert_same(va + 2 * vb, ta + 2 * tb)


def test_large_parallel_elementwise():
    rng = np.random.default_rng(9)
    va, ta = pair(make_np((300, 400), "float32", rng), "float32")
    vb, tb = pair(make_np((400,), "float32", rng), "float32")
    assert_same(va * vb + 1.5, ta * tb + 1.5)
    assert_same(vt.exp(va.t()), torch.exp(ta.t()))


@pytest.mark.parametrize("scalar", [2, -3, 2.5, True, 0.1])
@pytest.mark.parametrize("name", ["float32", "float16", "bfloat16", "int32", "int64", "uint8", "bool"])
def test_python_scalar_operators(name, scalar):
    rng = np.random.default_rng(4)
    v, t = pair(make_np((3, 4), name, rng), name)
    for f in [lambda x: x + scalar, lambda x: scalar + x, lambda x: x * scalar, lambda x: scalar * x,
              lambda x: x - scalar, lambda x: scalar - x, lambda x: x / scalar, lambda x: x > scalar,
              lambda x: x == scalar, lambda x: x <= scalar]:
        try:
            expected = f(t)
        except RuntimeError:
            with pytest.raises((RuntimeError, TypeError)):
                f(v)
            continue
        assert_same(f(v), expected)


def test_ternary_ops():
    rng = np.random.default_rng(8)
    for name in ["float32", "float64", "bfloat16"]:
        va, ta = pair(make_np((3, 4), name, rng), name)
        vb, tb = pair(make_np((4,), name, rng), name)
        vc, tc = pair(make_np((3, 1), name, rng, 0.5, 2), name)
        assert_same(vt.lerp(va, vb, 0.3), torch.lerp(ta, tb, 0.3))
        assert_same(vt.lerp(va, vb, vc), torch.lerp(ta, tb, tc))
        assert_same(vt.addcmul(va, vb, vc, value=0.5), torch.addcmul(ta, tb, tc, value=0.5))
        assert_same(vt.addcdiv(va, vb, vc, value=2), torch.addcdiv(ta, tb, tc, value=2))
        cond = ta > 0
        assert_same(vt.where(va > 0, va, vb), torch.where(cond, ta, tb))
        assert_same(vt.where(va > 0, va, 0.0), torch.where(cond, ta, 0.0))
        assert_same(vt.clamp(va, -1, 1), torch.clamp(ta, -1, 1))
        assert_same(vt.clamp(va, min=vb), torch.clamp(ta, min=tb))
        assert_same(va.clamp(max=0.5), ta.clamp(max=0.5))
        assert_same(vt.clamp_min(va, 0.2), torch.clamp_min(ta, 0.2))


def test_inplace_and_out_forms():
    rng = np.random.default_rng(10)
    a = make_np((3, 4), "float32", rng)
    b = make_np((4,), "float32", rng)
    for op in ["add_", "sub_", "mul_", "div_", "pow_", "maximum", "exp_", "neg_", "abs_", "sigmoid_", "tanh_",
               "relu_", "clamp_", "floor_", "sqrt_"]:
        va, ta = pair(np.abs(a) + 0.1, "float32")
        vb, tb = pair(np.abs(b) + 0.1, "float32")
        if op == "maximum":
            continue
        args_v, args_t = ((vb,), (tb,)) if op in ("add_", "sub_", "mul_", "div_", "pow_") else ((), ())
        if op == "clamp_":
            args_v = args_t = (0.5, 1.5)
        ver = va._version
        rv = getattr(va, op)(*args_v)
        rt = getattr(ta, op)(*args_t)
        assert rv is va
        assert va._version > ver
        assert_same(va, rt)
    va, ta = pair(a, "float32")
    vb, tb = pair(b, "float32")
    out_v, out_t = vt.empty(3, 4), torch.empty(3, 4)
    r = vt.add(va, vb, out=out_v)
    torch.add(ta, tb, out=out_t)
    assert r is out_v or r.data_ptr() == out_v.data_ptr()
    assert_same(out_v, out_t)
    # out= of a different (castable) dtype
    out_v, out_t = vt.empty(3, 4, dtype=vt.float64), torch.empty(3, 4, dtype=torch.float64)
    vt.mul(va, vb, out=out_v)
    torch.mul(ta, tb, out=out_t)
    assert_same(out_v, out_t)
    # augmented assignment keeps identity
    va2, ta2 = pair(a, "float32")
    keep = va2
    va2 += 1
    va2 *= vb
    ta2 += 1
    ta2 *= tb
    assert keep is va2
    assert_same(va2, ta2)


def test_inplace_int_with_float_scalar_raises():
    v = vt.tensor([1, 2, 3])
    t = torch.tensor([1, 2, 3])
    with pytest.raises(RuntimeError):
        t.add_(1.5)
    with pytest.raises(RuntimeError):
        v.add_(1.5)
    assert v.tolist() == [1, 2, 3]


def test_div_trunc_rounds_the_quotient_to_half_precision_first():
    # PyTorch: trunc(float16(a / b)); 4.117 / -0.02394 = -171.97 rounds to -172 in float16, so the result is -172
    # (truncating the float32 quotient first gives -171). Seen as a parity-gate failure on random float16 inputs.
    rng = np.random.default_rng(0)
    for tdt, name in ((torch.float16, "float16"), (torch.bfloat16, "bfloat16")):
        a = torch.tensor(rng.standard_normal(20000) * 10, dtype=torch.float32).to(tdt)
        b = torch.tensor(rng.standard_normal(20000), dtype=torch.float32).to(tdt)
        va = vt.tensor(a.float().numpy()).to(getattr(vt, name))
        vb = vt.tensor(b.float().numpy()).to(getattr(vt, name))
        got = np.asarray(vt.div(va, vb, rounding_mode="trunc").float().numpy())
        want = torch.div(a, b, rounding_mode="trunc").float().numpy()
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("divisor", ["0-d", "one-element", "expanded", "python scalar", "column"])
def test_div_trunc_by_a_single_value_truncates_in_float(divisor):
    # With one divisor value for every element PyTorch truncates the float quotient without rounding it to the
    # storage type first (-4.9997 -> -4); a divisor that varies (here one value per row) rounds first (-> -5).
    # Seen as a parity-gate failure (float16, a [3, 4] tensor divided by a 0-d tensor).
    rng = np.random.default_rng(1)
    for tdt, name in ((torch.float16, "float16"), (torch.bfloat16, "bfloat16")):
        a = torch.tensor(rng.uniform(-100, 100, (400, 50)), dtype=torch.float32).to(tdt)
        b = torch.tensor(rng.uniform(-10, 10, (400, 1)), dtype=torch.float32).to(tdt)
        va = vt.tensor(a.float().numpy()).to(getattr(vt, name))
        vb = vt.tensor(b.float().numpy()).to(getattr(vt, name))
        pick = {"0-d": lambda t: t[0, 0], "one-element": lambda t: t[0], "expanded": lambda t: t[0:1].expand(400, 50),
                "python scalar": lambda t: float(t[0, 0]), "column": lambda t: t}[divisor]
        got = np.asarray(vt.div(va, pick(vb), rounding_mode="trunc").float().numpy())
        want = torch.div(a, pick(b), rounding_mode="trunc").float().numpy()
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("alpha", [0, 1, 2, True, False])
def test_bool_add_with_alpha(alpha):
    # x + alpha * y on bool tensors is x | (alpha & y): alpha = 0 / False leaves x (broadcast), it used to give x | y
    a = torch.tensor([[True], [False], [False]])
    b = torch.tensor([True, False, True, False])
    got = vt.add(vt.tensor(a.numpy()), vt.tensor(b.numpy()), alpha=alpha)
    assert got.dtype == vt.bool
    assert np.array_equal(np.asarray(got.numpy()), torch.add(a, b, alpha=alpha).numpy())
