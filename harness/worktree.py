"""Candidate worktrees: one git worktree per candidate slot, re-created for each attempt at the same path.

Policy: slot N lives at ``.vt/worktrees/slot-N`` of the state repository (ignored by git) so that the persistent
build folder of that slot (``.vt/cache/slot-N``) keeps valid absolute paths between attempts and a one-file change
rebuilds fast. Each attempt starts from a detached worktree at HEAD whose generated_runtime/ is replaced by the
base tree (the ledger's head, or the state a recorded proposal was made on) and committed, so that
"what the agent changed" is exactly ``git diff`` against the worktree's HEAD. Worktrees are removed on every exit
path (including Ctrl-C) by ``Slot.release`` (moved out of ``.vt/worktrees`` at once, deleted in the background).
"""
from __future__ import annotations

import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import git as gitpython

from harness import gitops
from harness.interfaces import HarnessError


@dataclass
class Slot:
    repo_root: Path
    index: int

    @property
    def path(self) -> Path:
        return self.repo_root / ".vt" / "worktrees" / f"slot-{self.index}"

    @property
    def cache_dir(self) -> Path:
        d = self.repo_root / ".vt" / "cache" / f"slot-{self.index}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def prepare(self, base_tree: str, tree_source: Path | None = None) -> Path:
        """Fresh worktree at self.path with generated_runtime/ = base_tree (an object in tree_source's store,
        default the repository) committed as HEAD."""
        self.release()
        repo = gitpython.Repo(self.repo_root)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repo.git.worktree("add", "--detach", "--force", str(self.path), "HEAD")
        if tree_source is None and self._head_runtime_tree() == base_tree:
            return self.path  # the checkout already is the base (the usual case: ledger head == committed runtime)
        gitops.materialize(tree_source or self.repo_root, base_tree, self.path)
        gitops.git(self.path, "add", "-A", "--", gitops.RUNTIME)
        gitops.git(self.path, "commit", "-q", "--allow-empty", "--no-verify", "-m", f"vt-agent base {base_tree}")
        return self.path

    def _head_runtime_tree(self) -> str | None:
        try:
            return gitops.git(self.path, "rev-parse", f"HEAD:{gitops.RUNTIME}").strip()
        except HarnessError:  # no runtime folder at HEAD (a fresh repository): materialise as usual
            return None

    def release(self) -> None:
        """Remove the worktree. Deleting thousands of files costs about a second, which every command would wait
        for; so the folder is renamed into ``.vt/trash`` (instant, same file system), git forgets the worktree
        (``prune``), and a detached ``rm -rf`` deletes the trash in the background. Leftovers of a killed
        background delete are removed by the next release."""
        repo = gitpython.Repo(self.repo_root)
        trash_root = self.repo_root / ".vt" / "trash"
        if self.path.exists():
            trash_root.mkdir(parents=True, exist_ok=True)
            try:
                self.path.rename(trash_root / f"slot-{self.index}-{uuid.uuid4().hex[:12]}")
            except OSError:
                shutil.rmtree(self.path, ignore_errors=True)
        try:
            repo.git.worktree("prune")
        except gitpython.GitCommandError:
            pass
        if trash_root.is_dir() and any(trash_root.iterdir()):
            subprocess.Popen(["rm", "-rf", "--", *[p.name for p in trash_root.iterdir()]], cwd=trash_root,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
