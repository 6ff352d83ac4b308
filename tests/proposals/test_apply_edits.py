"""Applying search/replace edit blocks: exact, whitespace-normalised, re-indented, ambiguous, missing, create."""
from __future__ import annotations

from pathlib import Path

from harness.proposals import apply_proposal, failure_signature

from .conftest import snapshot, write

SOURCE = "def f():\n    return 1\n\n\ndef g():\n    return 2\n"


def block(path: str, search: str, replace: str) -> str:
    return f"{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


def test_exact_edit_is_strict(repo: Path) -> None:
    write(repo, {"m.py": SOURCE})
    report = apply_proposal(block("m.py", "def g():\n    return 2\n", "def g():\n    return 3\n"), repo, "edits")
    assert report.ok and report.mode == "strict", report.feedback()
    assert (repo / "m.py").read_text() == SOURCE.replace("return 2", "return 3")
    assert report.applied == ["edit 1 (m.py, proposal line 2): replaced lines 5-6"]


def test_whitespace_normalised_edit(repo: Path) -> None:
    write(repo, {"m.py": "x = [1,  2]   \ny = 3\n"})
    report = apply_proposal(block("m.py", "x = [1, 2]\n", "x = [1, 2, 4]\n"), repo, "edits")
    assert report.ok and report.mode == "tolerant", report.feedback()
    assert (repo / "m.py").read_text() == "x = [1, 2, 4]\ny = 3\n"
    assert "whitespace-insensitive" in report.applied[0]


def test_indentation_preserving_edit(repo: Path) -> None:
    write(repo, {"m.py": "class A:\n    def f(self):\n        if x:\n            return 1\n"})
    edit = block("m.py", "if x:\n    return 1\n", "if x:\n    y = 2\n    return y\n")
    report = apply_proposal(edit, repo, "edits")
    assert report.ok, report.feedback()
    assert (repo / "m.py").read_text() == (
        "class A:\n    def f(self):\n        if x:\n            y = 2\n            return y\n")
    assert "indentation-insensitive" in report.applied[0]


def test_ambiguous_edit_fails_with_match_lines(repo: Path) -> None:
    write(repo, {"m.py": SOURCE.replace("return 2", "return 1")})
    before = snapshot(repo)
    report = apply_proposal(block("m.py", "    return 1\n", "    return 0\n"), repo, "edits")
    assert not report.ok and snapshot(repo) == before
    (failure,) = report.failures
    assert failure.code == "ambiguous"
    assert "ambiguous: 2 matches at lines 2, 6" in failure.reason
    assert [n for n, _ in failure.closest] == [2, 6]


def test_unique_exact_match_wins_over_fuzzy_duplicates(repo: Path) -> None:
    write(repo, {"m.py": "a = 1\na  =  1\n"})
    report = apply_proposal(block("m.py", "a = 1\n", "a = 2\n"), repo, "edits")
    assert report.ok and (repo / "m.py").read_text() == "a = 2\na  =  1\n"


def test_missing_search_is_a_failure_with_closest_lines_never_skipped(repo: Path) -> None:
    write(repo, {"m.py": SOURCE, "ok.py": "a\n"})
    before = snapshot(repo)
    edits = block("ok.py", "a\n", "b\n") + block("m.py", "def g():\n    return 9\n", "def g():\n    return 4\n")
    report = apply_proposal(edits, repo, "edits")
    assert not report.ok and snapshot(repo) == before
    (failure,) = report.failures
    assert failure.index == 2 and failure.code == "no-match" and failure.proposal_line == 8
    assert failure.closest == [(5, "def g():"), (6, "    return 2")]
    assert report.would_apply == ["edit 1 (ok.py, proposal line 2): replaced line 1"]
    feedback = report.feedback()
    assert "m.py, edit 2" in feedback and "    6|     return 2" in feedback and "would have applied" in feedback
    assert failure_signature(report) == failure_signature(apply_proposal(edits, repo, "edits"))


def test_already_applied_edit_is_success(repo: Path) -> None:
    write(repo, {"m.py": SOURCE})
    edit = block("m.py", "def f():\n", "def f():\n    \"\"\"Doc.\"\"\"\n")
    assert apply_proposal(edit, repo, "edits").ok
    after = snapshot(repo)
    again = apply_proposal(edit, repo, "edits")
    assert again.ok and again.already_applied and snapshot(repo) == after
    assert (repo / "m.py").read_text().count("Doc.") == 1


def test_create_file_in_new_directory_and_fill_empty_file(repo: Path) -> None:
    write(repo, {"empty.txt": "", "full.txt": "content\n"})
    edits = block("pkg/sub/new.py", "", "print('hi')\n") + block("empty.txt", "", "now filled\n")
    report = apply_proposal(edits, repo, "edits")
    assert report.ok, report.feedback()
    assert (repo / "pkg/sub/new.py").read_text() == "print('hi')\n"
    assert (repo / "empty.txt").read_text() == "now filled\n"
    refused = apply_proposal(block("full.txt", "", "other\n"), repo, "edits")
    assert not refused.ok and refused.failures[0].code == "not-empty"
    missing = apply_proposal(block("nope.py", "x\n", "y\n"), repo, "edits")
    assert not missing.ok and missing.failures[0].code == "missing-file"
    assert "leave the SEARCH section empty" in missing.feedback()


def test_crlf_file_edit_keeps_crlf_and_missing_final_newline(repo: Path) -> None:
    write(repo, {"w.txt": b"one\r\ntwo\r\nthree"})
    report = apply_proposal(block("w.txt", "two\nthree\n", "2\n3\n"), repo, "edits")
    assert report.ok, report.feedback()
    assert (repo / "w.txt").read_bytes() == b"one\r\n2\r\n3"


def test_markdown_with_fences_and_diff_lines_is_edited(repo: Path) -> None:
    readme = "# Title\n\n```python\nx = 1\n```\n\n--- not a diff\n@@ also not @@\n"
    write(repo, {"docs/README.md": readme})
    proposal = ("Update the example:\n\n```markdown\ndocs/README.md\n<<<<<<< SEARCH\n```python\nx = 1\n```\n"
                "=======\n```python\nx = 2\n```\n\n```diff\n--- a/y\n+++ b/y\n@@ -1 +1 @@\n```\n>>>>>>> REPLACE\n```\n"
                "\nThat's all.\n")
    report = apply_proposal(proposal, repo, "edits")
    assert report.ok, report.feedback()
    assert (repo / "docs/README.md").read_text() == readme.replace(
        "```python\nx = 1\n```\n", "```python\nx = 2\n```\n\n```diff\n--- a/y\n+++ b/y\n@@ -1 +1 @@\n```\n")
    assert report.touched == ["docs/README.md"]


def test_several_edits_to_one_file_apply_in_order(repo: Path) -> None:
    write(repo, {"m.py": SOURCE})
    edits = block("m.py", "    return 1\n", "    return 10\n") + block("m.py", "    return 10\n\n", "    return 11\n\n")
    report = apply_proposal(edits, repo, "edits")
    assert report.ok, report.feedback()
    assert (repo / "m.py").read_text() == SOURCE.replace("return 1\n", "return 11\n")


def test_blank_lines_at_the_edges_of_search_are_forgiven(repo: Path) -> None:
    write(repo, {"m.py": SOURCE})  # ends right after "return 2": no blank line follows
    report = apply_proposal(block("m.py", "\ndef g():\n    return 2\n\n", "\ndef g():\n    return 5\n\n"), repo, "edits")
    assert report.ok, report.feedback()
    assert (repo / "m.py").read_text() == SOURCE.replace("return 2", "return 5")
