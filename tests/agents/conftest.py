"""Shared fixtures of the agent-backend tests: the repository root on sys.path, a minimal AgentRequest."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from harness.interfaces import AgentRequest, Spec  # noqa: E402


def make_request(worktree: Path | None = None, ask: str = "Implement the spec.", **kw) -> AgentRequest:
    spec = Spec(id="00-test", title="test spec", path=Path("specs/00-test.md"))
    return AgentRequest(spec=spec, system="You are a careful engineer.",
                        messages=[{"role": "user", "content": ask}], worktree=worktree or Path("."), attempt=1, **kw)


@pytest.fixture
def request_factory():
    return make_request
