"""vibetensor.torch.distributed: torch.distributed's process-group API for data-parallel training, one process per
device.

Backends:
- ``nccl``: CUDA tensors, through NCCL (loaded at run time, see _nccl.py) on the current stream of the tensor's
  device, so a collective is ordered with the kernels around it like any other op. A non-contiguous tensor goes
  through a contiguous copy (torch refuses it).
- ``gloo`` (also accepted as ``tcp``): CPU tensors, through the rendezvous connections (a star through rank 0,
  reduced in rank order, so every rank gets bit-identical results). It is our own TCP implementation that takes
  gloo's place in scripts written for torch; it is not the gloo library. It is meant for tests and small jobs.
In an ``nccl`` group, CPU tensors also go through the TCP path, and ``barrier()`` always does, as do
``broadcast_object_list`` / ``all_gather_object`` (see Note [Objects over the rendezvous connections]).

Start the processes with ``python -m vibetensor.torch.distributed.run --nproc-per-node N script.py ...`` (or any
launcher that sets torchrun's variables): RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. See Note
[Rendezvous] in _rendezvous.py.
"""
from __future__ import annotations

import atexit
import datetime
import enum
import json
import os
import pickle
from typing import Any

import numpy as np

from ._rendezvous import DistError, rendezvous

__all__ = ["DistError", "ReduceOp", "all_gather", "all_gather_into_tensor", "all_gather_object", "all_reduce",
           "barrier", "broadcast", "broadcast_object_list", "destroy_process_group", "get_backend", "get_rank",
           "get_world_size", "init_process_group", "is_available", "is_initialized", "is_nccl_available"]


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


def _gather_uses_nccl(g: _Group, what: str, tensor, outputs) -> bool:
    """Whether a gather runs on NCCL; every tensor must be where the group's backend takes it, all on one device."""
    where = _uses_nccl(g, tensor, what)
    for i, out in enumerate(outputs):
        if _uses_nccl(g, out, what) != where:
            raise RuntimeError(f"vibetensor.distributed.{what}: the input tensor is on {tensor.device} but output "
                               f"{i} is on {out.device}; the input and the outputs must be on one device")
    return where


def _check_gather_output(what: str, tensor, out, label: str) -> None:
    if out.dtype != tensor.dtype:
        raise TypeError(f"vibetensor.distributed.{what}: {label} has dtype {_dtype_name(out)} but the input has "
                        f"{_dtype_name(tensor)}")


def _host_all_gather(g: _Group, what: str, tensor) -> np.ndarray:
    """Gather every rank's CPU ``tensor`` into a (world_size, *shape) array, the same on every rank.

    A star through rank 0: each rank sends a header (dtype, shape) and its bytes; rank 0 checks every header against
    its own and answers every rank with "ok" and the gathered bytes, or with the mismatch, which every rank raises (so
    a rank with another shape or dtype is named on all ranks instead of a timeout)."""
    work, _ = _host_buffer(tensor)  # bfloat16 travels as float32 (exact both ways)
    array = work.numpy()  # contiguous (_host_buffer), 0-d for a 0-d tensor
    header = {"dtype": _dtype_name(tensor), "shape": list(tensor.shape)}
    gathered = np.empty((g.world_size,) + array.shape, dtype=array.dtype)
    gathered[g.rank] = array
    if g.world_size == 1:
        return gathered
    flat = gathered.reshape(-1)
    whole = memoryview(flat.view(np.uint8)) if flat.size else memoryview(b"")
    if g.rank == 0:
        problems = []
        for peer in range(1, g.world_size):
            theirs = json.loads(bytes(g.channel.recv(peer, what)))
            data = g.channel.recv(peer, what)
            if theirs != header:
                problems.append(f"rank {peer} passed a {theirs['dtype']} tensor of shape {theirs['shape']}")
            elif array.size:
                gathered[peer] = np.frombuffer(data, dtype=array.dtype).reshape(array.shape)
        answer = {"ok": not problems}
        if problems:
            answer["error"] = (f"vibetensor.distributed.{what}: rank 0 passed a {header['dtype']} tensor of shape "
                               f"{header['shape']} but " + ", ".join(problems) +
                               "; every rank must pass the same shape and dtype")
        for peer in range(1, g.world_size):
            g.channel.send(peer, json.dumps(answer).encode(), what)
            if not problems:
                g.channel.send(peer, whole, what)
        if problems:
            raise DistError(answer["error"])
    else:
        g.channel.send(0, json.dumps(header).encode(), what)
        g.channel.send(0, memoryview(array.reshape(-1).view(np.uint8)) if array.size else memoryview(b""), what)
        answer = json.loads(bytes(g.channel.recv(0, what)))
        if not answer["ok"]:
            raise DistError(answer["error"])
        g.channel.recv(0, what, whole if flat.size else None)
    return gathered


