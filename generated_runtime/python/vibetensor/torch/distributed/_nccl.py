"""NCCL through ctypes, loaded at run time: nothing links NCCL at build time, so every build has this module and
a machine without NCCL gets a clear error only when it asks for the ``nccl`` backend.

The library is, in order: $VBT_NCCL_LIBRARY (a path; when set it must load), the pip package's
``nvidia/nccl/lib/libnccl.so.2`` on sys.path (it comes with a CUDA build of torch), then ``libnccl.so.2`` through
the dynamic loader. The signatures and enum values below are those of NCCL 2.x's nccl.h.
"""
from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

UNIQUE_ID_BYTES = 128

# ncclDataType_t
DTYPES = {"int8": 0, "uint8": 1, "int32": 2, "int64": 4, "float16": 6, "float32": 7, "float64": 8, "bfloat16": 9}
# ncclRedOp_t
OPS = {"sum": 0, "product": 1, "max": 2, "min": 3, "avg": 4}


class _UniqueId(ctypes.Structure):
    _fields_ = [("internal", ctypes.c_char * UNIQUE_ID_BYTES)]


def _candidates() -> list[str]:
    found = []
    for entry in sys.path:
        path = Path(entry or ".") / "nvidia" / "nccl" / "lib" / "libnccl.so.2"
        if path.is_file():
            found.append(str(path))
    return found + ["libnccl.so.2"]


class NcclLibrary:
    def __init__(self) -> None:
        explicit = os.environ.get("VBT_NCCL_LIBRARY")
        tried = []
        self.lib = None
        for path in ([explicit] if explicit else _candidates()):
            try:
                self.lib = ctypes.CDLL(path)
                self.path = path
                break
            except OSError as exc:
                tried.append(f"{path}: {exc}")
        if self.lib is None:
            hint = "(VBT_NCCL_LIBRARY is set and must name a loadable libnccl.so.2)" if explicit else \
                "(set VBT_NCCL_LIBRARY to libnccl.so.2, or install the nvidia-nccl pip package)"
            raise RuntimeError("vibetensor.distributed: the nccl backend cannot load NCCL " + hint + ": "
                               + "; ".join(tried))
        lib = self.lib
        lib.ncclGetErrorString.restype = ctypes.c_char_p
        lib.ncclGetErrorString.argtypes = [ctypes.c_int]
        lib.ncclGetVersion.argtypes = [ctypes.POINTER(ctypes.c_int)]
        lib.ncclGetUniqueId.argtypes = [ctypes.POINTER(_UniqueId)]
        lib.ncclCommInitRank.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, _UniqueId, ctypes.c_int]
        lib.ncclCommDestroy.argtypes = [ctypes.c_void_p]
        lib.ncclAllReduce.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                                      ctypes.c_void_p, ctypes.c_void_p]
        lib.ncclBroadcast.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                                      ctypes.c_void_p, ctypes.c_void_p]
        lib.ncclAllGather.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                                      ctypes.c_void_p, ctypes.c_void_p]
        self._last_error = getattr(lib, "ncclGetLastError", None)
        if self._last_error is not None:
            self._last_error.restype = ctypes.c_char_p
            self._last_error.argtypes = [ctypes.c_void_p]

    def check(self, result: int, what: str, comm=None) -> None:
        if result != 0:
            text = self.lib.ncclGetErrorString(result).decode(errors="replace")
            detail = ""
            if self._last_error is not None:
                detail = (self._last_error(comm) or b"").decode(errors="replace")
            detail = f" ({detail})" if detail else ""
            raise RuntimeError(f"vibetensor.distributed: NCCL {what} failed: {text}{detail}")

    def version(self) -> int:
        v = ctypes.c_int(0)
        self.check(self.lib.ncclGetVersion(ctypes.byref(v)), "ncclGetVersion")
        return v.value

    def unique_id(self) -> bytes:
        uid = _UniqueId()
        self.check(self.lib.ncclGetUniqueId(ctypes.byref(uid)), "ncclGetUniqueId")
        return ctypes.string_at(ctypes.addressof(uid), UNIQUE_ID_BYTES)

    def init_rank(self, world_size: int, unique_id: bytes, rank: int) -> ctypes.c_void_p:
        if len(unique_id) != UNIQUE_ID_BYTES:
            raise RuntimeError(f"vibetensor.distributed: NCCL unique id has {len(unique_id)} bytes, expected 128")
        uid = _UniqueId()
        ctypes.memmove(ctypes.addressof(uid), unique_id, UNIQUE_ID_BYTES)
        comm = ctypes.c_void_p()
        self.check(self.lib.ncclCommInitRank(ctypes.byref(comm), world_size, uid, rank), "ncclCommInitRank")
        return comm

    def destroy(self, comm) -> None:
        self.lib.ncclCommDestroy(comm)

    def all_reduce(self, send_ptr, recv_ptr, count, dtype, op, comm, stream) -> None:
        self.check(self.lib.ncclAllReduce(send_ptr, recv_ptr, count, dtype, op, comm, stream), "ncclAllReduce", comm)

    def broadcast(self, send_ptr, recv_ptr, count, dtype, root, comm, stream) -> None:
        self.check(self.lib.ncclBroadcast(send_ptr, recv_ptr, count, dtype, root, comm, stream), "ncclBroadcast", comm)

    def all_gather(self, send_ptr, recv_ptr, count, dtype, comm, stream) -> None:
        self.check(self.lib.ncclAllGather(send_ptr, recv_ptr, count, dtype, comm, stream), "ncclAllGather", comm)
