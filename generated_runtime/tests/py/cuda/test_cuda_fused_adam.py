"""The multi-tensor CUDA kernels (Note [Multi-tensor launch] in src/vbt/cuda/ops/optim.cu): clip_grad_norm_'s
_stacked_norms and _foreach_mul_ against the CPU ops, and _fused_adam_ against the CPU kernel from the
same inputs, over several steps: many small tensors (more than one batch of 24), tensors of several 8Ki-element
chunks (one block each) with partial last chunks, 0-d and empty tensors, float32 and float64 in one call, every
flag. The lists' errors are the CPU kernel's. Every test needs a GPU and a build with the CUDA kernels; otherwise it
is skipped."""
import math

import numpy as np
import pytest

import vibetensor.torch as vt
from vibetensor import _C

HAS_GPU = vt.cuda.is_available()
HAS_OPS = HAS_GPU and vt.cuda._tensors.has_ops()
pytestmark = pytest.mark.skipif(not (HAS_GPU and HAS_OPS),
                                reason="needs a CUDA GPU and a build with the CUDA kernels "
                                       f"(is_available()={HAS_GPU}, has_ops()={HAS_OPS})")

CHUNK = 8192
SHAPES = [(3, 5)] * 30 + [(), (0,), (7,), (3 * CHUNK + 11,), (257 * CHUNK + 5,)]


def step_args(lr, b1, b2, eps, wd, step, decoupled, maximize):
    return (lr, b1, b2, eps, wd, lr / (1 - b1 ** step), math.sqrt(1 - b2 ** step), decoupled, maximize)


