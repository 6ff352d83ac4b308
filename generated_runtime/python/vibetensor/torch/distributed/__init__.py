"""vibetensor.torch.distributed: torch.distributed's process-group API for data-parallel training, one process per
device.

Backends:
- ``nccl``: CUDA tensors, through NCCL (loaded at run time, see _nccl.py) on the current stream of the tensor's
  device, so a collective is ordered with the kernels around it like any other op. A non-contiguous tensor goes
  through a contiguous copy (torch refuses it).
- ``gloo`` (also accepted as ``tcp``): CPU tensors, through the rendezvous connections (a star through rank 0,
  reduced in rank order, so every rank gets bit-identical results). It is our own TCP implementation that takes
  gloo's place in scripts written for torch; it is not the gloo library. It is meant for tests and small jobs.
In an ``nccl`` group, CPU tensors also go through the TCP path, and ``barrier()`` always does.

Start the processes with ``python -m vibetensor.torch.distributed.run --nproc-per-node N script.py ...`` (or any
launcher that sets torchrun's variables): RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. See Note
[Rendezvous] in _rendezvous.py.
"""
from __future__ import annotations

import atexit
import datetime
import enum
import os
from typing import Any

import numpy as np

from ._rendezvous import DistError, rendezvous

__all__ = ["DistError", "ReduceOp", "all_reduce", "barrier", "broadcast", "destroy_process_group",
           "get_backend", "get_rank", "get_world_size", "init_process_group", "is_available", "is_initialized",
           "is_nccl_available"]


class ReduceOp(enum.Enum):
    SUM = "sum"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
    AVG = "avg"


class _Group:
    def __init__(self, backend: str, rank: int, world_size: int, channel, nccl=None, comm=None, device=None):
        self.backend, self.rank, self.world_size, self.channel = backend, rank, world_size, channel
        self.nccl, self.comm, self.device = nccl, comm, device


_group: _Group | None = None


def is_available() -> bool:
    return True


def is_nccl_available() -> bool:
    from ._nccl import NcclLibrary
    try:
        NcclLibrary()
    except RuntimeError:
        return False
    return True


def is_initialized() -> bool:
    return _group is not None


def _require_group(what: str) -> _Group:
    if _group is None:
        raise RuntimeError(f"vibetensor.distributed.{what}: the default process group is not initialized; "
                           "call vibetensor.torch.distributed.init_process_group() first")
    return _group


def get_rank(group=None) -> int:
    return _require_group("get_rank").rank


def get_world_size(group=None) -> int:
    return _require_group("get_world_size").world_size


def get_backend(group=None) -> str:
    return _require_group("get_backend").backend


def _env_int(name: str, given: int | None) -> int:
    if given is not None and given >= 0:
        return int(given)
    value = os.environ.get(name)
    if value is None:
        raise ValueError(f"vibetensor.distributed.init_process_group: {name} is not set; pass it as an argument or "
                         "start the processes with `python -m vibetensor.torch.distributed.run --nproc-per-node N`")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"vibetensor.distributed.init_process_group: {name}={value!r} is not an integer") from None


def _master(init_method: str | None) -> tuple[str, int]:
    if init_method and init_method != "env://":
        if not init_method.startswith("tcp://"):
            raise ValueError(f"vibetensor.distributed.init_process_group: init_method {init_method!r} is not "
                             "supported; use 'env://' or 'tcp://HOST:PORT'")
        host, _, port = init_method[len("tcp://"):].rpartition(":")
        return host, int(port)
    addr = os.environ.get("MASTER_ADDR", "127.0.0.1")
    port = os.environ.get("MASTER_PORT")
    if port is None:
        raise ValueError("vibetensor.distributed.init_process_group: MASTER_PORT is not set (init_method env://)")
    return addr, int(port)