def _nccl_all_gather(g: _Group, what: str, tensor, output) -> None:
    """ncclAllGather of ``tensor`` into the dense ``output`` (world_size * numel elements, rank-major) on the current
    stream of the group's device; like _nccl_in_place, strided tensors go through contiguous copies."""
    from ._nccl import DTYPES
    from .. import cuda
    name = _dtype_name(tensor)
    if name not in DTYPES:
        raise TypeError(f"vibetensor.distributed.{what}: NCCL has no {name} (supported: {', '.join(DTYPES)})")
    if tensor.numel() == 0:
        return  # nothing to gather (every rank has the same shape: torch's contract)
    send = tensor if tensor.is_contiguous() else tensor.contiguous()
    recv = output if output.is_contiguous() else output.contiguous()
    g.nccl.all_gather(send.data_ptr(), recv.data_ptr(), send.numel(), DTYPES[name], g.comm,
                      cuda.current_stream(g.device).cuda_stream)
    if recv is not output:
        output.copy_(recv)


def all_gather(tensor_list, tensor, group=None, async_op: bool = False):
    """Gather every rank's ``tensor`` into ``tensor_list`` (one tensor per rank, in rank order) on every rank.

    Every rank passes a tensor of the same shape and dtype, and a list of world_size tensors of that shape and dtype
    (torch's contract; a rank that differs is named in the error)."""
    g = _require_group("all_gather")
    tensor_list = list(tensor_list)
    if len(tensor_list) != g.world_size:
        raise ValueError(f"vibetensor.distributed.all_gather: tensor_list has {len(tensor_list)} tensors but the "
                         f"group has world_size {g.world_size}; pass one output tensor per rank")
    for i, out in enumerate(tensor_list):
        _check_gather_output("all_gather", tensor, out, f"tensor_list[{i}]")
        if list(out.shape) != list(tensor.shape):
            raise ValueError(f"vibetensor.distributed.all_gather: tensor_list[{i}] has shape {list(out.shape)} but "
                             f"the input has shape {list(tensor.shape)}")
    if _gather_uses_nccl(g, "all_gather", tensor, tensor_list):
        from .. import empty
        n = tensor.numel()
        flat = empty((g.world_size * n,), dtype=tensor.dtype, device=tensor.device)
        _nccl_all_gather(g, "all_gather", tensor, flat)
        for i, out in enumerate(tensor_list):
            out.copy_(flat[i * n:(i + 1) * n].reshape(list(tensor.shape)))
        return _Done() if async_op else None
    from .. import from_numpy
    gathered = _host_all_gather(g, "all_gather", tensor)
    for i, out in enumerate(tensor_list):
        out.copy_(from_numpy(np.array(gathered[i])))  # a 0-d array for a 0-d tensor
    return _Done() if async_op else None


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op: bool = False):
    """Gather every rank's ``input_tensor`` into ``output_tensor`` in rank order, as torch: the output is either the
    inputs concatenated along dim 0 (world_size * input.shape[0], ...) or stacked (world_size, *input.shape)."""
    g = _require_group("all_gather_into_tensor")
    what = "all_gather_into_tensor"
    _check_gather_output(what, input_tensor, output_tensor, "output_tensor")
    shape, world = list(input_tensor.shape), g.world_size
    stacked = [world] + shape
    concatenated = [world * shape[0]] + shape[1:] if shape else None
    if list(output_tensor.shape) not in (stacked, concatenated):
        forms = f"{concatenated} (concatenated) or {stacked} (stacked)" if shape else f"{stacked}"
        raise ValueError(f"vibetensor.distributed.{what}: output_tensor has shape {list(output_tensor.shape)}; for an "
                         f"input of shape {shape} and world_size {world} it must be {forms}")
    if _gather_uses_nccl(g, what, input_tensor, [output_tensor]):
        _nccl_all_gather(g, what, input_tensor, output_tensor)
        return _Done() if async_op else None
    from .. import from_numpy
    gathered = _host_all_gather(g, what, input_tensor)
    output_tensor.copy_(from_numpy(gathered.reshape(list(output_tensor.shape))))
    return _Done() if async_op else None


