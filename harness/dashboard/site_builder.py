"""Render the data model into pages: one table of pages used by the static site and the live server alike.

Policy:
- ``page_table(model)`` names every page by its path inside the site and gives a callable that renders it; the
  static build renders them all, the live server renders only the one asked for (data re-read per request).
- Jinja2 autoescaping is on for every template; the only ``Markup`` values are SVG built (and escaped) in
  ``svg_charts``. Agent output (proposals, logs, summaries, feedback) is therefore always shown as text.
- Links are relative (``root`` is the way back to the site root), so the site works from ``file://`` offline.
- Sizes are capped so one bad log cannot blow a page up: logs (``data_model.LOG_TRUNCATE_BYTES``), proposals
  (``DIFF_MAX_LINES``), parity rows (``PARITY_MAX_ROWS``), raw JSON (``RAW_JSON_MAX_CHARS``), each with a note.
"""
from __future__ import annotations

import functools
import json
import math
import shutil
from urllib.parse import quote
from pathlib import Path
from typing import Any, Callable

import jinja2
from markupsafe import Markup

from harness.dashboard import data_model as dm
from harness.dashboard import svg_charts as svg

PACKAGE_DIR = Path(__file__).resolve().parent
DIFF_MAX_LINES = 20_000
PARITY_MAX_ROWS = 5_000
RAW_JSON_MAX_CHARS = 200_000


# ------------------------------------------------------------------------------------------------ formatting


