"""End to end: a scripted agent through the real run loop, worktrees, gates and ledger, on a toy repository."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import gitops
from harness.interfaces import HarnessError
from harness.ledger import Ledger, check_against_tree
from harness.runner import Runner, RunOptions, replay_spec
from harness.specs import find_spec
from tests.harness.toy_repo import file_diff, make_toy_repo, toy_runtime_diff


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    return make_toy_repo(tmp_path / "repo")


def run(repo: Path, script: list, **kw) -> tuple:
    runner = Runner(repo)
    spec = find_spec(repo, "01-toy")
    opts = RunOptions(agent="scripted", agent_options={"script": script}, progress=False, **kw)
    return runner, spec, runner.run(spec, opts)


def test_feedback_then_accept_then_reproduce(repo: Path):
    runner, spec, out = run(repo, [toy_runtime_diff("return a - b"), toy_runtime_diff("return a + b")])
    assert out.status == "accepted", out.reason
    assert out.attempts == 2 and out.ledger_seq == 1
    # the failing pytest summary reached the second prompt
    events = [json.loads(l) for l in (Path(out.run_dir) / "events.jsonl").read_text().splitlines()]
    feedback = [e for e in events if e["type"] == "feedback"]
    assert feedback and "pytest" in feedback[0]["text"] and "test_add" in feedback[0]["text"]
    # the entry landed in the working tree and the ledger replays to it
    assert "return a + b" in (repo / "generated_runtime/vibetensor/__init__.py").read_text()
    ok, msg = check_against_tree(repo)
    assert ok, msg
    entry = Ledger(repo).entries()[0]
    assert entry.meta["agent"] == "scripted" and entry.meta["attempts"] == 2
    assert [g["name"] for g in entry.meta["gates"]] == ["build", "pytest"]
    # the nop check ran first and failed (the unchanged tree does not pass)
    summary = json.loads((Path(out.run_dir) / "run.json").read_text())
    assert summary["nop_check"]["passed_unchanged_tree"] is False
    # a hand edit is detected
    (repo / "generated_runtime/vibetensor/__init__.py").write_text("def add(a, b):\n    return 0\n")
    ok, msg = check_against_tree(repo)
    assert not ok and "differs" in msg


def test_replay_matches_recorded_verdicts(repo: Path):
    runner, spec, out = run(repo, [toy_runtime_diff("return a - b"), toy_runtime_diff("return a + b")])
    assert out.status == "accepted"
    replayed = replay_spec(Runner(repo), spec, progress=False)
    assert replayed.status == "ok", replayed.reason
    assert [(d["recorded"], d["today"]) for d in replayed.details] == [("fail", "fail"), ("pass", "pass")]


def test_protected_test_edit_is_rejected(repo: Path):
    evil = file_diff("generated_runtime/tests/py/test_other.py", "def test_x():\n    assert True\n")
    runner, spec, out = run(repo, [evil], max_attempts=1)
    assert out.status == "rejected"
    assert Ledger(repo).entries() == []
    summary = json.loads((Path(out.run_dir) / "run.json").read_text())
    assert "protected" in summary["attempts"][0]["feedback"]


def test_dotdot_and_conftest_rejected(repo: Path):
    for bad in (file_diff("../outside.txt", "x\n"), file_diff("generated_runtime/conftest.py", "x = 1\n")):
        runner, spec, out = run(repo, [bad], max_attempts=1, nop_check=False)
        assert out.status == "rejected", out.reason
    assert not (repo.parent / "outside.txt").exists()


def test_repeated_identical_failure_stops_as_stuck(repo: Path):
    bad = toy_runtime_diff("return a - b")
    runner, spec, out = run(repo, [bad, bad, bad], max_attempts=3, nop_check=False)
    assert out.status == "stuck", out.reason
    assert out.exit_code == 4


def test_agent_error_leaves_ledger_and_tree_untouched(repo: Path):
    before = gitops.runtime_tree_hash(repo)
    runner, spec, out = run(repo, [{"fault": "error"}], nop_check=False)
    assert out.status == "error"
    assert Ledger(repo).entries() == [] and gitops.runtime_tree_hash(repo) == before
    assert not list((repo / ".vt" / "worktrees").glob("slot-*"))


def test_budget_exhaustion_stops_cleanly(repo: Path):
    runner = Runner(repo)
    spec = find_spec(repo, "01-toy")
    spec.budget.max_tokens = 10
    opts = RunOptions(agent="scripted", agent_options={"script": [toy_runtime_diff("return a - b")] * 3},
                      progress=False, nop_check=False)
    out = runner.run(spec, opts)
    assert out.status == "budget", out.reason
    assert out.exit_code == 3 and Ledger(repo).entries() == []


def test_submit_external_change(repo: Path):
    rt = repo / "generated_runtime"
    (rt / "vibetensor").mkdir()
    from tests.harness.toy_repo import PYPROJECT

    (rt / "pyproject.toml").write_text(PYPROJECT)
    (rt / "vibetensor" / "__init__.py").write_text("def add(a, b):\n    return a + b\n")
    out = Runner(repo).submit(find_spec(repo, "01-toy"), RunOptions(message="toy add", progress=False))
    assert out.status == "accepted", out.reason
    e = Ledger(repo).entries()[0]
    assert e.meta["agent"] == "external" and e.meta["message"] == "toy add"
    assert "generated_runtime/tests/py/test_toy.py" in e.patch_bytes().decode()
    ok, msg = check_against_tree(repo)
    assert ok, msg


def test_submit_is_scoped_to_the_spec_paths(repo: Path):
    """Note [Scoped submit]: files outside the spec's paths stay pending in the working tree, untouched, and do
    not enter the entry; the gates judge the scoped tree."""
    spec_file = repo / "specs" / "01-toy.md"
    spec_file.write_text(spec_file.read_text().replace(
        'paths: ["generated_runtime/**"]', 'paths: ["generated_runtime/**", "!generated_runtime/**/extra/**"]'))
    rt = repo / "generated_runtime"
    (rt / "vibetensor").mkdir()
    from tests.harness.toy_repo import PYPROJECT

    (rt / "pyproject.toml").write_text(PYPROJECT)
    (rt / "vibetensor" / "__init__.py").write_text("def add(a, b):\n    return a + b\n")
    pending = rt / "vibetensor" / "extra" / "later.py"
    pending.parent.mkdir()
    pending.write_text("BROKEN = (\n")  # would fail any import-time check if it were gated with this spec
    out = Runner(repo).submit(find_spec(repo, "01-toy"), RunOptions(message="toy add", progress=False))
    assert out.status == "accepted", out.reason
    patch = Ledger(repo).entries()[0].patch_bytes().decode()
    assert "vibetensor/__init__.py" in patch and "extra/later.py" not in patch
    assert pending.read_text() == "BROKEN = (\n"  # left alone
    ok, _ = check_against_tree(repo)
    assert not ok  # the pending file is not in the ledger yet
    run_json = json.loads(next((repo / "logs" / "runs").glob("*/run.json")).read_text())
    assert run_json["pending_outside_spec"] == ["vibetensor/extra/later.py"]
    with pytest.raises(HarnessError, match="outside its paths"):
        Runner(repo).submit(find_spec(repo, "01-toy"), RunOptions(message="again", progress=False))


def test_rejected_submit_is_stored_and_replays_as_a_failure(repo: Path):
    """Note [Stored submit proposals]: a rejected submit keeps its patch (compressed) so the replay agent re-gates
    it and demands the same failure; the accepted one's copy is dropped (the ledger holds it)."""
    rt = repo / "generated_runtime"
    (rt / "vibetensor").mkdir()
    from tests.harness.toy_repo import PYPROJECT

    (rt / "pyproject.toml").write_text(PYPROJECT)
    (rt / "vibetensor" / "__init__.py").write_text("def add(a, b):\n    return a - b\n")
    spec = find_spec(repo, "01-toy")
    bad = Runner(repo).submit(spec, RunOptions(message="wrong", progress=False))
    assert bad.status == "rejected"
    stored = list(Path(bad.run_dir).glob("proposals/*.patch.gz"))
    assert len(stored) == 1
    (rt / "vibetensor" / "__init__.py").write_text("def add(a, b):\n    return a + b\n")
    good = Runner(repo).submit(spec, RunOptions(message="right", progress=False))
    assert good.status == "accepted", good.reason
    assert not list(Path(good.run_dir).glob("proposals/*.patch.gz"))
    replayed = replay_spec(Runner(repo), spec, progress=False)
    assert replayed.status == "ok", replayed.reason
    assert [(d["recorded"], d["today"]) for d in replayed.details] == [("fail", "fail"), ("pass", "pass")]

    # the dashboards show the rejected patch itself, and point the accepted one to the ledger
    from harness.dashboard import data_model as dm

    model = dm.load_model(repo)
    bad_view = dm.load_run_detail(model, model.run(Path(bad.run_dir).name)).attempts[0]
    assert "return a - b" in bad_view.proposal_text and bad_view.proposal_ref.startswith("proposals/")
    good_view = dm.load_run_detail(model, model.run(Path(good.run_dir).name)).attempts[0]
    assert good_view.proposal_ref == "ledger"


