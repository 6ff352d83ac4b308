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
usable (Note [Host synchronization under graph capture] in src/vbt/cuda/ops/cuda_ops.cpp)."""
from vibetensor import _C

from ._device import _index, synchronize
from .streams import Stream, current_stream, set_stream


class CUDAGraph:
    def __init__(self):
        _index(None, "CUDAGraph")
        self._native = _C._CudaGraph()
        self._stream = None

    def capture_begin(self, pool=None, capture_error_mode="thread_local"):
        if pool is not None:
            raise NotImplementedError("vibetensor.cuda.CUDAGraph: sharing a pool between graphs is not supported")
        self._stream = current_stream()
        self._native.capture_begin(self._stream._native)

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
        return (0, self._native.id)


class graph:
    """with vt.cuda.graph(g): ... captures the block into g on a side stream (stream=None: a new one)."""

    def __init__(self, cuda_graph, pool=None, stream=None, capture_error_mode="thread_local"):
        self.cuda_graph = cuda_graph
        self.pool = pool
        self.capture_stream = stream if stream is not None else Stream()
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
