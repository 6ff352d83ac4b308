"""CUDA graph capture of real ops (vt.cuda.CUDAGraph, `with vt.cuda.graph(g):`), on a GPU.

* A small MLP forward (linear on cuBLAS and on the built-in GEMM kernel, gelu/relu, layer_norm with a Python-float
  eps, softmax, sum/mean/amax reductions, elementwise with Python scalars) is captured once and replayed: each
  replay after static inputs are changed in place gives the eager result and torch's (float64 on the CPU).
* Replay semantics: the outputs change only on replay; a non-blocking copy from pinned memory inside the capture
  re-reads the pinned buffer at every replay; the graph's private pool shows up in memory_snapshot until reset.
* Ops that need a host synchronization (.item(), a blocking D2H / H2D copy, nonzero, masked_select) raise a
  RuntimeError that says so inside the `with` block; the capture is then ended and discarded: the current stream
  is restored, the graph object can capture again, eager ops and the allocator keep working.
Without a GPU only the last test runs: the allocator calls an aborted capture makes, on the host backend (the graph
API without a device is covered by test_cuda_api.py)."""
import gc

import numpy as np
import pytest

import vibetensor.torch as vt
import vibetensor.torch.nn.functional as F

torch = pytest.importorskip("torch")

HAS_GPU = vt.cuda.is_available() and vt.cuda._tensors.has_ops()
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU and a build with the CUDA kernels")

D_IN, HIDDEN, D_OUT, BATCH = 32, 64, 10, 16


def _params(seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = {"w1": (HIDDEN, D_IN), "b1": (HIDDEN,), "ln_w": (HIDDEN,), "ln_b": (HIDDEN,), "w2": (D_OUT, HIDDEN),
              "b2": (D_OUT,)}
    return {k: torch.randn(*s, generator=g, dtype=torch.float64) * 0.3 for k, s in shapes.items()}


def _forward(lib, F_, p, x):
    """The same forward for torch and vibetensor: returns (probs, row_max, mean_logit, scaled)."""
    h = F_.linear(x, p["w1"], p["b1"])
    h = F_.gelu(h) + 0.5 * F_.relu(h)                  # a Python-float scalar operand
    h = F_.layer_norm(h, (HIDDEN,), p["ln_w"], p["ln_b"], eps=1e-5)
    logits = F_.linear(h, p["w2"], p["b2"])
    probs = F_.softmax(logits, dim=-1)
    row_max = logits.amax(dim=-1)
    mean_logit = logits.mean()
    scaled = (probs.sum(dim=-1) * 3 - 2.0).exp()        # sums are 1: exp(1)
    return probs, row_max, mean_logit, scaled


def _vt_params(p):
    return {k: vt.tensor(v.to(torch.float32).numpy()).cuda() for k, v in p.items()}


def _check(outs, x_np, p, what):
    ref = _forward(torch, torch.nn.functional, p, torch.from_numpy(x_np).to(torch.float64))
    for name, o, r in zip(("probs", "row_max", "mean_logit", "scaled"), outs, ref):
        got = o.cpu().numpy().astype(np.float64)
        np.testing.assert_allclose(got, r.numpy(), rtol=2e-4, atol=2e-5, err_msg=f"{what}: {name}")


@pytest.fixture(params=["kernel", "cublas"])
def matmul_backend(request):
    before = vt.cuda.matmul_backend()
    if request.param == "cublas" and vt.cuda.cublas_info()["error"] and before != "cublas":
        pytest.skip(f"cuBLAS cannot be loaded here: {vt.cuda.cublas_info()['error']}")
    vt.cuda.set_matmul_backend(request.param)
    yield request.param
    vt.cuda.set_matmul_backend(before if before in ("kernel", "cublas") else "kernel")


@needs_gpu
def test_mlp_forward_captured_and_replayed_matches_eager_and_torch(matmul_backend):
    p = _params()
    vp = _vt_params(p)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((BATCH, D_IN)).astype(np.float32) for _ in range(3)]
    static_x = vt.tensor(xs[0]).cuda()
    eager = _forward(vt, F, vp, static_x)                # warm-up: cuBLAS handle, kernels, cached blocks
    _check(eager, xs[0], p, "eager")
    vt.cuda.synchronize()

    g = vt.cuda.CUDAGraph()
    with vt.cuda.graph(g):
        static_out = _forward(vt, F, vp, static_x)
    assert vt.cuda.current_stream() == vt.cuda.default_stream()
    for i, x in enumerate(xs + xs[:1]):
        static_x.copy_(vt.tensor(x))                     # change the static input in place (outside the capture)
        g.replay()
        vt.cuda.synchronize()
        _check(static_out, x, p, f"replay {i} ({matmul_backend})")
        eager = _forward(vt, F, vp, static_x)
        for o, e in zip(static_out, eager):
            np.testing.assert_allclose(o.cpu().numpy(), e.cpu().numpy(), rtol=1e-4, atol=1e-5)
    g.reset()
    with pytest.raises(RuntimeError, match="nothing was captured"):
        g.replay()


