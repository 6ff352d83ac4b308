"""CUDA graph capture and replay with torch.cuda's names. While a graph captures, allocations on its capture
stream come from the graph's private pool of the caching allocator, so replays find their memory intact;
reset() (or garbage collection) releases the pool."""
from vibetensor import _C

from ._device import _index
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
        self._previous = current_stream(self.capture_stream.device_index)
        self.capture_stream.wait_stream(self._previous)
        set_stream(self.capture_stream)
        self.cuda_graph.capture_begin(self.pool)
        return self

    def __exit__(self, *exc):
        try:
            self.cuda_graph.capture_end()
        finally:
            set_stream(self._previous)
        return False
