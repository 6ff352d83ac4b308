"""Git plumbing used by the ledger and the worktrees: tree hashes, tree diffs, materialising a tree.

Note [Tree hash of the runtime]: the identity of a runtime state is the git tree hash of ``generated_runtime/``
as ``git add -A`` would record it inside a repository-shaped root (so the repository's .gitignore applies, as it
does for commits). It is computed with a throw-away index (GIT_INDEX_FILE), so the user's index is never touched;
the objects it writes land in the repository's object store, which is what lets us later diff and archive them.
An absent or empty folder has git's empty tree hash.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from harness.interfaces import HarnessError

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
RUNTIME = "generated_runtime"
_IDENT = ["-c", "user.name=vt-agent", "-c", "user.email=vt-agent@localhost", "-c", "commit.gpgsign=false"]


def git(root: Path, *args: str, env: dict | None = None, input: bytes | None = None, check: bool = True) -> str:
    proc = subprocess.run(["git", *_IDENT, "-C", str(root), *args], capture_output=True, input=input,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise HarnessError(f"git {' '.join(args[:3])} failed in {root}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout.decode(errors="replace")


def runtime_tree_hash(root: Path, folder: str = RUNTIME) -> str:
    """Tree hash of root/folder (root is a git repository or worktree)."""
    if not (root / folder).is_dir() or not any((root / folder).iterdir()):
        return EMPTY_TREE
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git(root, "add", "-A", "--", folder, env=env)
        out = git(root, "write-tree", f"--prefix={folder}/", env=env, check=False).strip()
    return out if len(out) == 40 else EMPTY_TREE


def scoped_tree_hash(root: Path, base: str, include, folder: str = RUNTIME) -> tuple[str, list[str]]:
    """The tree of root/folder restricted to one spec: base, with the working tree's version of every changed
    runtime-relative path for which include(path) is true (additions, edits and deletions). Returns the tree and
    the changed paths left out (pending for another spec)."""
    full = runtime_tree_hash(root, folder)
    changed = diff_names(root, base, full) if full != base else []
    taken = [p for p in changed if include(p)]
    left = [p for p in changed if not include(p)]
    if not left:
        return full, []
    if not taken:
        return base, left
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if base != EMPTY_TREE:
            git(root, "read-tree", f"--prefix={folder}/", base, env=env)
        for i in range(0, len(taken), 200):
            git(root, "add", "-A", "--", *[f"{folder}/{p}" for p in taken[i:i + 200]], env=env)
        out = git(root, "write-tree", f"--prefix={folder}/", env=env).strip()
    return out, left


def has_object(root: Path, obj: str) -> bool:
    return subprocess.run(["git", "-C", str(root), "cat-file", "-e", obj], capture_output=True).returncode == 0


def tree_diff(root: Path, parent: str, child: str, folder: str = RUNTIME) -> str:
    """A binary-safe unified diff from tree parent to tree child, paths prefixed with folder/."""
    return git(root, "diff", "--binary", "--full-index", "--no-renames", f"--src-prefix=a/{folder}/",
               f"--dst-prefix=b/{folder}/", parent, child)


def materialize(root: Path, tree: str, dest_root: Path, folder: str = RUNTIME) -> None:
    """Replace dest_root/folder with the content of tree (an object in root's store)."""
    import shutil

    target = dest_root / folder
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    if tree == EMPTY_TREE:
        return
    archive = subprocess.run(["git", "-C", str(root), "archive", "--format=tar", tree], capture_output=True)
    if archive.returncode != 0:
        raise HarnessError(f"cannot materialise tree {tree}: {archive.stderr.decode(errors='replace').strip()}")
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)


def apply_patch(root: Path, patch: bytes, reverse: bool = False, check_only: bool = False) -> None:
    args = ["apply", "--binary", "--whitespace=nowarn"]
    if reverse:
        args.append("-R")
    if check_only:
        args.append("--check")
    proc = subprocess.run(["git", "-C", str(root), *args, "-"], input=patch, capture_output=True)
    if proc.returncode != 0:
        raise HarnessError(f"patch does not apply in {root}: {proc.stderr.decode(errors='replace').strip()}")


def changed_paths(root: Path, base: str = "HEAD") -> list[str]:
    """Paths that differ between base and root's working files (untracked included), via a temporary index."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git(root, "read-tree", base, env=env)
        git(root, "add", "-A", env=env)
        out = git(root, "diff", "--cached", "--name-only", "--no-renames", "-z", base, env=env)
    return [p for p in out.split("\0") if p]


def worktree_diff(root: Path, base: str = "HEAD", paths: list[str] | None = None) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git(root, "read-tree", base, env=env)
        git(root, "add", "-A", env=env)
        return git(root, "diff", "--cached", "--binary", "--full-index", "--no-renames", base, "--",
                   *(paths or []), env=env)


def diff_names(root: Path, parent: str, child: str) -> list[str]:
    """Runtime-relative paths that differ between two trees."""
    out = git(root, "diff", "--name-only", "--no-renames", "-z", parent, child)
    return [p for p in out.split("\0") if p]


def sync_paths_from_tree(root: Path, tree: str, paths: list[str], dest_root: Path,
                         folder: str = RUNTIME) -> dict[str, bytes | None]:
    """Make dest_root/folder/<path> equal to tree's content for each runtime-relative path (deleting paths the tree
    lacks). Returns the previous contents (None: the file did not exist) so the caller can roll back."""
    backup: dict[str, bytes | None] = {}
    for rel in paths:
        target = dest_root / folder / rel
        backup[rel] = target.read_bytes() if target.is_file() else None
        proc = subprocess.run(["git", "-C", str(root), "cat-file", "blob", f"{tree}:{rel}"], capture_output=True)
        if proc.returncode == 0:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(proc.stdout)
            if git(root, "ls-tree", tree, "--", rel).startswith("100755"):
                target.chmod(0o755)
        elif target.exists():
            target.unlink()
    return backup


def restore_paths(dest_root: Path, backup: dict[str, bytes | None], folder: str = RUNTIME) -> None:
    for rel, data in backup.items():
        target = dest_root / folder / rel
        if data is None:
            target.unlink(missing_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
