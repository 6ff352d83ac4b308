"""Note [Protected-file manifest] and Note [Replay annotations]: a run records the protected files (acceptance tests)
its gates judged with, and the replay judges with exactly those; old recordings follow a committed annotation file.

The scenario (built once per module, copied per test) is the shape of recording 33 of spec 01 and entry 77's first
try of spec 02: a submit rejected while the working tree (the trusted tree) held tests that no ledger state holds
in that form, then an entry that changed those tests. The rule for old recordings (Note [Replay judges with the
tests of its time]: the tests of the entry that followed) turns that recorded failure into a pass."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.interfaces import HarnessError
from harness.protected import ManifestError, blob_id, load_manifest, rebuild_trusted
from harness.replay_annotations import ANNOTATIONS, load_annotations
from harness.runner import MATCH, MISMATCH, NOT_REPRODUCIBLE, VALIDATOR_FIXED, Runner, RunOptions
from harness.specs import find_spec
from tests.harness.toy_repo import ACCEPTANCE, PYPROJECT, make_toy_repo

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}  # the CLI of this checkout

ADD = "def add(a, b):\n    return a + b\n"
ADD_ABS_AND_MUL = "def add(a, b):\n    return abs(a) + b\n\n\ndef mul(a, b):\n    return a * b\n"
# the draft of a test, in the working tree while the rejected submit was gated; no ledger state holds it
MUL_DRAFT = "from vibetensor import mul\n\n\ndef test_mul():\n    assert mul(2, 3, scale=2) == 12\n"
MUL_FINAL = "from vibetensor import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n"
TOY_FINAL = "from vibetensor import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"  # entry 2 drops add(-1, 1)
TOY_TEST, MUL_TEST = "generated_runtime/tests/py/test_toy.py", "generated_runtime/tests/py/test_mul.py"


def submit(repo: Path, message: str, nop_check: bool = False):
    return Runner(repo).submit(find_spec(repo, "01-toy"),
                               RunOptions(message=message, progress=False, nop_check=nop_check))


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> tuple[Path, str]:
    """Entry 1 (add); a rejected submit judged with the base's test_toy.py and the draft test_mul.py; entry 2,
    which changes test_toy.py and lands the final test_mul.py. Returns the repository and the rejected run's id."""
    repo = make_toy_repo(tmp_path_factory.mktemp("scenario") / "repo")
    rt = repo / "generated_runtime"
    (rt / "vibetensor").mkdir()
    (rt / "pyproject.toml").write_text(PYPROJECT)
    (rt / "vibetensor" / "__init__.py").write_text(ADD)
    assert submit(repo, "add").status == "accepted"
    (rt / "vibetensor" / "__init__.py").write_text(ADD_ABS_AND_MUL)
    (repo / MUL_TEST).write_text(MUL_DRAFT)
    rejected = submit(repo, "abs add, mul", nop_check=True)
    assert rejected.status == "rejected", rejected.reason
    (repo / TOY_TEST).write_text(TOY_FINAL)
    (repo / MUL_TEST).write_text(MUL_FINAL)
    second = submit(repo, "mul; add of negatives is not tested")
    assert second.status == "accepted", second.reason
    return repo, rejected.run_id


@pytest.fixture()
def repo(scenario, tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the scenario: (repository, the rejected run's folder)."""
    src, run_id = scenario
    dst = tmp_path / "repo"
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns("worktrees", "trash"))
    return dst, dst / "logs" / "runs" / run_id


def vt_replay(repo: Path, *extra: str, json_out: bool = True) -> tuple[int, dict | str]:
    p = subprocess.run([sys.executable, "-m", "harness.cli", "run", "01-toy", "--agent", "replay",
                        *(["--json"] if json_out else []), *extra],
                       cwd=repo, capture_output=True, text=True, timeout=600, env=ENV)
    if json_out:
        return p.returncode, json.loads(p.stdout)
    return p.returncode, p.stdout + p.stderr


def strip_manifests(run_dir: Path) -> None:
    """Make a recording look like one made before runs kept their manifest."""
    events = run_dir / "events.jsonl"
    lines = []
    for line in events.read_text().splitlines():
        e = json.loads(line)
        e.pop("protected_manifest", None)
        lines.append(json.dumps(e))
    events.write_text("\n".join(lines) + "\n")


def annotate(repo: Path, text: str) -> None:
    (repo / ANNOTATIONS).write_text(text)


def git_blob(repo: Path, data: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "hash-object", "--stdin"], input=data.encode(),
                          capture_output=True, check=True).stdout.decode().strip()


