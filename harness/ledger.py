"""The ledger: an append-only chain of accepted diffs that rebuilds generated_runtime/ from an empty folder.

Layout: ``logs/ledger/NNNN-<spec_id>.patch`` (a binary-safe git diff, paths ``generated_runtime/...``) and
``logs/ledger/NNNN-<spec_id>.json`` (metadata). The JSON is written last and is the commit point: a patch file
without its JSON is debris of an interrupted append and is ignored (and removed by the next append).

Entry fields: seq, spec_id, agent, model, message, run_id, created_at, parent_tree, result_tree, patch,
patch_sha256, prev_entry_sha256 (sha256 of the previous entry's JSON bytes: the chain), prompt_digest, gates
(GateResult dicts), usage, wall_s, attempts.

Invariants (checked by ``verify`` and ``replay``): seq runs 1..N without gaps; each entry's parent_tree is the
previous result_tree (the first one's is the empty tree); each patch's sha256 matches; each JSON's hash is the
next entry's prev_entry_sha256; replaying the patches from an empty folder reproduces every result_tree.
Appends hold an exclusive lock (fcntl) on ``logs/ledger/.lock`` and block Ctrl-C while they write.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from harness import gitops
from harness.gitops import EMPTY_TREE
from harness.interfaces import LedgerError

_NAME = re.compile(r"^(\d{4})-([0-9]{2}-[a-z0-9-]+)\.json$")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Entry:
    meta: dict[str, Any]
    json_path: Path
    patch_path: Path

    @property
    def seq(self) -> int:
        return int(self.meta["seq"])

    @property
    def spec_id(self) -> str:
        return self.meta["spec_id"]

    @property
    def result_tree(self) -> str:
        return self.meta["result_tree"]

    @property
    def parent_tree(self) -> str:
        return self.meta["parent_tree"]

    def patch_bytes(self) -> bytes:
        return self.patch_path.read_bytes()


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block ends, so a critical write is never cut in half."""
    pending: list[int] = []
    try:
        old = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: signals are delivered to the main thread anyway
        yield
        return
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if pending:
            os.kill(os.getpid(), pending[0])