@pytest.mark.parametrize("decoupled,wd,maximize", [(False, 0.0, False), (False, 0.05, True), (True, 0.1, False)])
def test_matches_the_cpu_kernel_over_steps(decoupled, wd, maximize):
    rng = np.random.default_rng(1)
    dts = [np.float32 if i % 3 else np.float64 for i in range(len(SHAPES))]
    init = [rng.standard_normal(s).astype(d) for s, d in zip(SHAPES, dts)]
    cpu = [[vt.tensor(a) for a in init], [vt.tensor(np.zeros_like(a)) for a in init],
           [vt.tensor(np.zeros_like(a)) for a in init]]
    gpu = [[t.to("cuda") for t in lst] for lst in cpu]
    for step in range(1, 4):
        grads = [rng.standard_normal(s).astype(d) for s, d in zip(SHAPES, dts)]
        args = step_args(3e-3, 0.9, 0.95, 1e-8, wd, step, decoupled, maximize)
        _C.call("_fused_adam_", cpu[0], [vt.tensor(g) for g in grads], cpu[1], cpu[2], *args)
        out = _C.call("_fused_adam_", gpu[0], [vt.tensor(g).to("cuda") for g in grads], gpu[1], gpu[2], *args)
        assert all(o.data_ptr() == p.data_ptr() for o, p in zip(out, gpu[0]))
    vt.cuda.synchronize()
    for name, c_list, g_list in zip(("param", "exp_avg", "exp_avg_sq"), cpu, gpu):
        for i, (c, g) in enumerate(zip(c_list, g_list)):
            tol = dict(rtol=1e-5, atol=1e-7) if dts[i] == np.float32 else dict(rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(g.cpu().numpy(), c.numpy(), err_msg=f"{name}[{i}] {SHAPES[i]}", **tol)


def test_bad_lists_raise_the_cpu_kernels_errors_and_write_nothing():
    p, g, m, v = (vt.ones(3, device="cuda") for _ in range(4))
    with pytest.raises(ValueError, match="expected lists of one length"):
        _C.call("_fused_adam_", [p], [g, g], [m], [v], *step_args(1e-3, 0.9, 0.999, 1e-8, 0.0, 1, False, False))
    with pytest.raises(ValueError, match=r"params\[0\] is not contiguous"):
        _C.call("_fused_adam_", [vt.ones(6, device="cuda")[::2]], [g], [m], [v],
                *step_args(1e-3, 0.9, 0.999, 1e-8, 0.0, 1, False, False))
    with pytest.raises(RuntimeError, match="same device"):
        _C.call("_fused_adam_", [p], [vt.ones(3)], [m], [v], *step_args(1e-3, 0.9, 0.999, 1e-8, 0.0, 1, False, False))
    np.testing.assert_array_equal(p.cpu().numpy(), np.ones(3, np.float32))


@pytest.mark.parametrize("cls", ["Adam", "AdamW"])
def test_adam_takes_the_kernel_on_cuda_and_matches_the_per_parameter_ops(cls, monkeypatch):
    """One group with CUDA parameters of two dtypes and a CPU parameter: the default (foreach/fused None) runs
    `_fused_adam_` once per device and step count, never the per-parameter ops, and ends where foreach=False does."""
    rng = np.random.default_rng(2)
    shapes, dts = [(4, 3), (5,), (2, 2, 2), (3,)], [np.float32, np.float32, np.float64, np.float32]
    devs = ["cuda", "cuda", "cuda", "cpu"]
    init = [rng.standard_normal(s).astype(d) for s, d in zip(shapes, dts)]
    grads = [[rng.standard_normal(s).astype(d) for s, d in zip(shapes, dts)] for _ in range(3)]

    def run(**flags):
        params = [vt.tensor(a).to(dev).requires_grad_() for a, dev in zip(init, devs)]
        opt = getattr(vt.optim, cls)(params, lr=1e-2, weight_decay=0.05, **flags)
        calls = []
        if flags.get("foreach") is not False:
            monkeypatch.setattr(opt, "_single", lambda *a: pytest.fail("took the per-parameter ops"))
            real = vt.optim.adam.call
            monkeypatch.setattr(vt.optim.adam, "call", lambda name, *a: calls.append(str(a[0][0].device)) or real(name, *a))
        for gs in grads:
            for p, g, dev in zip(params, gs, devs):
                p.grad = vt.tensor(g).to(dev)
            opt.step()
        monkeypatch.undo()
        return [p.detach().cpu().numpy() for p in params], calls

    fused, calls = run()
    assert sorted(calls) == sorted([str(vt.ones(1, device="cuda").device), "cpu"] * 3)
    single, _ = run(foreach=False)
    for f, s, d in zip(fused, single, dts):
        np.testing.assert_allclose(f, s, rtol=1e-6 if d == np.float32 else 1e-12, atol=1e-7)


# ---- clip_grad_norm_'s list ops on CUDA (Note [Clip lists]): the multi-tensor kernels against the CPU ops
LIST_SHAPES = [(3, 5)] * 30 + [(7,), (), (3 * CHUNK + 11,), (2 * CHUNK,)]


@pytest.mark.parametrize("ord_", [2.0, 1.0, float("inf"), float("-inf"), 0.0, 3.0])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_stacked_norms_match_the_cpu_op(ord_, dt):
    rng = np.random.default_rng(3)
    arrays = [np.asarray(rng.standard_normal(s), dtype=dt) for s in LIST_SHAPES]
    arrays[5][0, 0] = 0.0
    cpu = _C.call("_stacked_norms", [vt.tensor(a) for a in arrays], ord_)
    gpu = _C.call("_stacked_norms", [vt.tensor(a).to("cuda") for a in arrays], ord_)
    assert gpu.device.type == "cuda" and tuple(gpu.shape) == (len(arrays),)
    tol = 1e-6 if dt == np.float32 else 1e-13
    np.testing.assert_allclose(gpu.cpu().numpy(), cpu.numpy(), rtol=tol, atol=0)


def test_stacked_norms_nan_empty_and_strided_tensors():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    nan = a.copy()
    nan[1, 2] = np.nan
    ts = [vt.tensor(a).to("cuda"), vt.tensor(nan).to("cuda")]
    r = _C.call("_stacked_norms", ts, 2.0).cpu().numpy()
    assert r[0] == pytest.approx(float(np.linalg.norm(a)), rel=1e-6) and np.isnan(r[1])
    assert np.isnan(_C.call("_stacked_norms", ts, float("inf")).cpu().numpy()[1])
    strided = vt.tensor(a).to("cuda").t()  # non-contiguous, and an empty tensor: the per-tensor ops
    r = _C.call("_stacked_norms", [strided, vt.zeros(0, device="cuda")], 1.0).cpu().numpy()
    np.testing.assert_allclose(r, [a.sum(), 0.0])


@pytest.mark.parametrize("scale_dev", ["cuda", "cpu"])
def test_foreach_mul_equals_mul_on_every_tensor(scale_dev):
    rng = np.random.default_rng(4)
    arrays = [np.asarray(rng.standard_normal(s), dtype=np.float32) for s in LIST_SHAPES]
    ts = [vt.tensor(a).to("cuda") for a in arrays]
    ptrs = [t.data_ptr() for t in ts]
    scale = vt.tensor(np.float32(0.37)).to(scale_dev)
    out = _C.call("_foreach_mul_", ts, scale)
    assert [t.data_ptr() for t in out] == ptrs
    for t, a in zip(ts, arrays):
        np.testing.assert_array_equal(t.cpu().numpy(), (vt.tensor(a) * vt.tensor(np.float32(0.37))).numpy())


def test_clip_grad_norm_on_cuda_takes_the_list_ops(monkeypatch):
    from vibetensor.torch.nn.utils import clip_grad
    rng = np.random.default_rng(5)
    arrays = [np.asarray(rng.standard_normal(s) * 3, dtype=np.float32) for s in LIST_SHAPES]
    results = {}
    for dev in ("cpu", "cuda"):
        ps = [vt.nn.Parameter(vt.zeros(*a.shape).to(dev)) for a in arrays]
        for p, a in zip(ps, arrays):
            p.grad = vt.tensor(a).to(dev)
        seen = []
        real = clip_grad.call
        monkeypatch.setattr(clip_grad, "call", lambda name, *a: seen.append(name) or real(name, *a))
        total = vt.nn.utils.clip_grad_norm_(ps, 1.0)
        monkeypatch.undo()
        assert seen == ["_stacked_norms", "_foreach_mul_"]
        results[dev] = (float(total.item()), [p.grad.cpu().numpy() for p in ps])
    assert results["cuda"][0] == pytest.approx(results["cpu"][0], rel=1e-6)
    for g, c in zip(results["cuda"][1], results["cpu"][1]):
        np.testing.assert_allclose(g, c, rtol=2e-6, atol=1e-7)
