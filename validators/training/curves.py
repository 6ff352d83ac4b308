"""Reading and comparing training curves (pure functions; the gate in validators/training_gate.py calls them).

Invariants and units:
- A curve is what validators/training/worker.py streamed: per-step loss, step time (seconds), RSS (MiB) and, when
  the framework exposes it, allocator memory (MiB). A curve may be short (the run crashed or hit a NaN).
- Loss agreement is judged window by window: steps [start, end) of length ``window``; a window is ok when
  |vt_mean - torch_mean| <= tolerance * |torch_mean|. A window holding a non-finite loss is "not finite"; one the
  candidate did not finish otherwise is "not reached"; neither is ok. Windows smooth out step-to-step noise from float rounding, which grows as training goes on.
- Memory growth is median(last ``window`` samples) - median(first ``window`` samples after warm-up), so a single
  spike (a GC pass, a one-off workspace) is not a leak but steady growth is.
- Step-time ratio is median(vt step time) / median(torch step time), both over the steps after warm-up.
- Non-finite numbers become None in reports (strict JSON has no NaN).
"""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class CurveError(Exception):
    """The worker's output cannot be read as a curve (garbled, not JSON lines, missing fields)."""


@dataclass
class Curve:
    loss: list[float] = field(default_factory=list)
    step_time_s: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    allocated_mb: list[float | None] = field(default_factory=list)
    items_per_s: list[float] = field(default_factory=list)
    start: dict[str, Any] = field(default_factory=dict)
    end: dict[str, Any] | None = None  # None: the run did not finish (crash, timeout)

    def to_report(self) -> dict[str, Any]:
        return {"loss": finite_or_none(self.loss), "step_time_s": finite_or_none(self.step_time_s),
                "rss_mb": finite_or_none(self.rss_mb), "allocated_mb": finite_or_none(self.allocated_mb),
                "items_per_s": finite_or_none(self.items_per_s), "start": self.start, "end": self.end}


def finite_or_none(values: list[float | None]) -> list[float | None]:
    return [v if v is not None and math.isfinite(v) else None for v in values]


def _number(record: dict, key: str, line_no: int, optional: bool = False) -> float | None:
    value = record.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CurveError(f"line {line_no}: field {key!r} is {value!r}, expected a number")
    return float(value)


def read_curve(path: Path) -> Curve:
    """Parse the worker's JSON lines. Steps must come in order 0, 1, 2, ..."""
    curve = Curve()
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CurveError(f"cannot read {path}: {exc}") from exc
    for line_no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)  # json accepts NaN/Infinity, as the worker writes them
        except ValueError as exc:
            raise CurveError(f"line {line_no}: not JSON ({exc})") from exc
        if not isinstance(record, dict):
            raise CurveError(f"line {line_no}: expected an object")
        event = record.get("event")
        if event == "start":
            curve.start = record
        elif event == "end":
            curve.end = record
        elif event == "step":
            if record.get("step") != len(curve.loss):
                raise CurveError(f"line {line_no}: step {record.get('step')!r}, expected {len(curve.loss)}")
            curve.loss.append(_number(record, "loss", line_no))
            curve.step_time_s.append(_number(record, "step_time_s", line_no))
            curve.rss_mb.append(_number(record, "rss_mb", line_no))
            curve.allocated_mb.append(_number(record, "allocated_mb", line_no, optional=True))
            curve.items_per_s.append(_number(record, "items_per_s", line_no))
        else:
            raise CurveError(f"line {line_no}: unknown event {event!r}")
    return curve


def first_non_finite(values: list[float]) -> int | None:
    return next((i for i, v in enumerate(values) if not math.isfinite(v)), None)


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def compare_windows(reference: list[float], candidate: list[float], window: int,
                    tolerance: float) -> list[dict[str, Any]]:
    """One entry per window of the reference curve (a last partial window included)."""
    windows = []
    for start in range(0, len(reference), window):
        end = min(start + window, len(reference))
        ref_mean = _mean(reference[start:end])
        reached = candidate[start:end]
        if len(reached) < end - start and all(math.isfinite(v) for v in reached):
            windows.append({"start": start, "end": end, "torch_mean": ref_mean, "vt_mean": None, "rel_diff": None,
                            "ok": False, "reason": "not reached"})
            continue
        vt_mean = _mean(reached)  # not finite when the window holds a NaN/Inf, even if the run stopped there
        rel = abs(vt_mean - ref_mean) / max(abs(ref_mean), 1e-12)
        ok = math.isfinite(vt_mean) and math.isfinite(rel) and rel <= tolerance
        windows.append({"start": start, "end": end, "torch_mean": ref_mean, "vt_mean": vt_mean, "rel_diff": rel,
                        "ok": bool(ok), "reason": None if ok else ("not finite" if not math.isfinite(vt_mean)
                                                                   else "outside tolerance")})
    return windows


def memory_growth_mb(samples: list[float | None], warmup: int, window: int) -> float | None:
    """Growth after warm-up (see the file note); None when there are too few samples or any is missing."""
    after = samples[warmup:]
    if any(s is None for s in after) or len(after) < 2 * window:
        return None
    return statistics.median(after[-window:]) - statistics.median(after[:window])


def step_time_ratio(reference: list[float], candidate: list[float], warmup: int) -> float | None:
    ref, vt = reference[warmup:], candidate[warmup:]
    if not ref or not vt:
        return None
    ref_median = statistics.median(ref)
    return statistics.median(vt) / ref_median if ref_median > 0 else None


def json_safe(value: Any) -> Any:
    """Replace non-finite floats by None, recursively (for strict JSON reports)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