def test_tampered_patch_detected(repo: Path):
    runner, spec, out = run(repo, [toy_runtime_diff()], nop_check=False)
    assert out.status == "accepted"
    e = Ledger(repo).entries()[0]
    e.patch_path.write_bytes(e.patch_bytes().replace(b"a + b", b"a * b"))
    from harness.interfaces import LedgerError

    with pytest.raises(LedgerError, match="modified"):
        check_against_tree(repo)


def test_replay_judges_each_recording_with_the_tests_of_its_ledger_state(repo: Path):
    """Note [Replay judges with the tests of its time]: entry 2 adds an acceptance test for a function entry 1's
    state lacks. Entry 1's recording must be re-gated with entry 1's tests (and pass, as recorded), not today's."""
    from tests.harness.toy_repo import PYPROJECT

    rt = repo / "generated_runtime"
    (rt / "vibetensor").mkdir()
    (rt / "pyproject.toml").write_text(PYPROJECT)
    (rt / "vibetensor" / "__init__.py").write_text("def add(a, b):\n    return a + b\n")
    spec = find_spec(repo, "01-toy")
    first = Runner(repo).submit(spec, RunOptions(message="add", progress=False))
    assert first.status == "accepted", first.reason
    (rt / "vibetensor" / "__init__.py").write_text("def add(a, b):\n    return a + b\n\n\n"
                                                   "def sub(a, b):\n    return a - b\n")
    (rt / "tests" / "py" / "test_sub.py").write_text("from vibetensor import sub\n\n\n"
                                                     "def test_sub():\n    assert sub(5, 3) == 2\n")
    second = Runner(repo).submit(spec, RunOptions(message="sub", progress=False))
    assert second.status == "accepted", second.reason
    replayed = replay_spec(Runner(repo), spec, progress=False)
    assert replayed.status == "ok", replayed.reason
    assert [(d["entry_seq"], d["recorded"], d["today"]) for d in replayed.details] == [(1, "pass", "pass"),
                                                                                       (2, "pass", "pass")]


