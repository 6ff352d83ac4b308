"""CUDA graph capture and replay with torch.cuda's names. While a graph captures, allocations on its capture
stream come from the graph's private pool of the caching allocator, so replays find their memory intact;
reset() (or garbage collection) releases the pool.

    g = vt.cuda.CUDAGraph()
    static_x = vt.randn(8, 16, device="cuda")
    y = model(static_x)                     # warm up eagerly first (e.g. cuBLAS makes its handle here)
    with vt.cuda.graph(g):
        static_y = model(static_x)          # recorded, not run
    static_x.copy_(new_batch); g.replay()   # static_y now holds model(new_batch)

Ops that must synchronize the host with the device (.item(), a blocking copy to/from pageable memory,
nonzero, masked_select, printing) cannot be captured: they raise RuntimeError inside the block, and the block
ends the capture and discards it (abort_capture), so the graph object, the allocator and the process stay
usable (Note [Host synchronization under graph capture] in src/vbt/cuda/ops/cuda_ops.cpp).

Sharing a pool (torch's pattern; Note [Shared graph pools] in include/vbt/cuda/caching_allocator.h):

    g1, g2 = vt.cuda.CUDAGraph(), vt.cuda.CUDAGraph()
    with vt.cuda.graph(g1):
        out1 = f(static_x)
    with vt.cuda.graph(g2, pool=g1.pool()):  # or pool=vt.cuda.graph_pool_handle() for both
        out2 = g(out1)
    g1.replay(); g2.replay()                  # replay in the order of capture

A pool handle (graph_pool_handle(), CUDAGraph.pool()) is an opaque token equal to torch's (0, pool id) tuple
(and to memory_snapshot()'s "segment_pool_id"); while it lives, a capture may still start into the pool (it
holds no memory itself). The pool keeps its memory until the last graph captured into it is reset or
destroyed; then its free segments go back to the device, the rest as their blocks are freed. Blocks one
capture freed are reused by a later capture into the same pool on the same stream, which is why vt.cuda.graph
captures on one side stream per device unless given stream=, as torch does. Two graphs capturing into one
pool at the same time is an error."""
from vibetensor import _C

from ._device import _index, synchronize
from .streams import Stream, current_stream, set_stream


class _GraphPoolHandle(tuple):
    """(0, pool id), like torch's opaque pool token, holding a reference to the pool (a _C._CudaGraphPool)."""

    def __new__(cls, native):
        handle = super().__new__(cls, (0, int(native.id)))
        handle._native = native
        return handle

    def __repr__(self):
        return f"graph_pool_handle{tuple(self)!r}"


def graph_pool_handle():
    """An opaque token naming a new graph memory pool on the current device, for CUDAGraph.capture_begin(pool=)
    and vt.cuda.graph(pool=): graphs captured into it share its memory (torch.cuda.graph_pool_handle)."""
    device = _index(None, "graph_pool_handle")
    return _GraphPoolHandle(_C._CudaGraphPool(device))


def _pool_id(pool, device):
    if pool is None:
        return -1
    if not isinstance(pool, _GraphPoolHandle):
        raise TypeError("vibetensor.cuda.CUDAGraph.capture_begin: pool must come from vt.cuda.graph_pool_handle() "
                        f"or another graph's pool(), got {pool!r}")
    if pool._native.device != device:
        raise ValueError(f"vibetensor.cuda.CUDAGraph.capture_begin: the pool belongs to cuda:{pool._native.device} "
                         f"but the capture stream is on cuda:{device}")
    return pool._native.id


class CUDAGraph:
    def __init__(self):
        _index(None, "CUDAGraph")
        self._native = _C._CudaGraph()
        self._stream = None

    def capture_begin(self, pool=None, capture_error_mode="thread_local"):
        """Starts capturing the current stream's work; pool: share that pool (graph_pool_handle() or another
        graph's pool()) instead of a pool of this graph's own."""
        stream = current_stream()
        pool_id = _pool_id(pool, stream.device_index)
        self._stream = stream
        self._native.capture_begin(stream._native, pool_id)

    def capture_end(self):
        self._native.capture_end()

    def abort_capture(self):
        """vibetensor-specific: ends a capture that failed and drops what was recorded (a no-op when not
        capturing); the graph can capture again afterwards."""
        self._native.capture_abort()

    def replay(self):
        self._native.replay()

    def reset(self):
        self._native.reset()

    def pool(self):
        """The opaque token of this graph's memory pool, for another graph's capture_begin(pool=...)."""
        pool_id = self._native.pool_id
        if pool_id < 0:
            raise RuntimeError("vibetensor.cuda.CUDAGraph.pool(): called without a preceding capture (or after "
                               "reset())")
        return _GraphPoolHandle(_C._CudaGraphPool(self._native.device, pool_id))


_capture_streams = {}  # device index -> the side stream vt.cuda.graph captures on by default


def _default_capture_stream():
    device = _index(None, "graph")
    if device not in _capture_streams:
        _capture_streams[device] = Stream(device)
    return _capture_streams[device]


class graph:
    """with vt.cuda.graph(g): ... captures the block into g on a side stream (stream=None: one side stream per
    device, shared by every capture as in torch, so graphs sharing a pool reuse each other's freed blocks);
    pool: share that pool (graph_pool_handle() or another graph's pool())."""

    def __init__(self, cuda_graph, pool=None, stream=None, capture_error_mode="thread_local"):
        self.cuda_graph = cuda_graph
        self.pool = pool
        self.capture_stream = stream if stream is not None else _default_capture_stream()
        self._previous = None

    def __enter__(self):
        synchronize(self.capture_stream.device_index)  # as torch: eager work queued before is done
        self._previous = current_stream(self.capture_stream.device_index)
        self.capture_stream.wait_stream(self._previous)
        set_stream(self.capture_stream)
        try:
            self.cuda_graph.capture_begin(self.pool)
        except BaseException:
            set_stream(self._previous)
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.cuda_graph.capture_end()
            else:  # an op in the block failed: end the capture cleanly and let its exception propagate
                self.cuda_graph.abort_capture()
        finally:
            set_stream(self._previous)
        return False
