"""_fused_adam_ (spec 01, Note [Fused Adam] in src/vbt/cpu/optim_kernels.cpp): one Adam/AdamW step over lists of
tensors, against torch's per-op update in the same order, over several steps."""
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor import _C

SHAPES = [(), (0,), (7,), (3, 5), (70001,)]  # 0-d, empty, small, 2-D, above the parallel threshold


def torch_step(p, g, m, v, *, lr, b1, b2, eps, wd, step, decoupled, maximize):
    g = -g if maximize else g
    if wd != 0:
        if decoupled:
            p.mul_(1 - lr * wd)
        else:
            g = g.add(p, alpha=wd)
    m.lerp_(g, 1 - b1)
    v.mul_(b2).addcmul_(g, g, value=1 - b2)
    denom = (v.sqrt() / math.sqrt(1 - b2 ** step)).add_(eps)
    p.addcdiv_(m, denom, value=-lr / (1 - b1 ** step))


def fused_step(ps, gs, ms, vs, *, lr, b1, b2, eps, wd, step, decoupled, maximize):
    return _C.call("_fused_adam_", ps, gs, ms, vs, lr, b1, b2, eps, wd, lr / (1 - b1 ** step),
                   math.sqrt(1 - b2 ** step), decoupled, maximize)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("decoupled,wd", [(False, 0.0), (False, 0.05), (True, 0.1)])
@pytest.mark.parametrize("maximize", [False, True])
def test_matches_torchs_per_op_update_over_steps(dtype, decoupled, wd, maximize):
    rng = np.random.default_rng(0)
    npdt = np.dtype(dtype)
    hp = dict(lr=3e-3, b1=0.9, b2=0.95, eps=1e-8, wd=wd, decoupled=decoupled, maximize=maximize)
    init = [rng.standard_normal(s).astype(npdt) for s in SHAPES]
    tp = [torch.tensor(a) for a in init]
    vp = [vt.tensor(a) for a in init]
    tm, tv = [torch.zeros_like(t) for t in tp], [torch.zeros_like(t) for t in tp]
    vm, vv = [vt.zeros_like(t) for t in vp], [vt.zeros_like(t) for t in vp]
    for step in range(1, 6):
        grads = [rng.standard_normal(s).astype(npdt) for s in SHAPES]
        for t, m, v, g in zip(tp, tm, tv, grads):
            torch_step(t, torch.tensor(g), m, v, step=step, **hp)
        out = fused_step(vp, [vt.tensor(g) for g in grads], vm, vv, step=step, **hp)
        assert len(out) == len(vp) and all(o.data_ptr() == p.data_ptr() for o, p in zip(out, vp))
    tol = dict(rtol=2e-6, atol=1e-7) if dtype == "float32" else dict(rtol=1e-13, atol=1e-15)
    for name, ts, vs in (("param", tp, vp), ("exp_avg", tm, vm), ("exp_avg_sq", tv, vv)):
        for t, v, s in zip(ts, vs, SHAPES):
            np.testing.assert_allclose(v.numpy(), t.numpy(), err_msg=f"{name} {s}", **tol)


def test_bumps_the_version_of_every_written_tensor():
    p, g, m, v = vt.randn(4), vt.randn(4), vt.zeros(4), vt.zeros(4)
    before = [t._version for t in (p, g, m, v)]
    fused_step([p], [g], [m], [v], lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, step=1, decoupled=False,
               maximize=False)
    assert [t._version - b for t, b in zip((p, g, m, v), before)] == [1, 0, 1, 1]


def test_updates_leaf_parameters_under_no_grad():
    p = vt.ones(3, requires_grad=True)
    with vt.no_grad():
        fused_step([p], [vt.ones(3)], [vt.zeros(3)], [vt.zeros(3)], lr=0.1, b1=0.9, b2=0.999, eps=1e-8, wd=0.0,
                   step=1, decoupled=False, maximize=False)
    np.testing.assert_allclose(p.detach().numpy(), np.full(3, 0.9, np.float32), rtol=1e-6)


@pytest.mark.parametrize("bad,match", [
    ("length", "expected lists of one length"),
    ("shape", r"grads\[0\] has shape \[2\] but params\[0\] has shape \[3\]"),
    ("dtype", r"exp_avgs\[0\] is float64 but params\[0\] is float32"),
    ("strided", r"params\[0\] is not contiguous"),
    ("int", "expected float32 or float64 tensors, got int64"),
])
def test_bad_lists_raise_and_write_nothing(bad, match):
    p, g, m, v = vt.ones(3), vt.ones(3), vt.zeros(3), vt.zeros(3)
    lists = [[p], [g], [m], [v]]
    if bad == "length":
        lists[1] = [g, g]
    elif bad == "shape":
        lists[1] = [vt.ones(2)]
    elif bad == "dtype":
        lists[2] = [vt.zeros(3, dtype=vt.float64)]
    elif bad == "strided":
        lists[0] = [vt.ones(6)[::2]]
    else:
        lists = [[vt.ones(3, dtype=vt.int64)] for _ in range(4)]
    with pytest.raises(ValueError, match=match):
        _C.call("_fused_adam_", *lists, 1e-3, 0.9, 0.999, 1e-8, 0.0, 1e-2, 0.03, False, False)
    np.testing.assert_array_equal(p.numpy(), np.ones(3, np.float32))
    np.testing.assert_array_equal(m.numpy(), np.zeros(3, np.float32))