# ----------------------------------------------------------------------------------------------------------------
# Recording


def test_submit_records_the_protected_files_it_was_judged_with(repo):
    repo, run_dir = repo
    summary = json.loads((run_dir / "run.json").read_text())
    rec = summary["attempts"][0]["protected_manifest"]
    assert rec["ref"] == "protected/A1-C0.json" and rec["files"] == 2 and rec["stored"] == 1
    ends = [json.loads(l) for l in (run_dir / "events.jsonl").read_text().splitlines()]
    assert [e["protected_manifest"] for e in ends if e["type"] == "attempt_end"] == [rec]
    manifest = json.loads((run_dir / rec["ref"]).read_text())
    # path -> git blob id of exactly the bytes the gates saw: the base's test_toy.py and the draft test_mul.py
    assert manifest["files"] == {TOY_TEST: git_blob(repo, ACCEPTANCE), MUL_TEST: git_blob(repo, MUL_DRAFT)}
    assert blob_id(MUL_DRAFT.encode()) == git_blob(repo, MUL_DRAFT)
    # only what differs from the base state is stored (test_toy.py is the base's), compressed, content-addressed
    assert manifest["stored"] == {MUL_TEST: f"protected/files/{git_blob(repo, MUL_DRAFT)}.gz"}
    assert gzip.decompress((run_dir / manifest["stored"][MUL_TEST]).read_bytes()).decode() == MUL_DRAFT
    assert manifest["globs"] == ["generated_runtime/tests/**"] and manifest["base_tree"] == summary["base_tree"]
    # the nop check records its own
    nop = summary["nop_protected_manifest"]
    assert nop["ref"] == "protected/A0-C0.json"
    assert json.loads((run_dir / nop["ref"]).read_text())["files"] == manifest["files"]
    # the accepted entry's run too: both tests differ from its base (entry 1), so both are stored
    entry2 = json.loads((repo / "logs" / "ledger" / "0002-01-toy.json").read_text())
    run2 = json.loads((repo / "logs" / "runs" / entry2["run_id"] / "run.json").read_text())
    assert run2["attempts"][0]["protected_manifest"]["stored"] == 2


# ----------------------------------------------------------------------------------------------------------------
# Replaying with a manifest


def test_replay_judges_with_the_recorded_files_and_reproduces_the_verdict(repo):
    repo, run_dir = repo
    code, out = vt_replay(repo, "--recordings", "2")
    assert code == 0, out
    d = out["details"][0]
    assert (d["recorded"], d["today"], d["today_gate"], d["result"]) == ("fail", "fail", "pytest", MATCH)
    assert d["judged_by"] == "manifest" and "protected/A1-C0.json" in d["judged_with"]
    assert out["counts"]["manifest"] == 1 and out["counts"][MISMATCH] == 0
    # the replay's own record of what it judged with is the recorded one, file for file
    replay_dir = repo / "logs" / "replays" / out["run_id"]
    mine = json.loads((replay_dir / d["protected_manifest"]["ref"]).read_text())
    recorded = json.loads((run_dir / "protected" / "A1-C0.json").read_text())
    assert mine["files"] == recorded["files"]
    # the same recording without its manifest is judged by the rule (entry 2's tests) and passes: a MISMATCH
    strip_manifests(run_dir)
    code, out = vt_replay(repo, "--recordings", "2")
    assert code == 5, out
    assert out["details"][0]["result"] == MISMATCH and out["details"][0]["judged_by"] == "rule"


