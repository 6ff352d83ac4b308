"""Testing hook: the caching allocator on host memory behind vt.cuda's memory API, so CI tests the
Python-level allocator statistics without a GPU.

    with vt.cuda._testing.host_allocator(capacity=256 << 20) as a:
        p = a.allocate(1000, stream=0)      # an address (int); a.free(p) returns it to the cache
        vt.cuda.memory_allocated()          # now answered by this allocator

Streams are small ints; a block used on another stream (record_stream) is reusable only after
complete_stream(that stream) (which stands for "the work queued there has finished") or empty_cache().
"""
import contextlib

from vibetensor import _C

from . import memory


class HostAllocator:
    def __init__(self, capacity=1 << 30):
        self._native = _C._HostCachingAllocator(int(capacity))

    def allocate(self, nbytes, stream=0):
        return self._native.allocate(int(nbytes), int(stream))

    def free(self, ptr):
        self._native.free(ptr)

    def record_stream(self, ptr, stream):
        self._native.record_stream(ptr, int(stream))

    def complete_stream(self, stream):
        return self._native.complete_stream(int(stream))

    def block_size(self, ptr):
        return self._native.block_size(ptr)

    def set_poison_on_free(self, on):
        self._native.set_poison_on_free(bool(on))

    def write(self, ptr, nbytes, byte):
        self._native.write(ptr, int(nbytes), int(byte))

    def is_filled(self, ptr, nbytes, byte):
        return self._native.is_filled(ptr, int(nbytes), int(byte))

    def begin_capture(self, graph, stream, pool=None):
        """pool: the id of a shared pool (Note [Shared graph pools]); None: the graph's own pool (id = graph)."""
        self._native.begin_capture(int(graph), int(stream), -1 if pool is None else int(pool))

    def end_capture(self, graph):
        self._native.end_capture(int(graph))

    def release_graph(self, graph):
        self._native.release_graph(int(graph))

    def retain_pool(self, pool):
        self._native.retain_pool(int(pool))

    def release_pool(self, pool):
        self._native.release_pool(int(pool))

    def graph_pool(self, graph):
        return self._native.graph_pool(int(graph))

    def graph_pool_stats(self, pool):
        return self._native.graph_pool_stats(int(pool))

    def raw_bytes_in_use(self):
        return self._native.raw_bytes_in_use()

    def live_events(self):
        return self._native.live_events()


@contextlib.contextmanager
def host_allocator(capacity=1 << 30):
    """Installs a fresh HostAllocator as the source of vt.cuda's memory API for the block."""
    previous = memory._hook
    memory._hook = HostAllocator(capacity)
    try:
        yield memory._hook
    finally:
        memory._hook = previous
