"""What applying a proposal did, as data, and as a short message for the agent's next prompt.

Policy: a report either says everything was written (ok) or that nothing was (the tree is as before); ``applied``
lists only what was written, ``would_apply`` what matched in a failed proposal. ``feedback()`` is bounded: at most
MAX_FAILURES failures in detail, MAX_LINES lines per quoted block, MAX_LINE_CHARS characters per line, MAX_ITEMS
names per list. Line numbers are 1-based lines of the file as it was when the hunk/edit was tried.
``failure_signature`` hashes what identifies a failure (path, hunk/edit number, reason code, expected lines,
not line numbers or scores), so an identical retry is recognised even when the model renumbers its hunk headers.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

MAX_FAILURES = 5
MAX_LINES = 12
MAX_LINE_CHARS = 160
MAX_ITEMS = 10


@dataclass
class ApplyFailure:
    path: str
    index: int  # 1-based: hunk number within the file (diffs) or edit number within the proposal (edits)
    header: str  # "hunk 2 @@ -10,4 +10,5 @@" or "edit 3"
    code: str  # no-match | ambiguous | missing-file | file-exists | not-empty | not-text | binary | leftover-lines
    reason: str  # one sentence for a person
    expected: list[str] = field(default_factory=list)  # the lines the hunk/edit looked for
    closest: list[tuple[int, str]] = field(default_factory=list)  # (1-based line number, real line)
    similarity: float | None = None  # difflib ratio of ``closest`` to ``expected``, 0..1
    proposal_line: int | None = None  # where the hunk/edit starts in the proposal text


@dataclass
class ApplyReport:
    ok: bool
    mode: str  # "strict" | "tolerant" | "none"
    kind: str = "diff"  # "diff" | "edits" | "empty"
    applied: list[str] = field(default_factory=list)
    already_applied: list[str] = field(default_factory=list)
    failures: list[ApplyFailure] = field(default_factory=list)
    would_apply: list[str] = field(default_factory=list)  # matched, but not written because something else failed
    touched: list[str] = field(default_factory=list)  # paths created/modified/deleted/renamed (both sides)
    warnings: list[str] = field(default_factory=list)  # e.g. recounted hunk headers
    strict_error: str = ""  # why the strict apply (git apply) refused, when it did

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def feedback(self) -> str:
        if self.ok:
            parts = [f"The proposal applied ({self.mode})."]
            if self.applied:
                parts.append("Applied: " + _names(self.applied))
            if self.already_applied:
                parts.append("Already applied (no change needed): " + _names(self.already_applied))
            if self.warnings:
                parts.append("Note: " + _names(self.warnings))
            return "\n".join(parts)
        out = [f"The proposal did NOT apply; no file was changed. {len(self.failures)} "
               f"{'problem' if len(self.failures) == 1 else 'problems'}:"]
        for failure in self.failures[:MAX_FAILURES]:
            out.append("")
            where = f" (proposal line {failure.proposal_line})" if failure.proposal_line else ""
            out.append(f"- {failure.path}, {failure.header}{where}: {failure.reason}")
            if failure.expected:
                out.append("  Your lines:")
                out += _quote([(None, line) for line in failure.expected])
            if failure.closest:
                first, last = failure.closest[0][0], failure.closest[-1][0]
                score = f", similarity {failure.similarity:.2f}" if failure.similarity is not None else ""
                out.append(f"  Closest lines in {failure.path} (lines {first}-{last}{score}):")
                out += _quote(failure.closest)
                mismatch = _first_mismatch(failure.expected, failure.closest)
                if mismatch:
                    out.append("  " + mismatch)
        if len(self.failures) > MAX_FAILURES:
            out.append(f"... and {len(self.failures) - MAX_FAILURES} more failures.")
        if self.strict_error and any(f.code == "binary" for f in self.failures):
            out.append("git apply said: " + " | ".join(self.strict_error.splitlines()[:3]))
        out.append("")
        if self.would_apply:
            out.append("These matched and would have applied: " + _names(self.would_apply))
        if self.already_applied:
            out.append("Already applied (no change needed): " + _names(self.already_applied))
        out.append("Re-read the file(s) and resend the whole change with lines copied exactly from the current file.")
        return "\n".join(out)


def _clip(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + "..."


def _quote(numbered: list[tuple[int | None, str]]) -> list[str]:
    shown = [f"    {'' if n is None else f'{n:>5}| '}{_clip(text)}" for n, text in numbered[:MAX_LINES]]
    if len(numbered) > MAX_LINES:
        shown.append(f"    ... ({len(numbered) - MAX_LINES} more lines)")
    return shown


def _names(items: list[str]) -> str:
    shown = "; ".join(items[:MAX_ITEMS])
    return shown + (f"; ... ({len(items) - MAX_ITEMS} more)" if len(items) > MAX_ITEMS else "")


def _first_mismatch(expected: list[str], closest: list[tuple[int, str]]) -> str:
    for k, (want, (number, real)) in enumerate(zip(expected, closest)):
        if want != real:
            return f"First difference: your line {k + 1} {_clip(want)!r} vs line {number} {_clip(real)!r}."
    return ""


def failure_signature(report: ApplyReport) -> str:
    """A stable 16-hex-digit hash of the report's failures; "" for a report that applied."""
    if report.ok or not report.failures:
        return ""
    items = sorted(
        json.dumps([f.path, f.index, f.code, [" ".join(line.split()) for line in f.expected]])
        for f in report.failures)
    return hashlib.sha256("\n".join(items).encode()).hexdigest()[:16]
