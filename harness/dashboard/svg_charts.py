"""Inline SVG for the dashboards: the spec dependency graph, line charts and bar charts.

Policy: the output is a string of SVG markup to embed in a page (returned as ``markupsafe.Markup``). Every piece of
text that reaches it (labels, ids, titles) comes from logs or specs and is escaped here; colours and numbers are
produced here. Only presentation attributes are used (no ``style=``), so a strict Content-Security-Policy holds.
Non-finite values (NaN, inf) are dropped from lines and counted in the chart's note.
"""
from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from html import escape
from typing import Callable, Sequence

from markupsafe import Markup

STATE_COLOURS = {"accepted": "#2e7d32", "pending": "#9e9e9e", "blocked": "#c62828", "missing": "#6d4c41",
                 "running": "#1565c0"}
SERIES_COLOURS = ["#1565c0", "#e65100", "#2e7d32", "#6a1b9a", "#c62828", "#00838f", "#5d4037", "#ad1457"]


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _num(value: float) -> str:
    return f"{value:.4g}"


@dataclass
class Series:
    label: str
    points: Sequence[tuple[float, float]]
    colour: str | None = None
    dashed: bool = False


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]


MAX_POINTS = 1200  # per series: longer series are reduced to each bucket's first, lowest and highest point


def decimate(points: list[tuple[float, float]], limit: int = MAX_POINTS) -> list[tuple[float, float]]:
    """At most about ``limit`` points that keep the series' peaks and dips (min/max per bucket, in x order)."""
    if len(points) <= limit:
        return points
    per = math.ceil(len(points) / (limit // 3))
    out = []
    for start in range(0, len(points), per):
        bucket = points[start:start + per]
        keep = {0, min(range(len(bucket)), key=lambda i: bucket[i][1]),
                max(range(len(bucket)), key=lambda i: bucket[i][1])}
        out += [bucket[i] for i in sorted(keep)]
    return out


def _bytes_tick(value: float) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.4g} B"


def line_chart(series: Sequence[Series], title: str, x_label: str, y_label: str, width: int = 720,
               height: int = 300, y_from_zero: bool = False, y_bytes: bool = False) -> Markup:
    y_tick = _bytes_tick if y_bytes else _num
    clean = []
    dropped = 0
    for s in series:
        pts = [(float(x), float(y)) for x, y in s.points if math.isfinite(x) and math.isfinite(y)]
        dropped += len(s.points) - len(pts)
        clean.append((s, decimate(pts)))
    all_pts = [p for _, pts in clean for p in pts]
    left, right, top, bottom = 64, 16, 28, 44
    legend_h = 18 * ((len(series) + 2) // 3)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" '
           f'height="{height + legend_h}" viewBox="0 0 {width} {height + legend_h}">',
           f'<title>{_e(title)}</title>',
           f'<text x="{left}" y="16" font-size="13" font-weight="bold">{_e(title)}</text>']
    if not all_pts:
        out.append(f'<text x="{left}" y="{height // 2}" font-size="13" fill="#666">no data</text></svg>')
        return Markup("".join(out))
    x0, x1 = min(p[0] for p in all_pts), max(p[0] for p in all_pts)
    y0, y1 = min(p[1] for p in all_pts), max(p[1] for p in all_pts)
    if y_from_zero:
        y0 = min(0.0, y0)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - (abs(y0) or 1) * 0.1, y1 + (abs(y1) or 1) * 0.1
    y1 += (y1 - y0) * 0.05  # headroom: a flat line at the maximum stays visible under the frame
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * plot_h

    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>')
    for t in _ticks(y0, y1):
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#e0e0e0"/>'
                   f'<text x="{left - 4}" y="{sy(t) + 4:.1f}" font-size="11" text-anchor="end">{y_tick(t)}</text>')
    for t in _ticks(x0, x1):
        out.append(f'<text x="{sx(t):.1f}" y="{top + plot_h + 14}" font-size="11" text-anchor="middle">'
                   f'{_num(t)}</text>')
    out.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 8}" font-size="12" text-anchor="middle">'
               f'{_e(x_label)}</text>'
               f'<text x="14" y="{top + plot_h / 2:.0f}" font-size="12" text-anchor="middle" '
               f'transform="rotate(-90 14 {top + plot_h / 2:.0f})">{_e(y_label)}</text>')
    for i, (s, pts) in enumerate(clean):
        colour = s.colour or SERIES_COLOURS[i % len(SERIES_COLOURS)]
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        if len(pts) == 1:
            out.append(f'<circle cx="{sx(pts[0][0]):.1f}" cy="{sy(pts[0][1]):.1f}" r="3" fill="{colour}"/>')
        elif pts:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.8"{dash} points="{path}">'
                       f'<title>{_e(s.label)}</title></polyline>')
        lx, ly = left + (i % 3) * (plot_w // 3), height + 4 + 18 * (i // 3)
        out.append(f'<line x1="{lx}" x2="{lx + 22}" y1="{ly}" y2="{ly}" stroke="{colour}" stroke-width="3"{dash}/>'
                   f'<text x="{lx + 28}" y="{ly + 4}" font-size="12" class="legend">{_e(s.label)}</text>')
    if dropped:
        out.append(f'<text x="{left + plot_w}" y="16" font-size="11" text-anchor="end" fill="#c62828">'
                   f'{dropped} non-finite value(s) not drawn</text>')
    out.append("</svg>")
    return Markup("".join(out))


def bar_chart(bars: Sequence[tuple[str, float, str | None]], title: str, value_label: str, width: int = 720,
              bar_h: int = 18) -> Markup:
    """Horizontal bars: (label, value, colour or None)."""
    bars = [(label, float(v), c) for label, v, c in bars if math.isfinite(float(v))]
    left, right, top = 220, 80, 28
    height = top + max(1, len(bars)) * (bar_h + 6) + 20
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}"><title>{_e(title)}</title>',
           f'<text x="8" y="16" font-size="13" font-weight="bold">{_e(title)} ({_e(value_label)})</text>']
    if not bars:
        out.append(f'<text x="8" y="{top + 14}" font-size="13" fill="#666">no data</text></svg>')
        return Markup("".join(out))
    top_value = max(max(v for _, v, _ in bars), 1e-30)
    for i, (label, value, colour) in enumerate(bars):
        y = top + i * (bar_h + 6)
        w = max(0.0, value) / top_value * (width - left - right)
        short = label if len(label) <= 32 else label[:31] + "…"
        out.append(f'<text x="{left - 6}" y="{y + bar_h - 5}" font-size="11" text-anchor="end">{_e(short)}</text>'
                   f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour or "#1565c0"}">'
                   f'<title>{_e(label)}: {_num(value)}</title></rect>'
                   f'<text x="{left + w + 4:.1f}" y="{y + bar_h - 5}" font-size="11">{_num(value)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def dependency_graph(specs: Sequence, link_for: Callable[[str], str]) -> Markup:
    """Specs (objects with .id, .title, .depends_on, .state) as layered boxes, dependencies as arrows.

    Layer = longest dependency chain below the spec (cycles are cut and drawn like any edge)."""
    by_id = {s.id: s for s in specs}
    layer: dict[str, int] = {}

    def depth(spec_id: str, trail: frozenset[str]) -> int:
        if spec_id in layer:
            return layer[spec_id]
        deps = [d for d in by_id[spec_id].depends_on if d in by_id and d not in trail]
        value = 1 + max((depth(d, trail | {spec_id}) for d in deps), default=-1)
        layer[spec_id] = value
        return value

    for s in specs:
        depth(s.id, frozenset())
    columns: dict[int, list] = {}
    for s in specs:
        columns.setdefault(layer[s.id], []).append(s)
    box_w, box_h, gap_x, gap_y, pad = 190, 40, 60, 14, 12
    rows = max((len(c) for c in columns.values()), default=0)
    width = pad * 2 + len(columns) * (box_w + gap_x) - (gap_x if columns else 0)
    height = pad * 2 + rows * (box_h + gap_y) + 24
    pos = {}
    for col, members in sorted(columns.items()):
        for row, s in enumerate(members):
            pos[s.id] = (pad + col * (box_w + gap_x), pad + 24 + row * (box_h + gap_y))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="depgraph" role="img" width="{max(width, 300)}" '
           f'height="{height}" viewBox="0 0 {max(width, 300)} {height}"><title>spec dependency graph</title>',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#777"/></marker></defs>']
    legend_x = pad
    for state, colour in STATE_COLOURS.items():
        out.append(f'<rect x="{legend_x}" y="6" width="12" height="12" fill="{colour}"/>'
                   f'<text x="{legend_x + 16}" y="16" font-size="12">{state}</text>')
        legend_x += 100
    if not specs:
        out.append(f'<text x="{pad}" y="{pad + 40}" font-size="13" fill="#666">no specs</text></svg>')
        return Markup("".join(out))
    for s in specs:
        for dep in s.depends_on:
            if dep not in pos:
                continue
            (dx, dy), (tx, ty) = pos[dep], pos[s.id]
            x1, y1, x2, y2 = dx + box_w, dy + box_h / 2, tx, ty + box_h / 2
            mid = (x1 + x2) / 2
            out.append(f'<path d="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}" fill="none" stroke="#777" '
                       f'stroke-width="1.3" marker-end="url(#arrow)"/>')
    for s in specs:
        x, y = pos[s.id]
        colour = STATE_COLOURS.get(s.state, "#9e9e9e")
        label = s.id if len(s.id) <= 26 else s.id[:25] + "…"
        dash = ' stroke-dasharray="4 3"' if s.state == "missing" else ""
        out.append(f'<a href="{_e(link_for(s.id))}" class="spec-node" data-spec="{_e(s.id)}" '
                   f'data-state="{_e(s.state)}"><title>{_e(s.id)}: {_e(s.title)} ({_e(s.state)})</title>'
                   f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="6" fill="#fff" stroke="{colour}" '
                   f'stroke-width="2.5"{dash}/>'
                   f'<rect x="{x}" y="{y}" width="8" height="{box_h}" rx="3" fill="{colour}"/>'
                   f'<text x="{x + 14}" y="{y + 17}" font-size="12" font-weight="bold">{_e(label)}</text>'
                   f'<text x="{x + 14}" y="{y + 32}" font-size="11" fill="{colour}">{_e(s.state)}</text></a>')
    out.append("</svg>")
    return Markup("".join(out))


