"""The live dashboards: the same pages as the static site, rendered per request from the files as they are now.

Policy:
- Every request re-reads the logs (``data_model.load_model``) and renders only the page asked for, so a run in
  progress shows its newest attempts; ``GET /api/state.json?watch=RUN_ID|*`` returns a signature of the watched
  files (sizes and mtimes) that the pages' script polls to reload when it changes.
- URLs map to pages through ``Site.page_table`` and the static folder's file names only; no part of a URL is ever
  used as a file-system path, so nothing outside the site can be read through the server.
- Binds 127.0.0.1 by default: the logs may hold proposals and gate output that are not for the network.
"""
from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import shutil
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from harness.dashboard import data_model as dm
from harness.dashboard.site_builder import PACKAGE_DIR, Site


def _stat_line(path: Path) -> str:
    try:
        st = path.stat()
        return f"{path.name}:{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        return f"{path.name}:-"


def state_signature(repo_root: Path, watch: str) -> str:
    """A digest of what the watched page shows: one run's run.json/events.jsonl, or everything ("*")."""
    runs_dir = repo_root / "logs" / "runs"
    parts: list[str] = []
    if watch and watch != "*":
        run_dir = runs_dir / dm.safe_name(watch)
        parts += [_stat_line(run_dir / "run.json"), _stat_line(run_dir / "events.jsonl")]
    else:
        for folder in (repo_root / "specs", repo_root / "logs" / "ledger"):
            if folder.is_dir():
                parts += [_stat_line(p) for p in sorted(folder.iterdir())]
        if runs_dir.is_dir():
            for run_dir in sorted(runs_dir.iterdir()):
                parts += [run_dir.name, _stat_line(run_dir / "run.json"), _stat_line(run_dir / "events.jsonl")]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def render_path(repo_root: Path, rel_path: str) -> str | None:
    """The page at ``rel_path`` inside the site, rendered from the current files; None if there is no such page."""
    model = dm.load_model(repo_root)
    site = Site(model, live=True)
    pages = site.page_table()
    if rel_path in pages:
        return pages[rel_path]()
    parts = rel_path.split("/")
    if len(parts) == 3 and parts[0] == "runs" and parts[1] in site.run_pages:
        run = site.run_pages[parts[1]]
        sub = site.run_subpages(run, dm.load_run_detail(model, run))
        if rel_path in sub:
            return sub[rel_path]()
    return None


def raw_log_path(repo_root: Path, rel_path: str) -> Path | None:
    """The gate log behind ``runs/RUN/raw-KEY.log``, found through the run's gate records (never the URL)."""
    parts = rel_path.split("/")
    if len(parts) != 3:
        return None
    model = dm.load_model(repo_root)
    site = Site(model, live=True)
    run = site.run_pages.get(parts[1])
    if run is None:
        return None
    return site.run_raw_logs(run, dm.load_run_detail(model, run)).get(rel_path)


def make_handler(repo_root: Path) -> type[BaseHTTPRequestHandler]:
    static_files = {p.name: p for p in (PACKAGE_DIR / "static").iterdir() if p.is_file()}

    class DashboardHandler(BaseHTTPRequestHandler):
        server_version = "vt-agent-dashboard"

        def log_message(self, format: str, *args: object) -> None:  # quiet: the CLI prints the address once
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def _send_file(self, path: Path, content_type: str) -> None:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(size))
                self.send_header("Cache-Control", "no-store")
                self.send_header("X-Content-Type-Options", "nosniff")
                self.end_headers()
                shutil.copyfileobj(fh, self.wfile, 1024 * 1024)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urlsplit(self.path)
            rel_path = url.path.lstrip("/") or "index.html"
            if rel_path.endswith("/"):
                rel_path += "index.html"
            try:
                if rel_path == "api/state.json":
                    watch = parse_qs(url.query).get("watch", ["*"])[0]
                    body = json.dumps({"watch": watch, "signature": state_signature(repo_root, watch)})
                    return self._send(HTTPStatus.OK, body.encode(), "application/json")
                if rel_path.startswith("static/") and rel_path[len("static/"):] in static_files:
                    path = static_files[rel_path[len("static/"):]]
                    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                    return self._send(HTTPStatus.OK, path.read_bytes(), kind + "; charset=utf-8")
                if rel_path.startswith("runs/") and rel_path.endswith(".log"):
                    source = raw_log_path(repo_root, rel_path)
                    if source is not None:
                        return self._send_file(source, "text/plain; charset=utf-8")
                html = render_path(repo_root, rel_path)
            except Exception as exc:  # a page that cannot be rendered says why instead of dropping the connection
                message = f"the dashboard could not render {rel_path}: {type(exc).__name__}: {exc}"
                return self._send(HTTPStatus.INTERNAL_SERVER_ERROR, message.encode(), "text/plain; charset=utf-8")
            if html is None:
                return self._send(HTTPStatus.NOT_FOUND, f"no page {rel_path}".encode(), "text/plain; charset=utf-8")
            self._send(HTTPStatus.OK, html.encode("utf-8"), "text/html; charset=utf-8")

    return DashboardHandler


def make_server(repo_root: Path, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """A server bound to (host, port) (port 0: any free port; see ``server.server_address``), not yet serving."""
    server = ThreadingHTTPServer((host, port), make_handler(Path(repo_root).resolve()))
    server.daemon_threads = True
    return server


def serve(repo_root: Path, port: int, host: str = "127.0.0.1") -> None:
    """Serve the live dashboards until interrupted (blocking)."""
    server = make_server(repo_root, port, host)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
