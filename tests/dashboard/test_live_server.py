"""The live server over HTTP (no browser): pages re-read per request, the state endpoint changes with the run,
unknown or traversing paths are 404s."""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from harness.dashboard import make_server

from .log_fixtures import attempt_summary, gate, write_run


@pytest.fixture
def live(demo_repo):
    repo, ids = demo_repo
    server = make_server(repo, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", repo, ids
    server.shutdown()
    server.server_close()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_pages_and_static_files(live):
    base, _, ids = live
    status, html = get(base + "/")
    assert status == 200 and 'data-live="1"' in html and ids["good"] in html
    status, html = get(f"{base}/runs/{ids['good']}/log-A1-C1-build.html")
    assert status == 200 and "expected &#39;;&#39;" in html
    status, html = get(f"{base}/runs/{ids['good']}/report-A2-C1-parity.html")
    assert status == 200 and "mismatch at [1, 2]" in html
    assert get(base + "/static/dashboard.js")[0] == 200


def test_unknown_and_traversing_paths_are_not_found(live):
    base, _, ids = live
    for path in ("/nope.html", "/../../etc/passwd", "/static/../data_model.py", "/%2e%2e/%2e%2e/etc/passwd",
                 f"/runs/{ids['good']}/log-A9-C9-build.html", "/runs/../../harness/dashboard/__init__.py"):
        status, body = get(base + path)
        assert status == 404, path
        assert "root:" not in body


def test_state_signature_follows_the_run_and_new_runs_appear(live):
    base, repo, ids = live
    url = f"{base}/api/state.json?watch={ids['good']}"
    before = json.loads(get(url)[1])["signature"]
    assert json.loads(get(url)[1])["signature"] == before  # stable while nothing changes
    all_before = json.loads(get(base + "/api/state.json?watch=*")[1])["signature"]
    with open(repo / "logs/runs" / ids["good"] / "events.jsonl", "a") as fh:
        fh.write('{"ts": "x", "type": "prompt", "attempt": 3, "candidate": 1}\n')
    assert json.loads(get(url)[1])["signature"] != before
    run_dir = repo / "logs/runs/20990101-000000-new-run"
    write_run(repo, run_dir.name, "02-ops", ended=False,
              attempts=[attempt_summary(1, [gate("build", "fail", "still building", run_dir=run_dir, repo=repo,
                                                 log="compiling...\n")])])
    assert json.loads(get(base + "/api/state.json")[1])["signature"] != all_before
    status, html = get(base + "/")
    assert status == 200 and "20990101-000000-new-run" in html and "status-running" in html
    status, html = get(f"{base}/runs/{run_dir.name}/index.html")
    assert status == 200 and "still building" in html


def test_live_server_on_an_empty_repository(tmp_path):
    server = make_server(tmp_path, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        status, html = get(base + "/index.html")
        assert status == 200 and "No runs recorded" in html and "logs/ledger/ is missing" in html
        assert get(base + "/perf.html")[0] == 200 and get(base + "/reports.html")[0] == 200
        assert json.loads(get(base + "/api/state.json")[1])["signature"]
    finally:
        server.shutdown()
        server.server_close()


def test_full_log_of_a_cut_log_is_served_and_nothing_else(tmp_path):
    from harness.dashboard import data_model as dm

    repo = tmp_path / "repo"
    run_dir = repo / "logs/runs/big"
    huge = "first\n" + "z" * (dm.LOG_TRUNCATE_BYTES + 10) + "\nlast\n"
    write_run(repo, "big", "s", attempts=[attempt_summary(1, [gate("build", "fail", run_dir=run_dir, repo=repo,
                                                                     log=huge),
                                                                gate("pytest", "fail", run_dir=run_dir, repo=repo,
                                                                     log="small\n")])])
    server = make_server(repo, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/runs/big"
        status, page = get(base + "/log-A1-C1-build.html")
        assert status == 200 and 'href="raw-A1-C1-build.log"' in page
        status, body = get(base + "/raw-A1-C1-build.log")
        assert status == 200 and body == huge
        assert get(base + "/raw-A1-C1-pytest.log")[0] == 404  # shown in full on its page already
        assert get(base + "/raw-..%2Frun.json.log")[0] == 404
        assert get(base + "/gates/A1-C1-build.log")[0] == 404
    finally:
        server.shutdown()
        server.server_close()
