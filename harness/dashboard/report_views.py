"""Gate reports -> page data: the parity table, allocator charts, training curves, perf ratios.

Policy:
- The gates that write these reports are still changing, so every view reads defensively: a field that is missing
  or has the wrong type becomes a line in ``view["missing"]`` (shown on the page), never an exception. A view that
  still fails is caught in ``report_view`` and the raw JSON is shown with the reason.
- Schemas read (newest gates first, older shapes kept):
  parity    ``validators/parity_gate.py``: ``{"schema", "module", "seed", "device", "finished", "fatal", "totals",
            "categories", "rows": [{op, category, dtype, case, form, status, max_abs_err, max_rel_err, atol, rtol,
            message, calls}]}``; also ``results`` for ``rows``, per-row ``device``, ``max_err`` for ``max_abs_err``
            and ``tol`` for ``atol``. Statuses: pass | fail | missing | error.
  training  ``validators/training_gate.py``: one workload ``{"workload", "status", "curves": {"torch"|"vibetensor":
            {loss, step_time_s, rss_mb, allocated_mb, ...}}, "tolerance": {relative, window} | number, "windows",
            "step_time_ratio", "memory": {...}, "problems", "error"}``, or an index ``{"workloads": [{workload,
            status, report}]}`` when the gate ran several.
  allocator one scenario ``{"scenario", "steps"|"trace": [{t, allocated, reserved, ...}], "fragmentation": number |
            list, "snapshot": {"segments": [{size, stream, pool, blocks: [{size, state}]}]}}`` (the trace schema of
            generated_runtime/tests/cpp/cuda/allocator_scenarios.cpp plus what the gate adds), or ``{"scenarios":
            [...] | {name: {...}}}``. Fragmentation missing from a sample is derived as 1 - allocated/reserved and
            labelled so.
  perf      ``{"ratios": {name: vibetensor time / torch time}}``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

from harness.dashboard import data_model as dm
from harness.dashboard import svg_charts as svg

PARITY_MAX_ROWS = 5_000
RAW_JSON_MAX_CHARS = 200_000
SEGMENTS_MAX = 500
STATUS_ORDER = {"fail": 0, "missing": 1, "error": 2, "pass": 9}  # failures first; unknown statuses between


def _finite(value: Any) -> float | None:
    number = dm.as_float(value)
    return number if number is not None and math.isfinite(number) else None


def _first(row: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if row.get(key) is not None:
            return row[key]
    return None


def _series_from(values: Any) -> list[tuple[float, float]]:
    return [(float(i), y) for i, v in enumerate(dm.as_list(values)) if (y := _finite(v)) is not None]


# ------------------------------------------------------------------------------------------------ parity


def _err_ratio(err: Any, tol: Any) -> float | None:
    """How far past its tolerance a case is (error / tolerance); None when either is unknown."""
    err, tol = dm.as_float(err), dm.as_float(tol)
    if err is None or tol is None:
        return None
    if math.isnan(err):
        return math.inf
    return err / tol if tol > 0 else (math.inf if err > 0 else 0.0)


def parity_view(data: dict[str, Any]) -> dict[str, Any]:
    missing: list[str] = []
    device = dm.as_str(data.get("device")) or None
    raw_rows = data.get("rows") if "rows" in data else data.get("results")
    if raw_rows is None:
        missing.append("the report has no 'rows' (nor 'results'): no parity cases to show")
    rows_in = [r for r in dm.as_list(raw_rows) if isinstance(r, dict)]
    if len(rows_in) != len(dm.as_list(raw_rows)):
        missing.append(f"{len(dm.as_list(raw_rows)) - len(rows_in)} row(s) are not JSON objects and were skipped")
    rows = []
    lacking: dict[str, int] = {}
    for raw in rows_in:
        for key in ("op", "dtype", "status"):
            if raw.get(key) is None:
                lacking[key] = lacking.get(key, 0) + 1
        abs_err = _first(raw, "max_abs_err", "max_err")
        atol = _first(raw, "atol", "tol")
        ratio = max((r for r in (_err_ratio(abs_err, atol), _err_ratio(raw.get("max_rel_err"), raw.get("rtol")))
                     if r is not None), default=None)
        status = dm.as_str(raw.get("status"), "unknown") or "unknown"
        rows.append({"op": dm.as_str(raw.get("op"), "?"), "category": raw.get("category"),
                     "dtype": dm.as_str(raw.get("dtype"), "?"),
                     "device": dm.as_str(raw.get("device")) or device or "?", "case": raw.get("case"),
                     "form": raw.get("form"), "status": status, "max_abs_err": abs_err, "atol": atol,
                     "max_rel_err": raw.get("max_rel_err"), "rtol": raw.get("rtol"), "ratio": ratio,
                     "message": dm.as_str(raw.get("message"))})
    if lacking:
        missing.append("rows without " + ", ".join(f"'{k}' ({n})" for k, n in sorted(lacking.items())))
    rows.sort(key=lambda r: (STATUS_ORDER.get(r["status"], 5), -(r["ratio"] if r["ratio"] is not None else -1.0),
                             r["op"], r["dtype"]))
    devices = sorted({r["device"] for r in rows})
    columns: list[tuple[str, str]] = sorted({(r["dtype"], r["device"]) for r in rows})
    matrix: dict[str, dict[tuple[str, str], list[int]]] = {}
    for row in rows:
        cell = matrix.setdefault(row["op"], {}).setdefault((row["dtype"], row["device"]), [0, 0])
        cell[0] += row["status"] == "pass"
        cell[1] += 1
    failing_ops = {r["op"] for r in rows if r["status"] != "pass"}
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    shown = rows[:PARITY_MAX_ROWS]
    return {"device": device or (", ".join(devices) if devices else None), "seed": data.get("seed"),
            "module": data.get("module"), "fatal": dm.as_str(data.get("fatal")) or None,
            "finished": data.get("finished"), "totals": dm.as_dict(data.get("totals")),
            "categories": sorted((str(k), dm.as_dict(v)) for k, v in dm.as_dict(data.get("categories")).items()),
            "rows": shown, "rows_cut": len(rows) - len(shown), "count": len(rows),
            "failures": sum(n for s, n in counts.items() if s != "pass"), "counts": sorted(counts.items()),
            "columns": columns, "multi_device": len(devices) > 1,
            # ops with a failure first, then by name: the matrix reads like the table
            "matrix": sorted(matrix.items(), key=lambda kv: (kv[0] not in failing_ops, kv[0])),
            "missing": missing}


# ------------------------------------------------------------------------------------------------ training


def _tolerance_text(value: Any) -> str | None:
    if isinstance(value, dict):
        rel, window = dm.as_float(value.get("relative")), value.get("window")
        parts = ([f"{rel:.2%} relative" if rel is not None else None]
                 + [f"per window of {window} steps" if window is not None else None])
        text = " ".join(p for p in parts if p)
        return text or json.dumps(value)[:200]
    number = dm.as_float(value)
    return f"{number:g}" if number is not None else (None if value is None else str(value)[:200])


def training_view(data: dict[str, Any], repo_root: Path | None = None) -> dict[str, Any]:
    missing: list[str] = []
    if "workloads" in data and "curves" not in data:  # the gate's index over several workloads
        items = []
        for item in dm.as_list(data.get("workloads")):
            item = dm.as_dict(item)
            # the workload's own report: inline ("data", or "report" as an object, or the curves themselves), else
            # the file the index names when it is inside the repository
            inline = next((v for v in (item.get("data"), item.get("report")) if isinstance(v, dict)),
                          item if "curves" in item else None)
            found = dm.resolve_inside(repo_root, item.get("report")) if repo_root and inline is None else None
            if inline is None and found is not None:
                inline, _ = dm.read_json(found)
            sub = training_view(inline, repo_root) if isinstance(inline, dict) and "workloads" not in inline else None
            items.append({"workload": item.get("workload"), "status": dm.as_str(item.get("status"), "unknown"),
                          "report": item.get("report") if isinstance(item.get("report"), str) else None,
                          "found": sub is not None, "view": sub})
        if any(not i["found"] for i in items):
            missing.append("per-workload reports named by this index are not in the repository (the run log keeps "
                           "only the gate's report_path file); their curves cannot be shown")
        return {"index": items, "missing": missing, "charts": [], "windows": [], "problems": [],
                "missing_curves": []}
    curves = dm.as_dict(data.get("curves"))
    if "curves" not in data:
        missing.append("the report has no 'curves'" + (f" (the gate says: {data['error']})" if data.get("error")
                                                        else ""))
    elif not isinstance(data.get("curves"), dict):
        missing.append("'curves' is not an object")
    frameworks = sorted(curves, key=lambda f: (f != "vibetensor", f))
    charts = []
    for metric, label, from_zero in (("loss", "loss", False), ("step_time_s", "step time (s)", True),
                                     ("allocated_mb", "allocator memory (MiB)", True), ("rss_mb", "RSS (MiB)", True)):
        series = []
        for framework in frameworks:
            curve = curves[framework]
            if not isinstance(curve, dict):
                continue
            points = _series_from(curve.get(metric))
            if points:
                series.append(svg.Series(f"{framework} {metric}", points, dashed=framework == "torch",
                                         colour="#1565c0" if framework == "vibetensor" else "#e65100"))
            elif metric in ("loss", "step_time_s"):
                missing.append(f"curve '{framework}' has no {metric} values")
        if series:
            charts.append(svg.line_chart(series, f"{label}: vibetensor vs PyTorch", "step", label,
                                         y_from_zero=from_zero))
    for framework in frameworks:
        if not isinstance(curves[framework], dict):
            missing.append(f"curve '{framework}' is not an object")
    windows = [w for w in dm.as_list(data.get("windows")) if isinstance(w, dict)]
    rel_points = [((dm.as_float(w.get("start")) or 0.0), v) for w in windows
                  if (v := _finite(w.get("rel_diff"))) is not None]
    tolerance = data.get("tolerance")
    rel_tol = dm.as_float(tolerance.get("relative")) if isinstance(tolerance, dict) else dm.as_float(tolerance)
    if rel_points:
        series = [svg.Series("|vt - torch| / |torch| per window", rel_points, colour="#1565c0")]
        if rel_tol is not None:
            series.append(svg.Series("tolerance", [(rel_points[0][0], rel_tol), (rel_points[-1][0], rel_tol)],
                                     colour="#c62828", dashed=True))
        charts.append(svg.line_chart(series, "loss difference per window", "window start step", "relative",
                                     y_from_zero=True))
    memory = data.get("memory")
    memory_series = [svg.Series(k, _series_from(v)) for k, v in sorted(dm.as_dict(memory).items())
                     if isinstance(v, list)]
    if memory_series:
        charts.append(svg.line_chart(memory_series, "memory", "step", "value"))
    window_keys = [k for k in ("start", "end", "torch_mean", "vt_mean", "rel_diff", "ok", "reason")
                   if any(k in w for w in windows)]
    window_keys += sorted({k for w in windows for k in w} - set(window_keys))
    return {"workload": data.get("workload"), "profile": data.get("profile"), "steps": data.get("steps"),
            "status": data.get("status"), "module": data.get("module"), "error": data.get("error"),
            "tolerance": _tolerance_text(tolerance), "step_time_ratio": data.get("step_time_ratio"),
            "nan_step": data.get("nan_step"), "charts": charts, "windows": windows, "window_keys": window_keys,
            "failed_windows": sum(1 for w in windows if w.get("ok") is False),
            "memory_scalars": {k: v for k, v in dm.as_dict(memory).items() if not isinstance(v, (list, dict))},
            "problems": [str(p) for p in dm.as_list(data.get("problems"))],
            "missing_curves": [f for f in ("torch", "vibetensor") if f not in curves] if curves else [],
            "missing": missing, "index": None}


# ------------------------------------------------------------------------------------------------ allocator

SEGMENT_STATE_COLOURS = {"allocated": "#e65100", "pending": "#6a1b9a", "free": "#c8e6c9"}


def _segment_usage(seg: dict[str, Any]) -> tuple[float | None, dict[str, float]]:
    """(segment size, bytes per block state) from a snapshot segment; sizes from the blocks when listed."""
    size = next((v for k in ("size", "total_size", "bytes") if (v := _finite(seg.get(k))) is not None), None)
    by_state: dict[str, float] = {}
    blocks = [b for b in dm.as_list(seg.get("blocks")) if isinstance(b, dict)]
    for block in blocks:
        block_size = _finite(block.get("size"))
        if block_size is not None:
            state = dm.as_str(block.get("state"), "unknown") or "unknown"
            by_state[state] = by_state.get(state, 0.0) + block_size
    if not blocks:
        used = next((v for k in ("allocated_size", "allocated", "used") if (v := _finite(seg.get(k))) is not None),
                    None)
        if used is not None:
            by_state["allocated"] = used
            if size is not None:
                by_state["free"] = max(0.0, size - used)
    return size, by_state


def _one_scenario(data: dict[str, Any], name: Any) -> dict[str, Any]:
    missing: list[str] = []
    samples_key = next((k for k in ("trace", "steps", "series", "timeline", "samples") if isinstance(data.get(k),
                                                                                                       list)), None)
    samples = [s for s in dm.as_list(data.get(samples_key)) if isinstance(s, dict)] if samples_key else []
    charts = []
    allocated_pts, reserved_pts, frag_pts = [], [], []
    derived = False
    for i, sample in enumerate(samples):
        x = _finite(_first(sample, "t", "step", "time"))
        x = float(i) if x is None else x
        allocated = _finite(_first(sample, "allocated", "allocated_bytes"))
        reserved = _finite(_first(sample, "reserved", "reserved_bytes"))
        if allocated is not None:
            allocated_pts.append((x, allocated))
        if reserved is not None:
            reserved_pts.append((x, reserved))
        frag = _finite(sample.get("fragmentation"))
        if frag is None and allocated is not None and reserved:
            frag, derived = 1.0 - allocated / reserved, True
        if frag is not None:
            frag_pts.append((x, frag))
    if not samples_key:
        missing.append("no time series ('trace' or 'steps' samples): allocated/reserved over the scenario unknown")
    elif samples and not allocated_pts and not reserved_pts:
        missing.append(f"the '{samples_key}' samples carry no 'allocated'/'reserved' bytes")
    if allocated_pts or reserved_pts:
        charts.append(svg.line_chart([svg.Series("allocated", allocated_pts, colour="#e65100"),
                                      svg.Series("reserved", reserved_pts, colour="#1565c0")],
                                     "allocated and reserved bytes over the scenario", "t", "bytes",
                                     y_from_zero=True, y_bytes=True))
    fragmentation = data.get("fragmentation")
    snapshot_frag = data.get("snapshot_fragmentation")
    if isinstance(fragmentation, dict):  # the driver's own shape: {max_allocated, max_reserved, overhead_ratio, snapshots}
        snapshot_frag = snapshot_frag if snapshot_frag is not None else fragmentation.get("snapshots")
        fragmentation = fragmentation.get("overhead_ratio")
    snapshot_frag = [f for f in dm.as_list(snapshot_frag) if isinstance(f, dict)]
    if isinstance(fragmentation, list):  # a series written by the gate wins over the derived one
        frag_pts = [(float(i), v) for i, f in enumerate(fragmentation)
                    if (v := _finite(f.get("value") if isinstance(f, dict) else f)) is not None]
        fragmentation, derived = None, False
    if frag_pts:
        label = "1 - allocated/reserved (derived)" if derived else "fragmentation"
        charts.append(svg.line_chart([svg.Series(label, frag_pts, colour="#6a1b9a")], "fragmentation over the scenario",
                                     "t", "ratio", y_from_zero=True))
    elif fragmentation is None and not snapshot_frag:
        missing.append("no fragmentation figure")
    external = [(float(i), v) for i, f in enumerate(snapshot_frag) if (v := _finite(f.get("external"))) is not None]
    if len(external) > 1:  # one snapshot is a row of the table, not a chart
        charts.append(svg.line_chart([svg.Series("external fragmentation (1 - largest free block / free bytes)",
                                                 external, colour="#ad1457")],
                                     "external fragmentation at each snapshot", "snapshot (see the table)", "ratio",
                                     y_from_zero=True))
    frag_keys = [k for k in ("label", "reserved", "free_bytes", "largest_free_block", "external")
                 if any(k in f for f in snapshot_frag)]
    frag_keys += sorted({k for f in snapshot_frag for k in f if not isinstance(f[k], (list, dict))} - set(frag_keys))
    snapshot = data.get("snapshot")
    if isinstance(snapshot, dict) and "segments" not in snapshot:
        snapshot = next((s.get("snapshot") for s in reversed(samples) if isinstance(s.get("snapshot"), dict)),
                        snapshot)
    if snapshot is None:
        snapshot = next((s.get("snapshot") for s in reversed(samples) if isinstance(s.get("snapshot"), dict)), None)
    segments = [s for s in dm.as_list(dm.as_dict(snapshot).get("segments")) if isinstance(s, dict)]
    if not isinstance(snapshot, dict):
        missing.append("no allocator snapshot")
    elif not segments:
        missing.append("the snapshot lists no segments")
    bars = []
    for i, seg in enumerate(segments[:200]):
        size, by_state = _segment_usage(seg)
        label = f"#{i} " + " ".join(f"{k}={seg[k]}" for k in ("stream", "pool", "device") if k in seg)
        parts = [(state, value, SEGMENT_STATE_COLOURS.get(state, "#9e9e9e")) for state, value in sorted(
            by_state.items(), key=lambda kv: list(SEGMENT_STATE_COLOURS).index(kv[0])
            if kv[0] in SEGMENT_STATE_COLOURS else 9)]
        if not parts and size is not None:
            parts = [("size", size, "#1565c0")]
        if parts:
            bars.append((label, parts))
    if bars:
        charts.append(svg.stacked_bar_chart(bars, "snapshot segments (blocks by state)", "bytes"))
    segment_rows = []
    for seg in segments[:SEGMENTS_MAX]:
        size, by_state = _segment_usage(seg)
        segment_rows.append({"seg": seg, "size": size, "allocated": by_state.get("allocated"),
                             "pending": by_state.get("pending"), "free": by_state.get("free"),
                             "blocks": len(dm.as_list(seg.get("blocks")))})
    segment_keys = [k for k in ("address", "stream", "pool", "graph", "device", "birth")
                    if any(k in s for s in segments)]
    checks = [c for c in dm.as_list(_first(data, "checks", "invariants")) if isinstance(c, dict)]
    scalar_keys = {k for c in checks for k in c if not isinstance(c[k], (list, dict))}
    check_keys = [k for k in ("name", "status", "message") if k in scalar_keys]
    check_keys += sorted(scalar_keys - set(check_keys))
    stats = dm.as_dict(_first(data, "final_stats", "stats") or dm.as_dict(snapshot).get("stats"))
    metrics = {k: v for k, v in dm.as_dict(data.get("metrics")).items() if not isinstance(v, (list, dict))}
    return {"name": name if name is not None else data.get("scenario"), "status": data.get("status"),
            "error": data.get("error"), "metrics": metrics, "snapshot_frag": snapshot_frag[:SEGMENTS_MAX],
            "frag_keys": frag_keys,
            "backend": data.get("backend"), "charts": charts, "fragmentation": fragmentation,
            "samples": len(samples), "segments": segment_rows,
            "series": {"allocated": allocated_pts, "reserved": reserved_pts, "fragmentation": frag_pts,
                       "fragmentation_derived": derived}, "segment_keys": segment_keys,
            "segments_cut": max(0, len(segments) - SEGMENTS_MAX), "checks": checks, "check_keys": check_keys,
            "problems": [str(p) for p in dm.as_list(_first(data, "problems", "violations"))],
            "stats": {k: (v.get("current") if isinstance(v, dict) and "current" in v else v)
                      for k, v in stats.items() if not isinstance(v, list)},
            "missing": missing}


def allocator_view(data: dict[str, Any]) -> dict[str, Any]:
    scenarios = data.get("scenarios")
    if isinstance(scenarios, dict):
        items = [(name, s) for name, s in scenarios.items()]
    elif isinstance(scenarios, list):
        items = [(dm.as_dict(s).get("scenario", dm.as_dict(s).get("name")), s) for s in scenarios]
    else:
        items = [(data.get("scenario"), data)]
    views, missing = [], []
    for name, scenario in items:
        if isinstance(scenario, dict):
            views.append(_one_scenario(scenario, name))
        else:
            missing.append(f"scenario {name} is not a JSON object")
    if not items:
        missing.append("the report lists no scenarios")
    runs = [r for r in dm.as_list(data.get("runs")) if isinstance(r, dict)]
    return {"scenarios": views, "missing": missing, "backend": data.get("backend"), "status": data.get("status"),
            "runs": [{"seed": r.get("seed"), "returncode": _first(r, "driver_returncode", "returncode"),
                      "problems": [str(p) for p in dm.as_list(r.get("problems"))],
                      "scenarios": [str(n) for n in dm.as_list(r.get("scenarios"))]} for r in runs]}


# ------------------------------------------------------------------------------------------------ perf


def perf_view(data: dict[str, Any]) -> dict[str, Any]:
    ratios = {str(k): dm.as_float(v) for k, v in dm.as_dict(data.get("ratios")).items()}
    bars = [(k, v, "#c62828" if v > 1.0 else "#2e7d32") for k, v in sorted(ratios.items()) if v is not None]
    missing = [] if ratios else ["the report has no 'ratios' (vibetensor time / PyTorch time per measure)"]
    return {"ratios": sorted(ratios.items()), "missing": missing,
            "chart": svg.bar_chart(bars, "time ratio to PyTorch", "lower is better")}


REPORT_VIEWS: dict[str, Callable[..., dict[str, Any]]] = {
    "parity": parity_view, "training": training_view, "allocator": allocator_view, "perf": perf_view}


def report_view(gate_name: str, path: Path | None, repo_root: Path | None = None) -> dict[str, Any]:
    if path is None:
        return {"kind": "missing", "problem": "no report file was written for this gate (or it is missing)",
                "missing": []}
    data, problem = dm.read_json(path)
    if problem:
        return {"kind": "missing", "problem": problem, "missing": []}
    kind = dm.report_kind(gate_name, data)
    view: dict[str, Any] = {"kind": kind, "problem": None, "missing": []}
    if not isinstance(data, dict):
        view.update(kind="other", problem="the report is not a JSON object")
    elif kind in REPORT_VIEWS:
        try:
            view.update(REPORT_VIEWS[kind](data, repo_root) if kind == "training" else REPORT_VIEWS[kind](data))
        except Exception as exc:  # an unexpected shape: show the raw JSON and say why the view failed
            view.update(kind="other", problem=f"could not read this {kind} report: {type(exc).__name__}: {exc}")
    raw = json.dumps(data, indent=1, default=str)
    view["raw"] = raw[:RAW_JSON_MAX_CHARS]
    view["raw_cut"] = max(0, len(raw) - RAW_JSON_MAX_CHARS)
    return view
