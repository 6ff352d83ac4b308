"""Protected-file manifests: the acceptance tests a verdict was given with, kept with the run that gave it.

Note [Protected-file manifest]: the gates judge a candidate with the spec's protected files (acceptance tests) taken
from the *trusted tree*, which for ``run`` and ``submit`` is the user's working tree at the moment the gates run.
That tree can hold tests that no ledger state ever held (a test being written for the next entry, an old version
that the entry itself then changes), so a replay that rebuilds the tests from the ledger can judge a recording with
other tests than it had (recording 33 of spec 01: it failed against the C++ test of its base state, which its own
entry then changed). So every gated candidate (and the nop check) records what it was judged with, in its run
folder:

- ``protected/A<attempt>-C<candidate>.json``: the manifest. ``schema`` (1), ``base_tree`` (the ledger state the
  candidate was made on), ``globs`` (the region it covers: the positive globs of the spec's ``protected`` and of
  the pytest gate's ``protected`` option, plus ``generated_runtime/examples/**`` when a training gate reads its
  workloads from the trusted tree), ``files`` (every trusted file in that region: repository-relative path -> git
  blob id of the bytes used), ``stored`` (path -> ``protected/files/<blob>.gz`` for each file whose bytes differ
  from the base state's version: new or changed tests, usually a few kB), and ``withheld`` (files not stored
  because they hold a secret-looking string; a replay can use them only if git still has the blob).
- ``protected/files/<blob>.gz``: the stored bytes, gzip-compressed, content-addressed (attempts share them).

The attempt record (run.json ``attempts[]`` and the ``attempt_end`` event) names the manifest in
``protected_manifest``: ``{"ref", "sha256", "files", "stored"}``; the nop check's is ``nop_protected_manifest`` in
run.json. The bytes recorded for the files ``install_protected`` copied are the very bytes it wrote into the
candidate (read once), so a tree edited while the gates run cannot make the record differ from what was judged;
the other files of the region are read right after.

A replay of a recording with a manifest rebuilds the trusted tree from it (``rebuild_trusted``): the base state,
the region's files exactly as listed (each verified against its blob id), nothing else in the region. A manifest
that is missing, altered (its sha256), malformed, or whose bytes cannot be found or do not hash to the recorded id
raises ``ManifestError``; the replay reports that recording as not reproducible and the replay as an error, after
re-gating the others.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from harness import gitops
from harness.interfaces import GateConfig, HarnessError, Spec

SCHEMA = 1
DIR = "protected"
EXAMPLES = f"{gitops.RUNTIME}/examples/**"


class ManifestError(HarnessError):
    """A recorded protected-file manifest cannot be used: missing, altered, malformed, or its bytes are gone."""


def blob_id(data: bytes) -> str:
    """The git (SHA-1) blob id of data, as ``git hash-object`` computes it."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def manifest_ref(attempt: int, candidate: int) -> str:
    return f"{DIR}/A{attempt}-C{candidate}.json"


def judged_globs(spec: Spec, gates: list[GateConfig]) -> list[str]:
    """The region of the trusted tree the gates read (positive globs only: the pytest gate's own restore of
    protected files matches them without the '!' excludes, so the region is the wider set)."""
    globs = [g for g in spec.protected if not g.startswith("!")]
    for g in gates:
        if g.name == "pytest":
            globs += [str(x) for x in (g.options or {}).get("protected", []) if not str(x).startswith("!")]
        if g.name == "training":
            globs.append(EXAMPLES)
    return list(dict.fromkeys(globs))


def capture(trusted_root: Path, globs: list[str], installed: dict[str, bytes]) -> dict[str, bytes]:
    """path -> bytes of every trusted file in the region: ``installed`` (the bytes install_protected wrote) as
    they are, the others read now."""
    from harness.specs import path_matches
    from harness.worktree import runtime_files

    files: dict[str, bytes] = {}
    for rel in runtime_files(trusted_root):
        if rel in installed:
            files[rel] = installed[rel]
        elif path_matches(rel, globs):
            p = trusted_root / rel
            if p.is_file() and not p.is_symlink():
                files[rel] = p.read_bytes()
    for rel, data in installed.items():  # (runtime_files lists them all; kept for a file it would not list)
        files.setdefault(rel, data)
    return files