# Note [Objects over the rendezvous connections]: broadcast_object_list / all_gather_object pickle the objects and
# send the bytes over the rendezvous connections (the star through rank 0) in every backend. torch moves the pickled
# bytes through tensors of the group's backend (CUDA tensors under nccl); we don't: these calls carry small
# metadata, and the TCP star already exists on every rank of every backend. Unpickling runs arbitrary code, as in
# torch: use them only between ranks of one job.

def _pickle(what: str, obj) -> bytes:
    try:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise TypeError(f"vibetensor.distributed.{what}: cannot pickle {type(obj).__name__}: {exc}") from exc


def broadcast_object_list(object_list: list, src: int = 0, group=None, device=None) -> None:
    """Replace the items of ``object_list`` on every rank by those of rank ``src``'s (picklable objects; every rank
    passes a list of the same length, as in torch)."""
    g = _require_group("broadcast_object_list")
    what = "broadcast_object_list"
    if not 0 <= src < g.world_size:
        raise ValueError(f"vibetensor.distributed.{what}: src {src} is out of range for world_size {g.world_size}")
    if g.world_size == 1:
        return
    payload = _pickle(what, list(object_list)) if g.rank == src else None
    if g.rank == 0:
        if src != 0:
            payload = bytes(g.channel.recv(src, what))
        for peer in range(1, g.world_size):
            if peer != src:
                g.channel.send(peer, payload, what)
    elif g.rank == src:
        g.channel.send(0, payload, what)
    else:
        payload = bytes(g.channel.recv(0, what))
    if g.rank != src:
        objects = pickle.loads(payload)
        if len(objects) != len(object_list):
            raise ValueError(f"vibetensor.distributed.{what}: rank {g.rank} passed a list of {len(object_list)} "
                             f"objects but src {src} broadcast {len(objects)}; every rank passes a list of the "
                             "same length")
        object_list[:] = objects


def all_gather_object(object_list: list, obj, group=None) -> None:
    """Set ``object_list[r]`` to rank r's ``obj`` (picklable) on every rank; ``object_list`` has world_size items."""
    g = _require_group("all_gather_object")
    what = "all_gather_object"
    if len(object_list) != g.world_size:
        raise ValueError(f"vibetensor.distributed.{what}: object_list has {len(object_list)} items but the group "
                         f"has world_size {g.world_size}; pass a list with one slot per rank, e.g. [None] * "
                         "world_size")
    mine = _pickle(what, obj)
    if g.rank == 0:
        parts = [mine] + [bytes(g.channel.recv(peer, what)) for peer in range(1, g.world_size)]
        payload = pickle.dumps(parts, protocol=pickle.HIGHEST_PROTOCOL)
        for peer in range(1, g.world_size):
            g.channel.send(peer, payload, what)
    else:
        g.channel.send(0, mine, what)
        parts = pickle.loads(bytes(g.channel.recv(0, what)))
    # every rank unpickles its own object too, so it gets a copy as on the other ranks (torch does the same)
    object_list[:] = [pickle.loads(part) for part in parts]
