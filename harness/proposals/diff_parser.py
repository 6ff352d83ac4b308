"""Unified-diff parsing by the diff's own grammar, never by Markdown fences.

Policy:
- A file section starts at ``diff --git`` or at a ``--- PATH`` line directly followed by ``+++ PATH``. Lines
  outside sections and hunks (prose, code fences) are ignored; inside a hunk every line is content, so a hunk
  body may hold ````` fences, ``@@`` lines or ``--- x`` lines of the file being changed.
- A hunk body is read by the counts in its ``@@ -a,b +c,d @@`` header. Models often miscount, so where the body
  clearly ends early (a line that cannot be a hunk line) or clearly goes on (more ``+``/``-`` lines right after
  it), the hunk is recounted and ``Hunk.recounted`` is set; an empty line inside the counted body is a blank
  context line (trailing spaces are often stripped). Anything else malformed raises ProposalRejected naming the
  line (1-based, in the proposal text) and what was expected there.
- Paths lose one ``a/`` or ``b/`` prefix; ``/dev/null`` becomes None; absolute and ``../`` paths are kept as
  written (the harness vets them). A trailing "\\r" (CRLF proposal text) is dropped from header lines and kept in
  content lines; the applier compares lines without it.
- ``render_patch`` writes the parsed patches back as a clean git patch (fixed counts, a/ b/ prefixes, binary
  blocks as given) for ``git apply``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.interfaces import ProposalRejected

_HUNK_HEADER = re.compile(r"^@@+ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@+(.*)$")
_EXTENDED_HEADER = ("old mode ", "new mode ", "deleted file mode ", "new file mode ", "similarity index ",
                    "dissimilarity index ", "rename from ", "rename to ", "copy from ", "copy to ", "index ")
_BINARY_BLOCK = re.compile(r"^(literal|delta) \d+$")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "r": "\r", "v": "\v"}


@dataclass
class HunkLine:
    tag: str  # " " context, "-" removed, "+" added
    text: str  # without the tag and the line break
    no_newline: bool = False  # followed by "\ No newline at end of file"


@dataclass
class Hunk:
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    section: str = ""  # text after the closing @@ (a function name, usually)
    lines: list[HunkLine] = field(default_factory=list)
    line: int = 0  # 1-based line of the @@ header in the proposal
    recounted: bool = False

    @property
    def header(self) -> str:
        return f"@@ -{self.old_start},{self.old_count} +{self.new_start},{self.new_count} @@"

    @property
    def old_lines(self) -> list[str]:
        return [hl.text.rstrip("\r") for hl in self.lines if hl.tag != "+"]

    @property
    def new_lines(self) -> list[str]:
        return [hl.text.rstrip("\r") for hl in self.lines if hl.tag != "-"]

    @property
    def old_no_newline(self) -> bool:
        side = [hl for hl in self.lines if hl.tag != "+"]
        return bool(side) and side[-1].no_newline

    @property
    def new_no_newline(self) -> bool:
        side = [hl for hl in self.lines if hl.tag != "-"]
        return bool(side) and side[-1].no_newline

    def recount(self) -> None:
        self.old_count = sum(1 for hl in self.lines if hl.tag != "+")
        self.new_count = sum(1 for hl in self.lines if hl.tag != "-")


@dataclass
class FilePatch:
    old_path: str | None  # None: the file is created (/dev/null)
    new_path: str | None  # None: the file is deleted
    hunks: list[Hunk] = field(default_factory=list)
    old_mode: str | None = None
    new_mode: str | None = None
    rename: bool = False
    binary: bool = False
    binary_lines: list[str] = field(default_factory=list)  # "GIT binary patch" and its blocks, verbatim
    index_line: str | None = None  # kept: git needs full hashes to apply a binary patch
    line: int = 0  # 1-based line of the section header in the proposal
    has_file_header: bool = False  # saw "--- / +++"

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or ""

    @property
    def is_new(self) -> bool:
        return self.old_path is None

    @property
    def is_deleted(self) -> bool:
        return self.new_path is None

    @property
    def is_rename(self) -> bool:
        return self.old_path is not None and self.new_path is not None and self.old_path != self.new_path

    def describe(self) -> str:
        if self.is_new:
            return f"create {self.new_path}"
        if self.is_deleted:
            return f"delete {self.old_path}"
        if self.is_rename:
            return f"rename {self.old_path} -> {self.new_path}"
        return f"modify {self.path}"


def _unquote(path: str) -> str:
    if len(path) < 2 or not (path.startswith('"') and path.endswith('"')):
        return path
    body, out, i = path[1:-1], bytearray(), 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in "01234567" and re.match(r"[0-7]{3}", body[i + 1:i + 4]):
                out.append(int(body[i + 1:i + 4], 8))
                i += 4
                continue
            out.extend(_ESCAPES.get(nxt, nxt).encode())
            i += 2
            continue
        out.extend(ch.encode())
        i += 1
    return out.decode("utf-8", errors="replace")


def _strip_prefix(path: str) -> str:
    return path[2:] if path.startswith(("a/", "b/")) and len(path) > 2 else path


def _header_path(raw: str) -> str | None:
    """The path of a ``--- `` / ``+++ `` line's remainder; None for /dev/null."""
    path = raw.split("\t", 1)[0].strip() if not raw.startswith('"') else raw.strip()
    path = _unquote(path)
    if path == "/dev/null":
        return None
    return _strip_prefix(path)


