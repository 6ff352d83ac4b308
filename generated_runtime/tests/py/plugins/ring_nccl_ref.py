"""Single-process NCCL all-reduce over several GPUs (ncclCommInitAll + a group call), the reference the ring
plugin's GPU test and benchmark (tests/gpu/ring_plugin_bench.py) compare with. NCCL is found by
vibetensor.torch.distributed._nccl (VBT_NCCL_LIBRARY, the nvidia-nccl pip package, libnccl.so.2)."""
from __future__ import annotations

import ctypes

from vibetensor.torch.distributed._nccl import DTYPES, OPS, NcclLibrary


class NcclAllReduce:
    """One communicator per device of ``devices`` (one process); ``__call__(ptrs, count, streams)`` sums
    ``count`` float32 elements in place at ``ptrs[r]`` on ``devices[r]``, enqueued on ``streams[r]``."""

    def __init__(self, devices):
        self.nccl = NcclLibrary()
        lib = self.nccl.lib
        lib.ncclCommInitAll.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.ncclGroupStart.argtypes = []
        lib.ncclGroupEnd.argtypes = []
        self.devices = list(devices)
        n = len(self.devices)
        self.comms = (ctypes.c_void_p * n)()
        devs = (ctypes.c_int * n)(*self.devices)
        self.nccl.check(lib.ncclCommInitAll(self.comms, n, devs), "ncclCommInitAll")

    def __call__(self, ptrs, count, streams):
        lib = self.nccl.lib
        self.nccl.check(lib.ncclGroupStart(), "ncclGroupStart")
        try:
            for r, p in enumerate(ptrs):
                self.nccl.all_reduce(ctypes.c_void_p(p), ctypes.c_void_p(p), count, DTYPES["float32"], OPS["sum"],
                                     self.comms[r], ctypes.c_void_p(streams[r]))
        finally:
            self.nccl.check(lib.ncclGroupEnd(), "ncclGroupEnd")

    def close(self):
        for c in self.comms:
            if c:
                self.nccl.destroy(c)
        self.comms = None
