"""float16/bfloat16 tensors with scalars, bit for bit as PyTorch's CPU kernels (spec 01): mul and div (true, trunc,
floor) by a scalar second operand (a Python number or a 0-d tensor) take the scalar's value in float, not rounded to
the tensor's dtype first; add/sub of two tensors round alpha to the dtype. float32 is unaffected by these rules.
Not covered (they still differ from torch, by one unit in the last place): a 16-bit product written to a float32
out=, float32 add/sub with alpha (torch fuses the multiply-add)."""
import pytest
import torch

import vibetensor.torch as vt

DTYPES = {"float16": (torch.float16, vt.float16), "bfloat16": (torch.bfloat16, vt.bfloat16),
          "float32": (torch.float32, vt.float32)}


def pair(name, n=200_000, seed=0):
    tdt, _ = DTYPES[name]
    g = torch.Generator().manual_seed(seed)
    a = (torch.randn(n, generator=g) * 8).to(tdt)
    return a, vt.from_dlpack(a.clone())


def to_torch(v):
    return torch.from_dlpack(v).clone()


SCALAR_OPS = {
    "mul": lambda T, x: x * 0.7,
    "rmul": lambda T, x: 0.7 * x,
    "mul_0d_float32": lambda T, x: x * T.tensor(0.7),
    "mul_0d_float64": lambda T, x: T.mul(x, T.tensor(0.7, dtype=T.float64)),
    "div": lambda T, x: x / 0.7,
    "div_trunc": lambda T, x: T.div(x, 0.7, rounding_mode="trunc"),
    "div_floor": lambda T, x: T.div(x, 0.7, rounding_mode="floor"),
    "floordiv": lambda T, x: x // 0.7,
    "div_by_zero": lambda T, x: x / 0.0,
}


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("name", sorted(SCALAR_OPS))
def test_scalar_operand_matches_torch_bit_for_bit(name, dtype):
    a, va = pair(dtype)
    want = SCALAR_OPS[name](torch, a)
    got = SCALAR_OPS[name](vt, va)
    assert got.dtype == DTYPES[dtype][1]
    assert torch.equal(to_torch(got).nan_to_num(), want.nan_to_num())


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_the_data_tells_the_rules_apart(dtype):
    """The scalar rounded to the dtype first gives other results for many elements: the tests above can fail."""
    a, _ = pair(dtype)
    rounded = torch.tensor(0.7).to(a.dtype).float()
    assert ((a.float() * 0.7).to(a.dtype) != (a.float() * rounded).to(a.dtype)).sum() > 1000
    alpha = torch.tensor(0.3).to(a.dtype).float()
    b = a.flip(0)
    assert ((a.float() + 0.3 * b.float()).to(a.dtype) != (a.float() + alpha * b.float()).to(a.dtype)).sum() > 1000


@pytest.mark.parametrize("dtype", sorted(DTYPES))
def test_in_place_and_out_take_the_same_rule(dtype):
    a, va = pair(dtype, seed=1)
    want = a * 0.7
    vx = vt.from_dlpack(a.clone())
    vx.mul_(0.7)
    assert torch.equal(to_torch(vx), want)
    vx = vt.from_dlpack(a.clone())
    vx.div_(0.7, rounding_mode="trunc")
    assert torch.equal(to_torch(vx), torch.div(a, 0.7, rounding_mode="trunc"))
    out = vt.from_dlpack(torch.zeros_like(a))
    vt.div(va, 0.7, out=out)
    assert torch.equal(to_torch(out), a / 0.7)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("op", ["add", "sub"])
def test_alpha_of_two_tensors_matches_torch_bit_for_bit(op, dtype):
    a, va = pair(dtype, seed=2)
    b = a.flip(0) * 0.5
    vb = vt.from_dlpack(b.clone())
    want = getattr(torch, op)(a, b, alpha=0.3)
    assert torch.equal(to_torch(getattr(vt, op)(va, vb, alpha=0.3)), want)


def test_a_scalar_first_or_a_tensor_second_keeps_the_general_rule():
    a, va = pair("bfloat16", seed=3)
    b = a.flip(0)
    vb = vt.from_dlpack(b.clone())
    assert torch.equal(to_torch(vt.mul(va, vb)), a * b)
    assert torch.equal(to_torch(vt.mul(vt.tensor(0.7), va)), torch.mul(torch.tensor(0.7), a))
