"""Render the data model into pages: one table of pages used by the static site and the live server alike.

Policy:
- ``page_table(model)`` names every page by its path inside the site and gives a callable that renders it; the
  static build renders them all, the live server renders only the one asked for (data re-read per request).
- Jinja2 autoescaping is on for every template; the only ``Markup`` values are SVG built (and escaped) in
  ``svg_charts``. Agent output (proposals, logs, summaries, feedback) is therefore always shown as text.
- Links are relative (``root`` is the way back to the site root), so the site works from ``file://`` offline.
- Sizes are capped so one bad log cannot blow a page up: logs (``data_model.LOG_TRUNCATE_BYTES``), proposals
  (``DIFF_MAX_LINES``), parity rows and raw JSON (``report_views``), each with a note. A cut log's full file
  ships next to its page as ``raw-KEY.log`` (up to ``RAW_LOG_MAX_BYTES``) and the note links to it.
- The only other ``Markup`` built here is ``status_badge``/``agent_model``, from escaped text.
"""
from __future__ import annotations

import functools
import math
import shutil
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import quote
from pathlib import Path
from typing import Any, Callable

import jinja2
from markupsafe import Markup, escape

from harness.dashboard import data_model as dm
from harness.dashboard import svg_charts as svg
from harness.dashboard.report_views import report_view

