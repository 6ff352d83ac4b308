"""CUDA graphs sharing a memory pool, as in torch (vt.cuda.graph_pool_handle(), CUDAGraph.capture_begin(pool=...),
vt.cuda.graph(g, pool=...), g.pool()); Note [Shared graph pools] in include/vbt/cuda/caching_allocator.h.

Without a GPU: the allocator's pool policy on the host backend through the testing hook (two captures into one
pool reuse a freed block, the pool survives the first graph's release and goes after the last in either order,
a concurrent capture into one pool is refused, the pool's blocks never serve ordinary requests, the snapshot
names the pool), and graphs.py's handle and context logic with stand-ins for the device.
On a GPU: two graphs sharing a pool replay correctly in sequence (torch's pattern: capture g1, then g2 with
pool=g1.pool()), memory_reserved grows less than with separate pools, resetting the graphs in either order leaks
nothing after empty_cache, a concurrent capture into one pool raises."""
import numpy as np
import pytest

import vibetensor.torch as vt

torch = pytest.importorskip("torch")

HAS_GPU = vt.cuda.is_available() and vt.cuda._tensors.has_ops()
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU and a build with the CUDA kernels")
# Asserts memory comes back once Python drops the tensors: true in a plain process, not under compute-sanitizer,
# which keeps the frames of Python functions that made CUDA calls alive, and their tensors with them (seen on the
# H200: reports/gpu/2026-11-30-h200-verify-sanitize). The sanitize step deselects these (-m "not python_lifetime").
python_lifetime = pytest.mark.python_lifetime

KiB, MiB = 1024, 1024 * 1024


def _pool_segments(pool_id):
    return [s for s in vt.cuda.memory_snapshot() if s["segment_pool_id"] == (0, pool_id)]


def _pool_entry(pool_id):
    found = [p for p in vt.cuda.graph_pools() if p["pool_id"] == (0, pool_id)]
    return found[0] if found else None


# ---- the allocator policy on the host backend (CI, no GPU) ----

def test_two_captures_into_one_pool_reuse_a_block_the_first_freed():
    with vt.cuda._testing.host_allocator(capacity=256 * MiB) as a:
        a.retain_pool(50)                                # vt.cuda.graph_pool_handle()
        a.begin_capture(1, stream=5, pool=50)
        tmp = a.allocate(3 * MiB, stream=5)              # an intermediate the first capture frees
        out1 = a.allocate(1000, stream=5)
        a.free(tmp)
        a.end_capture(1)
        reserved = vt.cuda.memory_reserved()
        a.begin_capture(2, stream=5, pool=50)
        again = a.allocate(3 * MiB, stream=5)
        assert again == tmp, "the second capture did not reuse the block the first one freed"
        assert vt.cuda.memory_reserved() == reserved
        entry = _pool_entry(50)
        assert entry["graphs"] == [1, 2] and entry["handles"] == 1 and entry["capturing"] == 2
        assert entry["reserved_bytes"] == reserved and entry["segments"] == len(_pool_segments(50)) == 2
        assert a.graph_pool(1) == a.graph_pool(2) == 50
        stats = a.graph_pool_stats(50)
        assert stats["graphs"] == 2 and stats["capturing"] == 2 and stats["allocated_bytes"] == (
            a.block_size(again) + a.block_size(out1))
        a.end_capture(2)
        for p in (again, out1):
            a.free(p)
        a.release_graph(1)
        a.release_graph(2)
        assert _pool_segments(50) == [], "no graph holds the pool any more: its free segments must go"
        a.release_pool(50)
        assert _pool_entry(50) is None and a.raw_bytes_in_use() == 0