def stacked_bar_chart(bars: Sequence[tuple[str, Sequence[tuple[str, float, str]]]], title: str, value_label: str,
                      width: int = 720, bar_h: int = 16) -> Markup:
    """Horizontal stacked bars: (label, [(part name, value, colour), ...]); one scale for all bars, a legend of the
    part names. Used for allocator segments split into allocated / pending / free blocks."""
    clean = [(label, [(n, float(v), c) for n, v, c in parts if math.isfinite(float(v)) and float(v) > 0])
             for label, parts in bars]
    left, right, top = 220, 90, 44
    height = top + max(1, len(clean)) * (bar_h + 6) + 12
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}"><title>{_e(title)}</title>',
           f'<text x="8" y="16" font-size="13" font-weight="bold">{_e(title)} ({_e(value_label)})</text>']
    legend = {}
    for _, parts in clean:
        for name, _, colour in parts:
            legend.setdefault(name, colour)
    for i, (name, colour) in enumerate(legend.items()):
        out.append(f'<rect x="{8 + i * 110}" y="24" width="12" height="12" fill="{_e(colour)}" stroke="#999"/>'
                   f'<text x="{24 + i * 110}" y="34" font-size="12">{_e(name)}</text>')
    totals = [sum(v for _, v, _ in parts) for _, parts in clean]
    if not clean or max(totals, default=0) <= 0:
        out.append(f'<text x="8" y="{top + 14}" font-size="13" fill="#666">no data</text></svg>')
        return Markup("".join(out))
    scale = (width - left - right) / max(totals)
    for i, ((label, parts), total) in enumerate(zip(clean, totals)):
        y = top + i * (bar_h + 6)
        short = label if len(label) <= 32 else label[:31] + "…"
        out.append(f'<text x="{left - 6}" y="{y + bar_h - 4}" font-size="11" text-anchor="end">{_e(short)}</text>')
        x = float(left)
        for name, value, colour in parts:
            w = value * scale
            out.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{_e(colour)}" '
                       f'stroke="#fff" stroke-width="0.5"><title>{_e(label)} {_e(name)}: {_num(value)}</title></rect>')
            x += w
        out.append(f'<text x="{x + 4:.1f}" y="{y + bar_h - 4}" font-size="11">{_num(total)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def timeline(points: Sequence[tuple[float, str, str, str, str]], title: str, width: int = 900) -> Markup:
    """The ledger over time: (epoch seconds, lane, label, colour, link) per entry; one lane (row) per spec, time on
    the x axis, each entry a linked dot labelled with its number."""
    lanes = list(dict.fromkeys(lane for _, lane, _, _, _ in points))
    left, right, top, lane_h = 170, 24, 30, 26
    height = top + max(1, len(lanes)) * lane_h + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" role="img" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}"><title>{_e(title)}</title>',
           f'<text x="8" y="16" font-size="13" font-weight="bold">{_e(title)}</text>']
    times = [t for t, *_ in points if math.isfinite(t)]
    if not times:
        out.append(f'<text x="8" y="{top + 16}" font-size="13" fill="#666">no dated entries</text></svg>')
        return Markup("".join(out))
    t0, t1 = min(times), max(times)
    span = (t1 - t0) or 1.0
    plot_w = width - left - right

    def sx(t: float) -> float:
        return left + (t - t0) / span * plot_w if t1 > t0 else left + plot_w / 2

    for i, lane in enumerate(lanes):
        y = top + i * lane_h + lane_h / 2
        short = lane if len(lane) <= 26 else lane[:25] + "…"
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y}" y2="{y}" stroke="#eceff1"/>'
                   f'<text x="{left - 8}" y="{y + 4}" font-size="11" text-anchor="end">{_e(short)}</text>')
    for t, anchor in ((t0, "start"), (t1, "end")) if t1 > t0 else ((t0, "middle"),):
        stamp = _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        out.append(f'<text x="{sx(t):.1f}" y="{height - 8}" font-size="11" text-anchor="{anchor}">{stamp}</text>')
    for t, lane, label, colour, link in points:
        if not math.isfinite(t):
            continue
        y = top + lanes.index(lane) * lane_h + lane_h / 2
        out.append(f'<a href="{_e(link)}" class="timeline-entry"><title>{_e(label)}</title>'
                   f'<circle cx="{sx(t):.1f}" cy="{y}" r="6" fill="{_e(colour)}"/>'
                   f'<text x="{sx(t):.1f}" y="{y - 8}" font-size="10" text-anchor="middle">'
                   f'{_e(label.split(" ")[0])}</text></a>')
    out.append("</svg>")
    return Markup("".join(out))