def test_a_damaged_manifest_is_not_reproducible_and_the_others_are_still_replayed(repo):
    repo, run_dir = repo
    stored = next((run_dir / "protected" / "files").glob("*.gz"))
    stored.write_bytes(gzip.compress(MUL_FINAL.encode()))  # other bytes than the recorded blob
    code, out = vt_replay(repo, "--recordings", "2,3")
    assert code == 2, out
    assert out["status"] == "error" and "recording 2: not reproducible" in out["reason"]
    first, second = out["details"]
    assert first["result"] == NOT_REPRODUCIBLE and "does not hash to the recorded blob" in first["damaged"]
    assert second["result"] == MATCH  # the next recording was re-gated as usual
    assert out["counts"][NOT_REPRODUCIBLE] == 1


def test_manifest_checks(repo, tmp_path):
    """load_manifest / rebuild_trusted refuse an altered manifest, a stored copy with other bytes, and paths that
    leave the runtime; a good one rebuilds exactly its files."""
    repo, run_dir = repo
    rec = json.loads((run_dir / "run.json").read_text())["attempts"][0]["protected_manifest"]
    manifest = load_manifest(run_dir, rec)
    trusted = tmp_path / "trusted"
    (trusted / "generated_runtime" / "tests" / "py").mkdir(parents=True)
    (trusted / TOY_TEST).write_text(ACCEPTANCE)
    (trusted / "generated_runtime" / "tests" / "py" / "test_gone.py").write_text("x = 1\n")  # not in the manifest
    n = rebuild_trusted(manifest, repo, trusted)
    assert n == {"files": 2, "written": 1, "removed": 1}
    assert (trusted / MUL_TEST).read_text() == MUL_DRAFT and not (trusted / "generated_runtime/tests/py/test_gone.py"
                                                                  ).exists()
    # a stored copy whose bytes are not the recorded blob
    (run_dir / manifest["stored"][MUL_TEST]).write_bytes(gzip.compress(MUL_FINAL.encode()))
    (trusted / MUL_TEST).unlink()
    with pytest.raises(ManifestError, match="does not hash to the recorded blob"):
        rebuild_trusted(manifest, repo, trusted)
    # an altered manifest
    path = run_dir / rec["ref"]
    path.write_text(path.read_text().replace(MUL_TEST, "generated_runtime/tests/py/test_other.py"))
    with pytest.raises(ManifestError, match="altered"):
        load_manifest(run_dir, rec)
    # a path outside the runtime (sha256 recomputed: only the path check stands in the way)
    import hashlib

    data = json.loads(path.read_text())
    data["files"] = {"harness/runner.py": "0" * 40}
    raw = json.dumps(data).encode()
    path.write_bytes(raw)
    with pytest.raises(ManifestError, match="not inside generated_runtime/"):
        load_manifest(run_dir, {**rec, "sha256": hashlib.sha256(raw).hexdigest()})
    with pytest.raises(ManifestError, match="missing"):
        load_manifest(run_dir, {"ref": "protected/A9-C0.json"})
    # a listed file whose stored copy is gone and whose blob git does not have
    gone = "f" * 40
    m = {**manifest, "files": {MUL_TEST: gone}, "stored": {MUL_TEST: f"protected/files/{gone}.gz"}}
    with pytest.raises(ManifestError, match=f"cannot rebuild {MUL_TEST} .blob {gone}.: its stored copy .* is missing"):
        rebuild_trusted(m, repo, trusted)


# ----------------------------------------------------------------------------------------------------------------
# Annotations of old recordings