class Ledger:
    def __init__(self, root: Path):
        self.root = root
        self.dir = root / "logs" / "ledger"

    # -- reading ------------------------------------------------------------------------------------------------
    def entries(self) -> list[Entry]:
        if not self.dir.is_dir():
            return []
        out = []
        for p in sorted(self.dir.iterdir()):
            m = _NAME.match(p.name)
            if not m:
                continue
            try:
                meta = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise LedgerError(f"ledger entry {p} is not valid JSON: {exc}") from exc
            patch = self.dir / meta.get("patch", p.with_suffix(".patch").name)
            out.append(Entry(meta, p, patch))
        return out

    def head_tree(self) -> str:
        entries = self.entries()
        return entries[-1].result_tree if entries else EMPTY_TREE

    def accepted_specs(self) -> set[str]:
        return {e.spec_id for e in self.entries()}

    def verify(self) -> list[Entry]:
        """Check the chain's structure and the patch digests (fast, no replay). Raises LedgerError."""
        entries = self.entries()
        prev_tree, prev_hash = EMPTY_TREE, None
        for i, e in enumerate(entries, start=1):
            where = f"ledger entry {e.json_path.name}"
            if e.seq != i:
                raise LedgerError(f"{where}: seq {e.seq}, expected {i} (entries missing or renumbered)")
            if e.parent_tree != prev_tree:
                raise LedgerError(f"{where}: parent_tree {e.parent_tree} is not the previous result {prev_tree}")
            if e.meta.get("prev_entry_sha256") != prev_hash:
                raise LedgerError(f"{where}: prev_entry_sha256 does not match the previous entry (chain broken)")
            if not e.patch_path.is_file():
                raise LedgerError(f"{where}: patch file {e.patch_path.name} is missing")
            if sha256_bytes(e.patch_bytes()) != e.meta.get("patch_sha256"):
                raise LedgerError(f"{where}: patch {e.patch_path.name} was modified (sha256 mismatch)")
            prev_tree, prev_hash = e.result_tree, sha256_bytes(e.json_path.read_bytes())
        return entries

    # -- replay -------------------------------------------------------------------------------------------------
    def replay(self, dest: Path, upto: int | None = None, on_entry=None) -> str:
        """Rebuild generated_runtime/ in dest (made a git repository) from the patches; check every tree hash.
        Returns the final tree hash. upto: replay entries with seq <= upto only."""
        entries = [e for e in self.verify() if upto is None or e.seq <= upto]
        dest.mkdir(parents=True, exist_ok=True)
        if not (dest / ".git").exists():
            subprocess.run(["git", "init", "-q", str(dest)], check=True)
        gitops.materialize(dest, EMPTY_TREE, dest)
        tree = EMPTY_TREE
        for e in entries:
            try:
                gitops.apply_patch(dest, e.patch_bytes())
            except Exception as exc:
                raise LedgerError(f"ledger entry {e.json_path.name}: {exc}") from exc
            tree = gitops.runtime_tree_hash(dest)
            if tree != e.result_tree:
                raise LedgerError(f"ledger entry {e.json_path.name}: replay gives tree {tree}, "
                                  f"the entry records {e.result_tree}")
            if on_entry:
                on_entry(e, dest)
        return tree

    # -- appending ----------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def append(self, *, spec_id: str, patch: bytes, parent_tree: str, result_tree: str, apply_to: Path | None,
               meta: dict[str, Any], snapshot: bool = False) -> Entry:
        """Append an accepted diff. If apply_to is given (the user's repository root), the entry lands in its
        generated_runtime/ in the same critical section (see Note [Landing an entry]); if apply_to is None the
        working tree must already be at result_tree, unless snapshot is set (``submit``: the entry is the snapshot
        of the working tree that was gated, an object in the store; the working tree may hold other specs' changes
        and edits made while the gates ran, which stay pending - Note [Scoped submit] in runner.py)."""
        if not patch.strip():
            raise LedgerError("refusing to record an empty patch")
        with self.locked(), deferred_interrupts():
            entries = self.verify()
            head = entries[-1].result_tree if entries else EMPTY_TREE
            if head != parent_tree:
                raise LedgerError(f"the ledger moved on (head {head}, the candidate was built on {parent_tree}); "
                                  "run again on the new head")
            seq = len(entries) + 1
            for debris in self.dir.glob(f"{seq:04d}-*.patch"):  # an interrupted earlier append
                debris.unlink()
            stem = f"{seq:04d}-{spec_id}"
            patch_path = self.dir / f"{stem}.patch"
            tmp = patch_path.with_suffix(".patch.tmp")
            tmp.write_bytes(patch)
            os.replace(tmp, patch_path)
            backup: dict | None = None
            try:
                if apply_to is not None:
                    # Note [Landing an entry]: the working tree must be at parent_tree, except for files that
                    # already hold the entry's content (acceptance tests a person wrote before the run). We write
                    # the entry's files from the result tree (an object in the store) and then demand the result
                    # hash exactly; anything else is rolled back.
                    names = gitops.diff_names(self.root, parent_tree, result_tree)
                    backup = gitops.sync_paths_from_tree(self.root, result_tree, names, apply_to)
                if snapshot:
                    if not gitops.has_object(self.root, result_tree):
                        raise LedgerError(f"the gated snapshot {result_tree} is not in the object store")
                    got = result_tree
                else:
                    got = gitops.runtime_tree_hash(self.root if apply_to is None else apply_to)
                if got != result_tree:
                    raise LedgerError(f"generated_runtime/ has changes outside this entry (after landing it the "
                                      f"tree is {got}, expected {result_tree}); nothing recorded")
                record = {
                    "seq": seq, "spec_id": spec_id, **meta,
                    "created_at": meta.get("created_at") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "parent_tree": parent_tree, "result_tree": result_tree, "patch": patch_path.name,
                    "patch_sha256": sha256_bytes(patch),
                    "prev_entry_sha256": sha256_bytes(entries[-1].json_path.read_bytes()) if entries else None,
                }
                json_path = self.dir / f"{stem}.json"
                tmpj = json_path.with_suffix(".json.tmp")
                tmpj.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
                os.replace(tmpj, json_path)
            except BaseException:
                if backup is not None:
                    gitops.restore_paths(apply_to, backup)
                patch_path.unlink(missing_ok=True)
                raise
        return Entry(record, json_path, patch_path)


def check_against_tree(root: Path) -> tuple[bool, str]:
    """Replay the ledger into a temporary folder and compare with root/generated_runtime. (ok, message)."""
    ledger = Ledger(root)
    with tempfile.TemporaryDirectory(prefix="vt-replay-") as tmp:
        replayed = ledger.replay(Path(tmp))
    actual = gitops.runtime_tree_hash(root)
    n = len(ledger.entries())
    if replayed != actual:
        return False, (f"generated_runtime/ ({actual}) differs from the replay of the ledger's {n} entries "
                       f"({replayed}): a change entered without `vt-agent submit`, or the ledger was edited")
    return True, f"generated_runtime/ equals the replay of {n} ledger entries (tree {actual})"


