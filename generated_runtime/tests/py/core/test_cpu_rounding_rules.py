"""Three CPU arithmetic rules that make results PyTorch's bit for bit (spec 01): `s / x` with a Python number is
`x.reciprocal() * s` (torch's __rtruediv__); float32/float64 add/sub with alpha != 1 are one fused multiply-add (torch's
vectorised CPU loops); div floor of two float16/bfloat16 tensors rounds every step to the 16-bit dtype (torch's
scalar loop runs in that type). Each test also checks that its data tells the rule from the naive formula apart."""
import pytest
import torch

import vibetensor.torch as vt

FLOATS = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}


def pair(tdt, n=100_000, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = (torch.randn(n, generator=g, dtype=torch.float64) * 8).to(tdt)
    b = (torch.randn(n, generator=g, dtype=torch.float64) * 2).to(tdt)
    return a, b


def v(t):
    return vt.from_dlpack(t.clone())


def back(x):
    return torch.from_dlpack(x).clone()


def same(got, want):
    got = back(got)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert torch.equal(got.nan_to_num(), want.nan_to_num()), f"{int((got != want).sum())} elements differ"


@pytest.mark.parametrize("dtype", sorted(FLOATS))
def test_number_divided_by_a_tensor_is_the_reciprocal_times_the_number(dtype):
    a, _ = pair(FLOATS[dtype])
    want = 0.7 / a
    same(0.7 / v(a), want)
    naive = (torch.tensor(0.7, dtype=torch.float64) / a.double()).to(a.dtype)
    assert int((naive != want).sum()) > 1000  # dividing directly would give other bits


@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8", "bool"])
def test_number_divided_by_an_integer_tensor(dtype):
    a = torch.tensor([1, 3, 7, 0, 2, 5], dtype=getattr(torch, dtype)) if dtype != "bool" else \
        torch.tensor([True, False, True])
    for s in (0.7, 3, True):
        same(s / v(a), s / a)


def test_number_divided_by_a_tensor_has_torchs_gradient():
    a = torch.rand(64, dtype=torch.float64) + 0.5
    ta = a.clone().requires_grad_(True)
    (3.0 / ta).sum().backward()
    va = v(a).requires_grad_(True)
    (3.0 / va).sum().backward()
    torch.testing.assert_close(back(va.grad), ta.grad, rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", ["add", "sub"])
def test_add_sub_with_alpha_are_one_fused_multiply_add(op, dtype):
    a, b = pair(FLOATS[dtype])
    f_t, f_v = getattr(torch, op), getattr(vt, op)
    for alpha in (0.7, -3, 1e-3):
        want = f_t(a, b, alpha=alpha)
        same(f_v(v(a), v(b), alpha=alpha), want)
        same(f_v(v(a), 0.3, alpha=alpha), f_t(a, 0.3, alpha=alpha))  # a broadcast number
    sign = 1 if op == "add" else -1
    unfused = (a + (sign * 0.7) * b) if dtype == "float32" else None
    if unfused is not None:  # the data tells fused and unfused apart
        assert int((unfused != f_t(a, b, alpha=0.7)).sum()) > 1000
    same(f_v(v(a), v(b), alpha=1), f_t(a, b, alpha=1))  # alpha 1: exact, no multiply


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_add_in_place_out_strided_and_broadcast(dtype):
    tdt = FLOATS[dtype]
    a, b = pair(tdt, n=60 * 70)
    a2, b2 = a.reshape(60, 70), b.reshape(60, 70)
    # in place (the optimizer's p.add_(d_p, alpha=-lr))
    x = v(a2)
    x.add_(v(b2), alpha=-0.01)
    same(x, a2.add(b2, alpha=-0.01))
    # out=
    out = v(torch.zeros_like(a2))
    vt.sub(v(a2), v(b2), alpha=0.3, out=out)
    same(out, torch.sub(a2, b2, alpha=0.3))
    # a transposed (strided) second operand, and a row broadcast along dim 0
    same(vt.add(v(a2), v(b2).t().contiguous().t(), alpha=0.3), torch.add(a2, b2, alpha=0.3))
    bt = b[:70 * 60].reshape(70, 60)
    same(vt.add(v(a2), v(bt).t(), alpha=0.3), torch.add(a2, bt.t(), alpha=0.3))
    row = b[:70]
    same(vt.add(v(a2), v(row), alpha=0.3), torch.add(a2, row, alpha=0.3))
    same(vt.add(v(a2), v(row[:1]).expand(60, 70), alpha=0.3), torch.add(a2, row[:1].expand(60, 70), alpha=0.3))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16_bit_floor_division_of_tensors_rounds_every_step(dtype):
    tdt = FLOATS[dtype]
    a, b = pair(tdt, n=200_000)
    want = torch.div(a, b, rounding_mode="floor")
    same(vt.div(v(a), v(b), rounding_mode="floor"), want)
    same(v(a) // v(b), a // b)
    x = v(a)
    x.floor_divide_(v(b))
    same(x, want)
    in_float = (a.float() / b.float()).floor().to(tdt)
    assert int((in_float != want).sum()) > 50  # the data tells the rules apart
    # special values: zero divisors, signed zeros, infinities
    sa = torch.tensor([1.0, -1.0, 0.0, -0.0, float("inf"), 3.0, -3.0, 0.0], dtype=tdt)
    sb = torch.tensor([0.0, 0.0, 0.0, 2.0, 2.0, float("inf"), float("inf"), -2.0], dtype=tdt)
    same(vt.div(v(sa), v(sb), rounding_mode="floor"), torch.div(sa, sb, rounding_mode="floor"))


# ---- the optimizer's ternary ops (Adam's single-tensor step uses lerp_, addcmul_, addcdiv_): PyTorch's CPU
# arithmetic bit for bit on every float dtype.

def _fma(a, b, c):
    """a * b + c with one rounding, for float32/16-bit data (the float64 product of two floats is exact)."""
    return (a.double() * b.double() + c.double()).float()


@pytest.mark.parametrize("dtype", sorted(FLOATS))
def test_lerp_is_one_fused_multiply_add_from_the_nearer_end(dtype):
    tdt = FLOATS[dtype]
    a, b = pair(tdt)
    w = (torch.rand(a.numel(), generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 1.4 - 0.2).to(tdt)
    for weight in (0.3, 0.7, -0.2, 1.3):
        same(vt.lerp(v(a), v(b), weight), torch.lerp(a, b, weight))
    same(vt.lerp(v(a), v(b), v(w)), torch.lerp(a, b, w))  # a tensor weight
    x = v(a)
    x.lerp_(v(b), 0.1)  # Adam's exp_avg.lerp_(grad, 1 - beta1)
    same(x, torch.lerp(a, b, 0.1))
    if dtype != "float64":
        d = b.float() - a.float()
        fused = _fma(torch.full_like(d, 0.3), d, a.float()).to(tdt)
        assert torch.equal(fused, torch.lerp(a, b, 0.3))  # the rule, written out
        if dtype != "float32":  # a 16-bit scalar weight is used in float, not rounded to the dtype
            rounded_w = torch.tensor(0.3, dtype=tdt).float()
            assert int(((a.float() + rounded_w * d).to(tdt) != torch.lerp(a, b, 0.3)).sum()) > 1000
        else:
            assert int(((a + 0.3 * (b - a)) != torch.lerp(a, b, 0.3)).sum()) > 1000  # unfused differs


@pytest.mark.parametrize("dtype", sorted(FLOATS))
def test_addcmul_rounds_value_times_t1_then_fuses(dtype):
    tdt = FLOATS[dtype]
    a, b = pair(tdt)
    c, _ = pair(tdt, seed=2)
    same(vt.addcmul(v(a), v(b), v(c), value=0.3), torch.addcmul(a, b, c, value=0.3))
    x = v(a)
    x.addcmul_(v(b), v(b), value=0.001)  # Adam's exp_avg_sq.addcmul_(grad, grad, value=1 - beta2)
    same(x, torch.addcmul(a, b, b, value=0.001))
    # strided operands take the general loop
    a2, b2, c2 = a[:200 * 300].reshape(200, 300), b[:200 * 300].reshape(300, 200), c[:200 * 300].reshape(200, 300)
    same(vt.addcmul(v(a2), v(b2).t(), v(c2), value=-2.5), torch.addcmul(a2, b2.t(), c2, value=-2.5))
    if dtype == "float32":
        want = torch.addcmul(a, b, c, value=0.3)
        assert torch.equal(_fma(torch.tensor(0.3) * b, c, a), want)  # the rule, written out
        assert int(((a + 0.3 * b * c) != want).sum()) > 1000  # unfused differs


@pytest.mark.parametrize("dtype", sorted(FLOATS))
def test_addcdiv_divides_value_times_t1(dtype):
    tdt = FLOATS[dtype]
    a, b = pair(tdt)
    c, _ = pair(tdt, seed=2)
    c = c.abs() + 1
    same(vt.addcdiv(v(a), v(b), v(c), value=0.3), torch.addcdiv(a, b, c, value=0.3))
    x = v(a)
    x.addcdiv_(v(b), v(c), value=-0.01)  # Adam's p.addcdiv_(exp_avg, denom, value=-step_size)
    same(x, torch.addcdiv(a, b, c, value=-0.01))
    if dtype == "float32":
        assert int(((a + 0.3 * (b / c)) != torch.addcdiv(a, b, c, value=0.3)).sum()) > 1000  # the other order
