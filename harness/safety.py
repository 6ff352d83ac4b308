"""The trust boundary for proposals: which paths a candidate may change.

A proposal is rejected, with the reason, when any path it touches (before applying: the paths named in the diff or
edit blocks; after applying: every path that actually changed in the worktree, which catches command agents):
- escapes the tree: absolute, contains '..', or is (or goes through) a symlink whose target leaves the tree;
- lies under a trusted folder: harness/, validators/, specs/, logs/, .ci/, .git/;
- matches the spec's protected globs (acceptance tests and fixtures);
- is not inside the spec's allowed ``paths`` globs;
- has a name that can change how tests or Python start regardless of the code under test: conftest.py,
  sitecustomize.py, usercustomize.py, *.pth, pytest.ini/tox.ini/setup.cfg/pyproject with pytest config is allowed
  only where the spec's paths allow it and the gates use their own configuration anyway.
"""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from harness.interfaces import ProposalRejected, Spec
from harness.specs import path_matches

TRUSTED_DIRS = ("harness", "validators", "specs", "logs", ".ci", ".git", ".vt")
FORBIDDEN_NAMES = {"conftest.py", "sitecustomize.py", "usercustomize.py"}


def path_problem(path: str, spec: Spec, root: Path | None = None) -> str | None:
    p = PurePosixPath(path)
    if path.startswith("/") or p.is_absolute() or (len(path) > 1 and path[1] == ":"):
        return f"{path}: absolute paths are not allowed"
    if ".." in p.parts:
        return f"{path}: '..' escapes the tree"
    if not p.parts:
        return f"{path!r}: empty path"
    if p.parts[0] in TRUSTED_DIRS:
        return f"{path}: {p.parts[0]}/ is trusted and cannot be changed by a proposal"
    if p.name in FORBIDDEN_NAMES or p.name.endswith(".pth"):
        return f"{path}: {p.name} could change how tests run; such files are not accepted"
    if path_matches(path, spec.protected):
        return f"{path}: protected by spec {spec.id} (acceptance tests and fixtures cannot be changed)"
    if not path_matches(path, spec.paths):
        return f"{path}: outside the paths spec {spec.id} allows ({', '.join(spec.paths)})"
    if root is not None:
        real_root = os.path.realpath(root)
        cur = Path(root)
        for part in p.parts:
            cur = cur / part
            if cur.is_symlink():
                target = os.path.realpath(cur)
                if not (target == real_root or target.startswith(real_root + os.sep)):
                    return f"{path}: symlink {cur.relative_to(root)} points outside the tree ({os.readlink(cur)})"
    return None


def vet_paths(paths: list[str], spec: Spec, root: Path | None = None) -> None:
    problems = [msg for msg in (path_problem(p, spec, root) for p in paths) if msg]
    if problems:
        raise ProposalRejected("proposal rejected:\n  " + "\n  ".join(problems[:20]))