@pytest.mark.parametrize("first", [1, 2])
def test_the_pool_survives_the_first_release_and_goes_after_the_last(first):
    with vt.cuda._testing.host_allocator(capacity=256 * MiB) as a:
        a.begin_capture(1, stream=5)                     # graph 1's own pool: id 1
        out1 = a.allocate(5000, stream=5)
        tmp = a.allocate(3 * MiB, stream=5)
        a.free(tmp)
        a.end_capture(1)
        a.begin_capture(2, stream=5, pool=a.graph_pool(1))  # capture_begin(pool=g1.pool())
        out2 = a.allocate(3 * MiB, stream=5)
        a.end_capture(2)
        assert out2 == tmp
        reserved = vt.cuda.memory_reserved()
        assert reserved == 2 * MiB + 4 * MiB
        for p in (out1, out2):
            a.free(p)
        vt.cuda.empty_cache()                            # the graphs may replay: the pool stays
        a.release_graph(first)
        vt.cuda.empty_cache()
        assert vt.cuda.memory_reserved() == reserved, "the pool was released while another graph holds it"
        assert _pool_entry(1)["graphs"] == [3 - first]
        a.release_graph(3 - first)
        vt.cuda.empty_cache()
        assert vt.cuda.memory_reserved() == 0 and a.raw_bytes_in_use() == 0
        assert _pool_segments(1) == [] and _pool_entry(1) is None


def test_a_concurrent_capture_into_one_pool_is_refused():
    with vt.cuda._testing.host_allocator(capacity=256 * MiB) as a:
        a.begin_capture(1, stream=5, pool=60)
        x = a.allocate(4 * KiB, stream=5)
        with pytest.raises(RuntimeError, match="graph 1 is capturing into it; two graphs cannot capture into one "
                                               "pool at the same time"):
            a.begin_capture(2, stream=6, pool=60)
        y = a.allocate(4 * KiB, stream=6)                # the refused capture left stream 6 ordinary
        assert [s["segment_pool_id"] for s in vt.cuda.memory_snapshot() if s["stream"] == 6] == [(0, 0)]
        a.end_capture(1)
        a.begin_capture(2, stream=6, pool=60)            # one after the other is fine
        z = a.allocate(4 * KiB, stream=6)
        a.end_capture(2)
        assert len(_pool_segments(60)) == 2
        for p in (x, y, z):
            a.free(p)
        a.release_graph(1)
        a.release_graph(2)
        vt.cuda.empty_cache()
        assert a.raw_bytes_in_use() == 0


def test_a_shared_pool_never_serves_ordinary_requests():
    with vt.cuda._testing.host_allocator(capacity=256 * MiB) as a:
        a.begin_capture(1, stream=5)
        g = a.allocate(4 * KiB, stream=5)
        a.free(g)
        a.end_capture(1)
        a.begin_capture(2, stream=5, pool=1)
        a.end_capture(2)
        p = a.allocate(4 * KiB, stream=5)                # same stream, no capture: not the pool's free block
        assert p != g
        assert {s["segment_pool_id"] for s in vt.cuda.memory_snapshot()} == {(0, 0), (0, 1)}
        a.free(p)
        vt.cuda.empty_cache()
        assert [s["segment_pool_id"] for s in vt.cuda.memory_snapshot()] == [(0, 1)]
        a.release_graph(1)
        a.release_graph(2)
        assert vt.cuda.memory_snapshot() == []


def test_a_handle_keeps_the_pool_usable_but_a_dropped_pool_id_is_dead():
    with vt.cuda._testing.host_allocator(capacity=256 * MiB) as a:
        a.retain_pool(70)
        a.begin_capture(1, stream=5, pool=70)
        out = a.allocate(4 * KiB, stream=5)
        a.end_capture(1)
        a.release_graph(1)
        a.begin_capture(2, stream=5, pool=70)            # the handle still lets a capture start into it
        a.end_capture(2)
        a.release_graph(2)
        a.release_pool(70)                               # nothing holds pool 70 now; `out` is still live
        with pytest.raises(RuntimeError, match="was released"):
            a.begin_capture(3, stream=5, pool=70)
        a.free(out)
        assert _pool_entry(70) is None and a.raw_bytes_in_use() == 0


# ---- graphs.py: handles and the capture context, with stand-ins for the device ----

class _FakePoolNative:
    def __init__(self, pool_id, device=0):
        self.id, self.device = pool_id, device


