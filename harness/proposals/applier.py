"""Applying a proposal to a tree: strict first, then tolerant, all-or-nothing, precise about what failed.

Policy:
- Diffs: strict is ``git apply --check`` then ``git apply`` of the re-rendered patch, in ``root`` (exact context,
  line offsets allowed, binary patches supported). When root is not the top of its own git worktree, strict is our
  own matcher at the "exact" level. If strict fails, the tolerant pass locates each hunk nearest its (shifted) line
  number at the "exact", then "whitespace", then "indentation" level (see line_matching), keeps the file's own text
  for context lines, re-indents added lines by the context's indentation shift, and keeps line endings and the
  final-newline state unless the hunk's "\\ No newline" markers say otherwise.
- Edit blocks: each SEARCH must match exactly one place, trying the three levels in order; a level with two or more
  matches is an "ambiguous" failure (never a guess). Empty SEARCH creates a file or fills an empty one.
- "Already applied" (the new lines are present where the old ones would be, or the old lines are gone and the new
  ones present) counts as success and is reported separately. Nothing that matched nothing is ever skipped.
- All-or-nothing: every change is computed in memory first; files are written only when nothing failed, and a
  failed write restores every original (Workspace.commit). Paths are vetted by Workspace.safe_target.
"""
from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from harness.interfaces import ProposalRejected
from harness.proposals.apply_report import ApplyFailure, ApplyReport
from harness.proposals.diff_parser import FilePatch, Hunk, parse_diff, render_patch
from harness.proposals.edit_blocks import EditBlock, has_edit_markers, parse_edits
from harness.proposals.line_matching import LEVELS, closest_block, find_block, indent_shift, line_key, reindent
from harness.proposals.text_lines import TextFile
from harness.proposals.workspace import NotText, Originals, Workspace, safe_target

GIT_TIMEOUT_S = 60.0
_LEVEL_NOTE = {"exact": "", "whitespace": ", whitespace-insensitive match",
               "indentation": ", indentation-insensitive match"}


class _Outcome:
    """Collects one pass's results."""

    def __init__(self) -> None:
        self.applied: list[str] = []
        self.already: list[str] = []
        self.failures: list[ApplyFailure] = []
        self.levels_used: set[str] = set()


# ---------------------------------------------------------------------------------------------------------------
# Shared matching


def _locate(lines: list[str], old: list[str], new: list[str], hint: int, levels: tuple[str, ...],
            unique: bool) -> tuple[str, int, str, list[int]]:
    """Where the change goes: ("apply", start, level, []), ("already", start, level, []),
    ("ambiguous", -1, level, starts) or ("missing", -1, "", [])."""
    for level in levels:
        olds = find_block(lines, old, level)
        news = find_block(lines, new, level) if new and new != old else []
        for r in news:
            if any(r <= s and s + len(old) <= r + len(new) for s in olds):
                return "already", r, level, []
        if new == old and olds:
            return "already", olds[0], level, []
        if olds:
            if unique and len(olds) > 1:
                return "ambiguous", -1, level, olds
            return "apply", min(olds, key=lambda s: (abs(s - hint), s)), level, []
    if new:
        for level in levels:
            news = find_block(lines, new, level)
            if news:
                return "already", min(news, key=lambda s: (abs(s - hint), s)), level, []
    return "missing", -1, "", []


def _no_match(path: str, index: int, header: str, tf: TextFile, expected: list[str], hint: int,
              proposal_line: int, what: str) -> ApplyFailure:
    near = closest_block(tf.lines, expected, hint)
    closest = [(near[0] + k + 1, line) for k, line in enumerate(near[1])] if near else []
    reason = f"{what} not found in the file ({len(tf.lines)} lines), not even ignoring whitespace"
    return ApplyFailure(path, index, header, "no-match", reason, expected, closest, near[2] if near else None,
                        proposal_line)


# ---------------------------------------------------------------------------------------------------------------
# Diffs