def fmt_cost(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def fmt_usage_cost(usage: dm.UsageTotals) -> str:
    if usage.cost_usd is None:
        return "unknown"
    return fmt_cost(usage.cost_usd)


def fmt_num(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else str(value)
    return str(value)


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def fmt_rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def fmt_bytes(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return fmt_num(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return str(value)


def status_badge(value: Any) -> Markup:
    return Markup('<span class="status status-{0}">{0}</span>').format(value)


def agent_model(agent: Any, model: Any) -> Markup:
    if model:
        return Markup('{0} / <span class="model">{1}</span>').format(agent, model)
    return Markup('{0} / <span class="muted">no model</span>').format(agent)


def diff_lines(text: str | None) -> tuple[list[tuple[str, str]], int]:
    """A proposal as (css class, line) pairs: unified diff and search/replace edit blocks; (lines, lines cut)."""
    if not text:
        return [], 0
    lines = text.splitlines()
    cut = max(0, len(lines) - DIFF_MAX_LINES)
    out = []
    block = None  # None | "search" | "replace" inside an edit block
    for line in lines[:DIFF_MAX_LINES]:
        if line.startswith("<<<<<<<"):
            block, css = "search", "marker"
        elif line.startswith("=======") and block == "search":
            block, css = "replace", "marker"
        elif line.startswith(">>>>>>>") and block:
            block, css = None, "marker"
        elif block == "search":
            css = "del"
        elif block == "replace":
            css = "add"
        elif line.startswith(("+++", "---", "diff --git", "index ", "new file", "deleted file")):
            css = "file"
        elif line.startswith("@@"):
            css = "hunk"
        elif line.startswith("+"):
            css = "add"
        elif line.startswith("-"):
            css = "del"
        else:
            css = "ctx"
        out.append((css, line))
    return out, cut


# ------------------------------------------------------------------------------------------------ report views


def _finite(value: Any) -> float | None:
    number = dm.as_float(value)
    return number if number is not None and math.isfinite(number) else None


def _parity_view(data: dict[str, Any]) -> dict[str, Any]:
    device = dm.as_str(data.get("device"), "?")
    rows = [r for r in dm.as_list(data.get("results")) if isinstance(r, dict)]

    def badness(row: dict[str, Any]) -> tuple[int, float]:
        ok = row.get("status") == "pass"
        errs = [(_finite(row.get("max_abs_err")), _finite(row.get("atol"))),
                (_finite(row.get("max_rel_err")), _finite(row.get("rtol")))]
        ratio = max((e / t if t else (math.inf if e else 0.0)) for e, t in errs if e is not None and t is not None) \
            if any(e is not None and t is not None for e, t in errs) else 0.0
        return (1 if ok else 0, -ratio)

    rows.sort(key=badness)
    matrix: dict[str, dict[str, list[int]]] = {}
    dtypes: list[str] = []
    for row in rows:
        dtype = dm.as_str(row.get("dtype"), "?")
        if dtype not in dtypes:
            dtypes.append(dtype)
        cell = matrix.setdefault(dm.as_str(row.get("op"), "?"), {}).setdefault(dtype, [0, 0])
        cell[0] += row.get("status") == "pass"
        cell[1] += 1
    failures = sum(1 for r in rows if r.get("status") != "pass")
    shown = rows[:PARITY_MAX_ROWS]
    return {"device": device, "seed": data.get("seed"), "totals": dm.as_dict(data.get("totals")),
            "rows": [{**r, "device": dm.as_str(r.get("device"), device)} for r in shown],
            "rows_cut": len(rows) - len(shown), "failures": failures, "count": len(rows),
            "dtypes": sorted(dtypes), "matrix": sorted(matrix.items())}


def _series_from(values: Any) -> list[tuple[float, float]]:
    points = []
    for i, v in enumerate(dm.as_list(values)):
        number = dm.as_float(v)
        if number is not None:
            points.append((float(i), number))
    return points


def _training_view(data: dict[str, Any]) -> dict[str, Any]:
    curves = dm.as_dict(data.get("curves"))
    charts = []
    for metric, label in (("loss", "loss"), ("step_time_s", "step time (s)")):
        series = [svg.Series(f"{framework} {metric}", _series_from(dm.as_dict(curve).get(metric)),
                             dashed=framework == "torch")
                  for framework, curve in sorted(curves.items()) if dm.as_dict(curve).get(metric) is not None]
        if series:
            charts.append(svg.line_chart(series, f"{label}: vibetensor vs PyTorch", "step", label,
                                         y_from_zero=metric == "step_time_s"))
    memory = dm.as_dict(data.get("memory"))
    memory_series = [svg.Series(k, _series_from(v)) for k, v in sorted(memory.items()) if isinstance(v, list)]
    if memory_series:
        charts.append(svg.line_chart(memory_series, "memory", "step", "bytes"))
    windows = [w for w in dm.as_list(data.get("windows")) if isinstance(w, dict)]
    window_keys = sorted({k for w in windows for k in w})
    return {"workload": data.get("workload"), "steps": data.get("steps"), "tolerance": data.get("tolerance"),
            "step_time_ratio": data.get("step_time_ratio"), "charts": charts, "windows": windows,
            "window_keys": window_keys, "memory_scalars": {k: v for k, v in memory.items() if not isinstance(v, list)},
            "missing_curves": [f for f in ("torch", "vibetensor") if f not in curves]}


def _allocator_view(data: dict[str, Any]) -> dict[str, Any]:
    trace = [t for t in dm.as_list(data.get("trace")) if isinstance(t, dict)]
    charts = []
    if trace:
        series = []
        for key in ("allocated", "reserved"):
            pts = [(dm.as_float(t.get("t")) if dm.as_float(t.get("t")) is not None else float(i), dm.as_float(t.get(key)))
                   for i, t in enumerate(trace)]
            series.append(svg.Series(key, [(x, y) for x, y in pts if y is not None]))
        charts.append(svg.line_chart(series, "allocated and reserved bytes over the scenario", "t", "bytes",
                                     y_from_zero=True))
    fragmentation = data.get("fragmentation")
    if isinstance(fragmentation, list):
        charts.append(svg.line_chart([svg.Series("fragmentation", _series_from(
            [f.get("value") if isinstance(f, dict) else f for f in fragmentation]))], "fragmentation", "sample", "ratio"))
        fragmentation = None
    segments = [s for s in dm.as_list(dm.as_dict(data.get("snapshot")).get("segments")) if isinstance(s, dict)]
    bars = []
    for i, seg in enumerate(segments[:200]):
        size = next((dm.as_float(seg.get(k)) for k in ("total_size", "size", "bytes") if dm.as_float(seg.get(k))
                     is not None), None)
        if size is not None:
            label = f"#{i} " + " ".join(f"{k}={seg[k]}" for k in ("device", "stream", "pool") if k in seg)
            bars.append((label, size, None))
            used = next((dm.as_float(seg.get(k)) for k in ("allocated_size", "allocated", "used")
                         if dm.as_float(seg.get(k)) is not None), None)
            if used is not None:
                bars.append((f"#{i} allocated", used, "#e65100"))
    if bars:
        charts.append(svg.bar_chart(bars, "snapshot segments", "bytes"))
    segment_keys = sorted({k for s in segments for k in s if not isinstance(s[k], (list, dict))})
    return {"scenario": data.get("scenario"), "charts": charts, "fragmentation": fragmentation,
            "trace_points": len(trace), "segments": segments[:500], "segment_keys": segment_keys,
            "segments_cut": max(0, len(segments) - 500)}


def _perf_view(data: dict[str, Any]) -> dict[str, Any]:
    ratios = {str(k): dm.as_float(v) for k, v in dm.as_dict(data.get("ratios")).items()}
    bars = [(k, v, "#c62828" if v > 1.0 else "#2e7d32") for k, v in sorted(ratios.items()) if v is not None]
    return {"ratios": sorted(ratios.items()), "chart": svg.bar_chart(bars, "time ratio to PyTorch", "lower is better")}


REPORT_VIEWS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "parity": _parity_view, "training": _training_view, "allocator": _allocator_view, "perf": _perf_view}


def report_view(gate_name: str, path: Path | None) -> dict[str, Any]:
    if path is None:
        return {"kind": "missing", "problem": "no report file was written for this gate (or it is missing)"}
    data, problem = dm.read_json(path)
    if problem:
        return {"kind": "missing", "problem": problem}
    kind = dm.report_kind(gate_name, data)
    view: dict[str, Any] = {"kind": kind, "problem": None}
    if not isinstance(data, dict):
        view.update(kind="other", problem="the report is not a JSON object")
    elif kind in REPORT_VIEWS:
        try:
            view.update(REPORT_VIEWS[kind](data))
        except Exception as exc:  # an unexpected shape: show the raw JSON and say why the view failed
            view.update(kind="other", problem=f"could not read this {kind} report: {type(exc).__name__}: {exc}")
    raw = json.dumps(data, indent=1, default=str)
    view["raw"] = raw[:RAW_JSON_MAX_CHARS]
    view["raw_cut"] = max(0, len(raw) - RAW_JSON_MAX_CHARS)
    return view


# ------------------------------------------------------------------------------------------------ pages


@functools.lru_cache(maxsize=1)
def make_environment() -> jinja2.Environment:
    """One environment per process: templates are compiled once (they ship with the package and do not change)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(PACKAGE_DIR / "templates")), autoescape=True,
                             undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True,
                             auto_reload=False)
    env.globals["agent_model"] = agent_model
    env.filters.update(status_badge=status_badge, cost=fmt_cost, usage_cost=fmt_usage_cost, num=fmt_num, secs=fmt_seconds, rate=fmt_rate,
                       bytes=fmt_bytes)
    return env


def run_dir_name(run: dm.RunSummary) -> str:
    return dm.safe_name(run.dir.name)


class Site:
    """The page table over one loaded model. ``live`` adds the polling script's hooks to every page."""

    def __init__(self, model: dm.Model, live: bool = False):
        self.model = model
        self.live = live
        self.env = make_environment()
        self.run_pages = {run_dir_name(r): r for r in model.runs}

    def _render(self, template: str, depth: int, watch: str, **context: Any) -> str:
        return self.env.get_template(template).render(
            root="../" * depth, live=self.live, watch=watch, problems=self.model.problems, model=self.model,
            run_href=lambda rid: self.run_href(rid, depth), **context)

    def run_href(self, run_id: str | None, depth: int) -> str | None:
        if not run_id:
            return None
        run = self.model.run(run_id)
        return f"{'../' * depth}runs/{run_dir_name(run)}/index.html" if run else None

    def page_table(self) -> dict[str, Callable[[], str]]:
        pages: dict[str, Callable[[], str]] = {
            "index.html": self.overview, "perf.html": self.perf_page, "reports.html": self.reports_page}
        for name, run in self.run_pages.items():
            pages[f"runs/{name}/index.html"] = lambda run=run: self.run_page(run)
        for entry in self.model.ledger:
            pages[f"ledger/{entry.seq:04d}.html"] = lambda entry=entry: self.ledger_page(entry)
        return pages

    def run_subpages(self, run: dm.RunSummary, detail: dm.RunDetail) -> dict[str, Callable[[], str]]:
        """Gate logs and reports of one run (known only after its detail is read)."""
        base = f"runs/{run_dir_name(run)}"
        pages: dict[str, Callable[[], str]] = {}
        for attempt in detail.attempts:
            for row in attempt.gates:
                if row.log_file:
                    pages[f"{base}/log-{row.key}.html"] = lambda row=row: self.log_page(run, row)
                if row.report_file or row.gate.name in dm.REPORT_GATES:
                    pages[f"{base}/report-{row.key}.html"] = lambda row=row: self.report_page(run, row)
        return pages

    # -- pages

    def overview(self) -> str:
        m = self.model
        graph = svg.dependency_graph(m.specs, lambda sid: f"index.html?spec={quote(sid, safe='')}#runs")
        spec_ids = sorted({s.id for s in m.specs if s.state != "missing"} | {r.spec_id for r in m.runs}
                          | {e.spec_id for e in m.ledger})
        agents = sorted({r.agent for r in m.runs} | {e.agent for e in m.ledger})
        statuses = sorted({r.status for r in m.runs} | ({"accepted"} if m.ledger else set()))
        return self._render("overview.html.j2", 0, "*", title="Overview", graph=graph, spec_ids=spec_ids,
                            agents=agents, statuses=statuses, ledger=list(reversed(m.ledger)))

    def run_page(self, run: dm.RunSummary, detail: dm.RunDetail | None = None) -> str:
        detail = detail or dm.load_run_detail(self.model, run)
        attempts = []
        for attempt in detail.attempts:
            lines, cut = diff_lines(attempt.proposal_text)
            attempts.append({"view": attempt, "diff": lines, "diff_cut": cut})
        report_keys = {row.key for a in detail.attempts for row in a.gates
                       if row.report_file or row.gate.name in dm.REPORT_GATES}
        ledger_entry = next((e for e in self.model.ledger if e.run_id == run.run_id), None)
        return self._render("run.html.j2", 2, run.dir.name, title=f"Run {run.run_id}", run=run, detail=detail,
                            attempts=attempts, report_keys=report_keys, ledger_entry=ledger_entry)

    def log_page(self, run: dm.RunSummary, row: dm.GateRow) -> str:
        log = dm.read_log(row.log_file, self.model.repo_root) if row.log_file else None
        return self._render("log.html.j2", 2, run.dir.name, title=f"{row.gate.name} log, {run.run_id}", run=run,
                            row=row, log=log)

    def report_page(self, run: dm.RunSummary | None, row: dm.GateRow, depth: int = 2) -> str:
        view = report_view(row.gate.name, row.report_file)
        return self._render("report.html.j2", depth, run.dir.name if run else "*",
                            title=f"{row.gate.name} report, {run.run_id if run else 'ledger'}", run=run, row=row,
                            view=view)

    def ledger_page(self, entry: dm.LedgerEntry) -> str:
        patch = dm.resolve_inside(self.model.repo_root / "logs" / "ledger", entry.patch_file) \
            if entry.patch_file else None
        text = None
        if patch:
            text = dm.read_log(patch, self.model.repo_root).text
        lines, cut = diff_lines(text)
        return self._render("ledger_entry.html.j2", 1, "*", title=f"Ledger entry {entry.seq}", entry=entry,
                            patch_lines=lines, diff_cut=cut, patch_found=patch is not None)

    def perf_page(self) -> str:
        rows = dm.perf_over_ledger(self.model)
        names = sorted({n for _, ratios in rows for n in ratios})
        series = [svg.Series(n, [(float(e.seq), r[n]) for e, r in rows if n in r]) for n in names]
        chart = svg.line_chart(series, "time ratio to PyTorch per ledger entry (lower is better)", "ledger entry",
                               "ratio", y_from_zero=True)
        return self._render("perf.html.j2", 0, "*", title="Performance over the ledger", rows=rows, names=names,
                            chart=chart)

    def reports_page(self) -> str:
        listing = []
        for name, run in self.run_pages.items():
            for attempt in run.attempts:
                key = (dm.as_int(attempt.get("attempt")), dm.as_int(attempt.get("candidate"), 1))
                for raw in dm.as_list(attempt.get("gates")):
                    gate = dm.GateView.from_dict(raw)
                    if gate.name in dm.REPORT_GATES or gate.report_path:
                        stem = dm.safe_name(f"A{key[0]}-C{key[1]}-{gate.name}")
                        listing.append({"run": run, "gate": gate, "attempt": key,
                                        "href": f"runs/{name}/report-{stem}.html"})
        listing.sort(key=lambda x: (x["gate"].name, x["run"].started_at), reverse=False)
        return self._render("reports.html.j2", 0, "*", title="Gate reports", listing=listing)


# ------------------------------------------------------------------------------------------------ static site


def copy_static(out_dir: Path) -> None:
    target = out_dir / "static"
    target.mkdir(parents=True, exist_ok=True)
    for path in (PACKAGE_DIR / "static").iterdir():
        if path.is_file():
            shutil.copyfile(path, target / path.name)


def write_page(out_dir: Path, rel_path: str, html: str, made_dirs: set[Path] | None = None) -> None:
    path = out_dir / rel_path
    if made_dirs is None or path.parent not in made_dirs:
        path.parent.mkdir(parents=True, exist_ok=True)
        if made_dirs is not None:
            made_dirs.add(path.parent)
    path.write_text(html, encoding="utf-8")


def build_site(repo_root: Path, out_dir: Path) -> Path:
    """Build the static dashboards of ``repo_root`` into ``out_dir``; returns the overview's index.html."""
    repo_root, out_dir = Path(repo_root), Path(out_dir)
    model = dm.load_model(repo_root)
    site = Site(model, live=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    copy_static(out_dir)
    made_dirs: set[Path] = set()
    for rel_path, render in site.page_table().items():
        if not rel_path.startswith("runs/"):
            write_page(out_dir, rel_path, render(), made_dirs)
    for name, run in site.run_pages.items():  # each run's events are read once for its page, logs and reports
        detail = dm.load_run_detail(model, run)
        write_page(out_dir, f"runs/{name}/index.html", site.run_page(run, detail), made_dirs)
        for rel_path, render in site.run_subpages(run, detail).items():
            write_page(out_dir, rel_path, render(), made_dirs)
    return out_dir / "index.html"
