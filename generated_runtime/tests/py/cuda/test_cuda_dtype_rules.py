"""Dtype rules of two CUDA kernels that the parity gate on an H200 found wrong (reports/gpu/
2026-12-02-h200-entry91-bench-spread/): all/any of uint8 give uint8, and div(rounding_mode="trunc") of two 16-bit
float tensors truncates the quotient after rounding it to the storage dtype (as torch, on CPU and CUDA). Against
PyTorch on the CPU (results copied back).

Every test needs a GPU and a build with the CUDA kernels; without them the module is skipped. To check the tests
themselves on a machine without a GPU, run them against vibetensor's CPU kernels:
    VBT_CUDA_TEST_DEVICE=cpu pytest tests/py/cuda/test_cuda_dtype_rules.py"""
import os

import pytest
import torch

import vibetensor.torch as vt

DEV = os.environ.get("VBT_CUDA_TEST_DEVICE", "cuda")
HAS_GPU = vt.cuda.is_available()
HAS_OPS = vt.cuda._tensors.has_ops()
pytestmark = pytest.mark.skipif(DEV == "cuda" and not (HAS_GPU and HAS_OPS),
                                reason="needs a CUDA GPU and a build with the CUDA kernels "
                                       f"(is_available()={HAS_GPU}, has_ops()={HAS_OPS}); "
                                       "VBT_CUDA_TEST_DEVICE=cpu runs the checks on the CPU kernels")

HALVES = {"float16": (torch.float16, vt.float16), "bfloat16": (torch.bfloat16, vt.bfloat16)}


def on_dev(t: torch.Tensor):
    return vt.from_dlpack(t.contiguous().clone()).to(DEV)


def to_torch(v) -> torch.Tensor:
    return torch.from_dlpack(v.cpu()).clone()


@pytest.mark.parametrize("op", ["all", "any"])
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
def test_all_any_of_uint8_give_uint8(op, dim):
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(5, 7, generator=g) < 0.7).to(torch.uint8) * torch.randint(1, 255, (5, 7), generator=g,
                                                                              dtype=torch.uint8)
    x[0] = 3  # a row of nonzeros: all() is 1 somewhere
    x[1] = 0  # a row of zeros: any() is 0 somewhere
    args = () if dim is None else (dim,)
    want = getattr(torch, op)(x, *args)
    got = getattr(vt, op)(on_dev(x), *args)
    assert want.dtype == torch.uint8
    assert got.dtype == vt.uint8
    assert torch.equal(to_torch(got), want)
    if dim is not None:
        kept = getattr(vt, op)(on_dev(x), dim, keepdim=True)
        assert kept.dtype == vt.uint8 and torch.equal(to_torch(kept), getattr(torch, op)(x, dim, keepdim=True))


@pytest.mark.parametrize("dtype", ["bool", "int32", "float32", "bfloat16"])
def test_all_any_of_other_dtypes_stay_bool(dtype):
    x = torch.tensor([[0, 1, 2], [3, 4, 5]]).to(getattr(torch, dtype))
    for op in ("all", "any"):
        got = getattr(vt, op)(on_dev(x), 1)
        assert got.dtype == vt.bool
        assert torch.equal(to_torch(got), getattr(torch, op)(x, 1))


def quotient_pairs(tdt, n=200_000):
    g = torch.Generator().manual_seed(0)
    a = (torch.randn(n, generator=g) * 8).to(tdt)
    b = (torch.randn(n, generator=g) * 2).to(tdt)
    return a, b


@pytest.mark.parametrize("name", sorted(HALVES))
def test_div_trunc_of_16_bit_tensors_rounds_the_quotient_first(name):
    tdt, vdt = HALVES[name]
    a, b = quotient_pairs(tdt)
    rounded = (a.float() / b.float()).to(tdt).float().trunc().to(tdt)
    plain = (a.float() / b.float()).trunc().to(tdt)
    assert (rounded != plain).sum() > 100  # the data tells the two rules apart
    want = torch.div(a, b, rounding_mode="trunc")
    assert torch.equal(want, rounded)  # torch's rule (its CPU kernel; its CUDA kernel does the same)
    got = vt.div(on_dev(a), on_dev(b), rounding_mode="trunc")
    assert got.dtype == vdt
    assert torch.equal(to_torch(got), want)
    # in place and out= take the same kernel
    va = on_dev(a)
    va.div_(on_dev(b), rounding_mode="trunc")
    assert torch.equal(to_torch(va), want)
    out = on_dev(torch.zeros_like(a))
    vt.div(on_dev(a), on_dev(b), rounding_mode="trunc", out=out)
    assert torch.equal(to_torch(out), want)


@pytest.mark.parametrize("name", sorted(HALVES))
def test_div_trunc_by_a_cpu_scalar_tensor_takes_the_python_number_rule(name):
    """torch's exception to the rounding is any CPU scalar divisor (a 0-d CPU tensor too), not only a Python number."""
    tdt, _ = HALVES[name]
    a, b = quotient_pairs(tdt)
    divisor = b[:1].reshape(()).clone()  # a 0-d tensor of the dtype, kept on the CPU
    by_number = vt.div(on_dev(a), float(divisor), rounding_mode="trunc")
    by_tensor = vt.div(on_dev(a), vt.from_dlpack(divisor.clone()), rounding_mode="trunc")
    assert torch.equal(to_torch(by_tensor), to_torch(by_number))
    rounded = (a.float() / divisor.float()).to(tdt).float().trunc().to(tdt)
    assert not torch.equal(to_torch(by_tensor), rounded)  # the rounding rule would give other results here