def _git_header_paths(rest: str) -> tuple[str, str] | None:
    rest = rest.strip()
    if rest.startswith('"'):
        m = re.match(r'^("(?:[^"\\]|\\.)*")\s+(.*)$', rest)
        if m:
            return _strip_prefix(_unquote(m.group(1))), _strip_prefix(_unquote(m.group(2)))
        return None
    mid = (len(rest) - 1) // 2
    if len(rest) % 2 == 1 and rest[mid] == " " and _strip_prefix(rest[:mid]) == _strip_prefix(rest[mid + 1:]):
        return _strip_prefix(rest[:mid]), _strip_prefix(rest[mid + 1:])
    split = rest.find(" b/")
    if split < 0:
        split = rest.find(" ")
    if split < 0:
        return None
    return _strip_prefix(rest[:split]), _strip_prefix(_unquote(rest[split + 1:]))


def _is_file_header(lines: list[str], i: int) -> bool:
    if lines[i].startswith("diff --git "):
        return True
    return lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")


def _is_next_section(lines: list[str], i: int) -> bool:
    """Inside a hunk, a '--- '/'+++ ' pair is only a new file header when a hunk header follows it: otherwise it
    is a removed '-- x' line and an added '++ y' line (SQL comments, C increments)."""
    return _is_file_header(lines, i) and (lines[i].startswith("diff --git ") or
                                          (i + 2 < len(lines) and lines[i + 2].startswith("@@")))


def _read_hunk(lines: list[str], i: int, hunk: Hunk) -> int:
    """Fill ``hunk`` from the body starting at index ``i``; returns the index after the body."""
    old_seen = new_seen = 0
    blank_tail = 0  # empty lines read as blank context at the end of the body so far
    n = len(lines)
    while i < n and (old_seen < hunk.old_count or new_seen < hunk.new_count):
        raw = lines[i]
        if raw.startswith("\\"):
            if hunk.lines:
                hunk.lines[-1].no_newline = True
            i += 1
            continue
        if raw.rstrip("\r") == "":
            hunk.lines.append(HunkLine(" ", ""))
            blank_tail += 1
        elif raw[0] in " +-" and not _is_next_section(lines, i):
            hunk.lines.append(HunkLine(raw[0], raw[1:]))
            blank_tail = 0
        else:
            break
        old_seen += raw[:1] != "+"
        new_seen += raw[:1] != "-"
        i += 1
    if i < n and lines[i].startswith("\\") and hunk.lines:
        hunk.lines[-1].no_newline = True
        i += 1
    if old_seen < hunk.old_count or new_seen < hunk.new_count:
        if blank_tail:  # empty lines after a short body are separators, not content
            del hunk.lines[-blank_tail:]
            i -= blank_tail
        hunk.recounted = True
    elif old_seen != hunk.old_count or new_seen != hunk.new_count:
        hunk.recounted = True  # one side overshot while the other was still short
    else:  # the counts are satisfied; a run of change lines right after the body means they were too small
        j, extra = i, []
        while j < n and lines[j][:1] in (" ", "+", "-") and lines[j].rstrip("\r") and not _is_next_section(lines, j):
            extra.append(HunkLine(lines[j][0], lines[j][1:]))
            j += 1
            if j < n and lines[j].startswith("\\"):
                extra[-1].no_newline = True
                j += 1
        if any(hl.tag != " " for hl in extra):
            hunk.lines.extend(extra)
            hunk.recounted = True
            i = j
    if not hunk.lines:
        raise ProposalRejected(
            f"line {hunk.line}: hunk {hunk.header} has no body; expected lines starting with ' ', '-' or '+' after it")
    if hunk.recounted:
        hunk.recount()
    return i


