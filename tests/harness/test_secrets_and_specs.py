"""Secrets never reach logs or gates; spec validation names file, field and problem."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.interfaces import SpecError
from harness.runner import Runner, RunOptions
from harness.secrets import redact, scrubbed_env
from harness.specs import check_specs, find_spec, load_specs
from tests.harness.toy_repo import make_toy_repo, toy_runtime_diff

SECRET = "sk-test-abcdefghijklmnopqrstuvwxyz0123"


def test_scrub_and_redact(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-123456789")
    env = scrubbed_env()
    assert "OPENAI_API_KEY" not in env and "MY_SERVICE_TOKEN" not in env and "PATH" in env
    assert SECRET not in redact(f"key={SECRET}") and "tok-123456789" not in redact("x tok-123456789 y")
    assert "[REDACTED]" in redact("sk-ant-api03-zzzzzzzzzzzzzzzzzzzzzzzz")


def test_secret_in_agent_answer_never_reaches_logs(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    repo = make_toy_repo(tmp_path / "repo")
    leaky = toy_runtime_diff("return a + b", prelude=f"KEY = '{SECRET}'")
    runner = Runner(repo)
    out = runner.run(find_spec(repo, "01-toy"), RunOptions(agent="scripted", agent_options={"script": [leaky]},
                                                            progress=False, nop_check=False, max_attempts=1))
    for f in Path(out.run_dir).rglob("*"):
        if f.is_file():
            assert SECRET not in f.read_text(errors="replace"), f


def write(root: Path, name: str, text: str) -> None:
    (root / "specs").mkdir(parents=True, exist_ok=True)
    (root / "specs" / name).write_text(text)


@pytest.mark.parametrize("text,expect", [
    ("no front matter\n", "no YAML front matter"),
    ("---\nid: 01-a\ntitle: [unclosed\n---\n", "not valid YAML"),
    ("---\nid: 01-a\ngates: [build]\n---\n", "field 'title': required"),
    ("---\nid: 01-b\ntitle: t\ngates: [build]\n---\n", "does not match the file name"),
    ("---\nid: 01-a\ntitle: t\ngates: [build]\nbudget: {max_attempts: -1}\n---\n", "field 'budget.max_attempts'"),
    ("---\nid: 01-a\ntitle: t\ngates: [build]\ncolour: red\n---\n", "field 'colour': unknown field"),
    ("---\nid: 01-a\ntitle: t\n---\n", "at least one gate"),
    ("---\nid: 01-a\ntitle: t\ngates: [build]\ndepends_on: [00-x]\n---\n", "unknown spec '00-x'"),
    ("---\nid: 01-a\ntitle: t\ngates: [build]\npaths: ['../x']\n---\n", "without '..'"),
])
def test_spec_problems_name_file_field_and_problem(tmp_path: Path, text: str, expect: str):
    write(tmp_path, "01-a.md", text)
    specs, problems = check_specs(tmp_path)
    assert any("01-a.md" in p and expect in p for p in problems), problems
    with pytest.raises(SpecError):
        load_specs(tmp_path)


def test_dependency_order_and_cycles(tmp_path: Path):
    write(tmp_path, "01-a.md", "---\nid: 01-a\ntitle: a\ngates: [build]\n---\n")
    write(tmp_path, "02-b.md", "---\nid: 02-b\ntitle: b\ngates: [build]\ndepends_on: [03-c]\n---\n")
    write(tmp_path, "03-c.md", "---\nid: 03-c\ntitle: c\ngates: [build]\ndepends_on: [01-a]\n---\n")
    assert [s.id for s in load_specs(tmp_path)] == ["01-a", "03-c", "02-b"]
    write(tmp_path, "01-a.md", "---\nid: 01-a\ntitle: a\ngates: [build]\ndepends_on: [02-b]\n---\n")
    _, problems = check_specs(tmp_path)
    assert any("cycle" in p for p in problems)


def test_repository_specs_are_valid():
    root = Path(__file__).resolve().parents[2]
    specs, problems = check_specs(root)
    assert problems == [] and specs[0].id == "01-runtime-core"


def test_exclusion_globs_scope_a_spec():
    from harness.specs import path_matches

    globs = ["generated_runtime/**", "!generated_runtime/**/cuda/**", "!generated_runtime/cmake/cuda.cmake"]
    assert path_matches("generated_runtime/src/vbt/core/dtype.cpp", globs)
    assert not path_matches("generated_runtime/src/vbt/cuda/stream.cpp", globs)
    assert not path_matches("generated_runtime/tests/py/cuda/test_x.py", globs)
    assert not path_matches("generated_runtime/cmake/cuda.cmake", globs)
    assert not path_matches("harness/cli.py", globs)
    assert not path_matches("generated_runtime/x.py", ["!generated_runtime/y.py"])  # no include: nothing matches


def test_spec_with_only_exclusions_is_reported(tmp_path):
    from harness.specs import check_specs

    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "01-a.md").write_text(
        "---\nid: 01-a\ntitle: A\npaths: [\"!generated_runtime/x/**\"]\ngates: [build]\n---\nbody\n")
    _, problems = check_specs(tmp_path)
    assert any("01-a.md" in p and "paths" in p and "only exclusions" in p for p in problems), problems