@needs_gpu
def test_outputs_change_only_on_replay_and_the_graph_pool_is_private():
    x = vt.tensor(np.arange(8, dtype=np.float32)).cuda()
    w = vt.tensor(np.full((8, 8), 0.5, dtype=np.float32)).cuda()
    y = (x @ w) * 2 + 1                                  # warm-up
    vt.cuda.synchronize()
    g = vt.cuda.CUDAGraph()
    with vt.cuda.graph(g):
        y = (x @ w) * 2 + 1
        z = y.sum()
    pool = g.pool()
    segs = [s for s in vt.cuda.memory_snapshot() if s["segment_pool_id"] == pool]
    assert segs, "the capture's allocations did not come from the graph's private pool"
    g.replay()
    vt.cuda.synchronize()
    expected = float(np.arange(8).sum()) * 0.5 * 2 + 1
    assert np.allclose(y.cpu().numpy(), expected) and np.isclose(z.item(), expected * 8)
    x.fill_(1.0)                                         # not replayed yet: the outputs keep their values
    vt.cuda.synchronize()
    assert np.allclose(y.cpu().numpy(), expected)
    g.replay()
    vt.cuda.synchronize()
    assert np.allclose(y.cpu().numpy(), 8 * 0.5 * 2 + 1) and np.isclose(z.item(), (8 * 0.5 * 2 + 1) * 8)
    for _ in range(5):
        g.replay()
    vt.cuda.synchronize()
    assert np.allclose(y.cpu().numpy(), 9.0)
    del y, z
    g.reset()
    assert not [s for s in vt.cuda.memory_snapshot() if s["segment_pool_id"] == pool], \
        "reset() left the graph's free segments in the cache"


@needs_gpu
def test_a_non_blocking_copy_from_pinned_memory_is_replayed():
    host = vt.full((256,), 1.0, pin_memory=True)
    dev = vt.zeros(256, device="cuda")
    out = dev * 2
    vt.cuda.synchronize()
    g = vt.cuda.CUDAGraph()
    with vt.cuda.graph(g):
        dev.copy_(host, non_blocking=True)
        out = dev * 2
    for value in (1.0, 5.0, -3.0):
        host.fill_(value)                                # the graph reads the pinned buffer at each replay
        g.replay()
        vt.cuda.synchronize()
        assert np.all(out.cpu().numpy() == 2 * value)


@needs_gpu
def test_embedding_and_index_select_are_captured_with_their_indices_read_at_replay():
    """Index ops check the index range on the host eagerly; under capture the check is skipped (it would need a
    host sync), so a replay gathers whatever indices the static index tensor holds then."""
    table_np = np.arange(40, dtype=np.float32).reshape(10, 4)
    table = vt.tensor(table_np).cuda()
    idx = vt.tensor(np.array([1, 2, 3], dtype=np.int64)).cuda()
    F.embedding(idx, table)                              # warm-up
    with pytest.raises(IndexError):                      # eagerly, a bad index is still diagnosed
        vt.index_select(table, 0, vt.tensor(np.array([10], dtype=np.int64)).cuda())
    vt.cuda.synchronize()
    g = vt.cuda.CUDAGraph()
    with vt.cuda.graph(g):
        emb = F.embedding(idx, table)
        sel = vt.index_select(table.t(), 1, idx) * 2       # a strided source
    for ids in ([1, 2, 3], [9, 0, 2], [3, 3, 1]):
        idx.copy_(vt.tensor(np.array(ids, dtype=np.int64)))
        g.replay()
        vt.cuda.synchronize()
        assert np.array_equal(emb.cpu().numpy(), table_np[ids]), ids
        assert np.array_equal(sel.cpu().numpy(), table_np.T[:, ids] * 2), ids


HOST_SYNCS = [
    ("item", lambda x: x.sum().item(), r"item\(\): needs to synchronize"),
    ("cpu", lambda x: x.cpu(), "copy from CUDA to pageable host memory: needs to synchronize"),
    ("numpy", lambda x: (x * 2).cpu().numpy(), "needs to synchronize"),
    ("h2d_pageable", lambda x: x + vt.tensor(np.ones(4, dtype=np.float32)).cuda(),
     "copy from pageable host memory to CUDA: needs to synchronize"),
    ("nonzero", lambda x: (x > 0).nonzero(), "nonzero: needs to synchronize"),
    ("masked_select", lambda x: x.masked_select(x > 0), "masked_select: needs to synchronize"),
]


