"""clip_grad_norm_'s list ops (spec 01/02, Note [Clip lists] in src/vbt/cpu/optim_kernels.cpp): _stacked_norms gives
every tensor's norm as one [N] tensor, _foreach_mul_ scales every tensor in place by a 0-d tensor. Checked against
torch's per-tensor ops, and their lists' errors."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor import _C

SHAPES = [(4, 3), (5,), (), (0,), (2, 2, 2), (70001,)]


@pytest.mark.parametrize("ord_", [2.0, 1.0, float("inf"), float("-inf"), 0.0, 3.0])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_stacked_norms_match_torch(ord_, dt):
    rng = np.random.default_rng(1)
    arrays = [np.asarray(rng.standard_normal(s), dtype=dt) for s in SHAPES]
    arrays[0][1, 1] = 0.0
    if np.isinf(ord_):  # torch refuses the infinity norms of an empty tensor
        arrays = [a for a in arrays if a.size]
    got = _C.call("_stacked_norms", [vt.tensor(a) for a in arrays], ord_)
    # vibetensor accumulates in double (as its norm op does): the reference too, rounded to the dtype
    ref = torch.stack([torch.linalg.vector_norm(torch.from_numpy(a).double(), ord_) for a in arrays]).to(
        torch.from_numpy(arrays[0]).dtype)
    assert tuple(got.shape) == (len(arrays),) and str(got.dtype).endswith(str(ref.dtype).split(".")[-1])
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-6 if dt == np.float32 else 1e-13)


def test_foreach_mul_scales_in_place():
    rng = np.random.default_rng(2)
    arrays = [np.asarray(rng.standard_normal(s), dtype=np.float32) for s in SHAPES]
    ts = [vt.tensor(a) for a in arrays]
    ptrs = [t.data_ptr() for t in ts]
    out = _C.call("_foreach_mul_", ts, vt.tensor(np.float32(-0.37)))
    assert [t.data_ptr() for t in out] == ptrs
    for t, a in zip(ts, arrays):
        np.testing.assert_array_equal(t.numpy(), (torch.from_numpy(a) * torch.tensor(-0.37)).numpy())


def test_list_ops_check_their_lists():
    with pytest.raises(ValueError, match="non-empty list"):
        _C.call("_stacked_norms", [], 2.0)
    with pytest.raises(ValueError, match=r"tensors\[1\] is float64 but tensors\[0\] is float32"):
        _C.call("_stacked_norms", [vt.ones(2), vt.ones(2, dtype=vt.float64)], 2.0)
    with pytest.raises(ValueError, match="float32 or float64"):
        _C.call("_foreach_mul_", [vt.ones(2, dtype=vt.int64)], vt.tensor(2))
    with pytest.raises(ValueError, match="0-d tensor"):
        _C.call("_foreach_mul_", [vt.ones(2)], vt.ones(2))
