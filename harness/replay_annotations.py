"""Replay annotations: what a reviewer established about an old recording that the recording itself does not say.

Note [Replay annotations]: a recording made before runs kept their protected-file manifest (Note [Protected-file
manifest], harness/protected.py) is judged by the rule of Note [Replay judges with the tests of its time]: the
protected files of the ledger entry the run belongs to. Where the evidence shows that the trusted tree held other
tests when the run was gated, a committed, human-readable file says so, and the replay follows it and prints it
next to the recording's result, so a reviewer sees every exception to the rule and its reason:

``logs/replay_annotations.yaml``::

    runs:
      <run id>:                       # a folder of logs/runs/; the annotation applies to every recording of the run
        judge_with: base              # base | entry | entry N | not reproducible
        paths: [<glob>, ...]          # optional: only these files come from judge_with's state (the rest: the rule)
        reason: <the evidence>        # required

A second kind of annotation is about the validator, not the tests: ``validator_fixed: <commit>`` with ``gate:
<name>`` says the recorded failure at that gate came from a validator defect that the named commit of this repository
fixed (the commit must change files under ``validators/``). When today's verdict is a pass where the recording failed
at that gate, the recording is counted apart (``validator_fixed``) and does not fail the replay; any other
difference is still a mismatch. It needs no ``judge_with`` (the tests are then chosen as for any recording) and is
allowed on recordings with a manifest.

``base`` is the ledger state the run was made on; ``entry`` the rule's state (the result of the run's own entry,
or of the entry that followed its base: written out, for the record); ``entry N`` the result of ledger entry N.
``not reproducible``: no ledger state holds the tests the run was judged with (a test written while the gates ran);
the recording is not re-gated, it is reported and counted apart (``not_reproducible``) and does not fail the
replay. A mistake in the file (bad YAML, an unknown key or value, no reason, a run that does not exist, an entry the
ledger lacks, an annotation on a recording that has a manifest, which is judged with its manifest) is an error
before anything is gated.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.interfaces import HarnessError

ANNOTATIONS = "logs/replay_annotations.yaml"
BASE, ENTRY, NOT_REPRODUCIBLE = "base", "entry", "not reproducible"
_RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9A-Za-z][0-9A-Za-z._-]*-[0-9a-f]{6}$")
_KEYS = {"judge_with", "paths", "reason", "validator_fixed", "gate"}
_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")


@dataclass(frozen=True)
class Annotation:
    run_id: str
    judge_with: str | None  # BASE | ENTRY | NOT_REPRODUCIBLE | "entry N"; None: only a validator annotation
    reason: str
    paths: list[str] = field(default_factory=list)
    entry: int | None = None  # N of "entry N"
    validator_fixed: str | None = None  # the commit that fixed the validator of `gate`
    gate: str | None = None

    @property
    def reproducible(self) -> bool:
        return self.judge_with != NOT_REPRODUCIBLE

    @property
    def chooses_tests(self) -> bool:
        """Whether the annotation says which tests the recording is judged with (judge_with)."""
        return self.judge_with is not None

    def describe(self) -> str:
        """One line for the report: what the annotation decides, then its reason."""
        parts = []
        if not self.reproducible:
            parts.append("not reproducible")
        elif self.chooses_tests:
            state = {BASE: "the run's base state", ENTRY: "the rule's state (its entry)"}.get(
                self.judge_with, f"ledger entry {self.entry}'s result")
            parts.append(f"judged with the protected files of {state}" + (
                f" for {', '.join(self.paths)} (the rest by the rule)" if self.paths else ""))
        if self.validator_fixed:
            parts.append(f"its failure at {self.gate} came from a validator defect that commit "
                         f"{self.validator_fixed} fixed (a pass today is counted apart)")
        return f"annotated ({ANNOTATIONS}): {'; '.join(parts)}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"file": ANNOTATIONS, "run_id": self.run_id, "judge_with": self.judge_with,
                             "reason": self.reason}
        if self.paths:
            d["paths"] = list(self.paths)
        if self.validator_fixed:
            d["validator_fixed"], d["gate"] = self.validator_fixed, self.gate
        return d


def _check_validator_commit(root: Path, commit: str, where: str) -> None:
    """The commit exists in root's repository and changes files under validators/."""
    from harness import gitops

    if not gitops.has_object(root, f"{commit}^{{commit}}"):
        if gitops.git(root, "rev-parse", "--is-shallow-repository", check=False).strip() == "true":
            return  # a shallow clone (a CI checkout) lacks the history to check it against
        raise HarnessError(f"{where}: validator_fixed {commit!r} is not a commit of this repository")
    if not gitops.git(root, "diff-tree", "--no-commit-id", "--name-only", "-r", "--root", commit, "--", "validators",
                      check=False).strip():
        raise HarnessError(f"{where}: validator_fixed {commit!r} changes nothing under validators/")