def init_process_group(backend: str | None = None, init_method: str | None = None, timeout=None,
                       world_size: int = -1, rank: int = -1, store=None, group_name: str = "",
                       device_id=None) -> None:
    """Join the default process group (blocks until every rank has joined, or the timeout)."""
    global _group
    if _group is not None:
        raise RuntimeError("vibetensor.distributed.init_process_group: the default process group is already "
                           "initialized (call destroy_process_group() first)")
    if store is not None:
        raise NotImplementedError("vibetensor.distributed.init_process_group: store= is not supported; use "
                                  "init_method='env://' or 'tcp://HOST:PORT'")
    from .. import cuda
    if backend is None:
        backend = "nccl" if cuda.is_available() else "gloo"
    backend = str(backend).lower()
    if backend == "tcp":
        backend = "gloo"
    if backend not in ("nccl", "gloo"):
        raise ValueError(f"vibetensor.distributed.init_process_group: unknown backend {backend!r} "
                         "(expected 'nccl' or 'gloo')")
    world_size = _env_int("WORLD_SIZE", world_size)
    rank = _env_int("RANK", rank)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"vibetensor.distributed.init_process_group: rank {rank} is out of range for "
                         f"world_size {world_size}")
    if isinstance(timeout, datetime.timedelta):
        timeout_s = timeout.total_seconds()
    elif timeout is not None:
        timeout_s = float(timeout)
    else:
        timeout_s = float(os.environ.get("VBT_DIST_TIMEOUT_S", "300"))
    nccl = device = None
    if backend == "nccl":
        from ._nccl import NcclLibrary
        if not cuda.is_available():
            raise RuntimeError("vibetensor.distributed.init_process_group: backend 'nccl' needs a CUDA device "
                               "(vt.cuda.is_available() is False); use backend='gloo' for CPU tensors")
        if device_id is not None:
            cuda.set_device(device_id)
        device = cuda.current_device()
        nccl = NcclLibrary()  # fails here, before the rendezvous, when NCCL is missing
    addr, port = _master(init_method)
    make_payload = nccl.unique_id if nccl is not None else (lambda: b"")
    channel = rendezvous(addr, port, rank, world_size, backend, timeout_s, make_payload)
    comm = None
    if nccl is not None:
        try:
            comm = nccl.init_rank(world_size, channel.payload, rank)
        except BaseException:
            channel.close()
            raise
    _group = _Group(backend, rank, world_size, channel, nccl, comm, device)


def destroy_process_group(group=None) -> None:
    global _group
    if _group is None:
        return
    group, _group = _group, None
    if group.comm is not None:
        group.nccl.destroy(group.comm)
    group.channel.close()


atexit.register(destroy_process_group)


class _Done:
    """What ``async_op=True`` returns: the collective is already enqueued (NCCL) or done (TCP)."""

    def wait(self, timeout=None) -> bool:
        return True

    def is_completed(self) -> bool:
        return True


def _op_name(op: Any) -> str:
    if isinstance(op, ReduceOp):
        return op.value
    name = str(getattr(op, "name", op)).lower().rsplit(".", 1)[-1]
    if name not in {o.value for o in ReduceOp}:
        raise ValueError(f"vibetensor.distributed: unknown reduce op {op!r}")
    return name


def _dtype_name(tensor) -> str:
    return str(tensor.dtype).rsplit(".", 1)[-1]


def _uses_nccl(group: _Group, tensor, what: str) -> bool:
    if tensor.device.type == "cpu":
        return False
    if group.comm is None:
        raise RuntimeError(f"vibetensor.distributed.{what}: backend {group.backend!r} takes CPU tensors, got a tensor "
                           f"on {tensor.device}; use backend='nccl' for CUDA tensors")
    index = tensor.device.index if tensor.device.index is not None else group.device
    if index != group.device:
        raise RuntimeError(f"vibetensor.distributed.{what}: the tensor is on cuda:{index} but this rank's NCCL "
                           f"communicator is on cuda:{group.device}; call vt.cuda.set_device(LOCAL_RANK) before "
                           "init_process_group")
    return True


def _nccl_in_place(group: _Group, tensor, what: str, call) -> None:
    """``call(ptr, count, nccl_dtype, stream)`` on a dense buffer of ``tensor`` (a contiguous copy, written back,
    when the tensor is not contiguous: NCCL works on dense buffers), on the current stream of the group's device."""
    from ._nccl import DTYPES
    from .. import cuda
    name = _dtype_name(tensor)
    if name not in DTYPES:
        raise TypeError(f"vibetensor.distributed.{what}: NCCL has no {name} (supported: {', '.join(DTYPES)})")
    work = tensor if tensor.is_contiguous() else tensor.contiguous()
    call(work.data_ptr(), work.numel(), DTYPES[name], cuda.current_stream(group.device).cuda_stream)
    if work is not tensor:
        tensor.copy_(work)


