"""Note [Copy times] (harness/worktree.py): validate's copy of the runtime gives a changed file a time newer than any
earlier build in the slot (even when the source's own time is older), and an unchanged file the time it had."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.worktree import COPY_MANIFEST, Slot
from tests.harness.toy_repo import make_toy_repo

OLD = 946684800 * 10**9  # 2000-01-01: a source time older than any build
# ninja on PATH, or the one the venv's cmake/ninja package installed next to this Python
NINJA = shutil.which("ninja") or shutil.which("ninja", path=str(Path(sys.executable).parent))


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    repo = make_toy_repo(tmp_path / "repo")
    (repo / "generated_runtime" / "in.txt").write_text("one\n")
    return repo


def copied(slot: Slot, rel: str = "in.txt") -> Path:
    return slot.path / "generated_runtime" / rel


def test_changed_content_with_an_old_time_is_newer_than_the_last_copy(repo: Path):
    slot = Slot(repo, 0)
    slot.prepare_copy(repo)
    first = copied(slot).stat().st_mtime_ns
    test_time = copied(slot, "tests/py/test_toy.py").stat().st_mtime_ns
    slot.prepare_copy(repo)  # nothing changed: every time is kept (nothing is rebuilt)
    assert copied(slot).stat().st_mtime_ns == first
    assert copied(slot, "tests/py/test_toy.py").stat().st_mtime_ns == test_time
    time.sleep(0.01)
    src = repo / "generated_runtime" / "in.txt"
    src.write_text("two\n")
    os.utime(src, ns=(OLD, OLD))  # the source says "old"; the content is new to the slot
    slot.prepare_copy(repo)
    assert copied(slot).read_text() == "two\n"
    assert copied(slot).stat().st_mtime_ns > first
    assert copied(slot, "tests/py/test_toy.py").stat().st_mtime_ns == test_time
    slot.release()


def test_a_worktree_prepare_forgets_the_copy_record(repo: Path):
    slot = Slot(repo, 0)
    slot.prepare_copy(repo)
    first = copied(slot).stat().st_mtime_ns
    assert (slot.cache_dir / COPY_MANIFEST).is_file()
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo), "commit", "-qm", "rt"],
                   check=True)
    slot.prepare("4b825dc642cb6eb9a060e54bf8d69288fbee4904")  # a run's worktree builds other files in this slot
    assert not (slot.cache_dir / COPY_MANIFEST).exists()
    time.sleep(0.01)
    slot.prepare_copy(repo)
    assert copied(slot).stat().st_mtime_ns > first  # all new to the slot again
    slot.release()


@pytest.mark.skipif(NINJA is None, reason="needs ninja")
def test_ninja_rebuilds_a_changed_file_whose_source_time_is_old(repo: Path, tmp_path: Path):
    """The failure this prevents: ninja skips an input older than its output, so a copy that kept the source's
    (older) time built the previous content."""
    slot = Slot(repo, 0)
    build = tmp_path / "build"
    build.mkdir()
    (build / "build.ninja").write_text(f"rule cp\n  command = cp $in $out\n"
                                       f"build out.txt: cp {copied(slot)}\n")
    slot.prepare_copy(repo)
    subprocess.run([NINJA], cwd=build, check=True, capture_output=True)
    assert (build / "out.txt").read_text() == "one\n"
    time.sleep(0.01)
    src = repo / "generated_runtime" / "in.txt"
    src.write_text("two\n")
    os.utime(src, ns=(OLD, OLD))
    slot.prepare_copy(repo)
    subprocess.run([NINJA], cwd=build, check=True, capture_output=True)
    assert (build / "out.txt").read_text() == "two\n"
    slot.release()