def test_a_pool_handle_is_torchs_tuple_token_and_is_checked():
    from vibetensor.torch.cuda import graphs

    h = graphs._GraphPoolHandle(_FakePoolNative(12))
    assert h == (0, 12) and isinstance(h, tuple) and hash(h) == hash((0, 12))
    assert graphs._pool_id(h, 0) == 12 and graphs._pool_id(None, 0) == -1
    with pytest.raises(ValueError, match="cuda:0 but the capture stream is on cuda:1"):
        graphs._pool_id(h, 1)
    with pytest.raises(TypeError, match="graph_pool_handle"):
        graphs._pool_id((0, 12), 0)


def test_the_graph_context_passes_the_pool_and_captures_on_one_side_stream_per_device(monkeypatch):
    from vibetensor.torch.cuda import graphs

    made, begun = [], []

    class FakeStream:
        def __init__(self, device=None):
            self.device_index = device
            made.append(self)

        def wait_stream(self, other):
            pass

    class FakeGraph:
        def capture_begin(self, pool=None):
            begun.append(pool)

        def capture_end(self):
            pass

    device = [0]
    monkeypatch.setattr(graphs, "_capture_streams", {})
    monkeypatch.setattr(graphs, "Stream", FakeStream)
    monkeypatch.setattr(graphs, "_index", lambda d, what: device[0])
    monkeypatch.setattr(graphs, "synchronize", lambda device=None: None)
    monkeypatch.setattr(graphs, "current_stream", lambda device=None: "default")
    monkeypatch.setattr(graphs, "set_stream", lambda s: None)
    h = graphs._GraphPoolHandle(_FakePoolNative(3))
    c1 = graphs.graph(FakeGraph())
    with c1:
        pass
    c2 = graphs.graph(FakeGraph(), pool=h)
    with c2:
        pass
    assert begun == [None, h]
    assert c1.capture_stream is c2.capture_stream and len(made) == 1, "captures must share one side stream"
    device[0] = 1
    assert graphs.graph(FakeGraph()).capture_stream is not c1.capture_stream and made[-1].device_index == 1


# ---- on a GPU ----

N = 1 << 20  # 4 MiB of float32: large-pool blocks, one 4 MiB segment each


def _capture_pair(x, shared):
    """g1: y1 = x * 2 + 1, g2: y2 = x * 3 - 2, each through a 4 MiB intermediate freed inside the capture; with
    shared=True g2 captures into g1's pool and can reuse g1's freed intermediate."""
    g1, g2 = vt.cuda.CUDAGraph(), vt.cuda.CUDAGraph()
    with vt.cuda.graph(g1):
        t = x * 2
        y1 = t + 1
        del t
    with vt.cuda.graph(g2, pool=g1.pool() if shared else None):
        t = x * 3
        y2 = t - 2
        del t
    return g1, g2, y1, y2


def _replay_and_check(x, g1, g2, y1, y2, graphs=(1, 2)):
    for value in (1.0, -2.5, 4.0):
        x.fill_(value)
        if 1 in graphs:
            g1.replay()
        if 2 in graphs:
            g2.replay()
        vt.cuda.synchronize()
        if 1 in graphs:
            assert np.allclose(y1.cpu().numpy(), value * 2 + 1), f"g1 after x={value}"
        if 2 in graphs:
            assert np.allclose(y2.cpu().numpy(), value * 3 - 2), f"g2 after x={value}"


def _fresh_baseline(x):
    (x * 2 + 1).sum()                                    # warm-up
    vt.cuda.synchronize()
    vt.cuda.empty_cache()
    return vt.cuda.memory_reserved()


@needs_gpu
def test_torchs_pattern_capture_g2_into_g1s_pool_and_replay_both():
    """Where g2 consumes g1's output (torch's docs: whole-network capture in pieces sharing one pool)."""
    x = vt.zeros(N, device="cuda")
    _fresh_baseline(x)
    g1, g2 = vt.cuda.CUDAGraph(), vt.cuda.CUDAGraph()
    with vt.cuda.graph(g1):
        a = x * 2
        y1 = a + 1                                       # g1's output, g2's input
        del a
    with vt.cuda.graph(g2, pool=g1.pool()):
        b = y1 * 3
        y2 = b - x
        del b
    assert g2.pool() == g1.pool()
    assert [p["graphs"] for p in vt.cuda.graph_pools() if p["pool_id"] == g1.pool()] == [[g1._native.id,
                                                                                          g2._native.id]]
    for value in (1.0, 0.5, -3.0):
        x.fill_(value)
        g1.replay()
        g2.replay()
        vt.cuda.synchronize()
        np.testing.assert_allclose(y1.cpu().numpy(), 2 * value + 1)
        np.testing.assert_allclose(y2.cpu().numpy(), 3 * (2 * value + 1) - value)
    del y1, y2
    g1.reset()
    g2.reset()


