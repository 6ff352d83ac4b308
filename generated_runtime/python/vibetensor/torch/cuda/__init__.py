"""vibetensor.torch.cuda: torch.cuda's names over the CUDA subsystem (streams, events, graphs, the caching
allocator's statistics).

Without a usable GPU it behaves like torch.cuda in a build without CUDA: is_available() is False,
device_count() is 0, the memory queries return 0 / an empty dict, empty_cache() does nothing, and everything
that needs a device (Stream, Event, CUDAGraph, graph_pool_handle, synchronize, current_stream,
set_per_process_memory_fraction, memory_snapshot, ...) raises a RuntimeError that says so.
``vibetensor.torch.cuda._testing.host_allocator()`` routes the memory API to the caching allocator on host
memory (the policy CI tests without a GPU).
Importing it also gives tensors torch's pinned-memory API and non-blocking copies (``Tensor.pin_memory()``,
``is_pinned()``, ``pin_memory=True`` factories, ``non_blocking=True`` on ``to`` / ``cuda`` / ``copy_``; see
``_tensors.py``).
"""
from vibetensor import _C

from ._device import (_require_cuda, current_device, device_count, get_device_name, is_available, is_built,
                      is_initialized, set_device, synchronize)
from .memory import (OutOfMemoryError, empty_cache, max_memory_allocated, max_memory_reserved, mem_get_info,
                     memory_allocated, memory_reserved, memory_snapshot, memory_stats, reset_max_memory_allocated,
                     reset_peak_memory_stats, set_per_process_memory_fraction, graph_pools)
from .streams import Event, Stream, StreamContext, current_stream, default_stream, set_stream, stream
from .graphs import CUDAGraph, graph, graph_pool_handle
from ._blas import cublas_info, matmul_backend, set_matmul_backend  # vibetensor-specific: cuBLAS or built-in GEMM
from . import _testing  # the host-backend testing hook (see _testing.py)
from . import _tensors  # the device-copy hook (.to("cuda") / .cuda() / .cpu()), pinned memory, non_blocking

__all__ = [
    "CUDAGraph", "Event", "OutOfMemoryError", "Stream", "StreamContext", "current_device", "current_stream",
    "default_stream", "device_count", "empty_cache", "get_device_name", "graph", "graph_pool_handle",
    "is_available", "is_built", "is_initialized", "max_memory_allocated", "max_memory_reserved", "mem_get_info",
    "memory_allocated", "memory_reserved", "memory_snapshot", "memory_stats", "reset_max_memory_allocated",
    "reset_peak_memory_stats", "set_device", "set_per_process_memory_fraction", "set_stream", "stream",
    "synchronize",
    # vibetensor-specific (_blas.py): which GEMM CUDA matmuls use
    "cublas_info", "matmul_backend", "set_matmul_backend",
    # vibetensor-specific (memory.py): the CUDA graph pools and their numbers
    "graph_pools",
]
