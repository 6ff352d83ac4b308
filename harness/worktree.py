"""Candidate worktrees: one git worktree per candidate slot, re-created for each attempt at the same path.

Policy: slot N lives at ``.vt/worktrees/slot-N`` of the state repository (ignored by git) so that the persistent
build folder of that slot (``.vt/cache/slot-N``) keeps valid absolute paths between attempts and a one-file change
rebuilds fast. Each attempt starts from a detached worktree at HEAD whose generated_runtime/ is replaced by the
base tree (the ledger's head, or the state a recorded proposal was made on) and committed, so that
"what the agent changed" is exactly ``git diff`` against the worktree's HEAD. Worktrees are removed on every exit
path (including Ctrl-C) by ``Slot.release``.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import git as gitpython

from harness import gitops


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
        gitops.materialize(tree_source or self.repo_root, base_tree, self.path)
        gitops.git(self.path, "add", "-A", "--", gitops.RUNTIME)
        gitops.git(self.path, "commit", "-q", "--allow-empty", "--no-verify", "-m", f"vt-agent base {base_tree}")
        return self.path

    def release(self) -> None:
        repo = gitpython.Repo(self.repo_root)
        if self.path.exists():
            try:
                repo.git.worktree("remove", "--force", str(self.path))
            except gitpython.GitCommandError:
                shutil.rmtree(self.path, ignore_errors=True)
        try:
            repo.git.worktree("prune")
        except gitpython.GitCommandError:
            pass