@needs_gpu
@python_lifetime
def test_memory_reserved_grows_less_with_a_shared_pool():
    x = vt.zeros(N, device="cuda")
    growth = {}
    for shared in (False, True):
        base = _fresh_baseline(x)
        g1, g2, y1, y2 = _capture_pair(x, shared)
        growth[shared] = vt.cuda.memory_reserved() - base
        _replay_and_check(x, g1, g2, y1, y2)
        del y1, y2
        g1.reset()
        g2.reset()
        vt.cuda.empty_cache()
        assert vt.cuda.memory_reserved() == base
    # separate: each graph keeps its intermediate and its output; shared: g2's intermediate reuses g1's
    assert growth[True] <= growth[False] - 4 * MiB, growth


@needs_gpu
@python_lifetime
@pytest.mark.parametrize("first", ["g1", "g2"])
def test_resetting_graphs_that_share_a_pool_in_either_order_leaks_nothing(first):
    x = vt.zeros(N, device="cuda")
    base = _fresh_baseline(x)
    handle = vt.cuda.graph_pool_handle()
    pool = tuple(handle)
    g1, g2 = vt.cuda.CUDAGraph(), vt.cuda.CUDAGraph()
    with vt.cuda.graph(g1, pool=handle):
        y1 = (x * 2) + 1
    with vt.cuda.graph(g2, pool=handle):
        y2 = (x * 3) - 2
    assert g1.pool() == g2.pool() == pool
    del handle
    _replay_and_check(x, g1, g2, y1, y2)
    graphs = {"g1": g1, "g2": g2}
    graphs[first].reset()
    vt.cuda.empty_cache()
    assert _pool_segments(pool[1]), "the pool went with the first reset while the other graph holds it"
    survivor = 2 if first == "g1" else 1
    _replay_and_check(x, g1, g2, y1, y2, graphs=(survivor,))  # the other graph still replays correctly
    graphs["g2" if first == "g1" else "g1"].reset()
    del y1, y2
    vt.cuda.synchronize()
    vt.cuda.empty_cache()
    assert _pool_segments(pool[1]) == [] and _pool_entry(pool[1]) is None
    assert vt.cuda.memory_reserved() == base, "segments of the shared pool leaked"


@needs_gpu
def test_a_concurrent_capture_into_one_pool_raises_on_the_gpu():
    x = vt.ones(1024, device="cuda")
    x * 2
    vt.cuda.synchronize()
    handle = vt.cuda.graph_pool_handle()
    g1, g2 = vt.cuda.CUDAGraph(), vt.cuda.CUDAGraph()
    s1, s2 = vt.cuda.Stream(), vt.cuda.Stream()
    with vt.cuda.stream(s1):
        g1.capture_begin(pool=handle)
        y1 = x * 2
        with vt.cuda.stream(s2):
            with pytest.raises(RuntimeError, match="two graphs cannot capture into one pool at the same time"):
                g2.capture_begin(pool=handle)
        g1.capture_end()
    assert not g2._native.capturing
    with vt.cuda.graph(g2, pool=handle):                 # after g1's capture ended it works
        y2 = x * 3
    g1.replay()
    g2.replay()
    vt.cuda.synchronize()
    assert np.allclose(y1.cpu().numpy(), 2.0) and np.allclose(y2.cpu().numpy(), 3.0)
    with pytest.raises(TypeError, match="graph_pool_handle"):
        vt.cuda.CUDAGraph().capture_begin(pool=(0, 1))
    with pytest.raises(RuntimeError, match="without a preceding capture"):
        vt.cuda.CUDAGraph().pool()
    del y1, y2
    g1.reset()
    g2.reset()
