"""Applying unified diffs: strict (git apply), tolerant fallbacks, already-applied, failures and rollback."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.interfaces import ProposalRejected
from harness.proposals import apply_proposal, failure_signature
from harness.proposals import workspace as workspace_module

from .conftest import git, snapshot, write

BASE = "".join(f"line {k}\n" for k in range(1, 11))


def diff_for(path: str, old_start: int, body: list[str], old_count: int, new_count: int) -> str:
    return (f"--- a/{path}\n+++ b/{path}\n@@ -{old_start},{old_count} +{old_start},{new_count} @@\n"
            + "\n".join(body) + "\n")


CHANGE_5 = diff_for("f.txt", 4, [" line 4", "-line 5", "+line five", " line 6"], 3, 3)


def test_strict_diff_applies_with_git(repo: Path) -> None:
    write(repo, {"f.txt": BASE})
    report = apply_proposal(CHANGE_5, repo, "diff")
    assert report.ok and report.mode == "strict", report.feedback()
    assert (repo / "f.txt").read_text() == BASE.replace("line 5\n", "line five\n")
    assert report.touched == ["f.txt"]
    assert failure_signature(report) == ""


def test_offset_line_numbers_apply_tolerantly_outside_git(tmp_path: Path) -> None:
    # Not a git worktree: the strict pass is our exact matcher; the header's line numbers are 27 lines off.
    write(tmp_path, {"f.txt": "header\n" * 3 + BASE})
    report = apply_proposal(diff_for("f.txt", 34, [" line 4", "-line 5", "+line five", " line 6"], 3, 3),
                            tmp_path, "diff")
    assert report.ok, report.feedback()
    assert (tmp_path / "f.txt").read_text() == "header\n" * 3 + BASE.replace("line 5\n", "line five\n")
    assert "offset -27" in report.applied[0]


def test_offset_plus_whitespace_drift_uses_tolerant_mode(repo: Path) -> None:
    source = "def f(x):\n    y = x  \n    if  y:\n        return 1\n    return 0\n"
    write(repo, {"a/m.py": "# pad\n" * 7 + source})
    diff = diff_for("a/m.py", 1, [" def f(x):", "     y = x", "-    if y:", "-        return 1",
                                  "+    if y > 0:", "+        return 2", "     return 0"], 5, 5)
    report = apply_proposal(diff, repo, "diff")
    assert report.ok and report.mode == "tolerant", report.feedback()
    assert report.strict_error  # git said why it refused
    text = (repo / "a/m.py").read_text()
    # the file's own context lines are kept byte-for-byte; the changed lines are the diff's
    assert text == "# pad\n" * 7 + "def f(x):\n    y = x  \n    if y > 0:\n        return 2\n    return 0\n"
    assert "whitespace-insensitive" in report.applied[0] and "offset +7" in report.applied[0]


def test_indentation_shift_reindents_added_lines(tmp_path: Path) -> None:
    write(tmp_path, {"m.py": "class A:\n    def f(self):\n        a = 1\n        return a\n"})
    diff = diff_for("m.py", 2, [" def f(self):", "     a = 1", "+    a += 1", "     return a"], 3, 4)
    report = apply_proposal(diff, tmp_path, "diff")
    assert report.ok, report.feedback()
    expected = "class A:\n    def f(self):\n        a = 1\n        a += 1\n        return a\n"
    assert (tmp_path / "m.py").read_text() == expected


def test_already_applied_diff_is_success_and_changes_nothing(repo: Path) -> None:
    write(repo, {"f.txt": BASE})
    assert apply_proposal(CHANGE_5, repo, "diff").ok
    before = snapshot(repo)
    again = apply_proposal(CHANGE_5, repo, "diff")
    assert again.ok and again.already_applied and not again.applied, again.feedback()
    assert snapshot(repo) == before
    # a pure addition is also recognised, not inserted twice
    add = diff_for("f.txt", 2, [" line 2", "+inserted", " line 3"], 2, 3)
    assert apply_proposal(add, repo, "diff").ok
    assert apply_proposal(add, repo, "diff").already_applied
    assert (repo / "f.txt").read_text().count("inserted") == 1


def test_failing_hunk_reports_closest_lines_and_leaves_tree_untouched(repo: Path) -> None:
    write(repo, {"f.txt": BASE, "g.txt": "alpha\nbeta\n"})
    before = snapshot(repo)
    diff = diff_for("f.txt", 4, [" line 4", "-line 5 (changed upstream)", "+line five", " line 6"], 3, 3)
    report = apply_proposal(diff, repo, "diff")
    assert not report.ok and report.mode == "none"
    assert snapshot(repo) == before
    (failure,) = report.failures
    assert failure.path == "f.txt" and failure.index == 1 and failure.code == "no-match"
    assert failure.expected == ["line 4", "line 5 (changed upstream)", "line 6"]
    assert failure.closest == [(4, "line 4"), (5, "line 5"), (6, "line 6")]
    assert 0.5 < failure.similarity < 1.0
    text = report.feedback()
    for needle in ("f.txt", "hunk 1/1", "line 5 (changed upstream)", "    5| line 5", "First difference",
                   "no file was changed"):
        assert needle in text, text


def test_partially_applicable_diff_rolls_back_and_names_what_would_apply(repo: Path) -> None:
    write(repo, {"f.txt": BASE, "g.txt": "alpha\nbeta\n"})
    before = snapshot(repo)
    good = diff_for("f.txt", 4, [" line 4", "-line 5", "+line five", " line 6"], 3, 3)
    new_file = "--- /dev/null\n+++ b/new/dir/n.txt\n@@ -0,0 +1 @@\n+hello\n"
    bad = diff_for("g.txt", 1, [" alpha", "-gamma", "+delta"], 2, 2)
    report = apply_proposal(good + new_file + bad, repo, "diff")
    assert not report.ok
    assert snapshot(repo) == before and not (repo / "new").exists()
    assert [f.path for f in report.failures] == ["g.txt"]
    assert any("f.txt hunk 1/1" in item for item in report.would_apply)
    assert any("create new/dir/n.txt" in item for item in report.would_apply)
    assert "would have applied" in report.feedback()
    assert report.touched == ["f.txt", "new/dir/n.txt", "g.txt"]


def test_failed_write_restores_every_file(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(repo, {"a.txt": "a\n", "b.txt": "b\n"})
    before = snapshot(repo)
    diff = (diff_for("a.txt", 1, ["-a", "+A"], 1, 1) + diff_for("b.txt", 1, ["-b", "+B"], 1, 1)
            + "--- /dev/null\n+++ b/c/d.txt\n@@ -0,0 +1 @@\n+d\n")
    real_encode = workspace_module.TextFile.encode
    calls = {"n": 0}

    def failing_encode(self):  # the third file write fails mid-commit
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real_encode(self)

    monkeypatch.setattr(workspace_module.TextFile, "encode", failing_encode)
    monkeypatch.setattr("harness.proposals.applier._git_strict", lambda root, patches: (None, "test"))
    with pytest.raises(OSError):
        apply_proposal(diff, repo, "diff")
    assert snapshot(repo) == before and not (repo / "c").exists()


def test_create_delete_rename_and_modes(repo: Path) -> None:
    write(repo, {"old.txt": "x\ny\n", "gone.txt": "bye\n", "keep.txt": "k\n"})
    diff = ("diff --git a/old.txt b/moved/new.txt\nsimilarity index 90%\nrename from old.txt\nrename to moved/new.txt\n"
            "--- a/old.txt\n+++ b/moved/new.txt\n@@ -1,2 +1,2 @@\n x\n-y\n+z\n"
            "diff --git a/gone.txt b/gone.txt\ndeleted file mode 100644\n--- a/gone.txt\n+++ /dev/null\n"
            "@@ -1 +0,0 @@\n-bye\n"
            "diff --git a/tool.sh b/tool.sh\nnew file mode 100755\n--- /dev/null\n+++ b/tool.sh\n@@ -0,0 +1 @@\n"
            "+echo hi\n")
    report = apply_proposal(diff, repo, "diff")
    assert report.ok and report.mode == "strict", report.feedback()
    assert snapshot(repo) == {"keep.txt": b"k\n", "moved/new.txt": b"x\nz\n", "tool.sh": b"echo hi\n"}
    assert (repo / "tool.sh").stat().st_mode & 0o111
    assert report.touched == ["old.txt", "moved/new.txt", "gone.txt", "tool.sh"]


def test_tolerant_create_delete_rename_outside_git(tmp_path: Path) -> None:
    write(tmp_path, {"old.txt": "x\ny\n", "sub/gone.txt": "bye  \n"})
    diff = ("diff --git a/old.txt b/new.txt\nrename from old.txt\nrename to new.txt\n"
            "--- a/old.txt\n+++ b/new.txt\n@@ -1,2 +1,2 @@\n x\n-y\n+z\n"
            "--- a/sub/gone.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n"
            "--- /dev/null\n+++ b/deep/er/n.txt\n@@ -0,0 +1,2 @@\n+one\n+two\n\\ No newline at end of file\n")
    report = apply_proposal(diff, tmp_path, "diff")
    assert report.ok and report.mode == "tolerant", report.feedback()
    assert snapshot(tmp_path) == {"new.txt": b"x\nz\n", "deep/er/n.txt": b"one\ntwo"}
    assert apply_proposal(diff, tmp_path, "diff").already_applied  # renamed, deleted, created: all already done


def test_crlf_file_keeps_its_line_endings(repo: Path) -> None:
    write(repo, {"w.txt": b"one\r\ntwo\r\nthree\r\n"})
    report = apply_proposal(diff_for("w.txt", 1, [" one", "-two", "+TWO", "+two and a half", " three"], 3, 4),
                            repo, "diff")
    assert report.ok and report.mode == "tolerant", report.feedback()
    assert (repo / "w.txt").read_bytes() == b"one\r\nTWO\r\ntwo and a half\r\nthree\r\n"


def test_missing_final_newline_and_empty_file(repo: Path) -> None:
    write(repo, {"n.txt": "a\nb", "e.txt": ""})
    keep = diff_for("n.txt", 1, ["-a", "+A", " b"], 2, 2)  # no "\ No newline" marker: the file's state is kept
    report = apply_proposal(keep, repo, "diff")
    assert report.ok, report.feedback()
    assert (repo / "n.txt").read_bytes() == b"A\nb"
    add_newline = "--- a/n.txt\n+++ b/n.txt\n@@ -1,2 +1,2 @@\n A\n-b\n\\ No newline at end of file\n+b\n"
    assert apply_proposal(add_newline, repo, "diff").ok
    assert (repo / "n.txt").read_bytes() == b"A\nb\n"
    fill = "--- a/e.txt\n+++ b/e.txt\n@@ -0,0 +1,2 @@\n+first\n+second\n"
    assert apply_proposal(fill, repo, "diff").ok
    assert (repo / "e.txt").read_bytes() == b"first\nsecond\n"


def test_binary_git_patch_applies_strictly(repo: Path) -> None:
    v1, v2 = bytes(range(256)) * 4, bytes(reversed(range(256))) * 4 + b"\x00tail"
    write(repo, {"blob.bin": v1})
    git(repo, "add", "blob.bin")
    git(repo, "commit", "-q", "-m", "v1")
    write(repo, {"blob.bin": v2})
    patch = git(repo, "diff", "--binary")
    assert "GIT binary patch" in patch
    write(repo, {"blob.bin": v1})
    report = apply_proposal("Here is the patch:\n```diff\n" + patch + "```\n", repo, "diff")
    assert report.ok and report.mode == "strict", report.feedback()
    assert (repo / "blob.bin").read_bytes() == v2


def test_binary_patch_that_git_refuses_fails_cleanly(tmp_path: Path) -> None:
    patch = ("diff --git a/b.bin b/b.bin\nindex 1111111..2222222 100644\nGIT binary patch\nliteral 3\n"
             "KcmZ?d00961\n\nliteral 0\nKcmV+b00031\n\n")
    report = apply_proposal(patch, tmp_path, "diff")
    assert not report.ok and report.failures[0].code == "binary"


def test_miscounted_hunk_is_recounted_with_a_warning(repo: Path) -> None:
    write(repo, {"f.txt": BASE})
    diff = "--- a/f.txt\n+++ b/f.txt\n@@ -4,2 +4,2 @@\n line 4\n-line 5\n+line five\n+line 5.5\n line 6\n\nThanks!\n"
    report = apply_proposal(diff, repo, "diff")
    assert report.ok, report.feedback()
    assert report.warnings and "recounted as @@ -4,3 +4,4 @@" in report.warnings[0]
    assert (repo / "f.txt").read_text() == BASE.replace("line 5\n", "line five\nline 5.5\n")


def test_unsafe_paths_are_rejected_before_anything_is_written(repo: Path) -> None:
    write(repo, {"f.txt": BASE})
    before = snapshot(repo)
    for path in ("../outside.txt", "/tmp/abs.txt", ".git/hooks/pre-commit"):
        with pytest.raises(ProposalRejected):
            apply_proposal(CHANGE_5 + f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+x\n", repo, "diff")
    assert snapshot(repo) == before
    (repo / "link").symlink_to(repo.parent)
    with pytest.raises(ProposalRejected, match="symlink"):
        apply_proposal("--- /dev/null\n+++ b/link/escape.txt\n@@ -0,0 +1 @@\n+x\n", repo, "diff")
    assert not (repo.parent / "escape.txt").exists()


def test_failure_signature_is_stable_and_specific(repo: Path) -> None:
    write(repo, {"f.txt": BASE})
    bad = diff_for("f.txt", 4, [" line 4", "-line 5 (changed)", "+x", " line 6"], 3, 3)
    renumbered = diff_for("f.txt", 40, [" line 4", "-line 5 (changed)", "+x", " line 6"], 3, 3)
    other = diff_for("f.txt", 4, [" line 4", "-line 5 (other)", "+x", " line 6"], 3, 3)
    first, second = apply_proposal(bad, repo, "diff"), apply_proposal(renumbered, repo, "diff")
    assert failure_signature(first) == failure_signature(second) != ""
    assert failure_signature(apply_proposal(other, repo, "diff")) != failure_signature(first)


def test_feedback_is_bounded(tmp_path: Path) -> None:
    write(tmp_path, {f"f{k}.txt": BASE for k in range(20)})
    long_hunk = [" line 4"] + [f"-missing {k} " + "x" * 500 for k in range(40)] + ["+y"]
    diff = "".join(diff_for(f"f{k}.txt", 4, long_hunk, 41, 2) for k in range(20))
    report = apply_proposal(diff, tmp_path, "diff")
    assert len(report.failures) == 20
    text = report.feedback()
    assert len(text) < 12000 and "15 more failures" in text and "more lines" in text


def test_empty_proposal_and_unknown_kind(tmp_path: Path) -> None:
    assert apply_proposal("", tmp_path, "empty").ok
    with pytest.raises(ProposalRejected, match="unknown proposal kind"):
        apply_proposal(CHANGE_5, tmp_path, "patch")


def test_git_apply_is_run_in_the_repo_root(repo: Path) -> None:
    # sanity check of the fixture: git sees root as its top level, so the strict path is really git's
    out = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=repo, capture_output=True, text=True)
    assert Path(out.stdout.strip()).resolve() == repo.resolve()


def test_git_apply_failing_after_check_is_undone(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(repo, {"f.txt": BASE})
    before = snapshot(repo)
    real_run = subprocess.run

    def half_applying_run(args, **kwargs):  # git writes the files, then reports an error
        result = real_run(args, **kwargs)
        if args[:2] == ["git", "apply"] and "--check" not in args:
            return subprocess.CompletedProcess(args, 1, "", "error: simulated write failure")
        return result

    monkeypatch.setattr("harness.proposals.applier.subprocess.run", half_applying_run)
    new_file = "--- /dev/null\n+++ b/x/y/new.txt\n@@ -0,0 +1 @@\n+n\n"
    report = apply_proposal(CHANGE_5 + new_file, repo, "diff")
    assert "simulated write failure" in report.strict_error
    # the tolerant pass then applied it properly: the result is the intended one, not a half-written mix
    assert report.ok and report.mode == "tolerant" and report.already_applied == []  # so git's writes were undone
    assert (repo / "f.txt").read_text() == before["f.txt"].decode().replace("line 5\n", "line five\n")
    assert (repo / "x/y/new.txt").read_text() == "n\n"
