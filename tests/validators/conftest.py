"""Shared fixture of the gate tests: a GateContext factory with fresh work and cache dirs per context."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.interfaces import GateContext, Spec
from harness.secrets import scrubbed_env


@pytest.fixture
def make_ctx(tmp_path):
    """make_ctx(candidate_root, trusted_root=None, **fields) -> GateContext with fresh work and cache dirs."""
    counter = {"n": 0}

    def factory(candidate_root: Path, trusted_root: Path | None = None, cache_dir: Path | None = None,
                protected: list[str] | None = None, **fields) -> GateContext:
        counter["n"] += 1
        spec = Spec(id="00-test", title="test", path=tmp_path / "spec.md", protected=protected or [])
        return GateContext(spec=spec, candidate_root=Path(candidate_root),
                           trusted_root=Path(trusted_root or candidate_root),
                           work_dir=tmp_path / f"work{counter['n']}", cache_dir=Path(cache_dir or tmp_path / "cache"),
                           env=scrubbed_env(dict(os.environ)), **fields)

    return factory
