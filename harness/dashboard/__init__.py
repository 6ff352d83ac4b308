"""Validation dashboards: a static site (``build_site``) and a live server (``serve``) over specs, ledger and runs.

``build_site(repo_root, out_dir) -> out_dir/index.html`` writes a self-contained site that works offline from the
file system; ``serve(repo_root, port, host="127.0.0.1")`` serves the same pages, re-read from the logs on every
request, and the pages reload themselves when the run they show changes. Both only read the repository.
"""
from harness.dashboard.live_server import make_server, serve
from harness.dashboard.site_builder import build_site

__all__ = ["build_site", "make_server", "serve"]
