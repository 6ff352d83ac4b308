"""Mangled proposals never crash: they parse or raise ProposalRejected, and a failed apply changes nothing."""
from __future__ import annotations

import random
from pathlib import Path

from harness.interfaces import ProposalRejected
from harness.proposals import apply_proposal, detect_format, touched_paths

from .conftest import snapshot, write

FILES = {"m.py": "def f():\n    return 1\n\n\ndef g():\n    return 2\n", "d/r.md": "# T\n\n```\ncode\n```\n"}
DIFF = ("diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,3 @@\n def f():\n-    return 1\n+    x = 1\n"
        "+    return x\n@@ -5,2 +6,2 @@\n def g():\n-    return 2\n+    return 3\n"
        "--- a/d/r.md\n+++ b/d/r.md\n@@ -3,3 +3,4 @@\n ```\n code\n+more\n ```\n"
        "--- /dev/null\n+++ b/n/new.txt\n@@ -0,0 +1,2 @@\n+a\n+b\n")
EDITS = ("m.py\n<<<<<<< SEARCH\n    return 1\n=======\n    return 10\n>>>>>>> REPLACE\n"
         "d/r.md\n```\n<<<<<<< SEARCH\n```\ncode\n=======\n```\ncode2\n>>>>>>> REPLACE\n```\n"
         "n/new.txt\n<<<<<<< SEARCH\n=======\nhello\n>>>>>>> REPLACE\n")


def mangle(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    for _ in range(rng.randint(1, 3)):
        k = rng.randrange(len(lines))
        action = rng.choice(["drop", "dup", "swap", "strip", "junk", "space"])
        if action == "drop":
            del lines[k]
        elif action == "dup":
            lines.insert(k, lines[k])
        elif action == "swap" and k + 1 < len(lines):
            lines[k], lines[k + 1] = lines[k + 1], lines[k]
        elif action == "strip":
            lines[k] = lines[k][1:]
        elif action == "junk":
            lines.insert(k, rng.choice(["```", "@@ -9,9 +9,9 @@", "=======", "+++ b/x", "--- a/x", "\\ No newline"]))
        else:
            lines[k] = "  " + lines[k]
        if not lines:
            lines = [""]
    return "\n".join(lines)


def test_mangled_proposals_never_crash_or_half_apply(tmp_path: Path) -> None:
    rng = random.Random(1234)
    outcomes = {"ok": 0, "failed": 0, "rejected": 0}
    for trial in range(160):
        root = tmp_path / f"t{trial}"
        write(root, FILES)
        before = snapshot(root)
        text, kind = (DIFF, "diff") if trial % 2 else (EDITS, "edits")
        text = mangle(text, rng)
        try:
            detect_format(text)
            touched_paths(text)
            report = apply_proposal(text, root, kind)
        except ProposalRejected as exc:
            assert str(exc)
            assert snapshot(root) == before
            outcomes["rejected"] += 1
            continue
        if report.ok:
            outcomes["ok"] += 1
        else:
            assert snapshot(root) == before, report.feedback()
            assert report.failures and report.feedback()
            outcomes["failed"] += 1
    assert all(outcomes.values()), outcomes  # the mangling reached every outcome