def parse_diff(text: str) -> list[FilePatch]:
    """Every file section of a unified (optionally git-extended) diff, in order. Raises ProposalRejected."""
    lines = text.split("\n")
    patches: list[FilePatch] = []
    current: FilePatch | None = None
    i, n = 0, len(lines)
    while i < n:
        line = lines[i].rstrip("\r")
        if line.startswith("diff --git "):
            paths = _git_header_paths(line[len("diff --git "):])
            if paths is None:
                raise ProposalRejected(f"line {i + 1}: expected 'diff --git a/PATH b/PATH', got {line[:120]!r}")
            current = FilePatch(paths[0], paths[1], line=i + 1)
            patches.append(current)
            i += 1
            while i < n:
                ext = lines[i].rstrip("\r")
                if ext.startswith("new file mode "):
                    current.old_path, current.new_mode = None, ext.split()[-1]
                elif ext.startswith("deleted file mode "):
                    current.new_path, current.old_mode = None, ext.split()[-1]
                elif ext.startswith("old mode "):
                    current.old_mode = ext.split()[-1]
                elif ext.startswith("new mode "):
                    current.new_mode = ext.split()[-1]
                elif ext.startswith(("rename from ", "copy from ")):
                    current.old_path, current.rename = _unquote(ext.split(" ", 2)[2]), True
                elif ext.startswith(("rename to ", "copy to ")):
                    current.new_path, current.rename = _unquote(ext.split(" ", 2)[2]), True
                elif ext.startswith("index "):
                    current.index_line = ext
                elif ext.startswith(_EXTENDED_HEADER):
                    pass
                elif ext.startswith("Binary files "):
                    current.binary = True
                elif ext == "GIT binary patch":
                    current.binary = True
                    current.binary_lines.append(ext)
                    i += 1
                    for _block in range(2):  # forward block, then the optional reverse block
                        if i >= n or not _BINARY_BLOCK.match(lines[i].rstrip("\r")):
                            break
                        while i < n and lines[i].rstrip("\r"):
                            current.binary_lines.append(lines[i].rstrip("\r"))
                            i += 1
                        current.binary_lines.append("")
                        i += 1
                    continue
                else:
                    break
                i += 1
            continue
        if _is_file_header(lines, i):
            old, new = _header_path(line[4:]), _header_path(lines[i + 1].rstrip("\r")[4:])
            if current is not None and not current.has_file_header and not current.hunks and not current.binary \
                    and patches and patches[-1] is current:
                for side, header_path, section_path in (("---", old, current.old_path),
                                                        ("+++", new, current.new_path)):
                    if header_path is not None and section_path is not None and header_path != section_path:
                        raise ProposalRejected(
                            f"line {i + 1 + (side == '+++')}: '{side}' names {header_path!r} but the section "
                            f"header at line {current.line} names {section_path!r}; expected the same path")
                current.old_path, current.new_path = old, new
            else:
                current = FilePatch(old, new, line=i + 1)
                patches.append(current)
            if old is None and new is None:
                raise ProposalRejected(f"line {i + 1}: both sides of the file header are /dev/null")
            current.has_file_header = True
            i += 2
            continue
        if line.startswith("@@"):
            m = _HUNK_HEADER.match(line)
            if not m:
                raise ProposalRejected(
                    f"line {i + 1}: malformed hunk header {line[:120]!r}; expected '@@ -START,COUNT +START,COUNT @@'")
            if current is None:
                raise ProposalRejected(
                    f"line {i + 1}: hunk header before any file header; expected '--- a/PATH' and '+++ b/PATH' "
                    "(or 'diff --git a/PATH b/PATH') above it")
            hunk = Hunk(int(m.group(1)), int(m.group(2) or 1), int(m.group(3)), int(m.group(4) or 1),
                        section=m.group(5), line=i + 1)
            i = _read_hunk(lines, i + 1, hunk)
            current.hunks.append(hunk)
            continue
        i += 1
    if not patches:
        raise ProposalRejected("no diff found: expected a 'diff --git a/PATH b/PATH' line or a '--- a/PATH' line "
                               "followed by '+++ b/PATH', then '@@ -START,COUNT +START,COUNT @@' hunks")
    for fp in patches:
        if not fp.hunks and not fp.binary and not fp.is_new and not fp.is_deleted and not fp.rename \
                and fp.old_mode == fp.new_mode:
            raise ProposalRejected(f"line {fp.line}: the section for {fp.path} has no hunks; expected "
                                   "'@@ -START,COUNT +START,COUNT @@' followed by ' ', '-' and '+' lines")
        if fp.is_new and any(hl.tag != "+" for h in fp.hunks for hl in h.lines):
            bad = next(h for h in fp.hunks if any(hl.tag != "+" for hl in h.lines))
            raise ProposalRejected(f"line {bad.line}: {fp.new_path} is a new file (from /dev/null), so its hunk "
                                   "may only hold '+' lines")
    return patches


