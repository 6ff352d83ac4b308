"""Allocator gate: run the caching allocator's scripted scenarios and re-check their invariants from the trace.

Command: ``BUILD/vbt_allocator_scenarios --backend B --seed S --steps N --out <nonce folder>/report.json`` once per
seed. BUILD is ctx.state["build_dir"] (set by the build gate), else cache_dir/build; the driver is built there with
VBT_BUILD_TESTS=ON (tests/cpp/cuda/allocator_scenarios.cpp, a protected file). The driver reports its own
invariant checks, but the gate does not take its word: ``check_report`` replays every scenario's trace (steps and
the allocator's events) and recomputes, independently of the driver's "passed" flags:
  * schema: the report, each step, event and snapshot has the documented fields and types;
  * stats add up: allocated == the block bytes of live allocations, reserved == the bytes of segments alive (from
    segment_alloc/segment_free events), allocated <= active <= reserved, peaks == the running maxima since the
    last reset_peaks, the final stats == the last step, the series == the steps;
  * snapshots: blocks tile their segment exactly, the segments are exactly the live ones, allocated blocks are
    exactly the live allocations, the stats in the snapshot match;
  * no reuse before the stream event: a block freed after record_stream is not handed out (even in part) until
    every stream it was used on completed (complete_stream), or empty_cache / GC stage 3 waited for it; no two
    live blocks overlap; a block lies in a segment of its own stream, in a graph pool exactly while captured;
  * the cap: reserved never exceeds the limit set by set_fraction, at any segment_alloc;
  * OOM: only after GC stages 1, 2 and 3 ran in that step; the error names the request and carries the stats;
  * no leak after empty_cache: every segment left holds a live block or belongs to an unreleased graph;
    after release_graph, no free segment of that graph remains;
  * fragmentation: max reserved <= max_overhead_ratio * max allocated + overhead_slack_bytes;
  * coverage: the required scenarios ran and exercised what they are for (cross-stream reuse, an OOM at the cap
    followed by a successful request, a capture with graph-pool allocations).
Finally the driver's own invariants must all hold too, and its exit status must be 0.
Options: ``backend`` ("host" default, or "cuda": needs a GPU), ``seeds`` (default [0, 1]), ``steps`` (default
2000), ``max_overhead_ratio`` (default 2.5), ``overhead_slack_bytes`` (default 8 MiB), ``driver`` (path to the
driver, for tests; default BUILD/vbt_allocator_scenarios).
Outputs: work_dir/allocator.log (driver output), work_dir/allocator_report.json (schema "vbt.allocator_gate/1",
for the dashboards: "scenarios", one per seed and scenario, in the shape harness/dashboard/report_views.py reads:
name, status, steps [{t, op, allocated, active, reserved}], fragmentation (reserved/allocated peak ratio), the final
snapshot, checks (the driver's invariants and the gate's replay), problems, metrics, final_stats; "runs": per seed
the driver's exit status and report-level problems) and a short summary for the agent.
The report can also be checked by hand: ``python -m validators.allocator_gate REPORT.json``.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.interfaces import GateContext, GateResult, HarnessError
from validators.sandbox import (bounded, check_result_folder, grant_to_user, new_result_folder, reclaim_from_user,
                                resolve_sandbox_user, run_sandboxed)

DRIVER = "vbt_allocator_scenarios"
REPORT_SCHEMA = "vbt.allocator_report/1"
SNAPSHOT_SCHEMA = "vbt.cuda.allocator_snapshot/1"
RESULT_FILE = "report.json"
REQUIRED_SCENARIOS = ("churn", "cross_stream", "fraction_cap", "graph_capture", "empty_cache")
HOST_ONLY_SCENARIOS = ("poison",)
MiB = 1 << 20
STAT_NAMES = ("allocated_bytes", "active_bytes", "reserved_bytes", "allocated_blocks", "segments")
COUNTER_NAMES = ("num_allocs", "num_frees", "num_segment_allocs", "num_segment_frees", "num_gc_segment_frees",
                 "num_cache_flushes", "num_ooms")
STEP_NUMBERS = ("t", "size", "allocated", "reserved", "active", "allocated_peak", "reserved_peak", "active_peak",
                "segments")
EVENT_KINDS = {"segment_alloc", "segment_free", "event_record", "event_done", "block_ready", "gc_stage", "oom"}
OPS = {"malloc", "free", "record_stream", "complete_stream", "empty_cache", "set_fraction", "set_poison",
       "begin_capture", "end_capture", "release_graph", "reset_peaks", "snapshot"}


class SchemaError(Exception):
    pass


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _need(obj: Any, key: str, kind, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise SchemaError(f"{where}: missing field {key!r}")
    value = obj[key]
    ok = _is_int(value) if kind is int else isinstance(value, kind)
    if not ok:
        raise SchemaError(f"{where}: field {key!r} should be {getattr(kind, '__name__', kind)}, got {value!r:.60}")
    return value


def check_stats_schema(stats: Any, where: str) -> None:
    for name in STAT_NAMES:
        s = _need(stats, name, dict, where)
        _need(s, "current", int, f"{where}.{name}")
        _need(s, "peak", int, f"{where}.{name}")
    for name in COUNTER_NAMES:
        _need(stats, name, int, where)


def check_snapshot(snap: Any, where: str) -> list[str]:
    """Schema and internal consistency of one allocator snapshot (raises SchemaError on a schema problem)."""
    problems = []
    if _need(snap, "schema", str, where) != SNAPSHOT_SCHEMA:
        raise SchemaError(f"{where}: schema is {snap['schema']!r}, expected {SNAPSHOT_SCHEMA!r}")
    for key, kind in (("backend", str), ("device", int), ("memory_limit", int), ("segments", list)):
        _need(snap, key, kind, where)
    if not isinstance(snap.get("memory_fraction"), (int, float)):
        raise SchemaError(f"{where}: memory_fraction should be a number")
    check_stats_schema(_need(snap, "stats", dict, where), f"{where}.stats")
    reserved = allocated = active = 0
    allocated_blocks = 0
    last_end = -1
    for i, seg in enumerate(snap["segments"]):
        w = f"{where}.segments[{i}]"
        base, size = _need(seg, "address", int, w), _need(seg, "size", int, w)
        _need(seg, "stream", int, w)
        if _need(seg, "pool", str, w) not in ("small", "large"):
            raise SchemaError(f"{w}: pool must be 'small' or 'large'")
        if seg.get("graph") is not None and not _is_int(seg["graph"]):
            raise SchemaError(f"{w}: graph must be an int or null")
        if base < last_end:
            problems.append(f"{w}: segments overlap or are not in address order")
        last_end = base + size
        reserved += size
        cursor = base
        previous_free = False
        for j, b in enumerate(_need(seg, "blocks", list, w)):
            wb = f"{w}.blocks[{j}]"
            addr, bsize = _need(b, "address", int, wb), _need(b, "size", int, wb)
            _need(b, "requested", int, wb)
            _need(b, "stream", int, wb)
            state = _need(b, "state", str, wb)
            if state not in ("allocated", "pending", "free"):
                raise SchemaError(f"{wb}: state must be allocated, pending or free")
            if addr != cursor or bsize <= 0:
                problems.append(f"{wb}: blocks do not tile the segment (block at {addr}, expected {cursor})")
            cursor = addr + bsize
            if state == "free" and previous_free:
                problems.append(f"{wb}: two neighbouring free blocks were not merged")
            previous_free = state == "free"
            if state == "allocated":
                allocated += bsize
                allocated_blocks += 1
                if b["requested"] > bsize:
                    problems.append(f"{wb}: requested {b['requested']} bytes > block size {bsize}")
            if state in ("allocated", "pending"):
                active += bsize
        if cursor != base + size:
            problems.append(f"{w}: blocks cover {cursor - base} of the segment's {size} bytes")
    st = snap["stats"]
    for name, value in (("reserved_bytes", reserved), ("allocated_bytes", allocated), ("active_bytes", active),
                        ("allocated_blocks", allocated_blocks), ("segments", len(snap["segments"]))):
        if st[name]["current"] != value:
            problems.append(f"{where}: stats {name} {st[name]['current']} != {value} summed from the segments")
    if reserved > snap["memory_limit"]:
        problems.append(f"{where}: reserved {reserved} exceeds memory_limit {snap['memory_limit']}")
    return problems


@dataclass
class ScenarioCheck:
    name: str
    problems: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    def fail(self, msg: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(msg)


def _overlaps(a: int, asize: int, b: int, bsize: int) -> bool:
    return a < b + bsize and b < a + asize


def check_scenario(sc: dict, config: dict, options: dict, backend: str = "host") -> ScenarioCheck:
    """Replays one scenario's trace and returns what the gate found wrong (raises SchemaError on bad schema)."""
    name = _need(sc, "name", str, "scenario")
    where = f"scenario {name}"
    chk = ScenarioCheck(name)
    steps = _need(sc, "steps", list, where)
    events = _need(sc, "events", list, where)
    invariants = _need(sc, "invariants", list, where)
    check_stats_schema(_need(sc, "final_stats", dict, where), f"{where}.final_stats")
    series = _need(sc, "series", dict, where)
    frag = _need(sc, "fragmentation", dict, where)
    for inv in invariants:
        _need(inv, "name", str, f"{where}.invariants")
        _need(inv, "passed", bool, f"{where}.invariants")
        _need(inv, "message", str, f"{where}.invariants")
        if not inv["passed"]:
            chk.fail(f"driver invariant {inv['name']} failed: {inv['message']}")
    if sc.get("error"):
        chk.fail(f"the scenario raised: {sc['error']}")

    by_t: dict[int, list[dict]] = {}
    for i, ev in enumerate(events):
        w = f"{where}.events[{i}]"
        _need(ev, "t", int, w)
        if _need(ev, "kind", str, w) not in EVENT_KINDS:
            raise SchemaError(f"{w}: unknown event kind {ev['kind']!r}")
        for key in ("address", "size", "stage", "event"):
            _need(ev, key, int, w)
        by_t.setdefault(ev["t"], []).append(ev)

    rounding = _need(config, "rounding", int, "config")
    limit = _need(config, "device_capacity", int, "config")
    segments: dict[int, dict] = {}  # base -> {size, stream, graph}
    live: dict[int, dict] = {}  # addr -> {size, stream, uses}
    pending: list[dict] = []  # {addr, size, uses}
    capturing: dict[int, int] = {}  # stream -> graph
    released: set[int] = set()
    peak_alloc = peak_res = 0
    last_t = 0
    max_alloc = max_res = 0
    counts = {"ooms": 0, "malloc_after_oom": 0, "pending_reuse_waits": 0, "graph_mallocs": 0, "record_streams": 0}
    oom_seen = False
    mallocs = frees = 0

    def segment_of(addr: int, size: int) -> dict | None:
        for base, seg in segments.items():
            if base <= addr and addr + size <= base + seg["size"]:
                return seg
        return None

    for i, st in enumerate(steps):
        w = f"{where}.steps[{i}]"
        for key in STEP_NUMBERS:
            _need(st, key, int, w)
        op = _need(st, "op", str, w)
        if op not in OPS:
            raise SchemaError(f"{w}: unknown op {op!r}")
        t = st["t"]
        if t <= last_t:
            raise SchemaError(f"{w}: step times must increase")
        last_t = t
        stream = st.get("stream")
        at = f"{name} t={t} ({op})"
        # What the step itself ends before the allocator acts: a freed block is no longer live, and
        # empty_cache waits for every pending event (its segment_free events may then release those blocks).
        freed_block = live.pop(st["ptr"], None) if op == "free" and _is_int(st.get("ptr")) else None
        if op == "empty_cache":
            pending.clear()
        # The allocator's events during this step, in order.
        gc_stages = []
        for ev in by_t.get(t, []):
            kind = ev["kind"]
            if kind == "segment_alloc":
                graph = ev.get("graph")
                segments[ev["address"]] = {"size": ev["size"], "stream": ev["stream"], "graph": graph}
                reserved_now = sum(s["size"] for s in segments.values())
                if reserved_now > limit:
                    chk.fail(f"{at}: a new segment took reserved memory to {reserved_now} bytes, past the limit {limit}")
            elif kind == "segment_free":
                if ev["address"] not in segments:
                    chk.fail(f"{at}: segment {ev['address']} freed but never allocated")
                seg = segments.pop(ev["address"], None)
                if seg is not None and any(_overlaps(a, l["size"], ev["address"], seg["size"]) for a, l in live.items()):
                    chk.fail(f"{at}: segment {ev['address']} was freed while it held a live block")
                if seg is not None and any(_overlaps(p["addr"], p["size"], ev["address"], seg["size"]) for p in pending):
                    chk.fail(f"{at}: segment {ev['address']} was freed while a block in it waited for a stream event")
            elif kind == "gc_stage":
                gc_stages.append(ev["stage"])
                if ev["stage"] == 3:
                    pending.clear()  # stage 3 waits for every pending event
            elif kind == "block_ready" and backend == "cuda":
                # On a GPU an event on an idle stream completes at once (cudaEventQuery), before any
                # complete_stream step; the allocator's block_ready is then the signal. The host backend's
                # events complete only when the scenario says so, so there the trace alone decides.
                pending = [pb for pb in pending if pb["addr"] != ev["address"]]
            elif kind == "oom":
                if gc_stages[-3:] != [1, 2, 3]:
                    chk.fail(f"{at}: OOM raised without running GC stages 1, 2, 3 first (ran {gc_stages})")

        if op == "malloc":
            if st.get("oom"):
                counts["ooms"] += 1
                oom_seen = True
                err = st.get("error")
                if not isinstance(err, str) or "out of memory" not in err or str(st["size"]) not in err:
                    chk.fail(f"{at}: the OOM error does not say 'out of memory' and the requested size")
                try:
                    check_stats_schema(st.get("oom_stats"), f"{w}.oom_stats")
                except SchemaError as e:
                    chk.fail(f"{at}: the OOM carries no valid stats ({e})")
                if not any(ev["kind"] == "oom" for ev in by_t.get(t, [])):
                    chk.fail(f"{at}: an OOM step without the allocator's oom event")
            else:
                p, bsize = _need(st, "ptr", int, w), _need(st, "block_size", int, w)
                mallocs += 1
                if oom_seen:
                    counts["malloc_after_oom"] += 1
                if bsize < st["size"] or bsize % rounding:
                    chk.fail(f"{at}: block of {bsize} bytes for a request of {st['size']} (rounding {rounding})")
                for a, l in live.items():
                    if _overlaps(p, bsize, a, l["size"]):
                        chk.fail(f"{at}: block {p} overlaps live block {a}")
                for pb in pending:
                    if _overlaps(p, bsize, pb["addr"], pb["size"]):
                        chk.fail(f"{at}: block {p} reuses freed block {pb['addr']} before streams "
                                 f"{sorted(pb['uses'])} completed their work")
                graph = capturing.get(stream)
                if st.get("graph") != graph:
                    chk.fail(f"{at}: the step says graph {st.get('graph')} but stream {stream} is captured by {graph}")
                seg = segment_of(p, bsize)
                if seg is None:
                    chk.fail(f"{at}: block {p} lies in no segment the allocator reported")
                else:
                    if seg["graph"] != graph:
                        chk.fail(f"{at}: block {p} comes from a segment of graph {seg['graph']}, request graph {graph}")
                    if seg["stream"] != stream:
                        chk.fail(f"{at}: block {p} for stream {stream} comes from a segment of stream {seg['stream']}")
                if graph is not None:
                    counts["graph_mallocs"] += 1
                live[p] = {"size": bsize, "stream": stream, "uses": set()}
        elif op == "free":
            p = _need(st, "ptr", int, w)
            block = freed_block
            frees += 1
            if block is None:
                chk.fail(f"{at}: freed {p}, which is not a live block")
            elif block["uses"]:
                pending.append({"addr": p, "size": block["size"], "uses": set(block["uses"])})
                counts["pending_reuse_waits"] += 1
            if st.get("poisoned") is False:
                chk.fail(f"{at}: block {p} was not poisoned on free")
        elif op == "record_stream":
            p = _need(st, "ptr", int, w)
            counts["record_streams"] += 1
            if p not in live:
                chk.fail(f"{at}: record_stream on {p}, which is not live")
            elif stream != live[p]["stream"]:
                live[p]["uses"].add(stream)
        elif op == "complete_stream":
            for pb in pending:
                pb["uses"].discard(stream)
            pending = [pb for pb in pending if pb["uses"]]
        elif op == "empty_cache":
            for base, seg in segments.items():
                holds_live = any(base <= a < base + seg["size"] for a in live)
                unreleased_graph = seg["graph"] is not None and seg["graph"] not in released
                if not holds_live and not unreleased_graph:
                    chk.fail(f"{name} t={t}: after empty_cache segment {base} ({seg['size']} bytes) holds no live "
                             "block (leak)")
        elif op == "set_fraction":
            limit = _need(st, "limit", int, w)
        elif op == "begin_capture":
            capturing[stream] = _need(st, "graph", int, w)
        elif op == "end_capture":
            g = _need(st, "graph", int, w)
            capturing = {s: gg for s, gg in capturing.items() if gg != g}
        elif op == "release_graph":
            g = _need(st, "graph", int, w)
            released.add(g)
            for base, seg in segments.items():
                if seg["graph"] == g and not any(base <= a < base + seg["size"] for a in live):
                    chk.fail(f"{at}: graph {g} was released but its free segment {base} was kept")
        elif op == "reset_peaks":
            peak_alloc, peak_res = st["allocated"], st["reserved"]
        elif op == "snapshot":
            snap = st.get("snapshot")
            for problem in check_snapshot(snap, f"{w}.snapshot"):
                chk.fail(f"{at}: {problem}")
            snap_segments = {s["address"] for s in snap["segments"]}
            if snap_segments != set(segments):
                chk.fail(f"{at}: the snapshot's segments differ from those the events left alive")
            snap_alloc = {b["address"]: b["size"] for s in snap["segments"] for b in s["blocks"]
                          if b["state"] == "allocated"}
            if snap_alloc != {a: l["size"] for a, l in live.items()}:
                chk.fail(f"{at}: the snapshot's allocated blocks differ from the live allocations")

        # Stats after the step.
        held = sum(l["size"] for l in live.values())
        reserved = sum(s["size"] for s in segments.values())
        if st["allocated"] != held:
            chk.fail(f"{at}: allocated {st['allocated']} != {held} bytes of live blocks")
        if st["reserved"] != reserved:
            chk.fail(f"{at}: reserved {st['reserved']} != {reserved} bytes of segments alive")
        if not st["allocated"] <= st["active"] <= st["reserved"]:
            chk.fail(f"{at}: not allocated <= active <= reserved ({st['allocated']}, {st['active']}, {st['reserved']})")
        if st["segments"] != len(segments):
            chk.fail(f"{at}: {st['segments']} segments reported, {len(segments)} alive")
        if st["reserved"] > limit:
            chk.fail(f"{at}: reserved {st['reserved']} exceeds the limit {limit}")
        peak_alloc, peak_res = max(peak_alloc, st["allocated"]), max(peak_res, st["reserved"])
        if st["allocated_peak"] != peak_alloc or st["reserved_peak"] != peak_res:
            chk.fail(f"{at}: peaks ({st['allocated_peak']}, {st['reserved_peak']}) != running maxima "
                     f"({peak_alloc}, {peak_res})")
        max_alloc, max_res = max(max_alloc, st["allocated"]), max(max_res, st["reserved"])

    # The end state.
    final = sc["final_stats"]
    if steps:
        last = steps[-1]
        for key, stat in (("allocated", "allocated_bytes"), ("reserved", "reserved_bytes"), ("active", "active_bytes")):
            if final[stat]["current"] != last[key]:
                chk.fail(f"{name}: final {stat} {final[stat]['current']} != {last[key]} after the last step")
    if final["num_allocs"] != mallocs or final["num_frees"] != frees:
        chk.fail(f"{name}: final counters num_allocs={final['num_allocs']} num_frees={final['num_frees']}, the trace "
                 f"has {mallocs} allocations and {frees} frees")
    if final["num_ooms"] != counts["ooms"]:
        chk.fail(f"{name}: final num_ooms {final['num_ooms']} != {counts['ooms']} OOM steps")
    for problem in check_snapshot(_need(sc, "snapshot", dict, where), f"{where}.snapshot"):
        chk.fail(f"{name}: final {problem}")
    if {s["address"] for s in sc["snapshot"]["segments"]} != set(segments):
        chk.fail(f"{name}: the final snapshot's segments differ from those the events left alive")
    if series.get("t") != [s["t"] for s in steps] or series.get("allocated") != [s["allocated"] for s in steps] \
            or series.get("reserved") != [s["reserved"] for s in steps]:
        chk.fail(f"{name}: the series do not match the steps")

    ratio_bound = float(options.get("max_overhead_ratio", 2.5))
    slack = int(options.get("overhead_slack_bytes", 8 * MiB))
    ratio = max_res / max_alloc if max_alloc else 0.0
    if max_res > ratio_bound * max_alloc + slack:
        chk.fail(f"{name}: fragmentation: max reserved {max_res} bytes > {ratio_bound} x max allocated {max_alloc} "
                 f"+ {slack} (ratio {ratio:.2f})")
    chk.metrics = {"steps": len(steps), "max_allocated": max_alloc, "max_reserved": max_res,
                   "overhead_ratio": round(ratio, 4), **counts,
                   "driver_overhead_ratio": frag.get("overhead_ratio")}

    # Coverage: the scenario exercised what it is for.
    if name == "cross_stream" and counts["pending_reuse_waits"] == 0:
        chk.fail("cross_stream: no block was freed while in use on another stream")
    if name == "fraction_cap" and (counts["ooms"] == 0 or counts["malloc_after_oom"] == 0):
        chk.fail("fraction_cap: expected an OOM at the cap and a successful request after it")
    if name == "graph_capture" and counts["graph_mallocs"] == 0:
        chk.fail("graph_capture: nothing was allocated from a graph pool")
    if name == "churn" and mallocs < 100:
        chk.fail(f"churn: only {mallocs} allocations")
    return chk


