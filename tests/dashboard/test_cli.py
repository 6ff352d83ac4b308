"""The two CLI verbs wired in harness/cli.py: `vt-agent dashboard [--out]` writes the site, `vt-agent serve
[--port]` serves it on 127.0.0.1 until stopped."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, repo: Path, **kw) -> subprocess.Popen | subprocess.CompletedProcess:
    env = {**os.environ, "VT_REPO": str(repo), "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, "-m", "harness.cli", *args]
    if kw.pop("background", False):
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)


def test_dashboard_command_writes_the_site(demo_repo, tmp_path):
    repo, ids = demo_repo
    out = tmp_path / "published"
    done = cli("dashboard", "--out", str(out), "--json", repo=repo)
    assert done.returncode == 0, done.stderr
    index = Path(json.loads(done.stdout)["index"])
    assert index == out / "index.html" and ids["good"] in index.read_text()
    assert (out / f"runs/{ids['good']}/index.html").is_file()


def test_serve_command_serves_until_interrupted(demo_repo):
    repo, ids = demo_repo
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = cli("serve", "--port", str(port), repo=repo, background=True)
    try:
        deadline, page = time.monotonic() + 20, None
        while page is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/runs/{ids['good']}/index.html", timeout=5) as r:
                    page = r.read().decode()
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()
                time.sleep(0.2)
        assert page and 'data-live="1"' in page and "all gates passed on attempt 2" in page
    finally:
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        proc.stdout.close()
        proc.stderr.close()