_NUMPY_REDUCE = {"sum": np.add, "product": np.multiply, "min": np.minimum, "max": np.maximum}


def _host_buffer(tensor):
    """A contiguous CPU work tensor whose numpy() view shares memory with it, and whether to copy it back."""
    work = tensor
    if _dtype_name(tensor) == "bfloat16":
        work = tensor.float()
    elif not tensor.is_contiguous():
        work = tensor.contiguous()
    return work, work is not tensor


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduce ``tensor`` over all ranks in place; every rank ends with the result."""
    g = _require_group("all_reduce")
    name = _op_name(op)
    if _uses_nccl(g, tensor, "all_reduce"):
        from ._nccl import OPS
        _nccl_in_place(g, tensor, "all_reduce",
                       lambda ptr, n, dtype, stream: g.nccl.all_reduce(ptr, ptr, n, dtype, OPS[name], g.comm, stream))
        return _Done() if async_op else None
    if g.world_size > 1:
        work, copy_back = _host_buffer(tensor)
        array = work.numpy()
        if name == "avg" and array.dtype.kind not in "fc":
            raise TypeError(f"vibetensor.distributed.all_reduce: ReduceOp.AVG needs a floating tensor, got "
                            f"{_dtype_name(tensor)}")
        _host_all_reduce(g, array, name)
        if copy_back:
            tensor.copy_(work)
    return _Done() if async_op else None


def _host_all_reduce(g: _Group, array: np.ndarray, name: str) -> None:
    flat = array.reshape(-1)
    raw = memoryview(flat.view(np.uint8)) if flat.size else memoryview(b"")
    if g.rank == 0:
        acc = flat.copy()
        incoming = np.empty_like(flat)
        inbox = memoryview(incoming.view(np.uint8)) if flat.size else None
        for peer in range(1, g.world_size):
            g.channel.recv(peer, "all_reduce", inbox)
            if name == "sum" and acc.dtype == np.bool_:
                np.logical_or(acc, incoming, out=acc)
            elif name == "avg":
                np.add(acc, incoming, out=acc)
            else:
                _NUMPY_REDUCE[name](acc, incoming, out=acc)
        if name == "avg":
            np.divide(acc, g.world_size, out=acc, casting="unsafe")
        flat[...] = acc
        for peer in range(1, g.world_size):
            g.channel.send(peer, raw, "all_reduce")
    else:
        g.channel.send(0, raw, "all_reduce")
        g.channel.recv(0, "all_reduce", raw if flat.size else None)


def broadcast(tensor, src: int, group=None, async_op: bool = False):
    """Copy rank ``src``'s ``tensor`` into ``tensor`` on every rank."""
    g = _require_group("broadcast")
    if not 0 <= src < g.world_size:
        raise ValueError(f"vibetensor.distributed.broadcast: src {src} is out of range for world_size {g.world_size}")
    if _uses_nccl(g, tensor, "broadcast"):
        _nccl_in_place(g, tensor, "broadcast",
                       lambda ptr, n, dtype, stream: g.nccl.broadcast(ptr, ptr, n, dtype, src, g.comm, stream))
        return _Done() if async_op else None
    if g.world_size > 1:
        work, copy_back = _host_buffer(tensor)
        flat = work.numpy().reshape(-1)
        raw = memoryview(flat.view(np.uint8)) if flat.size else memoryview(b"")
        inbox = raw if flat.size else None
        if g.rank == 0:
            if src != 0:
                g.channel.recv(src, "broadcast", inbox)
            for peer in range(1, g.world_size):
                if peer != src:
                    g.channel.send(peer, raw, "broadcast")
        elif g.rank == src:
            g.channel.send(0, raw, "broadcast")
        else:
            g.channel.recv(0, "broadcast", inbox)
        if copy_back and g.rank != src:
            tensor.copy_(work)
    return _Done() if async_op else None


def barrier(group=None, async_op: bool = False, device_ids=None):
    """Wait until every rank reaches the barrier (CUDA work enqueued before it is finished first)."""
    g = _require_group("barrier")
    if g.comm is not None:
        from .. import cuda
        cuda.synchronize()
    g.channel.barrier()
    return _Done() if async_op else None