@needs_gpu
@pytest.mark.parametrize("name,bad,match", HOST_SYNCS, ids=[h[0] for h in HOST_SYNCS])
def test_a_host_sync_inside_a_capture_raises_and_leaves_everything_usable(name, bad, match):
    x = vt.tensor(np.array([1.0, -2.0, 3.0, -4.0], dtype=np.float32)).cuda()
    x * 2                                                # warm-up
    vt.cuda.synchronize()
    allocated_before = vt.cuda.memory_allocated()
    g = vt.cuda.CUDAGraph()
    with pytest.raises(RuntimeError, match=match) as info:
        with vt.cuda.graph(g):
            y = x * 2
            bad(x)
    assert "capturing a CUDA graph" in str(info.value)
    assert vt.cuda.current_stream() == vt.cuda.default_stream(), "the graph context did not restore the stream"
    assert not g._native.capturing
    with pytest.raises(RuntimeError, match="nothing was captured"):
        g.replay()
    # the process, the allocator and eager execution are fine (the traceback's frames hold the capture's tensors)
    del y, info
    gc.collect()
    vt.cuda.synchronize()
    assert vt.cuda.memory_allocated() == allocated_before
    assert np.allclose((x * 3).cpu().numpy(), [3.0, -6.0, 9.0, -12.0])
    assert bad(x) is not None                             # the same op works eagerly
    # the same graph object captures again
    with vt.cuda.graph(g):
        y = x * 5
    g.replay()
    vt.cuda.synchronize()
    assert np.allclose(y.cpu().numpy(), [5.0, -10.0, 15.0, -20.0])
    g.reset()


@needs_gpu
def test_an_exception_from_python_inside_the_capture_also_ends_it():
    x = vt.ones(4, device="cuda")
    vt.cuda.synchronize()
    g = vt.cuda.CUDAGraph()
    with pytest.raises(ValueError, match="user error"):
        with vt.cuda.graph(g):
            x * 2
            raise ValueError("user error")
    assert not g._native.capturing and vt.cuda.current_stream() == vt.cuda.default_stream()
    assert np.allclose((x + 1).cpu().numpy(), 2.0)


def test_the_allocator_sequence_of_an_aborted_capture_on_the_host_backend():
    """CudaGraph.capture_abort ends the allocator's capture and releases the graph's pool, then takes a fresh pool
    id: blocks the failed capture left alive keep their segment until freed, then it is returned; the next capture
    works; a released id whose pool still holds blocks cannot capture again (hence the fresh id)."""
    def graph_segments(gid):
        return [s for s in vt.cuda.memory_snapshot() if s["segment_pool_id"] == (0, gid)]

    with vt.cuda._testing.host_allocator(capacity=64 << 20) as a:
        eager = a.allocate(1000, stream=0)
        a.begin_capture(1, stream=5)
        y = a.allocate(1000, stream=5)                  # an op's output inside the capture: graph pool 1
        tmp = a.allocate(3000, stream=5)
        a.free(tmp)
        assert len(graph_segments(1)) == 1
        a.end_capture(1)                                 # the op raised: capture_abort
        a.release_graph(1)
        assert len(graph_segments(1)) == 1, "a segment holding a live block must stay"
        with pytest.raises(RuntimeError, match="was released"):  # while its pool lives on
            a.begin_capture(1, stream=5)
        a.free(y)
        assert graph_segments(1) == [], "the released pool's segment was not returned once its last block was freed"
        a.begin_capture(2, stream=5)                     # the graph object's fresh id
        z = a.allocate(1000, stream=5)
        assert len(graph_segments(2)) == 1
        a.end_capture(2)
        a.free(z)
        a.release_graph(2)
        assert graph_segments(2) == []
        assert vt.cuda.memory_allocated() == 1024         # only the eager block
        a.free(eager)


def test_the_graph_context_ends_or_aborts_the_capture_and_restores_the_stream(monkeypatch):
    """vt.cuda.graph's protocol with stand-ins for the device calls (runs without a GPU): a clean block ends the
    capture (capture_end); a block that raises aborts it (abort_capture, never capture_end) and the exception
    propagates; either way the previous stream is current again."""
    from vibetensor.torch.cuda import graphs

    calls, current = [], ["default"]

    class FakeStream:
        device_index = 0

        def wait_stream(self, other):
            calls.append(("wait_stream", other))

    class FakeGraph:
        def capture_begin(self, pool=None):
            calls.append(("capture_begin", current[0]))

        def capture_end(self):
            calls.append(("capture_end", current[0]))

        def abort_capture(self):
            calls.append(("abort_capture", current[0]))

    side = FakeStream()
    monkeypatch.setattr(graphs, "synchronize", lambda device=None: calls.append(("synchronize", device)))
    monkeypatch.setattr(graphs, "current_stream", lambda device=None: current[0])
    monkeypatch.setattr(graphs, "set_stream", lambda s: current.__setitem__(0, s))
    with graphs.graph(FakeGraph(), stream=side):
        assert current[0] is side
    assert calls == [("synchronize", 0), ("wait_stream", "default"), ("capture_begin", side), ("capture_end", side)]
    assert current[0] == "default"
    calls.clear()
    with pytest.raises(RuntimeError, match="item"):
        with graphs.graph(FakeGraph(), stream=side):
            raise RuntimeError("item(): needs to synchronize ...")
    assert [c[0] for c in calls] == ["synchronize", "wait_stream", "capture_begin", "abort_capture"]
    assert current[0] == "default"
