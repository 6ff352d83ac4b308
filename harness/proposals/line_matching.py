"""Finding a block of lines in a file, at three strictness levels, and the closest lines when it is not there.

Levels, strictest first (every caller tries them in this order and reports the level it used):
- "exact": the lines are equal (line endings are never part of a line).
- "whitespace": equal after ignoring trailing whitespace and the width of inner whitespace runs; indentation counts.
- "indentation": equal after ignoring all leading, trailing and inner whitespace differences; the replacement is
  re-indented by the constant shift between the quoted and the real lines (``indent_shift``), when there is one.
Blank lines match blank lines at every level but "exact". Line numbers returned to people are 1-based.
"""
from __future__ import annotations

import difflib
import heapq
import re

LEVELS = ("exact", "whitespace", "indentation")
_LEADING_WS = re.compile(r"^[ \t]*")


def line_key(line: str, level: str) -> str:
    if level == "exact":
        return line
    if not line.strip():
        return ""
    if level == "whitespace":
        return _LEADING_WS.match(line).group(0) + " ".join(line.split())
    return " ".join(line.split())


def find_block(lines: list[str], block: list[str], level: str) -> list[int]:
    """Every 0-based start index at which ``block`` occurs in ``lines`` at ``level``. An empty block never matches."""
    if not block or len(block) > len(lines):
        return []
    keys = [line_key(line, level) for line in lines]
    wanted = [line_key(line, level) for line in block]
    width = len(wanted)
    return [i for i in range(len(keys) - width + 1) if keys[i] == wanted[0] and keys[i:i + width] == wanted]


def indent_shift(real: list[str], quoted: list[str]) -> tuple[str, str] | None:
    """``(remove, add)`` such that each non-blank real line's indentation is its quoted line's with the prefix
    ``remove`` dropped and ``add`` put in front; None when the indentation already agrees or differs unevenly."""
    pairs = [(_LEADING_WS.match(r).group(0), _LEADING_WS.match(q).group(0))
             for r, q in zip(real, quoted) if r.strip() and q.strip()]
    if not pairs or all(r == q for r, q in pairs):
        return None
    if all(r.endswith(q) for r, q in pairs):
        added = {r[:len(r) - len(q)] for r, q in pairs}
        if len(added) == 1:
            return "", added.pop()
    if all(q.endswith(r) for r, q in pairs):
        removed = {q[:len(q) - len(r)] for r, q in pairs}
        if len(removed) == 1:
            return removed.pop(), ""
    return None


def reindent(line: str, shift: tuple[str, str] | None) -> str:
    if shift is None or not line.strip():
        return line
    remove, add = shift
    if remove and line.startswith(remove):
        line = line[len(remove):]
    return add + line


def closest_block(lines: list[str], expected: list[str], hint: int = 0,
                  candidates: int = 24) -> tuple[int, list[str], float] | None:
    """The window of ``len(expected)`` lines most similar to ``expected``: ``(start index, lines, similarity 0..1)``.

    Cheap filters pick a few candidate windows (lines shared with the expected block; difflib's quick_ratio), then
    difflib's ratio ranks them; ties go to the window nearest ``hint``. None for an empty file or block."""
    if not lines or not expected:
        return None
    width = min(len(expected), len(lines))
    starts = range(len(lines) - width + 1)
    wanted = {line_key(line, "indentation") for line in expected if line.strip()}
    hits = [0]
    for line in lines:
        hits.append(hits[-1] + (1 if line.strip() and line_key(line, "indentation") in wanted else 0))
    by_hits = heapq.nlargest(candidates, starts, key=lambda s: (hits[s + width] - hits[s], -abs(s - hint)))
    target = "\n".join(line.strip() for line in expected)
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(target)

    def window_text(start: int) -> str:
        return "\n".join(line.strip() for line in lines[start:start + width])

    pool = set(by_hits)
    if len(starts) <= 20000:
        def quick(start: int) -> float:
            matcher.set_seq1(window_text(start))
            return matcher.quick_ratio()
        pool.update(heapq.nlargest(candidates, starts, key=quick))
    best: tuple[float, int, int] | None = None
    for start in pool:
        matcher.set_seq1(window_text(start))
        score = matcher.ratio()
        rank = (score, -abs(start - hint), -start)
        if best is None or rank > best:
            best = rank
    assert best is not None
    start = best[2] * -1
    return start, lines[start:start + width], round(best[0], 3)