def _quote_path(path: str) -> str:
    if re.search(r'[\s"\\\x00-\x1f\x7f]', path) or not path.isascii():
        body = "".join(_quote_char(ch) for ch in path)
        return f'"{body}"'
    return path


def _quote_char(ch: str) -> str:
    reverse = {v: k for k, v in _ESCAPES.items()}
    if ch in reverse and ch != " ":
        return "\\" + reverse[ch]
    if ch.isascii() and ch.isprintable():
        return ch
    return "".join(f"\\{b:03o}" for b in ch.encode())


def _prefixed(prefix: str, path: str) -> str:
    quoted = _quote_path(path)
    return f'"{prefix}{quoted[1:]}' if quoted.startswith('"') else prefix + quoted


def render_patch(patches: list[FilePatch]) -> str:
    """A clean git patch for ``git apply``: recounted hunks, a/ b/ prefixes, extended headers, binary blocks."""
    out: list[str] = []
    for fp in patches:
        a = fp.old_path if fp.old_path is not None else fp.new_path
        b = fp.new_path if fp.new_path is not None else fp.old_path
        out.append(f"diff --git {_prefixed('a/', a)} {_prefixed('b/', b)}")
        if fp.is_new:
            out.append(f"new file mode {fp.new_mode or '100644'}")
        elif fp.is_deleted:
            out.append(f"deleted file mode {fp.old_mode or '100644'}")
        elif fp.old_mode and fp.new_mode and fp.old_mode != fp.new_mode:
            out += [f"old mode {fp.old_mode}", f"new mode {fp.new_mode}"]
        if fp.is_rename:
            out += [f"rename from {_quote_path(fp.old_path)}", f"rename to {_quote_path(fp.new_path)}"]
        if fp.binary:
            if fp.index_line:
                out.append(fp.index_line)
            out += fp.binary_lines or [f"Binary files {_prefixed('a/', a)} and {_prefixed('b/', b)} differ"]
            continue
        if fp.hunks:
            out.append("--- " + ("/dev/null" if fp.old_path is None else _prefixed("a/", fp.old_path)))
            out.append("+++ " + ("/dev/null" if fp.new_path is None else _prefixed("b/", fp.new_path)))
        for h in fp.hunks:
            old_start = h.old_start if h.old_count else max(h.old_start, 0)
            out.append(f"@@ -{old_start},{h.old_count} +{h.new_start},{h.new_count} @@{h.section}")
            for hl in h.lines:
                out.append(hl.tag + hl.text)
                if hl.no_newline:
                    out.append("\\ No newline at end of file")
    return "\n".join(out) + "\n"
