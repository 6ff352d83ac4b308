"""Turn a chat answer into a Proposal: find the edit blocks or the unified diff in it, by their own markers.

Policy: extraction follows the edit-block markers (``<<<<<<< SEARCH`` / ``=======`` / ``>>>>>>> REPLACE`` at the
start of a line) and the diff's line grammar (headers, ``@@`` hunks, lines starting with space, ``+``, ``-`` or
``\\``), never Markdown fence pairing, so a code fence inside an edited Markdown file or docstring survives.
- Edit blocks win when present (a diff inside a REPLACE section is file content). Each block is emitted in the
  canonical form ``path\\n<<<<<<< SEARCH\\n...\\n=======\\n...\\n>>>>>>> REPLACE\\n``; the path is the nearest
  non-blank, non-fence line above the SEARCH marker. An unterminated block is passed on as-is (kind "edits") so the
  applier can say what is wrong with it.
- Otherwise every diff segment (``diff --git`` or a ``--- `` line followed by ``+++ ``) is taken up to the first
  line that cannot belong to a diff (a closing fence, prose); segments are joined. Validity (hunk counts, context)
  is the applier's job: a malformed diff is still kind "diff".
- Nothing found: kind "empty".
"""
from __future__ import annotations

import re

from harness.interfaces import Proposal

_SEARCH = re.compile(r"^<{7} ?SEARCH\s*$")
_DIVIDER = re.compile(r"^={7}\s*$")
_REPLACE = re.compile(r"^>{7} ?REPLACE\s*$")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_DIFF_HEADER = re.compile(r"^(diff --git |index [0-9a-f]+\.\.|(old|new|deleted file|new file) mode |similarity index |"
                          r"dissimilarity index |rename (from|to) |copy (from|to) |Binary files |GIT binary patch)")
_HUNK = re.compile(r"^@@ -\d+(,\d+)? \+\d+(,\d+)? @@")


def proposal_from_text(text: str) -> Proposal:
    lines = text.replace("\r\n", "\n").split("\n")
    edits = _extract_edit_blocks(lines)
    if edits:
        return Proposal(kind="edits", text=edits)
    diff = _extract_diff(lines)
    if diff:
        return Proposal(kind="diff", text=diff)
    return Proposal(kind="empty", text="")


def _path_above(lines: list[str], index: int) -> str:
    for j in range(index - 1, -1, -1):
        candidate = lines[j].strip()
        if not candidate or _FENCE.match(candidate):
            continue
        # Models decorate the path: "`path`", "**path**", "File: path", "path:".
        candidate = re.sub(r"^(#+\s*|file:\s*|path:\s*)", "", candidate, flags=re.I)
        return candidate.strip("`*: \t")
    return ""


def _extract_edit_blocks(lines: list[str]) -> str:
    blocks: list[str] = []
    i = 0
    while i < len(lines):
        if not _SEARCH.match(lines[i]):
            i += 1
            continue
        path = _path_above(lines, i)
        divider = next((j for j in range(i + 1, len(lines)) if _DIVIDER.match(lines[j])), None)
        end = None
        if divider is not None:
            end = next((j for j in range(divider + 1, len(lines)) if _REPLACE.match(lines[j])), None)
        if divider is None or end is None:  # unterminated: hand the rest on for the applier's error message
            blocks.append("\n".join([path] + lines[i:]).rstrip("\n") + "\n")
            break
        search, replace = lines[i + 1:divider], lines[divider + 1:end]
        block = [path, "<<<<<<< SEARCH", *search, "=======", *replace, ">>>>>>> REPLACE"]
        blocks.append("\n".join(block) + "\n")
        i = end + 1
    return "".join(blocks)


def _diff_starts_at(lines: list[str], i: int) -> bool:
    line = lines[i]
    if line.startswith("diff --git "):
        return True
    return line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")


def _hunk_counts(line: str) -> tuple[int, int]:
    m = _HUNK.match(line)
    assert m is not None
    old = int(m.group(1)[1:]) if m.group(1) else 1
    new = int(m.group(2)[1:]) if m.group(2) else 1
    return old, new


def _extract_diff(lines: list[str]) -> str:
    """Each segment runs while lines fit the diff grammar. Inside a hunk (by its @@ counts) a bare blank line is a
    context line whose space was dropped; once the counts are used up, a blank line ends the segment (prose such as
    "- a bullet" after it is not taken), but contiguous hunk-like lines are kept so a malformed hunk reaches the
    applier whole rather than silently cut."""
    segments: list[list[str]] = []
    i = 0
    while i < len(lines):
        if not _diff_starts_at(lines, i):
            i += 1
            continue
        segment: list[str] = []
        old_left = new_left = 0
        while i < len(lines):
            line = lines[i]
            in_hunk = old_left > 0 or new_left > 0
            if _HUNK.match(line):
                old_left, new_left = _hunk_counts(line)
            elif in_hunk and line[:1] in (" ", "+", "-", "\\"):
                old_left -= line[:1] in (" ", "-")
                new_left -= line[:1] in (" ", "+")
            elif in_hunk and line == "" and old_left > 0 and new_left > 0:
                line = " "
                old_left, new_left = old_left - 1, new_left - 1
            elif _DIFF_HEADER.match(line) or _diff_starts_at(lines, i) or (
                    segment and segment[-1].startswith("--- ") and line.startswith("+++ ")):
                old_left = new_left = 0
            elif line[:1] in (" ", "+", "-", "\\"):  # past the hunk's counts: a malformed hunk, kept whole
                pass
            else:
                break
            segment.append(line)
            i += 1
        segments.append(segment)
    return "".join("\n".join(s) + "\n" for s in segments if s)