def test_an_annotation_is_honoured_and_reported(repo):
    repo, run_dir = repo
    strip_manifests(run_dir)
    annotate(repo, f"""# what the trusted tree held when {run_dir.name} was gated
runs:
  {run_dir.name}:
    judge_with: base
    reason: the gate log shows test_toy.py's add(-1, 1) failing, the base's version of that test
""")
    code, out = vt_replay(repo, "--recordings", "2")
    assert code == 0, out
    d = out["details"][0]
    assert (d["result"], d["today_gate"], d["judged_by"]) == (MATCH, "pytest", "annotation")
    assert d["annotation"] == {"file": ANNOTATIONS, "run_id": run_dir.name, "judge_with": "base",
                               "reason": "the gate log shows test_toy.py's add(-1, 1) failing, the base's version "
                                         "of that test"}
    assert out["counts"]["annotated"] == 1 and "judged as logs/replay_annotations.yaml says: recording 2 (base)" \
        in out["reason"]
    code, text = vt_replay(repo, "--recordings", "2", json_out=False)
    assert code == 0, text
    assert ("annotated (logs/replay_annotations.yaml): judged with the protected files of the run's base state: "
            "the gate log shows test_toy.py's add(-1, 1) failing") in text
    # only some files from the named state: test_toy.py from the base, the rest (entry 2's test_mul.py) by the rule
    annotate(repo, f"""runs:
  {run_dir.name}: {{judge_with: base, paths: [{TOY_TEST}], reason: only the C++-like test was old}}
""")
    code, out = vt_replay(repo, "--recordings", "2")
    assert code == 0 and out["details"][0]["result"] == MATCH, out
    assert "for generated_runtime/tests/py/test_toy.py (the rest by the rule)" in out["details"][0]["judged_with"]


def test_not_reproducible_is_counted_apart_and_does_not_fail_the_replay(repo):
    repo, run_dir = repo
    strip_manifests(run_dir)
    annotate(repo, f"""runs:
  {run_dir.name}:
    judge_with: not reproducible
    reason: a protected test was added to the trusted tree while the gates ran
""")
    code, out = vt_replay(repo, "--recordings", "2,3")
    assert code == 0, out
    first, second = out["details"]
    assert first["result"] == NOT_REPRODUCIBLE and first["today"] is None and first["gates"] == []
    assert second["result"] == MATCH
    assert out["counts"][NOT_REPRODUCIBLE] == 1 and out["counts"][MATCH] == 1 and out["counts"][MISMATCH] == 0
    assert "1 not reproducible, not re-gated, as logs/replay_annotations.yaml says: recording 2" in out["reason"]
    code, text = vt_replay(repo, "--recordings", "2", json_out=False)
    assert code == 0, text
    assert "recorded fail at pytest, not re-gated -> not reproducible (annotated)" in text
    assert "a protected test was added to the trusted tree while the gates ran" in text
    assert "0 mismatch, 1 not reproducible, 0 passing since a validator fix (counted apart)" in text


def commit_validator_change(repo: Path, name: str = "validators/NOTE.md") -> str:
    """A commit of repo that changes a file under validators/ (or `name`); returns its id."""
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text("a corrected reference\n")
    subprocess.run(["git", "-C", str(repo), "add", name], check=True, capture_output=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "fix a validator"], check=True, capture_output=True)
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()


