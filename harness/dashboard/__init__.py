"""Validation dashboards: a static site (``build_site``) and a live server (``serve``) over specs, ledger and runs.

``build_site(repo_root, out_dir) -> out_dir/index.html`` writes a self-contained site that works offline from the
file system; ``serve(repo_root, port, host="127.0.0.1")`` serves the same pages, re-read from the logs on every
request, and the pages reload themselves when the run they show changes. Both only read the repository.

Modules: ``data_model`` (specs, ledger and run logs -> plain data; never raises on bad input), ``report_views``
(gate reports -> page data: parity table, training curves, allocator charts, perf ratios; says what is missing),
``svg_charts`` (inline SVG: dependency graph, ledger timeline, line/bar charts), ``site_builder`` (Jinja2 pages,
the static build), ``live_server`` (the same pages over HTTP). Pages (relative links, so every page is linkable
and the site can be moved or published as a CI artefact):
  index.html (specs graph, ledger timeline and table, runs, totals per agent/model; filters ?spec= ?agent=
  ?status=), perf.html, reports.html (?gate= ?spec= ?agent= ?status=), ledger/NNNN.html,
  runs/RUN/index.html (#attempt-A-C anchors), runs/RUN/log-A<a>-C<c>-<gate>.html (+ raw-*.log for cut logs),
  runs/RUN/report-A<a>-C<c>-<gate>.html.
"""
from harness.dashboard.live_server import make_server, serve
from harness.dashboard.site_builder import build_site

__all__ = ["build_site", "make_server", "serve"]