def _apply_hunk(tf: TextFile, hunk: Hunk, start: int, level: str) -> None:
    old = hunk.old_lines
    matched = tf.lines[start:start + len(old)]
    shift = indent_shift(matched, old) if level != "exact" else None
    eol = tf.eol
    touches_end = start + len(old) == len(tf.lines)
    inherited_end = tf.ends[-1] if tf.lines else eol
    out_lines: list[str] = []
    out_ends: list[str] = []
    at = start
    for hl in hunk.lines:
        if hl.tag == " ":
            out_lines.append(tf.lines[at])
            out_ends.append(tf.ends[at])
            at += 1
        elif hl.tag == "-":
            at += 1
        else:
            out_lines.append(reindent(hl.text.rstrip("\r"), shift))
            out_ends.append(eol)
    if touches_end and out_lines:
        out_ends[-1] = "" if hunk.new_no_newline else (eol if hunk.old_no_newline else inherited_end)
    tf.lines[start:start + len(old)] = out_lines
    tf.ends[start:start + len(old)] = out_ends


def _hunk_name(fp: FilePatch, k: int, hunk: Hunk) -> str:
    return f"hunk {k}/{len(fp.hunks)} {hunk.header}"


def _apply_hunks(fp: FilePatch, path: str, tf: TextFile, levels: tuple[str, ...], out: _Outcome) -> bool:
    ok = True
    shift = 0
    for k, hunk in enumerate(fp.hunks, 1):
        old, new = hunk.old_lines, hunk.new_lines
        hint = max(0, (hunk.old_start - 1 if hunk.old_count else hunk.old_start) + shift)
        name = f"{path} {_hunk_name(fp, k, hunk)}"
        if not old:  # insertion without context: only the line number says where
            at = min(hint, len(tf.lines))
            present = tf.lines[at:at + len(new)]
            if [line_key(x, "whitespace") for x in present] == [line_key(x, "whitespace") for x in new]:
                out.already.append(name)
                continue
            tf.lines[at:at] = list(new)
            tf.ends[at:at] = [tf.eol] * len(new)
            if at + len(new) == len(tf.lines) and hunk.new_no_newline:
                tf.ends[-1] = ""
            out.applied.append(f"{name} inserted at line {at + 1}")
            shift += len(new)
            continue
        verdict, start, level, _ = _locate(tf.lines, old, new, hint, levels, unique=False)
        if verdict == "missing":
            out.failures.append(_no_match(path, k, _hunk_name(fp, k, hunk), tf, old, hint, hunk.line,
                                          "the hunk's context and removed lines were"))
            ok = False
            continue
        out.levels_used.add(level)
        shift = start - (hunk.old_start - 1) + len(new) - len(old)
        if verdict == "already":
            out.already.append(name)
            continue
        _apply_hunk(tf, hunk, start, level)
        offset = start - hint
        moved = f", offset {offset:+d} lines" if offset else ""
        out.applied.append(f"{name} at line {start + 1}{moved}{_LEVEL_NOTE[level]}")
    return ok


def _new_file_content(fp: FilePatch) -> TextFile:
    lines = [line for h in fp.hunks for line in h.new_lines]
    raw = [hl.text for h in fp.hunks for hl in h.lines]
    eol = "\r\n" if raw and all(t.endswith("\r") for t in raw) else "\n"
    final_newline = not (fp.hunks and fp.hunks[-1].new_no_newline)
    return TextFile.from_lines(lines, eol, final_newline)


def _mode_bits(mode: str | None) -> int | None:
    if mode == "100755":
        return 0o755
    if mode == "100644":
        return 0o644
    return None


def _same_text(a: TextFile, b: TextFile) -> bool:
    def strip(tf: TextFile) -> list[str]:
        keys = [line_key(x, "whitespace") for x in tf.lines]
        while keys and not keys[-1]:
            keys.pop()
        return keys
    return strip(a) == strip(b)


