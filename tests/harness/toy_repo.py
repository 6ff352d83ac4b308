"""A toy vt-agent repository for end-to-end tests of the harness: a spec whose runtime is a tiny pure-Python
`vibetensor` package (built by setuptools through the real build gate, tested by the real pytest gate), so a whole
run (agent -> worktree -> gates -> ledger) takes seconds instead of a C++ build."""
from __future__ import annotations

import subprocess
import textwrap
import time
from typing import Callable
from pathlib import Path

SPEC = """---
id: 01-toy
title: A toy runtime with an add function
paths: ["generated_runtime/**"]
protected: ["generated_runtime/tests/**"]
gates: [build, pytest]
budget: {max_attempts: 3}
---
Write `vibetensor.add(a, b)` returning a + b.
"""

ACCEPTANCE = """from vibetensor import add


def test_add():
    assert add(2, 3) == 5
    assert add(-1, 1) == 0
"""

PYPROJECT = """[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "vibetensor"
version = "0.0.1"

[tool.setuptools]
packages = ["vibetensor"]
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(root), *args],
                          capture_output=True, text=True, check=True).stdout


def make_toy_repo(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    (root / "specs").mkdir()
    (root / "specs" / "01-toy.md").write_text(SPEC)
    tests = root / "generated_runtime" / "tests" / "py"
    tests.mkdir(parents=True)
    (tests / "test_toy.py").write_text(ACCEPTANCE)
    (root / ".gitignore").write_text(".vt/\nlogs/runs/*/gates/\nlogs/replays/\n__pycache__/\n*.egg-info/\nbuild/\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "toy repo")
    return root


def file_diff(path: str, text: str) -> str:
    """A unified diff creating path (repository-relative) with text."""
    lines = text.splitlines()
    body = "".join(f"+{l}\n" for l in lines)
    return f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{len(lines)} @@\n{body}"


def toy_runtime_diff(add_body: str = "return a + b", prelude: str = "") -> str:
    init = textwrap.dedent(f'''\
        """Toy runtime."""
        {prelude}


        def add(a, b):
            {add_body}
        ''')
    return ("```diff\n" + file_diff("generated_runtime/pyproject.toml", PYPROJECT)
            + file_diff("generated_runtime/vibetensor/__init__.py", init) + "```\n")


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen, what: str, timeout: float = 120,
               every: float = 0.2) -> None:
    """Polls ``ready()`` until it is true; on timeout kills ``proc`` and fails the test with ``what``."""
    import pytest

    deadline = time.time() + timeout
    while time.time() < deadline:
        if ready():
            return
        time.sleep(every)
    proc.kill()
    pytest.fail(what)
