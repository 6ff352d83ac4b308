"""Prompt rendering: every prompt the harness sends lives in harness/templates/*.j2 (Jinja2), not in code."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import jinja2

from harness.interfaces import GateResult, Spec

_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                          undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
MAX_CONTEXT_CHARS = 60_000


def _runtime_files(worktree: Path) -> list[str]:
    rt = worktree / "generated_runtime"
    if not rt.is_dir():
        return []
    return sorted(str(p.relative_to(worktree)) for p in rt.rglob("*") if p.is_file() and ".git" not in p.parts)


def render_system(spec: Spec) -> str:
    return _ENV.get_template("system.md.j2").render(spec=spec, gate_names=[g.name for g in spec.gates])


def render_task(spec: Spec, worktree: Path, base_tree: str) -> str:
    files = _runtime_files(worktree)
    context: list[tuple[str, str]] = []
    budget = MAX_CONTEXT_CHARS
    for f in files:  # small text files first-come, within a character budget
        p = worktree / f
        try:
            text = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if len(text) <= budget and len(text) < 20_000:
            context.append((f, text))
            budget -= len(text)
    return _ENV.get_template("task.md.j2").render(spec=spec, base_tree=base_tree, files=files[:400],
                                                  context_files=context)


def render_feedback(attempt: int, gates: list[GateResult], rejected: str = "", apply_feedback: str = "",
                    repeated: bool = False) -> str:
    return _ENV.get_template("feedback.md.j2").render(attempt=attempt, gates=gates, rejected=rejected,
                                                      apply_feedback=apply_feedback, repeated=repeated)


def digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(str(p).encode())
        h.update(b"\0")
    return "sha256:" + h.hexdigest()
