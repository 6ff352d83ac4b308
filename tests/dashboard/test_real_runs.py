"""The dashboards over what the harness really writes: a scripted agent through the real run loop, worktrees,
build and pytest gates and ledger on the toy repository of tests/harness (seconds, no C++), then the static site
and the live server. The reference for every check is the run's own files (run.json, events.jsonl, gate logs,
ledger JSON), read here independently of the dashboard's data model."""
from __future__ import annotations

import json
import os
import shutil
import time
import re
import threading
import urllib.request
from html import unescape
from pathlib import Path

import pytest

from harness.dashboard import build_site, make_server
from harness.runner import Runner, RunOptions
from harness.specs import find_spec
from tests.harness.toy_repo import file_diff, make_toy_repo, toy_runtime_diff


@pytest.fixture(scope="module")
def real_repo(tmp_path_factory) -> tuple[Path, dict]:
    repo = make_toy_repo(tmp_path_factory.mktemp("real") / "repo")
    spec = find_spec(repo, "01-toy")
    first = Runner(repo).run(spec, RunOptions(agent="scripted", progress=False, agent_options={
        "script": [toy_runtime_diff("return a - b"), toy_runtime_diff("return a + b")]}))
    assert first.status == "accepted", first.reason
    evil = file_diff("generated_runtime/tests/py/test_other.py", "def test_x():\n    assert True\n")
    second = Runner(repo).run(spec, RunOptions(agent="scripted", progress=False, nop_check=False, max_attempts=1,
                                               agent_options={"script": [evil]}))
    assert second.status == "rejected", second.reason
    return repo, {"accepted": Path(first.run_dir), "rejected": Path(second.run_dir)}


def text_of(html: str) -> str:
    """What a person reads: tags dropped, entities decoded, whitespace collapsed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def test_static_site_over_real_runs(real_repo, tmp_path):
    repo, runs = real_repo
    site = build_site(repo, tmp_path / "site").parent
    accepted, rejected = runs["accepted"], runs["rejected"]
    summary = json.loads((accepted / "run.json").read_text())
    entry = json.loads(next((repo / "logs/ledger").glob("0001-*.json")).read_text())

    overview = (site / "index.html").read_text()
    assert 'data-spec="01-toy" data-state="accepted"' in overview
    assert f'<tr data-spec="01-toy" data-agent="{entry["agent"]}" data-status="accepted">' in overview
    assert overview.count('class="timeline-entry"') == 1

    page = (site / f"runs/{accepted.name}/index.html").read_text()
    text = text_of(page)
    assert summary["reason"] and summary["reason"] in text
    assert "failed as expected" in page  # the nop check: the gates fail on the unchanged tree
    assert [a["status"] for a in summary["attempts"]] == ["fail", "pass"]
    for a in summary["attempts"]:
        section = page.split(f'id="attempt-{a["attempt"]}-{a["candidate"]}"')[1].split("</section>")[0]
        assert f'status-{a["status"]}' in section
        for g in a["gates"]:
            assert f'data-gate="{g["name"]}"' in section and f'status-{g["status"]}' in section
    assert "+ return a - b" in text and "+ return a + b" in text  # the proposals, as diffs (whitespace collapsed)

    # the failing pytest gate's log page shows the real log file (the reference is the file itself)
    first = summary["attempts"][0]
    failing = next(g for g in first["gates"] if g["status"] != "pass")
    log_file = repo / failing["log_path"]
    assert log_file.is_file()
    log_page = (site / f"runs/{accepted.name}/log-A1-C{first['candidate']}-{failing['name']}.html").read_text()
    tail = log_file.read_text().strip().splitlines()[-1]
    assert tail and tail in unescape(log_page)

    # a proposal rejected before gating says why
    rejected_summary = json.loads((rejected / "run.json").read_text())
    rejected_page = text_of((site / f"runs/{rejected.name}/index.html").read_text())
    assert rejected_summary["reason"] in rejected_page and "protected" in rejected_page
    ledger_page = text_of((site / "ledger/0001.html").read_text())
    assert "+ return a + b" in ledger_page and entry["message"] in ledger_page

    for path in site.rglob("*.html"):  # every relative link lands on a file of the site
        for href in re.findall(r'href="(?!data:)([^"#?]+)', path.read_text()):
            assert path.parent.joinpath(href).resolve().is_file(), (path, href)


def test_live_server_over_real_runs(real_repo):
    repo, runs = real_repo
    server = make_server(repo, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        name = runs["accepted"].name
        with urllib.request.urlopen(f"{base}/runs/{name}/index.html", timeout=10) as response:
            page = response.read().decode()
        assert "failed as expected" in page and 'data-live="1"' in page
        with urllib.request.urlopen(f"{base}/runs/{name}/log-A0-C0-build.html", timeout=10) as response:
            assert response.status == 200  # the nop check's gate logs are linked too
    finally:
        server.shutdown()
        server.server_close()


def test_a_real_run_cut_short_by_a_crash(real_repo, tmp_path):
    """The accepted run as a crash would have left it: no run.json, events.jsonl cut mid-line in attempt 2."""
    repo, runs = real_repo
    copy = tmp_path / "repo"
    shutil.copytree(repo / "specs", copy / "specs")
    src = runs["accepted"]
    dst = copy / "logs/runs" / src.name
    shutil.copytree(src, dst)
    lines = (dst / "events.jsonl").read_text().splitlines(keepends=True)
    events = [json.loads(line) for line in lines]
    cut = max(i for i, e in enumerate(events) if e["type"] == "gate")  # the last gate of attempt 2
    (dst / "events.jsonl").write_text("".join(lines[:cut]) + lines[cut][:40])
    (dst / "run.json").unlink()
    long_ago = time.time() - 3600
    os.utime(dst / "events.jsonl", (long_ago, long_ago))

    site = build_site(copy, tmp_path / "site").parent
    page = (site / f"runs/{dst.name}/index.html").read_text()
    text = text_of(page)
    assert "status-crashed" in page and "no run_end event" in text and "half-written" in text
    kept = events[:cut]
    for attempt in (1, 2):
        gates = [e for e in kept if e["type"] == "gate" and e.get("attempt") == attempt and not e.get("nop")]
        candidate = gates[0]["candidate"]
        section = page.split(f'id="attempt-{attempt}-{candidate}"')[1].split("</section>")[0]
        assert section.count('class="gate-row"') == len(gates)
        assert "Only in events.jsonl" in section
        end = next((e for e in kept if e["type"] == "attempt_end" and e["attempt"] == attempt), None)
        assert f'status-{end["status"] if end else "unfinished"}' in section
    assert "failed as expected" not in page  # run.json held the nop verdict; the events alone do not say
    assert 'id="nop-check"' in page  # but the nop gates are still shown