def test_a_validator_fix_counts_a_recorded_failure_that_passes_today_apart(repo):
    repo, run_dir = repo
    strip_manifests(run_dir)  # judged by the rule (entry 2's tests), recording 2 now passes: a MISMATCH
    fix = commit_validator_change(repo)
    annotate(repo, f"""runs:
  {run_dir.name}:
    validator_fixed: {fix}
    gate: pytest
    reason: the recorded failure came from a wrong reference in the gate, corrected by {fix}
""")
    code, out = vt_replay(repo, "--recordings", "2,3")
    assert code == 0, out
    first, second = out["details"]
    assert (first["result"], first["recorded"], first["today"], first["validator_fixed"]) == \
        (VALIDATOR_FIXED, "fail", "pass", fix)
    assert first["judged_by"] == "rule" and first["annotation"]["gate"] == "pytest"
    assert second["result"] == MATCH
    assert out["counts"][VALIDATOR_FIXED] == 1 and out["counts"][MISMATCH] == 0
    assert f"1 recorded failure(s) pass since a validator fix, counted apart" in out["reason"]
    code, text = vt_replay(repo, "--recordings", "2", json_out=False)
    assert code == 0, text
    assert f"passes since the validator fix {fix} (recorded fail at pytest; counted apart)" in text
    assert "0 mismatch, 0 not reproducible, 1 passing since a validator fix (counted apart)" in text
    # the fix explains a failure at its own gate only: named for another gate, the recording is a mismatch again
    annotate(repo, f"runs:\n  {run_dir.name}: {{validator_fixed: {fix}, gate: parity, reason: wrong gate}}\n")
    code, out = vt_replay(repo, "--recordings", "2")
    assert code == 5 and out["details"][0]["result"] == MISMATCH, out


def test_a_validator_annotation_is_allowed_beside_a_manifest_and_leaves_a_match_alone(repo):
    repo, run_dir = repo
    fix = commit_validator_change(repo)
    annotate(repo, f"runs:\n  {run_dir.name}: {{validator_fixed: {fix}, gate: pytest, reason: r}}\n")
    code, out = vt_replay(repo, "--recordings", "2")
    assert code == 0, out
    d = out["details"][0]
    assert (d["result"], d["judged_by"]) == (MATCH, "manifest")  # it still fails as recorded: nothing to explain


def test_validator_annotation_mistakes(repo):
    repo, run_dir = repo
    outside = commit_validator_change(repo, "docs/NOTE.md")
    for body, message in [
        (f"{{validator_fixed: {outside}, gate: pytest, reason: r}}", "changes nothing under validators/"),
        ("{validator_fixed: 0123abc, gate: pytest, reason: r}", "is not a commit of this repository"),
        ("{validator_fixed: HEAD, gate: pytest, reason: r}", "must be a commit id"),
        (f"{{validator_fixed: {outside}, reason: r}}", "needs 'gate'"),
        ("{gate: pytest, reason: r}", "must be a commit id"),
        (f"{{validator_fixed: {outside}, gate: pytest, judge_with: not reproducible, reason: r}}",
         "changes nothing under validators/"),
    ]:
        annotate(repo, f"runs:\n  {run_dir.name}: {body}\n")
        with pytest.raises(HarnessError, match=message):
            load_annotations(repo)
    fix = commit_validator_change(repo)
    annotate(repo, f"runs:\n  {run_dir.name}: {{validator_fixed: {fix}, gate: pytest, judge_with: not reproducible, "
                   "reason: r}\n")
    with pytest.raises(HarnessError, match="makes no sense for a recording that is not re-gated"):
        load_annotations(repo)
    annotate(repo, f"runs:\n  {run_dir.name}: {{validator_fixed: {fix}, gate: pytest, paths: [generated_runtime/x], "
                   "reason: r}\n")
    with pytest.raises(HarnessError, match="'paths' needs 'judge_with'"):
        load_annotations(repo)


def test_a_shallow_clone_cannot_check_the_commit_and_accepts_it(repo, tmp_path):
    repo, run_dir = repo
    annotate(repo, f"runs:\n  {run_dir.name}: {{validator_fixed: 0123abc, gate: pytest, reason: r}}\n")
    subprocess.run(["git", "-C", str(repo), "add", ANNOTATIONS], check=True, capture_output=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "annotate"], check=True, capture_output=True)
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow)], check=True,
                   capture_output=True)
    (shallow / "logs" / "runs" / run_dir.name).mkdir(parents=True, exist_ok=True)
    (shallow / "logs" / "runs" / run_dir.name / "run.json").write_text("{}")
    assert load_annotations(shallow)[run_dir.name].validator_fixed == "0123abc"
    with pytest.raises(HarnessError, match="is not a commit of this repository"):
        load_annotations(repo)  # the full history can say it does not exist