PACKAGE_DIR = Path(__file__).resolve().parent
DIFF_MAX_LINES = 20_000
WRITER_BACKLOG = 32
WRITER_THREADS = 1  # one writer thread overlaps file creation with rendering; more only adds GIL contention


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
    text = escape(str(value))
    return Markup(f'<span class="status status-{text}">{text}</span>')


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
        self._templates: dict[str, jinja2.Template] = {}

    def _render(self, template: str, depth: int, watch: str, **context: Any) -> str:
        compiled = self._templates.get(template)
        if compiled is None:
            compiled = self._templates[template] = self.env.get_template(template)
        return compiled.render(
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
        for row in [row for attempt in detail.attempts for row in attempt.gates] + detail.nop_gates:
            if row.log_file:
                pages[f"{base}/log-{row.key}.html"] = lambda row=row: self.log_page(run, row)
            if row.report_file or row.gate.name in dm.REPORT_GATES:
                pages[f"{base}/report-{row.key}.html"] = lambda row=row: self.report_page(run, row)
        return pages

    def run_raw_logs(self, run: dm.RunSummary, detail: dm.RunDetail) -> dict[str, Path]:
        """Full copies of the gate logs that the log pages cut (``raw-KEY.log``), by site path: the static site
        ships them next to the page, the live server streams them; logs above ``RAW_LOG_MAX_BYTES`` are named only."""
        base = f"runs/{run_dir_name(run)}"
        out = {}
        for row in [row for attempt in detail.attempts for row in attempt.gates] + detail.nop_gates:
            if row.log_file and raw_log_shipped(row.log_file):
                out[f"{base}/raw-{row.key}.log"] = row.log_file
        return out

    # -- pages

    def overview(self) -> str:
        m = self.model
        graph = svg.dependency_graph(m.specs, lambda sid: f"index.html?spec={quote(sid, safe='')}#runs")
        spec_ids = sorted({s.id for s in m.specs if s.state != "missing"} | {r.spec_id for r in m.runs}
                          | {e.spec_id for e in m.ledger})
        agents = sorted({r.agent for r in m.runs} | {e.agent for e in m.ledger})
        statuses = sorted({r.status for r in m.runs} | ({"accepted"} if m.ledger else set()))
        return self._render("overview.html.j2", 0, "*", title="Overview", graph=graph, spec_ids=spec_ids,
                            agents=agents, statuses=statuses, ledger=list(reversed(m.ledger)),
                            timeline=self.ledger_timeline())

    def ledger_timeline(self) -> Markup | None:
        """The ledger as dots over time, one lane per spec; green when every recorded gate passed."""
        points = []
        for e in self.model.ledger:
            stamp = dm.parse_time(e.created_at)
            gates = " ".join(f"{g.name}:{g.status}" for g in e.gates) or "no gates recorded"
            label = (f"#{e.seq} {e.spec_id} · {e.agent}/{e.model or 'no model'} · {gates} · "
                     f"{e.usage.input_tokens:,}/{e.usage.output_tokens:,} tokens · {fmt_usage_cost(e.usage)} · "
                     f"{fmt_seconds(e.wall_s)}")
            ok = bool(e.gates) and all(g.status == "pass" for g in e.gates)
            points.append((stamp.timestamp() if stamp else math.nan, e.spec_id, label,
                           svg.STATE_COLOURS["accepted"] if ok else "#e65100", f"ledger/{e.seq:04d}.html"))
        return svg.timeline(points, "ledger timeline (one lane per spec)") if points else None

    def run_page(self, run: dm.RunSummary, detail: dm.RunDetail | None = None) -> str:
        detail = detail or dm.load_run_detail(self.model, run)
        attempts = []
        for attempt in detail.attempts:
            lines, cut = diff_lines(attempt.proposal_text)
            attempts.append({"view": attempt, "diff": lines, "diff_cut": cut})
        report_keys = {row.key for row in [r for a in detail.attempts for r in a.gates] + detail.nop_gates
                       if row.report_file or row.gate.name in dm.REPORT_GATES}
        ledger_entry = next((e for e in self.model.ledger if e.run_id == run.run_id), None)
        return self._render("run.html.j2", 2, run.dir.name, title=f"Run {run.run_id}", run=run, detail=detail,
                            attempts=attempts, report_keys=report_keys, ledger_entry=ledger_entry)

    def log_page(self, run: dm.RunSummary, row: dm.GateRow) -> str:
        log = dm.read_log(row.log_file, self.model.repo_root) if row.log_file else None
        raw = f"raw-{row.key}.log" if log and log.truncated and raw_log_shipped(row.log_file) else None
        return self._render("log.html.j2", 2, run.dir.name, title=f"{row.gate.name} log, {run.run_id}", run=run,
                            row=row, log=log, raw_href=raw)

    def report_page(self, run: dm.RunSummary | None, row: dm.GateRow, depth: int = 2) -> str:
        view = report_view(row.gate.name, row.report_file, self.model.repo_root)
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
        return self._render("perf.html.j2", 0, "*", title="Performance over the ledger", rows=perf_cells(rows, names),
                            names=names, chart=chart, threshold=REGRESSION_THRESHOLD)

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
        listing.sort(key=lambda x: (x["run"].started_at, x["run"].run_id, x["attempt"]), reverse=True)
        listing.sort(key=lambda x: x["gate"].name)  # stable: per gate, newest run first
        return self._render("reports.html.j2", 0, "*", title="Gate reports", listing=listing,
                            gate_names=sorted({x["gate"].name for x in listing}),
                            spec_ids=sorted({x["run"].spec_id for x in listing}),
                            agents=sorted({x["run"].agent for x in listing}),
                            statuses=sorted({x["gate"].status for x in listing}))


RAW_LOG_MAX_BYTES = 512 * 1024 * 1024  # a cut log up to this size is shipped in full next to its page


def raw_log_shipped(path: Path) -> bool:
    try:
        size = path.stat().st_size
    except OSError:
        return False
    return dm.LOG_TRUNCATE_BYTES < size <= RAW_LOG_MAX_BYTES


REGRESSION_THRESHOLD = 1.10  # a ratio this many times the previous entry's for the same measure is flagged


def perf_cells(rows: list[tuple[dm.LedgerEntry, dict[str, float]]], names: list[str]) -> list[dict[str, Any]]:
    """Per ledger entry, per measure: the ratio and, against the previous entry that measured it, the change; a
    rise past ``REGRESSION_THRESHOLD`` is a regression, flagged at the entry (the diff) that caused it."""
    previous: dict[str, tuple[int, float]] = {}
    out = []
    for entry, ratios in rows:
        cells = []
        for name in names:
            value = ratios.get(name)
            before = previous.get(name)
            regressed = bool(value is not None and before and before[1] > 0 and value > before[1] * REGRESSION_THRESHOLD)
            cells.append({"value": value, "before": before, "regressed": regressed})
            if value is not None:
                previous[name] = (entry.seq, value)
        out.append({"entry": entry, "cells": cells, "regressed": any(c["regressed"] for c in cells)})
    return out


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
    """Build the static dashboards of ``repo_root`` into ``out_dir``; returns the overview's index.html.

    Pages are rendered in this thread and written by a writer thread (one job per run folder, at most
    ``WRITER_BACKLOG`` jobs pending so memory stays bounded), so slow file creation on a busy disk overlaps with
    rendering. A write error is raised here."""
    repo_root, out_dir = Path(repo_root), Path(out_dir)
    model = dm.load_model(repo_root)
    site = Site(model, live=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    copy_static(out_dir)
    with ThreadPoolExecutor(max_workers=WRITER_THREADS) as pool:
        pending: deque[Future] = deque()

        def submit(pages: list[tuple[str, str]]) -> None:
            pending.append(pool.submit(_write_pages, out_dir, pages))
            while len(pending) > WRITER_BACKLOG:
                pending.popleft().result()

        submit([(rel, render()) for rel, render in site.page_table().items() if not rel.startswith("runs/")])
        for name, run in site.run_pages.items():  # each run's events are read once for its page, logs and reports
            detail = dm.load_run_detail(model, run)
            pages = [(f"runs/{name}/index.html", site.run_page(run, detail))]
            pages += [(rel, render()) for rel, render in site.run_subpages(run, detail).items()]
            pages += [(rel, source) for rel, source in site.run_raw_logs(run, detail).items()]
            submit(pages)
        while pending:
            pending.popleft().result()
    return out_dir / "index.html"


def _write_pages(out_dir: Path, pages: list[tuple[str, str | Path]]) -> None:
    """Write rendered pages (str) and copy full logs (Path) into the site."""
    made_dirs: set[Path] = set()
    for rel_path, content in pages:
        if isinstance(content, Path):
            (out_dir / rel_path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(content, out_dir / rel_path)
        else:
            write_page(out_dir, rel_path, content, made_dirs)
