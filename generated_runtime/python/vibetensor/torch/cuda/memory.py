"""The caching allocator's statistics through torch.cuda's memory API.

memory_stats() uses torch's key names ("allocated_bytes.all.current", "reserved_bytes.all.peak",
"allocation.all.current", "segment.all.freed", "num_ooms", ...). memory_snapshot() returns torch's shape: a list
of segments {"device", "address", "total_size", "allocated_size", "active_size", "requested_size", "stream",
"segment_type", "segment_pool_id", "blocks": [{"address", "size", "requested_size", "state"}]} with states
"active_allocated", "active_pending_free" (freed, waiting for another stream's work) and "inactive";
"segment_pool_id" is (0, 0) for the general pools and (0, pool id) for a CUDA graph's private pool, equal to the
graph's pool() token. graph_pools() (vibetensor-specific) lists the private pools with their numbers.
The source is the testing hook when one is installed (_testing.host_allocator), else the device's allocator;
with neither, the queries answer like torch without CUDA (0, {}), and the rest raise.
"""
import collections
import json

from vibetensor import _C

from ._device import _index, is_available

OutOfMemoryError = _C._CudaOutOfMemoryError  # a RuntimeError subclass, like torch.cuda.OutOfMemoryError

_hook = None  # a _testing.HostAllocator while installed


def _stats_json(device, what):
    if _hook is not None:
        return _hook._native.stats_json()
    if not is_available():
        return None
    index = _index(device, what)
    return _C._cuda_memory_stats_json(index)


def _raw_stats(device, what):
    text = _stats_json(device, what)
    return None if text is None else json.loads(text)


def memory_stats(device=None):
    raw = _raw_stats(device, "memory_stats")
    out = collections.OrderedDict()
    if raw is None:
        return out
    flat = {}
    for name, key in (("allocated_bytes", "allocated_bytes"), ("active_bytes", "active_bytes"),
                      ("reserved_bytes", "reserved_bytes"), ("allocated_blocks", "allocation"),
                      ("segments", "segment")):
        flat[f"{key}.all.current"] = raw[name]["current"]
        flat[f"{key}.all.peak"] = raw[name]["peak"]
    flat["allocation.all.allocated"] = raw["num_allocs"]
    flat["allocation.all.freed"] = raw["num_frees"]
    flat["segment.all.allocated"] = raw["num_segment_allocs"]
    flat["segment.all.freed"] = raw["num_segment_frees"]
    flat["num_device_alloc"] = raw["num_segment_allocs"]
    flat["num_device_free"] = raw["num_segment_frees"]
    flat["num_ooms"] = raw["num_ooms"]
    flat["num_cache_flushes"] = raw["num_cache_flushes"]
    flat["num_gc_segment_frees"] = raw["num_gc_segment_frees"]
    for key in sorted(flat):
        out[key] = flat[key]
    return out


def _stat(device, name, field, what):
    raw = _raw_stats(device, what)
    return 0 if raw is None else int(raw[name][field])


def memory_allocated(device=None):
    return _stat(device, "allocated_bytes", "current", "memory_allocated")


def max_memory_allocated(device=None):
    return _stat(device, "allocated_bytes", "peak", "max_memory_allocated")


def memory_reserved(device=None):
    return _stat(device, "reserved_bytes", "current", "memory_reserved")


def max_memory_reserved(device=None):
    return _stat(device, "reserved_bytes", "peak", "max_memory_reserved")


def _device_call(what, device, cuda_fn, hook_fn):
    if _hook is not None:
        return hook_fn(_hook._native)
    return cuda_fn(_index(device, what))  # raises a clear RuntimeError without a device


def reset_peak_memory_stats(device=None):
    _device_call("reset_peak_memory_stats", device, _C._cuda_reset_peak_memory_stats if is_available() else None,
                 lambda h: h.reset_peak_stats())


def reset_max_memory_allocated(device=None):
    reset_peak_memory_stats(device)


def empty_cache():
    """Returns every cached segment to the device (waiting first for blocks still in use on other streams)."""
    if _hook is not None:
        _hook._native.empty_cache()
    elif is_available():
        index = _index(None, "empty_cache")
        _C._cuda_empty_cache(index)


def set_per_process_memory_fraction(fraction, device=None):
    """Caps this process's reserved memory at fraction * the device's memory; past it, allocation raises
    OutOfMemoryError after a staged GC of the cache."""
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool):
        raise TypeError("set_per_process_memory_fraction: fraction must be a float")
    if not 0 < fraction <= 1:
        raise ValueError(f"set_per_process_memory_fraction: fraction must be in (0, 1], got {fraction}")
    _device_call("set_per_process_memory_fraction", device,
                 (lambda d: _C._cuda_set_memory_fraction(float(fraction), d)) if is_available() else None,
                 lambda h: h.set_memory_fraction(float(fraction)))


def mem_get_info(device=None):
    """(free, total) bytes of the device, as the driver reports them."""
    index = _index(device, "mem_get_info")
    free, total = _C._cuda_mem_get_info(index)
    return int(free), int(total)


_STATES = {"allocated": "active_allocated", "pending": "active_pending_free", "free": "inactive"}


def _snapshot_json(device):
    if _hook is not None:
        return _hook._native.snapshot_json()
    index = _index(device, "memory_snapshot")
    return _C._cuda_memory_snapshot_json(index)


def memory_snapshot(device=None):
    snap = json.loads(_snapshot_json(device))
    out = []
    for seg in snap["segments"]:
        blocks = [{"address": b["address"], "size": b["size"], "requested_size": b["requested"],
                   "state": _STATES[b["state"]]} for b in seg["blocks"]]
        out.append({
            "device": snap["device"], "address": seg["address"], "total_size": seg["size"],
            "allocated_size": sum(b["size"] for b in blocks if b["state"] == "active_allocated"),
            "active_size": sum(b["size"] for b in blocks if b["state"] != "inactive"),
            "requested_size": sum(b["requested_size"] for b in blocks),
            "stream": seg["stream"], "segment_type": seg["pool"],
            "segment_pool_id": (0, 0) if seg["pool_id"] is None else (0, seg["pool_id"]),
            "blocks": blocks})
    return out


def graph_pools(device=None):
    """vibetensor-specific: the CUDA graph pools of the allocator (Note [Shared graph pools] in
    caching_allocator.h), as a list of {"pool_id": (0, id) (equal to the pool() token), "graphs": [graph ids],
    "handles": int, "capturing": graph id or None, "released": bool, "segments": int, "reserved_bytes": int,
    "allocated_bytes": int}."""
    pools = json.loads(_snapshot_json(device))["graph_pools"]
    out = []
    for p in pools:
        entry = dict(p)
        entry["pool_id"] = (0, entry.pop("id"))
        out.append(entry)
    return out
