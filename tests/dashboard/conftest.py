"""Shared fixtures of the dashboard tests: the repository root on sys.path, a demo repository, the artefact folder
for screenshots (env VT_TEST_ARTIFACTS, default tests/dashboard/_artifacts, git-ignored)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from .log_fixtures import make_demo_repo  # noqa: E402


@pytest.fixture
def demo_repo(tmp_path: Path) -> tuple[Path, dict]:
    repo = tmp_path / "repo"
    return repo, make_demo_repo(repo)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = Path(os.environ.get("VT_TEST_ARTIFACTS") or Path(__file__).parent / "_artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path