def test_an_annotation_cannot_override_a_recorded_manifest(repo):
    repo, run_dir = repo
    annotate(repo, f"runs:\n  {run_dir.name}: {{judge_with: base, reason: guess}}\n")
    code, out = vt_replay(repo, "--recordings", "2")
    assert code == 2 and "recorded its protected files (a manifest)" in out["reason"], out


def test_a_malformed_annotation_file_is_a_clear_error_before_anything_is_gated(repo):
    repo, run_dir = repo
    annotate(repo, "runs:\n  - just a list\n  bad: [\n")
    code, out = vt_replay(repo, "--recordings", "2")
    assert code == 2 and "logs/replay_annotations.yaml is not valid YAML" in out["reason"], out
    assert not (repo / "logs" / "replays").exists() or not any((repo / "logs" / "replays").iterdir())


@pytest.mark.parametrize("body, message", [
    ("runs: [a]", "'runs' must map run ids to annotations"),
    ("other: 1", "a mapping with one key, 'runs'"),
    ("runs:\n  RUN: {judge_with: base}", "'reason' is required"),
    ("runs:\n  RUN: {reason: x}", "'judge_with' is required"),
    ("runs:\n  RUN: {judge_with: yesterday, reason: x}", "judge_with 'yesterday' is not one of"),
    ("runs:\n  RUN: {judge_with: entry 0, reason: x}", "numbered from 1"),
    ("runs:\n  RUN: {judge_with: base, reason: x, why: y}", "unknown key(s) why"),
    ("runs:\n  RUN: {judge_with: not reproducible, paths: [generated_runtime/tests/**], reason: x}",
     "'paths' makes no sense"),
    ("runs:\n  RUN: {judge_with: base, paths: [tests/**], reason: x}", "must be inside generated_runtime/"),
    ("runs:\n  20990101-000000-01-toy-abcdef: {judge_with: base, reason: x}", "there is no such run"),
    ("runs:\n  not-a-run: {judge_with: base, reason: x}", "not a run id"),
])
def test_annotation_file_mistakes(tmp_path, body, message):
    run_id = "20261201-024234-01-toy-d4a209"
    (tmp_path / "logs" / "runs" / run_id).mkdir(parents=True)
    (tmp_path / "logs" / "runs" / run_id / "run.json").write_text("{}")
    annotate(tmp_path, body.replace("RUN", run_id))
    with pytest.raises(HarnessError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_annotations(tmp_path)


def test_annotation_file_good_forms(tmp_path):
    run_id = "20261201-024234-01-toy-d4a209"
    (tmp_path / "logs" / "runs" / run_id).mkdir(parents=True)
    (tmp_path / "logs" / "runs" / run_id / "run.json").write_text("{}")
    assert load_annotations(tmp_path) == {}
    annotate(tmp_path, f"runs:\n  {run_id}: {{judge_with: 'entry  7', reason: \"  two\n   lines \"}}\n")
    ann = load_annotations(tmp_path)[run_id]
    assert (ann.judge_with, ann.entry, ann.reason, ann.reproducible) == ("entry 7", 7, "two lines", True)
    assert "ledger entry 7's result: two lines" in ann.describe()


def test_the_committed_annotations_load(tmp_path):
    """The repository's own annotation file is valid (and names runs that exist)."""
    anns = load_annotations(ROOT)
    assert anns["20261201-024234-01-runtime-core-d4a209"].judge_with == "base"
    assert not anns["20261201-020918-02-autograd-nn-optim-cb421d"].reproducible
    fixed = anns["20261201-110155-01-runtime-core-f30be8"]
    assert (fixed.validator_fixed, fixed.gate, fixed.chooses_tests) == ("3b0eea9", "parity", False)