def load_annotations(root: Path) -> dict[str, Annotation]:
    """run id -> Annotation from root's annotation file (none when it does not exist). Any mistake in the file is a
    HarnessError naming the file, the run and the problem."""
    import yaml

    path = root / ANNOTATIONS
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise HarnessError(f"{ANNOTATIONS} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or set(data) - {"runs"}:
        raise HarnessError(f"{ANNOTATIONS}: the file must be a mapping with one key, 'runs' (got "
                           f"{sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__})")
    runs = data.get("runs") or {}
    if not isinstance(runs, dict):
        raise HarnessError(f"{ANNOTATIONS}: 'runs' must map run ids to annotations")
    out: dict[str, Annotation] = {}
    for run_id, body in runs.items():
        where = f"{ANNOTATIONS}: run {run_id!r}"
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
            raise HarnessError(f"{where}: not a run id (YYYYmmdd-HHMMSS-<spec>-<6 hex>)")
        if not (root / "logs" / "runs" / run_id / "run.json").is_file():
            raise HarnessError(f"{where}: there is no such run (logs/runs/{run_id}/run.json)")
        if not isinstance(body, dict):
            raise HarnessError(f"{where}: must be a mapping with judge_with and reason")
        unknown = sorted(set(map(str, body)) - _KEYS)
        if unknown:
            raise HarnessError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(_KEYS))})")
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise HarnessError(f"{where}: 'reason' is required: the evidence for the annotation")
        fixed, gate = body.get("validator_fixed"), body.get("gate")
        if fixed is not None or gate is not None:
            if not isinstance(fixed, str) or not _COMMIT.match(fixed.strip()):
                raise HarnessError(f"{where}: 'validator_fixed' must be a commit id (7 to 40 hex digits) with 'gate'")
            if not isinstance(gate, str) or not gate.strip().isidentifier():
                raise HarnessError(f"{where}: 'validator_fixed' needs 'gate': the gate whose recorded failure the fix "
                                   "explains")
            fixed, gate = fixed.strip(), gate.strip()
            _check_validator_commit(root, fixed, where)
        judge = body.get("judge_with")
        entry = None
        if judge is None and fixed is not None:
            if body.get("paths"):
                raise HarnessError(f"{where}: 'paths' needs 'judge_with'")
            out[run_id] = Annotation(run_id, None, " ".join(reason.split()), [], None, fixed, gate)
            continue
        if not isinstance(judge, str):
            raise HarnessError(f"{where}: 'judge_with' is required: base, entry, entry N or not reproducible "
                               "(or only 'validator_fixed' with 'gate')")
        judge = " ".join(judge.split())
        m = re.fullmatch(r"entry (\d+)", judge)
        if m:
            entry = int(m.group(1))
            if entry < 1:
                raise HarnessError(f"{where}: judge_with {judge!r}: ledger entries are numbered from 1")
        elif judge not in (BASE, ENTRY, NOT_REPRODUCIBLE):
            raise HarnessError(f"{where}: judge_with {judge!r} is not one of base, entry, entry N, "
                               "not reproducible")
        paths = body.get("paths", [])
        if not isinstance(paths, list) or not all(isinstance(p, str) and p.strip() for p in paths):
            raise HarnessError(f"{where}: 'paths' must be a list of globs")
        if fixed is not None and judge == NOT_REPRODUCIBLE:
            raise HarnessError(f"{where}: 'validator_fixed' makes no sense for a recording that is not re-gated")
        if paths and judge == NOT_REPRODUCIBLE:
            raise HarnessError(f"{where}: 'paths' makes no sense for a recording that is not reproducible")
        for p in paths:
            if p.startswith("/") or ".." in p.split("/") or not p.lstrip("!").startswith("generated_runtime/"):
                raise HarnessError(f"{where}: path glob {p!r} must be inside generated_runtime/")
        out[run_id] = Annotation(run_id, judge, " ".join(reason.split()), list(paths), entry, fixed, gate)
    return out