def _apply_file_patch(fp: FilePatch, ws: Workspace, levels: tuple[str, ...], out: _Outcome) -> None:
    path = fp.path
    if fp.binary:
        out.failures.append(ApplyFailure(path, 0, "binary patch", "binary",
                                         "binary patches apply only through git apply (strict), which did not apply it",
                                         proposal_line=fp.line))
        return
    try:
        if fp.is_new:
            content = _new_file_content(fp)
            existing = ws.read(fp.new_path)
            if existing is None:
                ws.stage(fp.new_path, content, _mode_bits(fp.new_mode))
                out.applied.append(f"create {fp.new_path} ({len(content.lines)} lines)")
            elif _same_text(existing, content):
                out.already.append(f"create {fp.new_path} (it exists with this content)")
            else:
                near = closest_block(existing.lines, content.lines)
                out.failures.append(ApplyFailure(
                    path, 1, "new file", "file-exists",
                    f"the diff creates {path} (from /dev/null) but it already exists ({len(existing.lines)} lines) "
                    "with other content; send a diff against its current content instead",
                    content.lines, [(near[0] + k + 1, x) for k, x in enumerate(near[1])] if near else [],
                    near[2] if near else None, fp.line))
            return
        source = fp.old_path
        tf = ws.read(source)
        renamed_already = False
        if tf is None:
            if fp.is_deleted:
                out.already.append(f"delete {source} (it does not exist)")
                return
            if fp.is_rename and ws.exists(fp.new_path):
                tf, renamed_already = ws.read(fp.new_path), True
            else:
                out.failures.append(ApplyFailure(path, 0, fp.describe(), "missing-file",
                                                 f"{source} does not exist", proposal_line=fp.line))
                return
        before = list(tf.lines), list(tf.ends)
        if not _apply_hunks(fp, fp.new_path if renamed_already else source, tf, levels, out):
            return
        if fp.is_deleted:
            if any(x.strip() for x in tf.lines):
                out.failures.append(ApplyFailure(
                    path, 0, fp.describe(), "leftover-lines",
                    f"the diff deletes {source} but the file has {len(tf.lines)} lines the hunks do not list",
                    closest=[(k + 1, x) for k, x in enumerate(tf.lines)], proposal_line=fp.line))
                return
            ws.stage(source, None)
            out.applied.append(f"delete {source}")
        elif fp.is_rename and not renamed_already:
            if ws.exists(fp.new_path):
                out.failures.append(ApplyFailure(path, 0, fp.describe(), "file-exists",
                                                 f"cannot rename onto {fp.new_path}: it already exists",
                                                 proposal_line=fp.line))
                return
            ws.stage(fp.new_path, tf, _mode_bits(fp.new_mode))
            ws.stage(source, None)
            out.applied.append(fp.describe())
        elif (tf.lines, tf.ends) != before or (fp.new_mode and fp.new_mode != fp.old_mode):
            ws.stage(fp.new_path, tf, _mode_bits(fp.new_mode))
            if fp.new_mode and fp.new_mode != fp.old_mode:
                out.applied.append(f"{fp.new_path}: mode {fp.old_mode} -> {fp.new_mode}")
    except NotText:
        out.failures.append(ApplyFailure(path, 0, fp.describe(), "not-text",
                                         f"{path} is not a UTF-8 text file; only git apply (strict) patches binaries",
                                         proposal_line=fp.line))


def _git_strict(root: Path, patches: list[FilePatch]) -> tuple[bool | None, str]:
    """(True, "") applied; (False, git's message) refused; (None, why) git cannot be used here."""
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True,
                             timeout=GIT_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"git unavailable: {exc}"
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != root.resolve():
        return None, "root is not the top of a git worktree"
    with tempfile.NamedTemporaryFile("w", suffix=".patch", delete=False, encoding="utf-8", newline="") as fh:
        fh.write(render_patch(patches))
        patch_file = fh.name
    originals = None
    try:
        for args in (["--check"], []):
            if not args:  # --check passed; git apply can still fail mid-way writing, and is then undone here
                originals = Originals(root, _diff_paths(patches))
            run = subprocess.run(["git", "apply", "--whitespace=nowarn", *args, patch_file], cwd=root,
                                 capture_output=True, text=True, timeout=GIT_TIMEOUT_S)
            if run.returncode != 0:
                if originals is not None:
                    originals.restore()
                return False, (run.stderr or run.stdout).strip()[:2000]
        return True, ""
    except (OSError, subprocess.TimeoutExpired) as exc:
        if originals is not None:
            originals.restore()
        return False, f"git apply failed to run: {exc}"
    finally:
        Path(patch_file).unlink(missing_ok=True)


