"""Proposals: parse an agent's unified diff or search/replace edit blocks, list the paths it touches, and apply it
to a tree strictly, then tolerantly, all-or-nothing, with a report that tells the agent exactly what did not match.

Public API (everything else in this package is internal):
    detect_format(text) -> "diff" | "edits" | "empty" | "unknown"
    parse_diff(text) -> list[FilePatch]          parse_edits(text) -> list[EditBlock]
    touched_paths(text) -> list[str]             apply_proposal(text, root, kind) -> ApplyReport
    failure_signature(report) -> str
Malformed input raises harness.interfaces.ProposalRejected with the line number and what was expected.
"""
from __future__ import annotations

import re

from harness.interfaces import ProposalRejected
from harness.proposals.applier import apply_proposal
from harness.proposals.apply_report import ApplyFailure, ApplyReport, failure_signature
from harness.proposals.diff_parser import FilePatch, Hunk, HunkLine, parse_diff
from harness.proposals.edit_blocks import EditBlock, has_edit_markers, parse_edits

__all__ = ["ApplyFailure", "ApplyReport", "EditBlock", "FilePatch", "Hunk", "HunkLine", "apply_proposal",
           "detect_format", "failure_signature", "parse_diff", "parse_edits", "touched_paths"]

_DIFF_START = re.compile(r"^(diff --git |--- \S.*\n\+\+\+ \S)", re.M)


def detect_format(text: str) -> str:
    """"edits" when a SEARCH marker starts a line (a diff's content lines always carry a prefix, so this cannot be
    diff content); else "diff" when a diff file header is present; "empty" for blank text; else "unknown"."""
    if not text.strip():
        return "empty"
    if has_edit_markers(text):
        return "edits"
    if _DIFF_START.search(text.replace("\r\n", "\n")):
        return "diff"
    return "unknown"


def touched_paths(text: str) -> list[str]:
    """Every path the proposal would create, modify, delete or rename (both sides), as written (absolute and ../
    paths included, for the caller to reject), in order of first appearance. Raises ProposalRejected."""
    fmt = detect_format(text)
    if fmt == "empty":
        return []
    if fmt == "edits":
        return list(dict.fromkeys(block.path for block in parse_edits(text)))
    if fmt == "unknown":
        raise ProposalRejected("neither a unified diff nor search/replace edit blocks")
    paths: dict[str, None] = {}
    for fp in parse_diff(text):
        for path in (fp.old_path, fp.new_path):
            if path is not None:
                paths.setdefault(path, None)
    return list(paths)
