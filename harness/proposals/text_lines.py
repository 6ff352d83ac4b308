"""A text file held as lines, each with its own line ending, so an edit keeps what it does not touch.

Invariant: ``TextFile.decode(data).encode() == data`` for every UTF-8 input (byte-exact round trip: CRLF, LF,
mixed endings, a missing final newline and a UTF-8 BOM all survive). ``lines[i]`` is the content without its
ending; ``ends[i]`` is "\\n", "\\r\\n" or "" (only the last line may lack an ending; a non-last line whose ending
is "" is written with the file's dominant ending). Lines an edit inserts take the dominant ending.
"""
from __future__ import annotations

from dataclasses import dataclass, field

_BOM = "\ufeff"


@dataclass
class TextFile:
    lines: list[str] = field(default_factory=list)
    ends: list[str] = field(default_factory=list)
    bom: bool = False

    @classmethod
    def decode(cls, data: bytes) -> "TextFile":
        """Raises UnicodeDecodeError for bytes that are not UTF-8 (the caller reports the file as not text)."""
        text = data.decode("utf-8")
        bom = text.startswith(_BOM)
        return cls.from_text(text[1:] if bom else text, bom=bom)

    @classmethod
    def from_text(cls, text: str, bom: bool = False) -> "TextFile":
        lines: list[str] = []
        ends: list[str] = []
        if text:
            pieces = text.split("\n")  # not splitlines(): form feeds and U+2028 are content, not line breaks
            for piece in pieces[:-1]:
                if piece.endswith("\r"):
                    lines.append(piece[:-1])
                    ends.append("\r\n")
                else:
                    lines.append(piece)
                    ends.append("\n")
            if pieces[-1]:
                lines.append(pieces[-1])
                ends.append("")
        return cls(lines, ends, bom)

    @classmethod
    def from_lines(cls, lines: list[str], eol: str = "\n", final_newline: bool = True) -> "TextFile":
        ends = [eol] * len(lines)
        if lines and not final_newline:
            ends[-1] = ""
        return cls(list(lines), ends)

    @property
    def eol(self) -> str:
        """The dominant line ending ("\\n" when there is none yet)."""
        crlf = self.ends.count("\r\n")
        return "\r\n" if crlf > len(self.ends) - crlf - self.ends.count("") else "\n"

    def copy(self) -> "TextFile":
        return TextFile(list(self.lines), list(self.ends), self.bom)

    def encode(self) -> bytes:
        eol = self.eol
        last = len(self.lines) - 1
        parts = [_BOM] if self.bom else []
        for i, (line, end) in enumerate(zip(self.lines, self.ends)):
            parts.append(line)
            parts.append(end if end or i == last else eol)
        return "".join(parts).encode("utf-8")
