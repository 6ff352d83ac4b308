"""softmax's and log_softmax's backward as one op (spec 01): _softmax_backward_data / _log_softmax_backward_data
(grad_output, output, dim, input_dtype), checked against torch's ops of the same names on the same inputs: every dim,
non-contiguous operands, zero-size and 0-dim tensors, float16/bfloat16/float32/float64, an input_dtype other than the
output's, and the errors of mismatched operands."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.torch._ops import call

DT = {"float32": (vt.float32, torch.float32), "float64": (vt.float64, torch.float64),
      "float16": (vt.float16, torch.float16), "bfloat16": (vt.bfloat16, torch.bfloat16)}
# vibetensor sums in double and rounds once; torch's CPU kernel sums in the accumulate type of the dtype
TOL = {"float32": (1e-5, 1e-6), "float64": (1e-12, 1e-13), "float16": (2e-3, 2e-3), "bfloat16": (2e-2, 2e-2)}
OPS = [("_softmax_backward_data", torch.softmax, torch.ops.aten._softmax_backward_data),
       ("_log_softmax_backward_data", torch.log_softmax, torch.ops.aten._log_softmax_backward_data)]


def to_vt(t):
    return vt.tensor(t.detach().double().numpy()).to(DT[str(t.dtype).split(".")[-1]][0])


def to_torch(v):
    return torch.from_numpy(np.array(v.to(vt.float64).numpy()))


def case(shape, dt, seed):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * 3).to(DT[dt][1])
    go = torch.randn(shape, generator=g, dtype=torch.float64).to(DT[dt][1])
    return x, go


@pytest.mark.parametrize("name,fwd,ref_op", OPS, ids=[o[0] for o in OPS])
@pytest.mark.parametrize("dt", list(DT))
@pytest.mark.parametrize("shape,dim", [((4, 7), -1), ((4, 7), 0), ((2, 3, 5), 1), ((3, 128), -1), ((1, 1), -1),
                                       ((5,), 0), ((), 0), ((0, 4), -1), ((4, 0), -1), ((2, 2049), 1)],
                         ids=lambda v: str(v))
def test_matches_torch(name, fwd, ref_op, dt, shape, dim):
    x, go = case(shape, dt, seed=len(shape) * 31 + (dim % 7))
    y = fwd(x, dim) if x.dim() else fwd(x, 0)
    ref = ref_op(go, y, dim, DT[dt][1])
    got = call(name, to_vt(go), to_vt(y), dim, DT[dt][0])
    assert tuple(got.shape) == tuple(ref.shape) and got.dtype == DT[dt][0]
    rtol, atol = TOL[dt]
    torch.testing.assert_close(to_torch(got), ref.double(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("name,fwd,ref_op", OPS, ids=[o[0] for o in OPS])
def test_non_contiguous_operands(name, fwd, ref_op):
    x, go = case((6, 5, 9), "float64", seed=3)
    y = fwd(x, 1)
    ref = ref_op(go, y, 1, torch.float64)
    vy = to_vt(y.transpose(0, 2).contiguous()).transpose(0, 2)
    vgo = to_vt(go.permute(1, 2, 0).contiguous()).permute(2, 0, 1)
    assert not vy.is_contiguous() and not vgo.is_contiguous()
    got = call(name, vgo, vy, 1, vt.float64)
    torch.testing.assert_close(to_torch(got), ref, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name,fwd,ref_op", OPS, ids=[o[0] for o in OPS])
def test_input_dtype_other_than_output(name, fwd, ref_op):
    # softmax(x: float16, dtype=float32): the output is float32, the gradient of x float16 (torch's CUDA kernel
    # takes this form; its CPU kernel refuses it, so the reference is its float32 result rounded to float16)
    x, go = case((4, 33), "float32", seed=5)
    y = fwd(x, -1)
    ref = ref_op(go, y, -1, torch.float32).half()
    got = call(name, to_vt(go), to_vt(y), -1, vt.float16)
    assert got.dtype == vt.float16
    torch.testing.assert_close(to_torch(got), ref.double(), rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("name", [o[0] for o in OPS])
def test_errors_name_the_op(name):
    g, y = vt.ones((3, 4)), vt.ones((3, 5))
    with pytest.raises(Exception, match=name + ".*shape"):
        call(name, g, y, -1, vt.float32)
    with pytest.raises(Exception, match=name + ".*float64"):
        call(name, vt.ones((3, 4), dtype=vt.float64), vt.ones((3, 4)), -1, vt.float32)
    with pytest.raises(Exception, match=name + ".*int64"):
        call(name, vt.ones((3, 4), dtype=vt.int64), vt.ones((3, 4), dtype=vt.int64), -1, vt.float32)
    with pytest.raises(Exception, match="dim|range"):
        call(name, vt.ones((3, 4)), vt.ones((3, 4)), 2, vt.float32)
