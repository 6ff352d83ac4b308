"""Gate chain order, fail-fast, state hand-over and the verdict cache (hits, misses, forged entries)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.validators.gate_fixture_projects import write_files
import validators
from harness.interfaces import GateConfig, GateResult, HarnessError
from validators import chain
from validators.tree_hash import EMPTY_TREE, git_tree_hash
from validators.verdict_cache import VerdictCache


class FakeGate:
    """Passes unless generated_runtime/<name>.fail exists; counts its runs; hands state on."""

    version = "1"

    def __init__(self, name, runs, status=None):
        self.name, self.runs, self.status = name, runs, status

    def run(self, ctx):
        self.runs.append(self.name)
        if self.status == "crash":
            raise RuntimeError("gate bug")
        ctx.state[f"{self.name}_saw"] = sorted(ctx.state)
        failing = (Path(ctx.candidate_root) / "generated_runtime" / f"{self.name}.fail").exists()
        status = self.status or ("fail" if failing else "pass")
        return GateResult(self.name, status, 0.01, f"{self.name} {status}")


@pytest.fixture
def chain_env(tmp_path, make_ctx, monkeypatch):
    runs: list[str] = []
    statuses: dict[str, str] = {}
    monkeypatch.setattr(chain, "get_gate", lambda name: FakeGate(name, runs, statuses.get(name)))
    repo = tmp_path / "repo"
    write_files(repo, {"generated_runtime/src/a.cpp": "int a;\n", "generated_runtime/tests/py/test_a.py": "A = 1\n"})
    trusted = tmp_path / "trusted"
    write_files(trusted, {"generated_runtime/tests/py/test_a.py": "A = 1\n"})
    cache = tmp_path / "cache"

    def gate(names=("build", "ctest", "pytest")):
        seen: list[GateResult] = []
        configs = [GateConfig(n, {"opt": 1}) for n in names]
        results = chain.run_gates(configs, lambda cfg: make_ctx(repo, trusted_root=trusted, cache_dir=cache,
                                                                protected=["generated_runtime/tests/py/*.py"]),
                                  seen.append)
        assert [r.name for r in seen] == [r.name for r in results]
        return results

    return repo, trusted, runs, statuses, gate


def test_cache_hit_on_unchanged_tree_and_miss_after_one_byte(chain_env):
    repo, _, runs, _, gate = chain_env
    first = gate()
    assert [r.status for r in first] == ["pass"] * 3 and not any(r.cached for r in first)
    assert runs == ["build", "ctest", "pytest"]

    second = gate()
    assert all(r.cached for r in second) and [r.status for r in second] == ["pass"] * 3
    assert runs == ["build", "ctest", "pytest"]  # nothing ran again

    (repo / "generated_runtime/src/a.cpp").write_text("int b;\n")  # one byte changed
    third = gate()
    assert not any(r.cached for r in third)
    assert runs == ["build", "ctest", "pytest"] * 2


def test_changed_validator_code_misses_the_cache(chain_env, monkeypatch):
    _, _, runs, _, gate = chain_env
    gate()
    assert all(r.cached for r in gate())
    assert len(chain.validators_code_digest()) == 64
    monkeypatch.setattr(chain, "validators_code_digest", lambda: "0" * 64)  # as after an edit to a validator
    assert not any(r.cached for r in gate())
    assert runs == ["build", "ctest", "pytest"] * 2


def test_fail_fast_and_cached_failure(chain_env):
    repo, _, runs, _, gate = chain_env
    (repo / "generated_runtime/ctest.fail").write_text("")
    results = gate()
    assert [(r.name, r.status) for r in results] == [("build", "pass"), ("ctest", "fail")]
    again = gate()
    assert [(r.name, r.status, r.cached) for r in again] == [("build", "pass", True), ("ctest", "fail", True)]
    assert runs == ["build", "ctest"]


def test_errors_and_crashes_are_not_cached(chain_env):
    _, _, runs, statuses, gate = chain_env
    statuses["ctest"] = "crash"
    results = gate()
    assert results[1].status == "error" and "RuntimeError: gate bug" in results[1].summary
    gate()
    assert runs.count("ctest") == 2 and runs.count("build") == 2  # incomplete cached verdict: whole chain again


def test_state_flows_along_the_chain(tmp_path, make_ctx, monkeypatch):
    runs: list[str] = []
    seen_state = {}

    class Reader(FakeGate):
        def run(self, ctx):
            seen_state.update(ctx.state)
            return super().run(ctx)

    monkeypatch.setattr(chain, "get_gate", lambda name: (FakeGate if name == "build" else Reader)(name, runs))
    repo = tmp_path / "repo"
    write_files(repo, {"generated_runtime/x": "1"})
    chain.run_gates([GateConfig("build"), GateConfig("pytest")], lambda cfg: make_ctx(repo), use_cache=False)
    assert seen_state["build_saw"] == []


def test_changed_protected_files_miss_the_cache(chain_env):
    _, trusted, runs, _, gate = chain_env
    gate()
    (trusted / "generated_runtime/tests/py/test_a.py").write_text("A = 2\n")
    gate()
    assert runs.count("build") == 2


def test_forged_cache_entries_are_ignored(chain_env, tmp_path):
    repo, _, runs, _, gate = chain_env
    (repo / "generated_runtime/build.fail").write_text("")
    gate()
    cache = VerdictCache(tmp_path / "cache")
    lines = cache.path.read_text().splitlines()
    forged = []
    for line in lines:  # a candidate flips the verdict to "pass" without the key, or with a guessed mac
        entry = json.loads(line)
        entry["result"]["status"] = "pass"
        forged.append(json.dumps(entry))
        entry["mac"] = "0" * 64
        forged.append(json.dumps(entry))
    with open(cache.path, "a") as f:
        f.write("\n".join(forged) + "\nnot json\n")
    results = gate()
    assert [(r.status, r.cached) for r in results] == [("fail", True)]
    assert runs == ["build"]


def test_registry_names_order_and_missing_modules(monkeypatch):
    assert validators.GATE_ORDER == ("build", "ctest", "pytest", "parity", "allocator", "training", "perf")
    assert set(validators.GATES) == set(validators.GATE_ORDER)
    gate = validators.get_gate("build")
    assert gate.name == "build" and gate.version
    assert validators.get_gate("pytest").name == "pytest" and validators.get_gate("ctest").name == "ctest"
    with pytest.raises(HarnessError, match="unknown gate 'lint'"):
        validators.get_gate("lint")
    monkeypatch.setitem(validators.GATES, "perf", "validators.no_such_perf_module:PerfGate")
    with pytest.raises(HarnessError, match="does not exist yet"):
        validators.get_gate("perf")
    monkeypatch.setitem(validators.GATES, "perf", "validators.build_gate:NoSuchClass")
    with pytest.raises(HarnessError, match="has no class NoSuchClass"):
        validators.get_gate("perf")
    assert validators.sort_gate_names(["pytest", "build", "ctest"]) == ["build", "ctest", "pytest"]


def _git_write_tree(path: Path) -> str:
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    subprocess.run(["git", "-C", str(path), "add", "-A"], check=True)
    out = subprocess.run(["git", "-C", str(path), "write-tree"], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def test_tree_hash_matches_git_and_respects_gitignore(tmp_path):
    folder = tmp_path / "rt"
    write_files(folder, {"a/b.txt": "hi\n", "run.sh": "#!/bin/sh\n", ".gitignore": "build/\n",
                         "build/junk.o": "xx"})
    (folder / "run.sh").chmod(0o755)
    ours = git_tree_hash(folder)
    before_junk = ours
    (folder / "build/more.o").write_text("yy")  # ignored: no change
    assert git_tree_hash(folder) == before_junk
    (folder / "a/b.txt").write_text("hi!\n")
    changed = git_tree_hash(folder)
    assert changed != ours
    assert changed == _git_write_tree(folder)


def test_tree_hash_of_empty_or_missing_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    assert git_tree_hash(tmp_path / "empty") == EMPTY_TREE
    assert git_tree_hash(tmp_path / "missing") == EMPTY_TREE
