"""proposal_from_text: classification and extraction by edit-block and diff markers, fences inside survive."""
from harness.agents.proposal_text import proposal_from_text

FENCE = "```"


def test_fenced_diff_of_markdown_file_keeps_inner_fences():
    diff = (f"--- a/docs/guide.md\n+++ b/docs/guide.md\n@@ -1,3 +1,6 @@\n # Guide\n \n+{FENCE}python\n"
            f"+import vibetensor.torch as vt\n+{FENCE}\n end\n")
    answer = f"Here it is:\n\n{FENCE}diff\n{diff}{FENCE}\n\nThis adds an example."
    proposal = proposal_from_text(answer)
    assert proposal.kind == "diff"
    assert proposal.text == diff


def test_bare_diff_stops_before_prose_bullets_and_restores_blank_context():
    answer = ("diff --git a/x.py b/x.py\nindex 1111111..2222222 100644\n--- a/x.py\n+++ b/x.py\n"
              "@@ -1,3 +1,3 @@\n a = 1\n\n-b = 2\n+b = 3\n\n- this bullet is prose, not a removed line\n")
    proposal = proposal_from_text(answer)
    assert proposal.kind == "diff"
    assert proposal.text.endswith("-b = 2\n+b = 3\n")
    assert "\n \n-b = 2" in proposal.text  # the blank context line got its space back
    assert "bullet" not in proposal.text


def test_several_diff_blocks_are_joined():
    one = "--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x\n+y\n"
    two = "--- /dev/null\n+++ b/b.py\n@@ -0,0 +1 @@\n+new\n"
    answer = f"First:\n{FENCE}diff\n{one}{FENCE}\nSecond:\n{FENCE}patch\n{two}{FENCE}\n"
    proposal = proposal_from_text(answer)
    assert proposal.kind == "diff" and proposal.text == one + two


def test_malformed_diff_is_still_a_diff_with_its_bad_line():
    answer = f"{FENCE}diff\n--- a/x.py\n+++ b/x.py\n@@ -1,9 +1,2 @@\n a\n-b\n+c\n d\n{FENCE}\n"
    proposal = proposal_from_text(answer)
    assert proposal.kind == "diff"
    assert "@@ -1,9 +1,2 @@\n a\n-b\n+c\n d\n" in proposal.text


def test_edit_blocks_with_fences_and_docstrings_inside_survive():
    answer = (f"Two edits.\n\n{FENCE}\nREADME.md\n<<<<<<< SEARCH\n# Title\n=======\n# Title\n\n{FENCE}python\n"
              f"x = 1\n{FENCE}\n>>>>>>> REPLACE\n{FENCE}\n\n`src/mod.py`\n{FENCE}python\n<<<<<<< SEARCH\n"
              f"def f():\n    pass\n=======\ndef f():\n    \"\"\"Example:\n\n    {FENCE}\n    f()\n    {FENCE}\n"
              f"    \"\"\"\n>>>>>>> REPLACE\n{FENCE}\n")
    proposal = proposal_from_text(answer)
    assert proposal.kind == "edits"
    assert proposal.text == (
        f"README.md\n<<<<<<< SEARCH\n# Title\n=======\n# Title\n\n{FENCE}python\nx = 1\n{FENCE}\n>>>>>>> REPLACE\n"
        f"src/mod.py\n<<<<<<< SEARCH\ndef f():\n    pass\n=======\ndef f():\n    \"\"\"Example:\n\n    {FENCE}\n"
        f"    f()\n    {FENCE}\n    \"\"\"\n>>>>>>> REPLACE\n")


def test_empty_search_creates_file_and_diff_inside_replace_is_content():
    answer = ("tests/data/sample.patch\n<<<<<<< SEARCH\n=======\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"
              ">>>>>>> REPLACE\n")
    proposal = proposal_from_text(answer)
    assert proposal.kind == "edits"
    assert proposal.text == answer


def test_unterminated_edit_block_is_handed_on_whole():
    answer = "a.py\n<<<<<<< SEARCH\nold\n=======\nnew\n"
    proposal = proposal_from_text(answer)
    assert proposal.kind == "edits"
    assert proposal.text == answer


def test_crlf_answer_and_plain_prose():
    crlf = "a.py\r\n<<<<<<< SEARCH\r\nold\r\n=======\r\nnew\r\n>>>>>>> REPLACE\r\n"
    assert proposal_from_text(crlf).text == "a.py\n<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPLACE\n"
    mid_line = proposal_from_text("I could not find a fix. --- a/x.py\n+++ later, perhaps")
    assert mid_line.kind == "empty"  # diff markers count only at the start of a line
    nothing = proposal_from_text("I am not sure what to change.\n- idea one\n+ idea two\n")
    assert nothing.kind == "empty" and nothing.text == ""
