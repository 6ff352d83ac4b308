"""Parsing proposals: structure over fences, touched paths, format detection and precise malformed-input errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.interfaces import ProposalRejected
from harness.proposals import apply_proposal, detect_format, parse_diff, parse_edits, touched_paths

from .conftest import write

NEW_FILE_WITH_FENCES = """I will add the docs file.

```diff
diff --git a/docs/guide.md b/docs/guide.md
new file mode 100644
--- /dev/null
+++ b/docs/guide.md
@@ -0,0 +1,9 @@
+# Guide
+```diff
+--- a/x
++++ b/x
+@@ -1,2 +1,2 @@
+-old
++new
+```
+end
```

Done.
"""


def test_diff_adding_file_with_fences_and_hunk_lines(repo: Path) -> None:
    (patch,) = parse_diff(NEW_FILE_WITH_FENCES)
    assert patch.is_new and patch.new_path == "docs/guide.md" and len(patch.hunks) == 1
    assert patch.hunks[0].new_lines[1] == "```diff" and patch.hunks[0].new_lines[4] == "@@ -1,2 +1,2 @@"
    assert not patch.hunks[0].recounted
    report = apply_proposal(NEW_FILE_WITH_FENCES, repo, "diff")
    assert report.ok and report.mode == "strict", report.feedback()
    assert (repo / "docs/guide.md").read_text() == (
        "# Guide\n```diff\n--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-old\n+new\n```\nend\n")


def test_diff_editing_markdown_with_fences(repo: Path) -> None:
    write(repo, {"README.md": "# T\n\n```sh\nmake\n```\n"})
    diff = "```diff\n--- a/README.md\n+++ b/README.md\n@@ -3,3 +3,4 @@\n ```sh\n make\n+make test\n ```\n```\n"
    report = apply_proposal(diff, repo, "diff")
    assert report.ok, report.feedback()
    assert (repo / "README.md").read_text() == "# T\n\n```sh\nmake\nmake test\n```\n"


def test_touched_paths_lists_every_side_as_written() -> None:
    diff = ("--- a/../escape.py\n+++ b/../escape.py\n@@ -1 +1 @@\n-a\n+b\n"
            "--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n-a\n+b\n"
            "diff --git a/src/old.py b/src/new.py\nrename from src/old.py\nrename to src/new.py\n"
            "--- a/src/old.py\n+++ b/src/new.py\n@@ -1 +1 @@\n-a\n+b\n"
            "--- a/gone.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n")
    assert touched_paths(diff) == ["../escape.py", "/etc/passwd", "src/old.py", "src/new.py", "gone.py"]
    # a file header that contradicts its section header is rejected, never silently dropped
    with pytest.raises(ProposalRejected, match="line 2: '---' names '../evil.py'"):
        touched_paths("diff --git a/ok.py b/ok.py\n--- a/../evil.py\n+++ b/../evil.py\n@@ -1 +1 @@\n-a\n+b\n")
    edits = ("../up.txt\n<<<<<<< SEARCH\n=======\nx\n>>>>>>> REPLACE\n"
             "/abs/p.txt\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n")
    assert touched_paths(edits) == ["../up.txt", "/abs/p.txt"]
    assert touched_paths("") == []


def test_detect_format() -> None:
    assert detect_format("   \n") == "empty"
    assert detect_format(NEW_FILE_WITH_FENCES) == "diff"
    assert detect_format("f.py\n<<<<<<< SEARCH\n--- a/x\n+++ b/x\n=======\n>>>>>>> REPLACE\n") == "edits"
    assert detect_format("just prose") == "unknown"
    with pytest.raises(ProposalRejected):
        touched_paths("just prose")


@pytest.mark.parametrize("text, message", [
    ("--- a/f\n+++ b/f\n@@ -1,x +1 @@\n-a\n", "line 3: malformed hunk header"),
    ("Some text\n@@ -1 +1 @@\n-a\n+b\n", "line 2: hunk header before any file header"),
    ("no diff here\n", "no diff found"),
    ("--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n```\n", "line 3: hunk @@ -1,2 +1,2 @@ has no body"),
    ("diff --git a/f b/f\n--- a/f\n+++ b/f\nprose\n", "has no hunks"),
    ("--- /dev/null\n+++ b/n\n@@ -0,0 +1,2 @@\n+a\n-b\n", "may only hold '+' lines"),
])
def test_malformed_diffs_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ProposalRejected, match=message.replace("+", r"\+").replace("(", r"\(")):
        parse_diff(text)


@pytest.mark.parametrize("text, message", [
    ("f.py\n<<<<<<< SEARCH\na\n=======\nb\n", "line 2: the edit block for f.py is not closed"),
    ("f.py\n<<<<<<< SEARCH\na\n>>>>>>> REPLACE\n", "has no '=======' line"),
    ("f.py\n<<<<<<< SEARCH\na\n=======\nb\n=======\nc\n>>>>>>> REPLACE\n", "2 '=======' lines \\(lines 4, 6\\)"),
    ("f.py\n<<<<<<< SEARCH\na\n<<<<<<< SEARCH\n", "line 4: '<<<<<<< SEARCH' inside the block opened at line 2"),
    ("Here is my change:\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n", "line 1: expected the file path"),
    ("text\n>>>>>>> REPLACE\n", "line 2: '>>>>>>> REPLACE' outside an edit block"),
    ("nothing\n", "no edit block found"),
])
def test_malformed_edits_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ProposalRejected, match=message):
        parse_edits(text)


def test_edit_paths_are_undecorated_and_repeated_paths_may_be_left_out() -> None:
    text = ("**`src/a.py`**\n```python\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n"
            "<<<<<<< SEARCH\nc\n=======\nd\n>>>>>>> REPLACE\n```\nFile: src/b.py\n<<<<<<< SEARCH\n=======\n"
            "e\n>>>>>>> REPLACE\n")
    blocks = parse_edits(text)
    assert [(b.path, b.search, b.replace, b.index) for b in blocks] == [
        ("src/a.py", ["a"], ["b"], 1), ("src/a.py", ["c"], ["d"], 2), ("src/b.py", [], ["e"], 3)]


def test_crlf_proposal_text_parses() -> None:
    text = "--- a/f\r\n+++ b/f\r\n@@ -1 +1 @@\r\n-a\r\n+b\r\n"
    (patch,) = parse_diff(text)
    assert patch.path == "f" and patch.hunks[0].old_lines == ["a"] and patch.hunks[0].new_lines == ["b"]
    (edit,) = parse_edits("f\r\n<<<<<<< SEARCH\r\na\r\n=======\r\nb\r\n>>>>>>> REPLACE\r\n")
    assert edit.search == ["a"] and edit.replace == ["b"]


def test_quoted_and_timestamped_paths() -> None:
    text = ('--- "a/with space.txt"\n+++ "b/with space.txt"\n@@ -1 +1 @@\n-a\n+b\n'
            "--- a/t.txt\t2024-01-01 00:00:00\n+++ b/t.txt\t2024-01-02 00:00:00\n@@ -1 +1 @@\n-a\n+b\n")
    assert [p.path for p in parse_diff(text)] == ["with space.txt", "t.txt"]


def test_space_in_path_round_trips_through_git(repo: Path) -> None:
    write(repo, {"with space.txt": "a\n"})
    report = apply_proposal("--- a/with space.txt\n+++ b/with space.txt\n@@ -1 +1 @@\n-a\n+b\n", repo, "diff")
    assert report.ok and report.mode == "strict", report.feedback()
    assert (repo / "with space.txt").read_text() == "b\n"


def test_removed_and_added_lines_that_look_like_file_headers(repo: Path) -> None:
    write(repo, {"q.sql": "-- old comment\n++ odd\nselect 1;\n"})
    diff = "--- a/q.sql\n+++ b/q.sql\n@@ -1,3 +1,3 @@\n--- old comment\n+++ new comment\n ++ odd\n select 1;\n"
    (patch,) = parse_diff(diff)
    assert [(hl.tag, hl.text) for hl in patch.hunks[0].lines][:2] == [("-", "-- old comment"), ("+", "++ new comment")]
    assert apply_proposal(diff, repo, "diff").ok
    assert (repo / "q.sql").read_text() == "++ new comment\n++ odd\nselect 1;\n"


def test_kind_mismatch_and_folder_targets_are_clear(repo: Path) -> None:
    write(repo, {"adir/keep.txt": "k\n"})
    with pytest.raises(ProposalRejected, match="unified diff but was given as kind 'edits'"):
        apply_proposal("--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n", repo, "edits")
    report = apply_proposal("adir\n<<<<<<< SEARCH\n=======\nx\n>>>>>>> REPLACE\n", repo, "edits")
    assert not report.ok and report.failures[0].code == "not-text"
    report = apply_proposal("--- /dev/null\n+++ b/adir\n@@ -0,0 +1 @@\n+x\n", repo, "diff")
    assert not report.ok and report.failures[0].code == "not-text"
    assert (repo / "adir/keep.txt").read_text() == "k\n"
