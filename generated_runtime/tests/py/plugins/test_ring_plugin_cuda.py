"""The ring all-reduce plugin's CUDA kernel (plugins/fabric_ring_allreduce, registered with ABI 1.2's
VBT_KERNEL_MULTI_DEVICE): one tensor per GPU, reduce-scatter + all-gather over peer access on every device's
current stream. Checked against a host sum and against NCCL's all-reduce of the same data (single process,
ncclCommInitAll; skipped when NCCL cannot be loaded). Needs 2 or more GPUs (skipped otherwise). On a GPU machine:
    NCCL_NVLS_ENABLE=0 PYTHONPATH=<site> python -m pytest generated_runtime/tests/py/plugins/test_ring_plugin_cuda.py -q
"""
import os

import numpy as np
import pytest

import vibetensor.torch as vt
from vibetensor import _C
from vbt_plugin_paths import plugin_dir

NAME = "vbt_fabric_ring_allreduce"


def _path():
    try:
        p = os.path.join(plugin_dir(), f"lib{NAME}.so")
    except FileNotFoundError:
        return None
    return p if os.path.exists(p) else None


def _gpus():
    if not bool(getattr(_C, "_cuda_is_built", lambda: False)()):
        return 0
    return int(_C._cuda_device_count())


pytestmark = [pytest.mark.skipif(_path() is None, reason=f"lib{NAME}.so not built"),
              pytest.mark.skipif(_gpus() < 2, reason="needs 2 or more CUDA devices")]


def _np(t):
    return np.from_dlpack(t.to("cpu")).copy()


def _to(a, dev):
    return vt.from_dlpack(np.ascontiguousarray(a).copy()).to(dev)


def _sync_all():
    for d in range(_gpus()):
        vt.cuda.synchronize(d)


@pytest.fixture(scope="module")
def ring():
    assert vt.ops.load_library(_path()) in (["fabric::ring_all_reduce"], [])
    return vt.ops.fabric.ring_all_reduce


@pytest.mark.parametrize("count", [1, 3, 4, 1001, 1 << 20, (1 << 22) + 5])
def test_matches_host_sum(ring, count):
    n = _gpus()
    rng = np.random.default_rng(count)
    xs = [rng.standard_normal(count).astype(np.float32) for _ in range(n)]
    ts = [_to(x, f"cuda:{r}") for r, x in enumerate(xs)]
    assert ring(ts) is None
    _sync_all()
    ref = np.sum(np.stack(xs).astype(np.float64), axis=0)
    got = [_np(t) for t in ts]
    for r in range(n):
        np.testing.assert_allclose(got[r], ref, rtol=1e-5, atol=1e-5, err_msg=f"rank {r}")
        np.testing.assert_array_equal(got[r], got[0])


def test_matches_cpu_kernel_bitwise(ring):
    """The CUDA kernel and the CPU kernel follow one plan: the same sums in the same order, the same bits."""
    n = _gpus()
    rng = np.random.default_rng(7)
    xs = [rng.standard_normal(4099).astype(np.float32) for _ in range(n)]
    cpu = [vt.from_dlpack(x.copy()) for x in xs]
    ring(cpu)
    gpu = [_to(x, f"cuda:{r}") for r, x in enumerate(xs)]
    ring(gpu)
    _sync_all()
    for r in range(n):
        np.testing.assert_array_equal(_np(gpu[r]), np.from_dlpack(cpu[r]))


def test_matches_nccl(ring):
    nccl_ref = pytest.importorskip("ring_nccl_ref")
    n = _gpus()
    try:
        nccl = nccl_ref.NcclAllReduce(range(n))
    except (RuntimeError, OSError, AttributeError) as exc:
        pytest.skip(f"NCCL not usable: {exc}")
    try:
        rng = np.random.default_rng(3)
        count = (1 << 20) + 12
        xs = [rng.standard_normal(count).astype(np.float32) for _ in range(n)]
        mine = [_to(x, f"cuda:{r}") for r, x in enumerate(xs)]
        theirs = [_to(x, f"cuda:{r}") for r, x in enumerate(xs)]
        ring(mine)
        nccl([t.data_ptr() for t in theirs], count, [vt.cuda.current_stream(r).cuda_stream for r in range(n)])
        _sync_all()
        for r in range(n):
            a, b = _np(mine[r]), _np(theirs[r])
            if n == 2:  # one addition per element: both must round the same way
                np.testing.assert_array_equal(a, b)
            else:
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    finally:
        nccl.close()


def test_runs_on_the_current_streams(ring):
    """Work goes onto each device's current (non-blocking) stream; reading the results in stream order, with no
    device-wide synchronisation, sees the sum."""
    n = _gpus()
    streams = [vt.cuda.Stream(device=r) for r in range(n)]
    xs = [np.full(1 << 22, float(r + 1), dtype=np.float32) for r in range(n)]
    ts = [_to(x, f"cuda:{r}") for r, x in enumerate(xs)]
    _sync_all()
    guards = [vt.cuda.stream(s) for s in streams]
    for g in guards:
        g.__enter__()
    try:
        for r in range(n):
            assert vt.cuda.current_stream(r) == streams[r]
        ring(ts)
        for s in streams:
            s.synchronize()
        expected = n * (n + 1) / 2
        for t in ts:
            np.testing.assert_array_equal(_np(t), np.full(1 << 22, expected, dtype=np.float32))
    finally:
        for g in reversed(guards):
            g.__exit__(None, None, None)


def test_errors(ring):
    with pytest.raises(ValueError, match=r"tensors\[1\] is on cpu; every tensor must be on a CUDA device"):
        ring([vt.zeros(8, device="cuda:0"), vt.zeros(8)])
    with pytest.raises(ValueError, match=r"tensors\[0\] and tensors\[1\] are both on cuda:1"):
        ring([vt.zeros(8, device="cuda:1"), vt.zeros(8, device="cuda:1")])
    with pytest.raises(ValueError, match=r"tensors\[1\] has shape \[9\] but tensors\[0\] has shape \[8\]"):
        ring([vt.zeros(8, device="cuda:0"), vt.zeros(9, device="cuda:1")])
    with pytest.raises(NotImplementedError, match=r"tensors\[1\] is not float32"):
        ring([vt.zeros(8, device="cuda:0"), vt.zeros(8, device="cuda:1", dtype=vt.float64)])
    # the process stays healthy
    ts = [vt.ones(8, device=f"cuda:{r}") for r in range(2)]
    ring(ts)
    _sync_all()
    np.testing.assert_array_equal(_np(ts[1]), np.full(8, 2.0, dtype=np.float32))
