"""The git tree hash of a folder's files, exactly as git computes it (what the ledger and the verdict cache key on).

Method: a throw-away git directory and index (never the caller's repository), ``git add -A`` with the folder as the
work tree, then ``git write-tree``. So file modes, symlinks and the folder's own ``.gitignore`` files count as git
counts them. User and system git configuration are ignored (a global excludes file must not change a hash).
An empty or missing folder hashes to git's empty tree.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


class TreeHashError(Exception):
    pass


def git_tree_hash(path: Path) -> str:
    path = Path(path)
    if not path.is_dir() or not any(path.iterdir()):
        return EMPTY_TREE
    with tempfile.TemporaryDirectory(prefix="vt-treehash-") as scratch:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(GIT_DIR=os.path.join(scratch, "git"), GIT_WORK_TREE=str(path.resolve()),
                   GIT_INDEX_FILE=os.path.join(scratch, "index"), GIT_CONFIG_NOSYSTEM="1",
                   GIT_CONFIG_GLOBAL=os.devnull, HOME=scratch)
        init_env = {k: v for k, v in env.items() if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}
        _git(["init", "-q", "--bare", env["GIT_DIR"]], init_env, Path(scratch))
        _git(["-c", "core.autocrlf=false", "-c", "core.fileMode=true", "-c", "core.symlinks=true",
              "add", "-A", "--", "."], env, path)
        return _git(["write-tree"], env, path).strip()


def _git(args: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise TreeHashError(f"git {' '.join(args)} failed in {cwd}: {proc.stderr.strip()[:500]}")
    return proc.stdout
