"""End to end in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven by Playwright opens the
static site from the file system and the live server, clicks overview -> run -> gate log, checks what a person sees,
and saves a screenshot of each page into the artefact folder.

Without Chromium or Playwright these tests FAIL with the fix in the message; set VT_NO_BROWSER=1 to skip them.
"""
from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from harness.dashboard import build_site, make_server

from .log_fixtures import attempt_summary, gate, write_run

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("VT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    if os.environ.get("VT_NO_BROWSER") == "1":
        pytest.skip("VT_NO_BROWSER=1: browser tests skipped on request")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser tests need Playwright: `pip install playwright` (do not run `playwright install`); "
                    "or set VT_NO_BROWSER=1 to skip them", pytrace=False)
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM}: `apt-get install -y chromium chromium-driver` "
                    "(or point VT_CHROMIUM at one); set VT_NO_BROWSER=1 to skip them", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.errors = []
    page.requests = []  # every URL the pages asked for: nothing may leave the file system / the local server
    page.on("request", lambda request: page.requests.append(request.url))
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
    yield page
    context.close()


def shot(page, artifacts_dir: Path, name: str) -> None:
    path = artifacts_dir / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000


def walk_overview_run_log(page, ids: dict, artifacts_dir: Path, prefix: str) -> None:
    """The path a person takes: overview -> the accepted run -> its failed build log -> back -> a report."""
    assert page.locator("h1").inner_text() == "vt-agent: validation dashboards"
    assert page.locator("#summary").inner_text().startswith("5 specs (2 accepted)")
    assert page.locator("svg.depgraph a.spec-node").count() == 6
    assert page.locator('svg.depgraph a[data-spec="04-cuda"]').get_attribute("data-state") == "blocked"
    crashed_row = page.locator("#runs-table tr", has_text=ids["crashed"])
    assert "crashed" in crashed_row.locator(".status").inner_text()
    shot(page, artifacts_dir, f"{prefix}-overview")

    page.locator("#runs-table").get_by_role("link", name=ids["good"]).click()
    page.wait_for_url(f"**/runs/{ids['good']}/**")
    assert page.locator("h1 .status").inner_text() == "accepted"
    assert "all gates passed on attempt 2" in page.locator("#ending").inner_text()
    first = page.locator("#attempt-1-1")
    assert first.locator("h3 .status").inner_text() == "fail"
    build_row = first.locator("tr.gate-row[data-gate=build]")
    assert build_row.locator(".status").inner_text() == "fail"
    assert "expected ';' before '}' token" in build_row.inner_text()
    assert page.locator("#attempt-2-1 .d-add").first.inner_text().startswith("+new")
    shot(page, artifacts_dir, f"{prefix}-run")

    build_row.get_by_role("link", name="full log").click()
    page.wait_for_url("**/log-A1-C1-build.html")
    assert page.locator("h1").inner_text().startswith("Gate log: build")
    assert "error: expected ';'" in page.locator("#log-text").inner_text()
    shot(page, artifacts_dir, f"{prefix}-gate-log")

    page.go_back()
    page.locator("#attempt-2-1 tr.gate-row[data-gate=parity]").get_by_role("link", name="report").click()
    page.wait_for_url("**/report-A2-C1-parity.html")
    first_case = page.locator("#parity-table tbody tr").first
    assert first_case.locator("td").first.inner_text() == "matmul"
    assert first_case.locator(".status").inner_text() == "fail"
    shot(page, artifacts_dir, f"{prefix}-parity-report")


