"""Candidate worktrees: one git worktree per candidate slot, re-created for each attempt at the same path.

Policy: slot N lives at ``.vt/worktrees/slot-N`` of the state repository (ignored by git) so that the persistent
build folder of that slot (``.vt/cache/slot-N``) keeps valid absolute paths between attempts and a one-file change
rebuilds fast. Each attempt starts from a detached worktree at HEAD whose generated_runtime/ is replaced by the
base tree (the ledger's head, or the state a recorded proposal was made on) and committed, so that
"what the agent changed" is exactly ``git diff`` against the worktree's HEAD. Worktrees are removed on every exit
path (including Ctrl-C) by ``Slot.release`` (moved out of ``.vt/worktrees`` at once, deleted in the background);
``discard`` does the same for a run's gate work folders (``.vt/work/RUN_ID``).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from harness import gitops
from harness.interfaces import HarnessError


COPY_MANIFEST = "copied-runtime.json"  # Note [Copy times]
# `git worktree add` and `git worktree prune` of one repository must not overlap: a prune while another slot's add is
# half done deletes that worktree's metadata, and the add fails (parallel candidates are threads of one process).
_WORKTREE_LOCK = threading.Lock()


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
        (self.cache_dir / COPY_MANIFEST).unlink(missing_ok=True)  # Note [Copy times]: the build gets other files
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _WORKTREE_LOCK:
            gitops.git(self.repo_root, "worktree", "add", "--detach", "--force", str(self.path), "HEAD")
        if tree_source is None and self._head_runtime_tree() == base_tree:
            return self.path  # the checkout already is the base (the usual case: ledger head == committed runtime)
        gitops.materialize(tree_source or self.repo_root, base_tree, self.path)
        gitops.git(self.path, "add", "-A", "--", gitops.RUNTIME)
        gitops.git(self.path, "commit", "-q", "--allow-empty", "--no-verify", "-m", f"vt-agent base {base_tree}")
        return self.path

    def prepare_copy(self, source_root: Path) -> Path:
        """A plain folder at self.path (not a git worktree) holding a copy of source_root's generated_runtime/ as
        git sees it: tracked and untracked files, uncommitted changes included, ignored files left out (symlinks
        copied as links), file modes kept, file times as Note [Copy times] says.

        Note [Validate gates a plain copy]: ``validate`` gates a working tree as it is; nothing diffs, commits or
        vets that tree, so the git worktree that ``prepare`` makes (a checkout of the whole repository, then its
        runtime replaced and committed) would only be thrown away: it was most of validate's own time. The gates
        see exactly the same generated_runtime/ (they read nothing else of the candidate), at the same path.

        Note [Copy times]: the slot's build folder persists, and ninja rebuilds a file only when it is *newer* than
        its outputs. Copying with the source's times (as validate did) let a file whose content changed but whose
        time is older than the last build (e.g. the working tree's version after a run built another one in this
        slot) be skipped: a stale object, and a verdict on code that is not there. So each copied file gets the
        time this slot gave the same content last time (``copied-runtime.json`` in the slot's cache: path ->
        [sha256, time]), and the current time when its content is new to the slot; ``prepare`` (whose checkout
        builds other files here) deletes that record, so the next copy is all new (ccache keeps it cheap). An
        unchanged file is thus never rebuilt, and a changed one always is."""
        import hashlib
        import json
        import time

        self.release()
        record_path = self.cache_dir / COPY_MANIFEST
        try:
            last = json.loads(record_path.read_text())
        except (OSError, ValueError):
            last = {}
        record_path.unlink(missing_ok=True)  # until this copy is complete, no record is valid
        self.path.mkdir(parents=True)
        now = time.time_ns()
        src_root, dst_root, made, record = str(source_root), str(self.path), set(), {}
        for rel in runtime_files(source_root):  # (plain strings: pathlib cost more than the copies)
            src = os.path.join(src_root, rel)
            if not (os.path.isfile(src) or os.path.islink(src)):
                continue
            dst = os.path.join(dst_root, rel)
            parent = os.path.dirname(dst)
            if parent not in made:
                os.makedirs(parent, exist_ok=True)
                made.add(parent)
            if os.path.islink(src):
                os.symlink(os.readlink(src), dst)
                continue
            with open(src, "rb") as f:
                data = f.read()
            with open(dst, "wb") as f:
                f.write(data)
            shutil.copymode(src, dst)
            digest = hashlib.sha256(data).hexdigest()
            prev = last.get(rel)
            stamp = prev[1] if isinstance(prev, list) and len(prev) == 2 and prev[0] == digest \
                and isinstance(prev[1], int) else now
            os.utime(dst, ns=(stamp, stamp))
            record[rel] = [digest, stamp]
        tmp = record_path.with_name(record_path.name + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, record_path)
        return self.path

    def _head_runtime_tree(self) -> str | None:
        try:
            return gitops.git(self.path, "rev-parse", f"HEAD:{gitops.RUNTIME}").strip()
        except HarnessError:  # no runtime folder at HEAD (a fresh repository): materialise as usual
            return None

    def release(self) -> None:
        """Remove the worktree. Deleting thousands of files costs about a second, which every command would wait
        for; so the folder is moved into ``.vt/trash`` (``discard``), and git forgets the worktree (``prune``)."""
        if self.path.exists():
            _to_trash(self.repo_root, self.path, f"slot-{self.index}")
        with _WORKTREE_LOCK:
            gitops.git(self.repo_root, "worktree", "prune", check=False)
        _empty_trash(self.repo_root)


def discard(repo_root: Path, path: Path) -> None:
    """Remove path (a folder of repo_root's ``.vt``) at once: it is renamed into ``.vt/trash`` (instant, same file
    system) and a detached ``rm -rf`` deletes the trash in the background; where the rename fails it is deleted
    here. Leftovers of a killed background delete are removed by the next call (or ``Slot.release``)."""
    path = Path(path)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        _to_trash(repo_root, path, path.name)
    _empty_trash(repo_root)


def _to_trash(repo_root: Path, path: Path, label: str) -> bool:
    """Move path into the trash; False when it had to be deleted here instead."""
    trash_root = repo_root / ".vt" / "trash"
    trash_root.mkdir(parents=True, exist_ok=True)
    try:
        path.rename(trash_root / f"{label}-{uuid.uuid4().hex[:12]}")
        return True
    except OSError:
        shutil.rmtree(path, ignore_errors=True)
        return False


def _empty_trash(repo_root: Path) -> None:
    trash_root = repo_root / ".vt" / "trash"
    names = [p.name for p in trash_root.iterdir()] if trash_root.is_dir() else []
    if names:
        subprocess.Popen(["rm", "-rf", "--", *names], cwd=trash_root, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def runtime_files(root: Path) -> list[str]:
    """Repository-relative paths of the files git would see in root/generated_runtime (tracked or not, ignored
    files excluded)."""
    if not (root / gitops.RUNTIME).is_dir():
        return []
    out = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                          "--", gitops.RUNTIME], capture_output=True, check=True).stdout.decode()
    return [rel for rel in out.split("\0") if rel]
