"""Search/replace edit blocks, parsed by their markers, never by Markdown fences.

Format (markers start the line; 5 to 9 angle brackets are accepted, the divider is exactly seven '='):

    path/to/file
    <<<<<<< SEARCH
    old lines
    =======
    new lines
    >>>>>>> REPLACE

Policy: the path is the nearest non-blank, non-fence line above the SEARCH marker, stripped of Markdown decoration
(`path`, **path**, "File: path", "path:"); a path line holding spaces is prose, not a path, and is rejected. Text
between blocks is ignored, so a block's content may hold code fences and diff lines. A SEARCH marker inside an
open block, a block with no divider or with two, a missing REPLACE marker, or a stray divider/REPLACE marker raise
ProposalRejected with the line number (1-based, in the proposal) and what was expected. An empty SEARCH section
means "create this file (or fill an empty one)". A trailing "\\r" on any line is dropped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.interfaces import ProposalRejected

_SEARCH = re.compile(r"^<{5,9} ?SEARCH\s*$")
_DIVIDER = re.compile(r"^={7}\s*$")
_REPLACE = re.compile(r"^>{5,9} ?REPLACE\s*$")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_DECORATION = re.compile(r"^(#+\s*|[-*]\s+|file(name)?:\s*|path:\s*)", re.I)


@dataclass
class EditBlock:
    path: str
    search: list[str] = field(default_factory=list)  # lines, without line breaks
    replace: list[str] = field(default_factory=list)
    line: int = 0  # 1-based line of the SEARCH marker in the proposal
    index: int = 0  # 1-based position among the proposal's blocks

    def describe(self) -> str:
        return f"edit {self.index} ({self.path}, proposal line {self.line})"


def has_edit_markers(text: str) -> bool:
    return any(_SEARCH.match(line.rstrip("\r")) for line in text.split("\n"))


def _path_above(lines: list[str], index: int, previous: EditBlock | None) -> str:
    for j in range(index - 1, -1, -1):
        candidate = lines[j].strip()
        if not candidate or _FENCE.match(candidate):
            continue
        if _REPLACE.match(candidate) and previous is not None:
            return previous.path  # consecutive blocks for one file may leave out the repeated path
        path = _DECORATION.sub("", candidate).strip("`*\"' \t").rstrip(":").strip("`*\"' \t")
        if not path or any(ch.isspace() for ch in path):
            raise ProposalRejected(
                f"line {j + 1}: expected the file path on the line above '<<<<<<< SEARCH' (line {index + 1}), "
                f"got {candidate[:120]!r}")
        return path
    raise ProposalRejected(f"line {index + 1}: '<<<<<<< SEARCH' has no file path on a line above it")


def parse_edits(text: str) -> list[EditBlock]:
    """Every edit block, in order. Raises ProposalRejected for malformed blocks or when there is none."""
    lines = [line.rstrip("\r") for line in text.split("\n")]
    blocks: list[EditBlock] = []
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        if _DIVIDER.match(line) or _REPLACE.match(line):
            raise ProposalRejected(f"line {i + 1}: {line.strip()!r} outside an edit block; expected "
                                   "'PATH', '<<<<<<< SEARCH', old lines, '=======', new lines, '>>>>>>> REPLACE'")
        if not _SEARCH.match(line):
            i += 1
            continue
        path = _path_above(lines, i, blocks[-1] if blocks else None)
        start = i
        dividers: list[int] = []
        end = None
        for j in range(i + 1, n):
            if _SEARCH.match(lines[j]):
                raise ProposalRejected(f"line {j + 1}: '<<<<<<< SEARCH' inside the block opened at line {start + 1}; "
                                       "expected '=======' and then '>>>>>>> REPLACE' first")
            if _DIVIDER.match(lines[j]):
                dividers.append(j)
            elif _REPLACE.match(lines[j]):
                end = j
                break
        if end is None:
            missing = "'>>>>>>> REPLACE'" if dividers else "'=======' and '>>>>>>> REPLACE'"
            raise ProposalRejected(f"line {start + 1}: the edit block for {path} is not closed; expected {missing} "
                                   "before the end of the text")
        if len(dividers) != 1:
            what = "no '=======' line" if not dividers else (
                f"{len(dividers)} '=======' lines (lines {', '.join(str(d + 1) for d in dividers)}); "
                "cannot tell where SEARCH ends — use a unified diff for files holding such lines")
            raise ProposalRejected(f"line {start + 1}: the edit block for {path} has {what}")
        divider = dividers[0]
        blocks.append(EditBlock(path, lines[start + 1:divider], lines[divider + 1:end], line=start + 1,
                                index=len(blocks) + 1))
        i = end + 1
    if not blocks:
        raise ProposalRejected("no edit block found: expected 'PATH', '<<<<<<< SEARCH', old lines, '=======', "
                               "new lines, '>>>>>>> REPLACE'")
    return blocks