def check_report(report: Any, options: dict | None = None, backend: str = "host") -> tuple[list[ScenarioCheck], list[str]]:
    """(per-scenario checks, report-level problems) of one driver report; a schema error is a report-level problem."""
    options = options or {}
    problems: list[str] = []
    checks: list[ScenarioCheck] = []
    try:
        if _need(report, "schema", str, "report") != REPORT_SCHEMA:
            raise SchemaError(f"report: schema is {report['schema']!r}, expected {REPORT_SCHEMA!r}")
        if _need(report, "backend", str, "report") != backend:
            raise SchemaError(f"report: backend is {report['backend']!r}, the gate asked for {backend!r}")
        config = _need(report, "config", dict, "report")
        scenarios = _need(report, "scenarios", list, "report")
        _need(report, "passed", bool, "report")
        for sc in scenarios:
            checks.append(check_scenario(sc, config, options, backend))
    except SchemaError as e:
        problems.append(f"bad report schema: {e}")
        return checks, problems
    names = [c.name for c in checks]
    required = REQUIRED_SCENARIOS + (HOST_ONLY_SCENARIOS if backend == "host" else ())
    missing = [n for n in required if n not in names]
    if missing:
        problems.append(f"required scenarios missing from the report: {', '.join(missing)}")
    if report["passed"] != all(not c.problems for c in checks) and report["passed"]:
        problems.append("the driver reports passed although the gate found violations")
    return checks, problems


