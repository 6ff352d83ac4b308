"""Verdict cache: an unchanged tree is never re-tested by the same gate.

Key = sha256 over (git tree hash of the candidate's generated_runtime, gate name, gate version with a digest of the
validators package's sources (validators/chain.py), the gate's options
as canonical JSON, digest of the trusted protected files). Entries are JSON lines in
``cache_dir/verdicts/verdicts.jsonl``, appended under an exclusive lock; the newest valid entry for a key wins.
Only "pass" and "fail" are cached ("error" means the harness could not decide, so it must be asked again).
Each entry carries an HMAC made with a random key kept next to the file (mode 0600): gate commands share
cache_dir (the build folder lives there), and an unsigned line would let a candidate's build script plant a
"pass" for its own tree. Under a sandbox user (see validators/sandbox.py) the key is unreadable to the candidate;
without one it raises the bar (the candidate must know to read this file) but is not a wall.
"""
from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from harness.interfaces import GateResult

CACHEABLE = ("pass", "fail")


def verdict_key(tree_hash: str, gate_name: str, gate_version: str, options: dict[str, Any],
                protected_digest: str) -> str:
    material = json.dumps([tree_hash, gate_name, gate_version, options, protected_digest], sort_keys=True,
                          default=str, separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()


class VerdictCache:
    def __init__(self, cache_dir: Path):
        self.dir = Path(cache_dir) / "verdicts"
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self.path = self.dir / "verdicts.jsonl"
        self._secret = self._load_secret()

    def _load_secret(self) -> bytes:
        key_path = self.dir / "hmac.key"
        try:
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return key_path.read_bytes()
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
        return key_path.read_bytes()

    def _mac(self, key: str, result: dict[str, Any]) -> str:
        body = json.dumps([key, result], sort_keys=True, default=str, separators=(",", ":"))
        return hmac.new(self._secret, body.encode(), hashlib.sha256).hexdigest()

    def get(self, key: str) -> GateResult | None:
        if not self.path.exists():
            return None
        found = None
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a torn or foreign line is ignored, never trusted
                if not isinstance(entry, dict) or entry.get("key") != key or not isinstance(entry.get("result"), dict):
                    continue
                if hmac.compare_digest(str(entry.get("mac", "")), self._mac(key, entry["result"])):
                    found = entry["result"]
        if found is None or found.get("status") not in CACHEABLE:
            return None
        result = GateResult.from_dict(found)
        result.cached = True
        return result

    def put(self, key: str, result: GateResult) -> None:
        if result.status not in CACHEABLE:
            return
        record = result.to_dict()
        record["cached"] = False
        line = json.dumps({"key": key, "result": record, "mac": self._mac(key, record)}, default=str) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(line)
            f.flush()
            fcntl.flock(f, fcntl.LOCK_UN)