def _diff_pass(patches: list[FilePatch], root: Path, levels: tuple[str, ...]) -> tuple[_Outcome, Workspace]:
    ws = Workspace(root)
    out = _Outcome()
    for fp in patches:
        _apply_file_patch(fp, ws, levels, out)
    return out, ws


def _strict_descriptions(patches: list[FilePatch]) -> list[str]:
    items = []
    for fp in patches:
        if fp.is_new or fp.is_deleted or fp.is_rename or fp.binary or not fp.hunks:
            items.append(fp.describe() + (" (binary)" if fp.binary else ""))
        items += [f"{fp.path} {_hunk_name(fp, k, h)}" for k, h in enumerate(fp.hunks, 1)
                  if not (fp.is_new or fp.is_deleted)]
    return items


def apply_diff(text: str, root: Path) -> ApplyReport:
    patches = parse_diff(text)
    touched = _diff_paths(patches)
    for rel in touched:
        safe_target(root, rel)
    warnings = [f"{fp.path} hunk {k} (proposal line {h.line}): header counts were wrong; recounted as {h.header}"
                for fp in patches for k, h in enumerate(fp.hunks, 1) if h.recounted]
    report = ApplyReport(ok=False, mode="none", kind="diff", touched=touched, warnings=warnings)
    strict, message = _git_strict(root, patches)
    if strict:
        report.ok, report.mode, report.applied = True, "strict", _strict_descriptions(patches)
        return report
    if strict is None:
        out, ws = _diff_pass(patches, root, ("exact",))
        if not out.failures and not out.already:
            ws.commit()
            report.ok, report.mode, report.applied = True, "strict", out.applied
            return report
    else:
        report.strict_error = message
    out, ws = _diff_pass(patches, root, LEVELS)
    return _finish(report, out, ws, strict_ok=False)


def _finish(report: ApplyReport, out: _Outcome, ws: Workspace, strict_ok: bool) -> ApplyReport:
    report.already_applied = out.already
    if out.failures:
        report.failures, report.would_apply = out.failures, out.applied
        return report
    ws.commit()
    report.ok, report.applied = True, out.applied
    report.mode = "strict" if strict_ok else "tolerant"
    return report


def _diff_paths(patches: list[FilePatch]) -> list[str]:
    seen: dict[str, None] = {}
    for fp in patches:
        for p in (fp.old_path, fp.new_path):
            if p is not None:
                seen.setdefault(p, None)
    return list(seen)


# ---------------------------------------------------------------------------------------------------------------
# Edit blocks


