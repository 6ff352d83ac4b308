"""The real openai and anthropic SDKs, through the whole run loop and CLI, against the fake provider on 127.0.0.1:
a 429 then a malformed diff (fed back), then a good diff accepted; tokens and cost recorded; no key in the logs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.ledger import Ledger
from tests.fakes.fake_llm_server import FakeLLMServer, Reply
from tests.harness.toy_repo import make_toy_repo, toy_runtime_diff

KEY = "sk-e2e-secret-0123456789abcdefghij"


@pytest.mark.parametrize("backend,model", [("openai", "gpt-4.1"), ("anthropic", "claude-sonnet-4-5")])
def test_sdk_agent_through_run_loop(tmp_path: Path, backend: str, model: str):
    repo = make_toy_repo(tmp_path / "repo")
    replies = [Reply.error(429, "slow down", retry_after="0"),
               Reply.answer("```diff\n--- a/generated_runtime/x.py\n+++ b/generated_runtime/x.py\n@@ -1,3 +1,3 @@\n"
                            " nothing\n-here\n+there\n```\n"),
               Reply.answer(toy_runtime_diff("return a + b"), input_tokens=1000, output_tokens=200)]
    with FakeLLMServer(replies) as server:
        env = {**os.environ, "OPENAI_API_KEY": KEY, "ANTHROPIC_API_KEY": KEY}
        base = server.openai_base_url if backend == "openai" else server.url
        r = subprocess.run([sys.executable, "-m", "harness.cli", "run", "01-toy", "--agent", f"{backend}:{model}",
                            "--base-url", base, "--no-nop-check", "--json"], cwd=repo, env=env,
                           capture_output=True, text=True, timeout=300)
        requests = list(server.requests)
    assert r.returncode == 0, (r.stdout, r.stderr)
    out = json.loads(r.stdout)
    assert out["status"] == "accepted" and out["attempts"] == 2
    assert out["usage"]["input_tokens"] >= 1000 and out["usage"]["cost_usd"] > 0
    # the apply failure of attempt 1 reached the prompt of attempt 2
    last_body = json.dumps(requests[-1].body)
    assert "did not apply" in last_body and "generated_runtime/x.py" in last_body
    entry = Ledger(repo).entries()[0]
    assert entry.meta["agent"] == backend and entry.meta["model"] == model
    for f in Path(out["run_dir"]).rglob("*"):
        if f.is_file():
            assert KEY not in f.read_text(errors="replace")