def tree_blobs(store_root: Path, tree: str) -> dict[str, str]:
    """Repository-relative path -> blob id of every file of a runtime tree (an object in store_root's store)."""
    if tree == gitops.EMPTY_TREE or not tree:
        return {}
    proc = subprocess.run(["git", "-C", str(store_root), "ls-tree", "-r", "-z", tree], capture_output=True)
    if proc.returncode != 0:
        return {}
    out = {}
    for item in proc.stdout.decode("utf-8", errors="surrogateescape").split("\0"):
        if "\t" in item:
            meta, path = item.split("\t", 1)
            parts = meta.split()
            if len(parts) == 3 and parts[1] == "blob":
                out[f"{gitops.RUNTIME}/{path}"] = parts[2]
    return out


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}-{uuid.uuid4().hex[:8]}")  # (candidates are threads)
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _has_secret(data: bytes) -> bool:
    from harness.secrets import redact

    text = data.decode("utf-8", errors="surrogateescape")
    return redact(text) != text


def write_manifest(run_dir: Path, attempt: int, candidate: int, store_root: Path, base_tree: str,
                   globs: list[str], files: dict[str, bytes]) -> dict[str, Any]:
    """Write the manifest of one gated candidate and the bytes of its files that differ from base_tree's; returns
    the record for the attempt summary (``protected_manifest``)."""
    base = tree_blobs(store_root, base_tree)
    listed: dict[str, str] = {}
    stored: dict[str, str] = {}
    withheld: list[str] = []
    for rel in sorted(files):
        data = files[rel]
        b = blob_id(data)
        listed[rel] = b
        if base.get(rel) == b:
            continue
        if _has_secret(data):
            withheld.append(rel)
            continue
        ref = f"{DIR}/files/{b}.gz"
        if not (run_dir / ref).is_file():
            _atomic_write_bytes(run_dir / ref, gzip.compress(data, mtime=0))
        stored[rel] = ref
    manifest = {"schema": SCHEMA, "base_tree": base_tree, "globs": globs, "files": listed, "stored": stored,
                "withheld": withheld}
    text = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    ref = manifest_ref(attempt, candidate)
    _atomic_write_bytes(run_dir / ref, text)
    return {"ref": ref, "sha256": hashlib.sha256(text).hexdigest(), "files": len(listed), "stored": len(stored)}


# ----------------------------------------------------------------------------------------------------------------
# Reading a manifest back (the replay)


def _check_rel(rel: Any, what: str) -> str:
    if not isinstance(rel, str) or not rel:
        raise ManifestError(f"{what}: a path that is not a string: {rel!r}")
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts or "\\" in rel or p.parts[0] != gitops.RUNTIME or len(p.parts) < 2:
        raise ManifestError(f"{what}: path {rel!r} is not inside {gitops.RUNTIME}/")
    return rel


