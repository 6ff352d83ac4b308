"""Run logs: every step of a run, as data, written as it happens.

Layout of ``logs/runs/RUN_ID/`` (RUN_ID = ``YYYYmmdd-HHMMSS-<spec id>-<6 hex>``):

- ``run.json``      the run summary, rewritten atomically after every step (committed). Fields:
  ``schema`` (1), ``run_id``, ``spec_id``, ``agent``, ``model``, ``started_at``/``ended_at`` (ISO 8601 UTC),
  ``status`` ("running" | "accepted" | "rejected" | "budget" | "error" | "interrupted" | "stuck"),
  ``reason`` (one line: why the run ended), ``attempts`` (list of attempt summaries, below), ``usage``
  (``input_tokens``, ``output_tokens``, ``cost_usd`` or null, ``calls``), ``ledger_seq`` (int or null),
  ``wall_s``, ``candidates`` (int), ``mode`` ("run" | "submit" | "validate" | "replay").
  Attempt summary: ``attempt``, ``candidate``, ``status`` ("pass" | "fail" | "rejected" | "error"),
  ``failed_gate`` (the first failing gate, "vet"/"apply" for a proposal refused before the gates, null for a pass;
  Note [Replay compares the failing gate] in runner.py), ``protected_manifest`` (what the gates judged with:
  ``{"ref", "sha256", "files", "stored"}``, or ``{"error"}`` when it could not be written; null before the gates),
  ``proposal_kind``, ``proposal_sha256``, ``gates`` (list of GateResult dicts), ``feedback`` (str, what the next
  prompt was told), ``usage``, ``started_at``, ``wall_s``. ``nop_protected_manifest``: the nop check's.
- ``events.jsonl``  one JSON object per line, appended and flushed after every step (committed): ``{"ts", "type",
  "attempt", "candidate", ...}`` with type in prompt | response | proposal | apply | protected_manifest | gate |
  attempt_end | run_end.
  ``proposal`` events carry the full proposal text (the replay agent reads them back).
- ``gates/``        full gate logs, ``A<attempt>-C<candidate>-<gate>.log`` (ignored by git: bulky).
- ``protected/``    what each gated candidate was judged with (committed): ``A<attempt>-C<candidate>.json``, the
  manifest of the trusted tree's protected files (path -> git blob id), and ``files/<blob>.gz``, the bytes of those
  that differ from the base state's (Note [Protected-file manifest] in harness/protected.py).
- ``reports/``      machine-readable gate reports, ``A<attempt>-C<candidate>-<gate>.json`` (committed; the
  dashboards read parity tables, allocator traces and training curves from here).

Secrets are redacted from everything written here (see ``harness.secrets``).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import secrets as _pysecrets
from pathlib import Path
from typing import Any

from harness.secrets import redact

SCHEMA = 1


def utcnow() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_run_id(spec_id: str) -> str:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{spec_id}-{_pysecrets.token_hex(3)}"


def _atomic_write(path: Path, text: str) -> None:
    _atomic_write_bytes(path, text.encode("utf-8"))


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def read_stored_proposal(run_dir: Path, ref: Any) -> str | None:
    """The text of a proposal stored by ``RunLog.store_proposal`` (``ref`` from its proposal event), or None when
    the event has no such ref or the file is gone (dropped once accepted: the ledger holds it)."""
    import gzip

    if not isinstance(ref, str) or not ref.startswith("proposals/") or ".." in ref:
        return None
    path = run_dir / ref
    if not path.is_file():
        return None
    try:
        return gzip.decompress(path.read_bytes()).decode("utf-8", errors="surrogateescape")
    except (OSError, EOFError):
        return None


class RunLog:
    """Append-only event log plus an atomically rewritten summary for one run."""

    def __init__(self, root: Path, run_id: str, summary: dict[str, Any] | None = None):
        self.run_id = run_id
        self.dir = root / run_id
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "gates").mkdir(exist_ok=True)
        (self.dir / "reports").mkdir(exist_ok=True)
        self.summary: dict[str, Any] = summary or {}
        self.summary.setdefault("schema", SCHEMA)
        self.summary.setdefault("run_id", run_id)

    @classmethod
    def open_existing(cls, root: Path, run_id: str) -> "RunLog":
        d = root / run_id
        if not (d / "run.json").is_file():
            from harness.interfaces import HarnessError

            raise HarnessError(f"no run log at {d}/run.json")
        return cls(root, run_id, json.loads((d / "run.json").read_text()))

    def event(self, type_: str, **fields: Any) -> None:
        rec = {"ts": utcnow(), "type": type_, **fields}
        line = redact(json.dumps(rec, default=str))
        with open(self.dir / "events.jsonl", "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def events(self) -> list[dict[str, Any]]:
        path = self.dir / "events.jsonl"
        out = []
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # a half-written last line after a crash
        return out

    def save(self) -> None:
        _atomic_write(self.dir / "run.json", redact(json.dumps(self.summary, indent=2, default=str)) + "\n")

    def gate_log_path(self, attempt: int, candidate: int, gate: str) -> Path:
        return self.dir / "gates" / f"A{attempt}-C{candidate}-{gate}.log"

    def report_path(self, attempt: int, candidate: int, gate: str) -> Path:
        return self.dir / "reports" / f"A{attempt}-C{candidate}-{gate}.json"

    @staticmethod
    def proposal_ref(attempt: int, candidate: int) -> str:
        """Where a stored proposal lives, relative to the run folder (the proposal event's ``ref``)."""
        return f"proposals/A{attempt}-C{candidate}.patch.gz"

    def store_proposal(self, attempt: int, candidate: int, text: str) -> str:
        """Keep a large proposal gzip-compressed in proposals/ (Note [Stored submit proposals] in runner.py);
        returns its path relative to the run folder, the event's ``ref``. Secrets are redacted as in the events."""
        import gzip

        rel = self.proposal_ref(attempt, candidate)
        (self.dir / "proposals").mkdir(exist_ok=True)
        data = gzip.compress(redact(text).encode("utf-8", errors="surrogateescape"), mtime=0)
        _atomic_write_bytes(self.dir / rel, data)
        return rel

    def drop_proposal(self, attempt: int, candidate: int) -> None:
        (self.dir / self.proposal_ref(attempt, candidate)).unlink(missing_ok=True)
