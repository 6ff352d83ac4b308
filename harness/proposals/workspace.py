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
    """The file exists but is not UTF-8 text."""


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
        if not target.is_file():
            return None
        try:
            return TextFile.decode(target.read_bytes())
        except UnicodeDecodeError as exc:
            raise NotText(rel) from exc

    def stage(self, rel: str, content: TextFile | None, mode: int | None = None) -> None:
        safe_target(self.root, rel)
        self._staged[rel] = (content, mode)

    def commit(self) -> None:
        backups: list[tuple[Path, bytes | None, int | None]] = []
        made_dirs: list[Path] = []
        try:
            for rel, (content, mode) in self._staged.items():
                target = safe_target(self.root, rel)
                existed = target.is_file()
                backups.append((target, target.read_bytes() if existed else None,
                                target.stat().st_mode if existed else None))
                if content is None:
                    if existed:
                        target.unlink()
                        self._prune_empty_dirs(target.parent)
                    continue
                missing = [p for p in [target.parent, *target.parent.parents] if not p.exists()]
                target.parent.mkdir(parents=True, exist_ok=True)
                made_dirs += missing
                target.write_bytes(content.encode())
                if mode is not None:
                    os.chmod(target, mode)
        except BaseException:
            for target, data, mode in reversed(backups):
                if data is None:
                    target.unlink(missing_ok=True)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
                    os.chmod(target, mode)
            for folder in sorted(made_dirs, key=lambda p: len(p.parts), reverse=True):
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
            raise

    def _prune_empty_dirs(self, folder: Path) -> None:
        root = self.root.resolve()
        while folder.resolve() != root and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
