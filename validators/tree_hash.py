"""The git tree hash of a folder's files, exactly as git computes it (what the ledger and the verdict cache key on).

Method: a git directory of our own (never the caller's repository) with a throw-away index, ``git add -A`` with the
folder as the work tree, then ``git write-tree``. So file modes, symlinks and the folder's own ``.gitignore`` files
count as git counts them. User and system git configuration are ignored (a global excludes file must not change a
hash). An empty or missing folder hashes to git's empty tree.
The object store is shared between calls (``<tmp>/vt-treehash-<uid>/git``): blobs already there are not written
again, and nothing has to be deleted afterwards, which was most of the cost of hashing a runtime tree. The hash
comes from the index that ``git add`` fills from the files' contents, so stale or tampered objects in the store
cannot change it; deleting the store is always safe.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


class TreeHashError(Exception):
    pass


def _store() -> str:
    root = os.path.join(tempfile.gettempdir(), f"vt-treehash-{os.getuid()}")
    os.makedirs(root, mode=0o700, exist_ok=True)
    return os.path.join(root, "git")


def git_tree_hash(path: Path) -> str:
    path = Path(path)
    if not path.is_dir() or not any(path.iterdir()):
        return EMPTY_TREE
    git_dir = _store()
    fd, index = tempfile.mkstemp(prefix="vt-treehash-index-")
    os.close(fd)
    os.unlink(index)  # git creates it; an empty file is not a valid index
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(GIT_DIR=git_dir, GIT_WORK_TREE=str(path.resolve()), GIT_INDEX_FILE=index,
                   GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, HOME=os.path.dirname(git_dir))
        if not os.path.isfile(os.path.join(git_dir, "HEAD")):
            init_env = {k: v for k, v in env.items() if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}
            _git(["init", "-q", "--bare", git_dir], init_env, Path(os.path.dirname(git_dir)))
        _git(["-c", "core.autocrlf=false", "-c", "core.fileMode=true", "-c", "core.symlinks=true",
              "-c", "gc.auto=0", "add", "-A", "--", "."], env, path)
        return _git(["write-tree"], env, path).strip()
    finally:
        for leftover in (index, index + ".lock"):
            if os.path.exists(leftover):
                os.unlink(leftover)


def _git(args: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise TreeHashError(f"git {' '.join(args)} failed in {cwd}: {proc.stderr.strip()[:500]}")
    return proc.stdout