def test_replay_pins_the_recorded_gate_seeds(repo: Path):
    """Note [Replay with the recorded seeds]: a gate that drew random inputs is re-run with the seed its verdict was
    recorded with (from the run's events, or the ledger entry's gates), unless the spec pins one itself."""
    from harness.agents.replay_agent import recordings
    from harness.interfaces import GateConfig
    from harness.runner import gates_with_recorded_seeds

    runner, spec, out = run(repo, [toy_runtime_diff("return a - b"), toy_runtime_diff("return a + b")])
    assert out.status == "accepted"
    events = Path(out.run_dir) / "events.jsonl"
    lines = []
    for line in events.read_text().splitlines():  # as if the failing attempt's pytest gate had drawn seed 1234
        e = json.loads(line)
        if e["type"] == "attempt_end" and e["attempt"] == 1:
            e["gates"][-1]["metrics"]["seed"] = 1234
        lines.append(json.dumps(e))
    events.write_text("\n".join(lines) + "\n")
    recs = recordings(repo, "01-toy")
    assert [(r.recorded_verdict, r.gate_seeds) for r in recs] == [("fail", {"pytest": 1234}), ("pass", {})]
    gates = gates_with_recorded_seeds([GateConfig("build"), GateConfig("pytest", {"paths": ["x"]}),
                                       GateConfig("parity", {"seed": 7})], {"pytest": 1234, "parity": 99})
    assert [g.options for g in gates] == [{}, {"paths": ["x"], "seed": 1234}, {"seed": 7}]