def _dashboard_scenario(chk: ScenarioCheck, sc: dict, seed: int, backend: str) -> dict[str, Any]:
    """One scenario as the dashboard's allocator view reads it (harness/dashboard/report_views.py): samples of
    allocated/active/reserved bytes, the fragmentation figure, the final snapshot, checks, problems, stats."""
    steps = [{"t": st.get("t"), "op": st.get("op"), "allocated": st.get("allocated"), "active": st.get("active"),
              "reserved": st.get("reserved")} for st in sc.get("steps", []) if isinstance(st, dict)]
    checks = [{"name": f"driver: {inv.get('name')}", "status": "pass" if inv.get("passed") else "fail",
               "message": inv.get("message", "")} for inv in sc.get("invariants", []) if isinstance(inv, dict)]
    checks.append({"name": "gate: trace replay", "status": "fail" if chk.problems else "pass",
                   "message": chk.problems[0] if chk.problems else ""})
    frag = sc.get("fragmentation") if isinstance(sc.get("fragmentation"), dict) else {}
    # The page shows one snapshot: the last one taken mid-scenario that has segments (the final one is often
    # empty, after empty_cache); the final snapshot is kept as "final_snapshot".
    shown = next((st["snapshot"] for st in reversed(sc.get("steps", [])) if isinstance(st, dict)
                  and isinstance(st.get("snapshot"), dict) and st["snapshot"].get("segments")), sc.get("snapshot"))
    return {"name": f"{chk.name} (seed {seed})", "scenario": f"{chk.name} (seed {seed})", "seed": seed,
            "scenario_name": chk.name, "backend": backend,
            "status": "fail" if chk.problems else "pass", "problems": chk.problems, "metrics": chk.metrics,
            "steps": steps, "fragmentation": chk.metrics.get("overhead_ratio"),
            "snapshot_fragmentation": frag.get("snapshots"), "snapshot": shown,
            "final_snapshot": sc.get("snapshot"), "checks": checks,
            "final_stats": sc.get("final_stats")}