def test_static_site_from_the_file_system(page, demo_repo, tmp_path, artifacts_dir):
    repo, ids = demo_repo
    index = build_site(repo, tmp_path / "site")
    page.goto(index.as_uri())
    walk_overview_run_log(page, ids, artifacts_dir, "static")

    # filters: a query-string link selects, the select narrows the table, both agree
    page.goto(index.as_uri() + "?agent=anthropic#runs")
    assert page.locator("select[name=agent]").input_value() == "anthropic"
    assert page.locator("#runs-table tbody tr:visible").count() == 1
    assert page.locator("#ledger-table tbody tr:visible").count() == 0
    assert page.get_by_text("No ledger entry matches the filters.").is_visible()
    assert not page.get_by_text("No run matches the filters.").is_visible()
    page.locator("select[name=agent]").select_option("")
    page.locator("select[name=status]").select_option("crashed")
    assert page.locator("#runs-table tbody tr:visible").count() == 1
    assert page.locator("#filter-count").inner_text() == "showing 1 of 5 rows"
    assert "status=crashed" in page.url
    shot(page, artifacts_dir, "static-overview-filtered")

    # hostile agent output shows as text and runs nothing
    page.goto((index.parent / f"runs/{ids['hostile']}/index.html").as_uri())
    assert page.evaluate("window.__pwned") is None and "PWNED" not in page.title()
    assert "<script>window.__pwned" in page.locator("#attempt-1-1 .d-add").inner_text()
    page.locator("tr.gate-row[data-gate=build]").get_by_role("link", name="full log").click()
    page.wait_for_url("**/log-A1-C1-build.html")
    assert page.evaluate("window.__pwned") is None
    assert "<img src=x" in page.locator("#log-text").inner_text()
    shot(page, artifacts_dir, "static-hostile-log")

    for name in ("training", "allocator"):
        page.goto((index.parent / f"runs/{ids['good']}/report-A2-C1-{name}.html").as_uri())
        assert page.locator("svg.chart").count() >= 2
        shot(page, artifacts_dir, f"static-{name}-report")
    page.goto((index.parent / "perf.html").as_uri())
    assert "step_time" in page.locator("#perf-table").inner_text()
    shot(page, artifacts_dir, "static-perf")

    # the reports listing filters by gate from a link; the ledger timeline's dots open their entries
    page.goto((index.parent / "reports.html").as_uri() + "?gate=training")
    assert page.locator("select[name=gate]").input_value() == "training"
    visible = page.locator("#reports-table tbody tr:visible")
    assert visible.count() == 1 and visible.first.locator("td").first.inner_text() == "training"
    shot(page, artifacts_dir, "static-reports-filtered")
    page.goto(index.as_uri())
    page.locator('#ledger-timeline a[href="ledger/0001.html"]').click()
    page.wait_for_url("**/ledger/0001.html")
    assert page.locator("h1").inner_text() == "Ledger entry #1: 01-core"
    assert "+line 1" in page.locator("pre.diff").inner_text()
    shot(page, artifacts_dir, "static-ledger-entry")
    assert page.errors == []
    assert page.requests and all(url.startswith(("file://", "data:")) for url in page.requests), page.requests


def test_live_server_updates_a_running_run(page, demo_repo, artifacts_dir):
    repo, ids = demo_repo
    server = make_server(repo, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        page.goto(base + "/")
        assert page.locator("#live-badge").is_visible()
        walk_overview_run_log(page, ids, artifacts_dir, "live")

        run_id = "20990101-000000-02-ops-live01"
        run_dir = repo / "logs/runs" / run_id
        write_run(repo, run_id, "02-ops", ended=False, attempts=[])
        page.goto(f"{base}/runs/{run_id}/index.html")
        assert page.locator("h1 .status").inner_text() == "running"
        page.wait_for_function("document.getElementById('live-badge').textContent.includes('checked')")
        shot(page, artifacts_dir, "live-run-in-progress")

        # the run goes on: an attempt with a failing gate lands, then the run ends; the open page follows
        gates = [gate("build", "fail", "linker error: undefined vbt::add", run_dir=run_dir, repo=repo,
                      log="ld: undefined reference\n")]
        summary = json.loads((run_dir / "run.json").read_text())
        summary.update(status="rejected", reason="budget of 1 attempt spent", attempts=[attempt_summary(1, gates)])
        (run_dir / "run.json").write_text(json.dumps(summary))
        with open(run_dir / "events.jsonl", "a") as fh:
            fh.write(json.dumps({"ts": "t", "type": "run_end", "attempt": 1, "candidate": 1}) + "\n")
        page.locator("h1 .status", has_text="rejected").wait_for(timeout=10_000)
        assert "linker error: undefined vbt::add" in page.locator("#attempt-1-1").inner_text()
        assert "budget of 1 attempt spent" in page.locator("#ending").inner_text()
        shot(page, artifacts_dir, "live-run-ended")
        page.locator("#attempt-1-1").get_by_role("link", name="full log").click()
        assert "ld: undefined reference" in page.locator("#log-text").inner_text()
        shot(page, artifacts_dir, "live-gate-log")
        assert page.errors == []
        assert all(url.startswith((base + "/", "data:")) for url in page.requests), page.requests
    finally:
        server.shutdown()
        server.server_close()