def _apply_edit(block: EditBlock, ws: Workspace, out: _Outcome) -> None:
    header = f"edit {block.index}"
    name = block.describe()
    try:
        tf = ws.read(block.path)
    except NotText:
        out.failures.append(ApplyFailure(block.path, block.index, header, "not-text",
                                         f"{block.path} is not a UTF-8 text file (binary data or a folder)",
                                         proposal_line=block.line))
        return
    if tf is None:
        if block.search:
            out.failures.append(ApplyFailure(
                block.path, block.index, header, "missing-file",
                f"{block.path} does not exist; to create it, leave the SEARCH section empty",
                block.search, proposal_line=block.line))
            return
        ws.stage(block.path, TextFile.from_lines(block.replace))
        out.applied.append(f"{name}: created the file")
        out.levels_used.add("exact")
        return
    if not block.search:
        if not any(x.strip() for x in tf.lines):
            final = TextFile.from_lines(block.replace, tf.eol)
            final.bom = tf.bom
            ws.stage(block.path, final)
            out.applied.append(f"{name}: filled the empty file")
            out.levels_used.add("exact")
        elif _same_text(tf, TextFile.from_lines(block.replace)) or find_block(tf.lines, block.replace, "whitespace"):
            out.already.append(f"{name} (the file already holds these lines)")
        else:
            out.failures.append(ApplyFailure(
                block.path, block.index, header, "not-empty",
                f"the SEARCH section is empty, which only creates a file or fills an empty one, but {block.path} "
                f"has {len(tf.lines)} lines; quote the lines to replace in SEARCH",
                [], [(k + 1, x) for k, x in enumerate(tf.lines[:8])], None, block.line))
        return
    search, replace = block.search, block.replace
    verdict, start, level, starts = _locate(tf.lines, search, replace, 0, LEVELS, unique=True)
    if verdict == "missing" and _trim_blank(search) and _trim_blank(search) != search:
        # models often add or drop a blank line at the edges of SEARCH; retry without them, on both sides
        search, replace = _trim_blank(search), _trim_blank(replace)
        verdict, start, level, starts = _locate(tf.lines, search, replace, 0, LEVELS, unique=True)
    if verdict == "missing":
        out.failures.append(_no_match(block.path, block.index, header, tf, block.search, 0, block.line,
                                      "the SEARCH lines were"))
        return
    if verdict == "ambiguous":
        where = ", ".join(str(s + 1) for s in starts[:10])
        out.failures.append(ApplyFailure(
            block.path, block.index, header, "ambiguous",
            f"ambiguous: {len(starts)} matches at lines {where} ({level} match); add surrounding lines to SEARCH "
            "so it matches exactly one place",
            block.search, [(s + 1, tf.lines[s]) for s in starts[:10]], None, block.line))
        return
    out.levels_used.add(level)
    if verdict == "already":
        out.already.append(f"{name} (found at line {start + 1})")
        return
    stop = start + len(search)
    shift = indent_shift(tf.lines[start:stop], search) if level != "exact" else None
    new_lines = [reindent(x, shift) for x in replace]
    new_ends = [tf.eol] * len(new_lines)
    if stop == len(tf.lines) and new_lines:
        new_ends[-1] = tf.ends[-1]
    tf.lines[start:stop] = new_lines
    tf.ends[start:stop] = new_ends
    ws.stage(block.path, tf)
    span = f"line {start + 1}" if stop - start == 1 else f"lines {start + 1}-{stop}"
    out.applied.append(f"{name}: replaced {span}{_LEVEL_NOTE[level]}")


def _trim_blank(lines: list[str]) -> list[str]:
    start, stop = 0, len(lines)
    while start < stop and not lines[start].strip():
        start += 1
    while stop > start and not lines[stop - 1].strip():
        stop -= 1
    return lines[start:stop]


def apply_edits(text: str, root: Path) -> ApplyReport:
    blocks = parse_edits(text)
    touched = list(dict.fromkeys(b.path for b in blocks))
    for rel in touched:
        safe_target(root, rel)
    ws = Workspace(root)
    out = _Outcome()
    for block in blocks:
        _apply_edit(block, ws, out)
    report = ApplyReport(ok=False, mode="none", kind="edits", touched=touched)
    return _finish(report, out, ws, strict_ok=out.levels_used <= {"exact"} and not out.already)


def apply_proposal(text: str, root: Path, kind: str) -> ApplyReport:
    """Apply ``text`` (kind "diff", "worktree" (a diff), "edits" or "empty") to the tree at ``root``.

    Returns a report (ok or not; on failure no file changed). Raises ProposalRejected for an unparsable proposal,
    an unknown kind, or a path that leaves the tree."""
    root = Path(root)
    if kind == "empty" or (not text.strip() and kind in ("diff", "worktree", "edits")):
        if text.strip():
            raise ProposalRejected("kind 'empty' with a non-empty proposal text")
        return ApplyReport(ok=True, mode="none", kind="empty")
    if kind in ("diff", "worktree"):
        return apply_diff(text, root)
    if kind == "edits":
        if not has_edit_markers(text) and re.search(r"^(diff --git |--- \S)", text, re.M):
            raise ProposalRejected("the proposal is a unified diff but was given as kind 'edits'")
        return apply_edits(text, root)
    raise ProposalRejected(f"unknown proposal kind {kind!r}; expected 'diff', 'edits', 'worktree' or 'empty'")