def _find_driver(build: Path) -> Path | None:
    direct = build / DRIVER
    if direct.is_file():
        return direct
    for candidate in sorted(build.glob(f"**/{DRIVER}")):
        if candidate.is_file():
            return candidate
    return None


class AllocatorGate:
    name = "allocator"
    version = "1"

    def run(self, ctx: GateContext) -> GateResult:
        start = time.monotonic()
        work = Path(ctx.work_dir)
        work.mkdir(parents=True, exist_ok=True)
        log_path = work / "allocator.log"
        log_path.write_text("")
        report_path = work / "allocator_report.json"
        options = dict(ctx.options)

        def result(status: str, summary: str, with_report: bool = False, **metrics) -> GateResult:
            return GateResult(self.name, status, time.monotonic() - start, bounded(summary),
                              {"duration_s": round(time.monotonic() - start, 3), **metrics}, str(log_path),
                              str(report_path) if with_report else None)

        backend = str(options.get("backend", "host"))
        if backend not in ("host", "cuda"):
            return result("error", f"allocator gate: option backend must be 'host' or 'cuda', got {backend!r}")
        seeds = [int(s) for s in options.get("seeds", [0, 1])]
        steps = int(options.get("steps", 2000))
        build = Path(ctx.state.get("build_dir") or Path(ctx.cache_dir) / "build")
        driver = Path(options["driver"]) if options.get("driver") else _find_driver(build)
        if driver is None or not driver.is_file():
            return result("fail", f"the scenario driver {DRIVER} was not built in {build} (the build gate builds it "
                          "with VBT_BUILD_TESTS=ON from cmake/cuda_subsystem.cmake)")
        try:
            user = resolve_sandbox_user(options, ctx.env)
        except HarnessError as e:
            return result("error", str(e))

        gate_report: dict[str, Any] = {"schema": "vbt.allocator_gate/1", "backend": backend, "driver": str(driver),
                                       "options": {k: v for k, v in options.items() if k != "sandbox_user"},
                                       "runs": [], "scenarios": []}
        all_problems: list[str] = []
        scenario_count = 0
        worst_ratio = 0.0
        for seed in seeds:
            folder, started_ns = new_result_folder(work)
            grant_to_user([folder], user)
            cmd = [str(driver), "--backend", backend, "--seed", str(seed), "--steps", str(steps),
                   "--out", str(folder / RESULT_FILE)]
            run = run_sandboxed(cmd, cwd=work, env=dict(ctx.env), timeout_s=ctx.timeout_s, log_path=log_path,
                                user=user)
            if user is not None:
                reclaim_from_user(folder)
            if run.error and run.returncode == 127:
                return result("error", run.error)
            if run.timed_out:
                return result("fail", f"the scenario driver timed out after {ctx.timeout_s:.0f}s (seed {seed})")
            problem = check_result_folder(folder, RESULT_FILE, started_ns, run.child_exit_ns)
            if problem:
                tail = "\n".join(log_path.read_text(errors="replace").strip().splitlines()[-8:])
                return result("fail", f"seed {seed}: driver rc {run.returncode}, report rejected: {problem}\n{tail}")
            try:
                report = json.loads((folder / RESULT_FILE).read_text())
            except (OSError, ValueError) as e:
                return result("fail", f"seed {seed}: the driver's report is not valid JSON: {e}")
            checks, problems = check_report(report, options, backend)
            if run.returncode not in (0, 3):
                problems.append(f"the driver exited with status {run.returncode}")
            elif run.returncode == 3 and not any(c.problems for c in checks):
                problems.append("the driver exited 3 (an invariant failed) but its report shows no failure")
            seed_problems = [f"seed {seed}: {p}" for p in problems]
            for c in checks:
                seed_problems += [f"seed {seed}: {p}" for p in c.problems]
                worst_ratio = max(worst_ratio, float(c.metrics.get("overhead_ratio", 0.0)))
            scenario_count += len(checks)
            all_problems += seed_problems
            for c, sc in zip(checks, report.get("scenarios", []) if isinstance(report, dict) else []):
                gate_report["scenarios"].append(_dashboard_scenario(c, sc, seed, backend))
            gate_report["runs"].append({"seed": seed, "driver_returncode": run.returncode, "problems": problems,
                                        "scenarios": [c.name for c in checks]})
        gate_report["passed"] = not all_problems
        report_path.write_text(json.dumps(gate_report, indent=1))
        metrics = {"scenarios": scenario_count, "violations": len(all_problems), "seeds": len(seeds),
                   "worst_overhead_ratio": round(worst_ratio, 4), "backend": backend}
        if all_problems:
            head = "\n".join(all_problems[:10])
            more = f"\n(+{len(all_problems) - 10} more)" if len(all_problems) > 10 else ""
            return result("fail", f"allocator invariants violated ({len(all_problems)}):\n{head}{more}", True,
                          **metrics)
        return result("pass", f"{scenario_count} allocator scenarios on the {backend} backend ({len(seeds)} seeds): "
                      f"every invariant holds; worst reserved/allocated peak ratio {worst_ratio:.2f}", True, **metrics)


def main(argv: list[str]) -> int:
    """python -m validators.allocator_gate REPORT.json [--backend cuda]: check a driver report by hand."""
    if not argv:
        print("usage: python -m validators.allocator_gate REPORT.json [--backend host|cuda]", file=sys.stderr)
        return 2
    backend = argv[argv.index("--backend") + 1] if "--backend" in argv else "host"
    report = json.loads(Path(argv[0]).read_text())
    checks, problems = check_report(report, {}, backend)
    for c in checks:
        print(f"{c.name}: {'ok' if not c.problems else 'FAIL'} {c.metrics}")
        for p in c.problems[:10]:
            print(f"  {p}")
    for p in problems:
        print(f"report: {p}")
    return 0 if not problems and all(not c.problems for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