def load_manifest(run_dir: Path, record: Any) -> dict[str, Any]:
    """The manifest an attempt record names, checked: its sha256, schema, paths and blob ids."""
    if not isinstance(record, dict) or not isinstance(record.get("ref"), str):
        raise ManifestError(f"run {run_dir.name}: the attempt's protected_manifest record is malformed: {record!r}")
    ref = record["ref"]
    if not ref.startswith(f"{DIR}/") or ".." in PurePosixPath(ref).parts:
        raise ManifestError(f"run {run_dir.name}: manifest reference {ref!r} is outside {DIR}/")
    path = run_dir / ref
    if not path.is_file():
        raise ManifestError(f"run {run_dir.name}: the protected-file manifest {ref} is missing")
    raw = path.read_bytes()
    if record.get("sha256") and hashlib.sha256(raw).hexdigest() != record["sha256"]:
        raise ManifestError(f"run {run_dir.name}: {ref} was altered (its sha256 is not the one recorded)")
    try:
        m = json.loads(raw)
    except ValueError as exc:
        raise ManifestError(f"run {run_dir.name}: {ref} is not valid JSON: {exc}") from None
    where = f"run {run_dir.name}: {ref}"
    if not isinstance(m, dict) or m.get("schema") != SCHEMA:
        raise ManifestError(f"{where}: not a schema-{SCHEMA} manifest")
    files, stored, globs = m.get("files"), m.get("stored", {}), m.get("globs")
    if not isinstance(files, dict) or not isinstance(stored, dict) or not isinstance(globs, list) \
            or not all(isinstance(g, str) for g in globs):
        raise ManifestError(f"{where}: 'files', 'stored' and 'globs' must be a mapping, a mapping and a list")
    for rel, b in files.items():
        _check_rel(rel, where)
        if not isinstance(b, str) or len(b) != 40 or any(c not in "0123456789abcdef" for c in b):
            raise ManifestError(f"{where}: {rel}: {b!r} is not a blob id")
    for rel, sref in stored.items():
        if rel not in files or not isinstance(sref, str) or sref != f"{DIR}/files/{files[rel]}.gz":
            raise ManifestError(f"{where}: stored entry for {rel!r} does not match its listed blob")
    m["run_dir"] = str(run_dir)
    m["ref"] = ref
    return m


def _stored_bytes(run_dir: Path, ref: str, where: str) -> bytes | None:
    """The bytes of a stored file, None when it is missing."""
    path = run_dir / ref
    if not path.is_file():
        return None
    try:
        return gzip.decompress(path.read_bytes())
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ManifestError(f"{where}: the stored copy {ref} cannot be read: {exc}") from None


def rebuild_trusted(manifest: dict[str, Any], store_root: Path, trusted_root: Path) -> dict[str, int]:
    """Make the manifest's region of trusted_root/generated_runtime exactly its files: remove the region's files it
    does not list, write each listed file whose bytes differ (from its stored copy, else git's store), verifying
    every blob id. trusted_root holds a runtime state already (the recording's base). Returns counts."""
    from harness.specs import path_matches

    run_dir = Path(manifest["run_dir"])
    where = f"run {run_dir.name}: {manifest['ref']}"
    files: dict[str, str] = manifest["files"]
    globs: list[str] = manifest["globs"]
    runtime = trusted_root / gitops.RUNTIME
    removed = written = 0
    for dirpath, _dirs, names in os.walk(runtime):
        for name in names:
            rel = os.path.relpath(os.path.join(dirpath, name), trusted_root).replace(os.sep, "/")
            if path_matches(rel, globs) and rel not in files:
                os.unlink(os.path.join(dirpath, name))
                removed += 1
    real_root = trusted_root.resolve()
    for rel, b in sorted(files.items()):
        dest = trusted_root / rel
        if not dest.parent.resolve().is_relative_to(real_root):
            raise ManifestError(f"{where}: {rel} leaves the tree")
        if dest.is_file() and not dest.is_symlink() and blob_id(dest.read_bytes()) == b:
            continue
        sref = manifest["stored"].get(rel)
        data = _stored_bytes(run_dir, sref, where) if sref else None
        if data is not None and blob_id(data) != b:
            raise ManifestError(f"{where}: the stored copy of {rel} ({sref}) does not hash to the recorded blob {b}")
        if data is None:
            proc = subprocess.run(["git", "-C", str(store_root), "cat-file", "blob", b], capture_output=True)
            if proc.returncode == 0 and blob_id(proc.stdout) == b:
                data = proc.stdout
        if data is None:
            what = f"its stored copy {sref} is missing" if sref else "it was not stored and git has no such blob"
            raise ManifestError(f"{where}: cannot rebuild {rel} (blob {b}): {what}")
        if dest.is_symlink() or dest.is_dir():
            raise ManifestError(f"{where}: {rel} is a link or a folder in the base state")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        written += 1
    return {"files": len(files), "written": written, "removed": removed}
