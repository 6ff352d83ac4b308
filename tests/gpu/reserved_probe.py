"""pytest plugin (-p reserved_probe, with tests/gpu on PYTHONPATH): after every test, the CUDA allocator's
allocated/reserved bytes before and after gc.collect(), and for CUDA tensors still alive after it, who refers to
them (three levels) -> $PROBE_OUT (JSON lines). For chasing memory held across tests on the GPU machine."""
import gc
import json
import os
import types

import pytest

_OUT = os.environ.get("PROBE_OUT", "/tmp/reserved_probe.jsonl")


def _describe(o):
    if isinstance(o, types.FrameType):
        return f"frame {o.f_code.co_name} {os.path.basename(o.f_code.co_filename)}:{o.f_lineno}"
    if isinstance(o, dict):
        return "dict keys " + ",".join(map(str, list(o)[:8]))
    if isinstance(o, (list, tuple)):
        return f"{type(o).__name__} len {len(o)}"
    if isinstance(o, types.TracebackType):
        return f"traceback {o.tb_frame.f_code.co_name}"
    return type(o).__module__ + "." + type(o).__qualname__


def _chains(obj, depth, seen):
    if depth == 0:
        return []
    out = []
    for r in gc.get_referrers(obj)[:6]:
        if id(r) in seen:
            continue
        seen.add(id(r))
        out.append([_describe(r), _chains(r, depth - 1, seen)])
    return out


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call":
        return
    import vibetensor.torch as vt
    if not vt.cuda.is_available():
        return
    rec = {"test": item.nodeid.split("::")[-1], "outcome": rep.outcome,
           "allocated": vt.cuda.memory_allocated(), "reserved": vt.cuda.memory_reserved()}
    rec["gc_collected"] = gc.collect()
    rec["allocated_after_gc"] = vt.cuda.memory_allocated()
    if rec["allocated_after_gc"]:
        live = [o for o in gc.get_objects() if type(o).__name__ == "Tensor" and type(o).__module__.startswith("vibetensor")
                and "cuda" in str(getattr(o, "device", ""))]
        rec["live_cuda_tensors"] = len(live)
        seen = {id(live)}
        rec["referrers"] = [_chains(t, 3, seen) for t in live[:2]]
        del live
    with open(_OUT, "a") as f:
        f.write(json.dumps(rec, default=str) + "\n")
