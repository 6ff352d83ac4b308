"""Staged file changes under a root folder, written all at once or not at all.

Policy: ``read`` sees the staged state; ``stage`` only records; ``commit`` writes every staged file (creating
parent folders, removing folders a deletion left empty) and, if any write fails, puts back every original byte,
mode and folder before re-raising. Paths are relative to the root; one that is absolute, holds "..", enters
".git", or resolves (through a symlink) outside the root raises ProposalRejected before anything is read.
"""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from harness.interfaces import ProposalRejected
from harness.proposals.text_lines import TextFile


class NotText(Exception):
    """The path exists but is not a UTF-8 text file (binary data, a folder, a dangling symlink)."""


def safe_target(root: Path, rel: str) -> Path:
    pure = PurePosixPath(rel)
    if not rel or "\x00" in rel or pure.is_absolute() or rel.startswith("\\") or (len(rel) > 1 and rel[1] == ":"):
        raise ProposalRejected(f"path {rel!r} is not relative to the repository root")
    if ".." in pure.parts or ".git" in pure.parts:
        raise ProposalRejected(f"path {rel!r} escapes the tree or enters .git")
    target = root / pure
    resolved_root = root.resolve()
    if not target.resolve().is_relative_to(resolved_root):
        raise ProposalRejected(f"path {rel!r} resolves outside the repository root (through a symlink)")
    return target


class Workspace:
    def __init__(self, root: Path):
        self.root = root
        self._staged: dict[str, tuple[TextFile | None, int | None]] = {}  # rel -> (content or None=delete, mode)

    def exists(self, rel: str) -> bool:
        if rel in self._staged:
            return self._staged[rel][0] is not None
        return safe_target(self.root, rel).is_file()

    def read(self, rel: str) -> TextFile | None:
        """The staged or on-disk text (a copy to change freely); None when absent. Raises NotText."""
        if rel in self._staged:
            staged = self._staged[rel][0]
            return None if staged is None else staged.copy()
        target = safe_target(self.root, rel)
        if not target.exists() and not target.is_symlink():
            return None
        if not target.is_file():
            raise NotText(rel)  # a folder, a dangling link or a device: not a file the proposal can edit
        try:
            return TextFile.decode(target.read_bytes())
        except UnicodeDecodeError as exc:
            raise NotText(rel) from exc

    def stage(self, rel: str, content: TextFile | None, mode: int | None = None) -> None:
        safe_target(self.root, rel)
        self._staged[rel] = (content, mode)

    def commit(self) -> None:
        originals = Originals(self.root, list(self._staged))
        try:
            for rel, (content, mode) in self._staged.items():
                target = safe_target(self.root, rel)
                if content is None:
                    if target.is_file():
                        target.unlink()
                        self._prune_empty_dirs(target.parent)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content.encode())
                if mode is not None:
                    os.chmod(target, mode)
        except BaseException:
            originals.restore()
            raise

    def _prune_empty_dirs(self, folder: Path) -> None:
        root = self.root.resolve()
        while folder.resolve() != root and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent


class Originals:
    """The bytes and modes of some paths (or their absence), and the folders above them that did not exist yet,
    so that any writer (ours, or ``git apply``) can be undone exactly."""

    def __init__(self, root: Path, rels: list[str]):
        self.saved: list[tuple[Path, bytes | None, int | None]] = []
        self.missing_dirs: set[Path] = set()
        for rel in rels:
            target = safe_target(root, rel)
            existed = target.is_file()
            self.saved.append((target, target.read_bytes() if existed else None,
                               target.stat().st_mode if existed else None))
            self.missing_dirs.update(p for p in [target.parent, *target.parent.parents] if not p.exists())

    def restore(self) -> None:
        for target, data, mode in reversed(self.saved):
            if data is None:
                if target.is_file() or target.is_symlink():
                    target.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                os.chmod(target, mode)
        for folder in sorted(self.missing_dirs, key=lambda p: len(p.parts), reverse=True):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
