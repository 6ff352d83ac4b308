"""The `replay` agent: recorded proposals, offline, in the order they were made.

Recordings of a spec come from the ledger (each accepted entry) and, where the entry's run log exists, from that
run's ``proposal`` events (failed attempts included, each with the verdict it got then). Runs of the spec that ended
without an entry (a rejected submit, say) add their stored proposals, on the ledger state recorded as their
``base_tree`` (Note [Stored submit proposals] in runner.py); runs older than that record are skipped. An accepted
submit's recording is its ledger patch. Recordings are in the order the runs were made. ``propose`` hands them out
in order; when they are exhausted it raises AgentError.

Offline ``vt-agent run SPEC --agent replay`` uses ``recordings`` directly (harness.replay) to re-gate each recorded
proposal on the ledger state it was made on and compare today's verdict with the recorded one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from harness.interfaces import AgentError, HarnessError, AgentRequest, AgentResponse, Proposal, Usage
from harness.gitops import EMPTY_TREE
from harness.ledger import Ledger
from harness.runlog import read_stored_proposal


@dataclass
class Recording:
    spec_id: str
    entry_seq: int  # the ledger entry this recording belongs to
    parent_tree: str  # the ledger state the proposal was made on
    attempt: int
    candidate: int
    proposal: Proposal
    recorded_verdict: str  # "pass" | "fail" | "rejected" | "error"
    run_id: str | None
    agent: str = ""  # the backend that made it ("external" for submit)
    # Note [Replay with the recorded seeds]: gates that draw random inputs (parity) record their seed in the
    # verdict's metrics; the replay re-runs them with it, so a verdict that depended on the inputs (a bug that shows
    # on 1% of random float16 inputs) is reproduced exactly instead of by chance.
    gate_seeds: dict = field(default_factory=dict)  # gate name -> seed used when the verdict was recorded
    # Note [Replay compares the failing gate]: where a recorded proposal failed -- the name of its first failing
    # gate, or the pre-gate stage "vet" (a forbidden path) / "apply" (no diff, does not apply, changes nothing) --
    # so the replay can tell "fails again, at the same gate" from "fails again, but elsewhere". None for a pass,
    # and for old recordings that kept neither ``failed_gate`` nor the gate results (the replay then compares the
    # verdict only, and says so).
    recorded_gate: str | None = None
    # Note [Protected-file manifest] (harness/protected.py): the attempt record's ``protected_manifest`` (what its
    # gates were judged with: a manifest in the run folder); None for recordings made before runs kept one.
    protected_manifest: dict | None = None


def _logged_proposals(run_dir: Path) -> tuple[list, dict, dict, dict, dict]:
    """([((attempt, candidate), Proposal)], {(attempt, candidate): verdict}, {(attempt, candidate): {gate: seed}},
    {(attempt, candidate): first failing gate or None}, {(attempt, candidate): protected_manifest record}) from a
    run's events."""
    verdicts: dict = {}
    seeds: dict = {}
    failed: dict = {}
    manifests: dict = {}
    props: list = []
    events_path = run_dir / "events.jsonl"
    if not events_path.is_file():
        return props, verdicts, seeds, failed, manifests
    for line in events_path.read_text(encoding="utf-8").splitlines():
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            continue
        key = (ev.get("attempt"), ev.get("candidate"))
        if ev.get("type") == "proposal" and "text" in ev:
            props.append((key, Proposal(ev.get("kind", "diff"), ev["text"])))
        elif ev.get("type") == "proposal":
            text = read_stored_proposal(run_dir, ev.get("ref"))
            if text is not None:
                props.append((key, Proposal(ev.get("kind", "diff"), text)))
        elif ev.get("type") == "attempt_end":
            verdicts[key] = ev.get("status", "fail")
            seeds[key] = _seeds(ev.get("gates"))
            failed[key] = recorded_failed_gate(ev)
            if ev.get("protected_manifest") is not None:
                manifests[key] = ev["protected_manifest"]
    return props, verdicts, seeds, failed, manifests


def recorded_failed_gate(attempt_end: dict) -> str | None:
    """Where a recorded attempt failed (Note [Replay compares the failing gate]): its ``failed_gate`` field (written
    since that field exists), else the first gate of its recorded results that did not pass, else None (a pass,
    or an old recording of a failure before the gates, which kept neither)."""
    if attempt_end.get("status") == "pass":
        return None
    name = attempt_end.get("failed_gate")
    if isinstance(name, str) and name:
        return name
    for g in attempt_end.get("gates") or []:
        if isinstance(g, dict) and g.get("status") != "pass" and isinstance(g.get("name"), str):
            return g["name"]
    return None


def _seeds(gates) -> dict:
    """{gate name: seed} of recorded gate results (list of GateResult dicts) whose metrics name a seed."""
    return {g["name"]: g["metrics"]["seed"] for g in gates or []
            if isinstance(g, dict) and isinstance((g.get("metrics") or {}).get("seed"), int)}


def recordings(root: Path, spec_id: str) -> list[Recording]:
    out: list[Recording] = []
    entries = Ledger(root).entries()
    entry_runs = set()
    for e in entries:
        if e.spec_id != spec_id:
            continue
        run_id = e.meta.get("run_id")
        entry_runs.add(str(run_id))
        from_log: list[Recording] = []
        if run_id:
            props, verdicts, seeds, failed, manifests = _logged_proposals(root / "logs" / "runs" / str(run_id))
            for (a, c), prop in props:
                from_log.append(Recording(spec_id, e.seq, e.parent_tree, a, c, prop, verdicts.get((a, c), "error"),
                                          run_id, e.meta.get("agent", ""), seeds.get((a, c), {}),
                                          failed.get((a, c)), manifests.get((a, c))))
        if not any(r.recorded_verdict == "pass" for r in from_log):
            from_log.append(Recording(spec_id, e.seq, e.parent_tree, len(from_log) + 1, 0,
                                      Proposal("diff", e.patch_bytes().decode("utf-8", errors="surrogateescape")),
                                      "pass", run_id, e.meta.get("agent", ""), _seeds(e.meta.get("gates"))))
        out += from_log
    # runs of this spec that ended without an entry
    heads = {EMPTY_TREE: 0, **{e.result_tree: e.seq for e in entries}}
    runs_dir = root / "logs" / "runs"
    for run_json in sorted(runs_dir.glob("*/run.json")) if runs_dir.is_dir() else []:
        try:
            summary = json.loads(run_json.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        run_id = run_json.parent.name
        if summary.get("spec_id") != spec_id or run_id in entry_runs or summary.get("ledger_seq"):
            continue
        base = summary.get("base_tree")
        if base not in heads:
            continue  # an older run (no recorded base), or a base the ledger no longer has
        props, verdicts, seeds, failed, manifests = _logged_proposals(run_json.parent)
        for (a, c), prop in props:
            verdict = verdicts.get((a, c))
            if verdict in (None, "pass"):
                continue  # never gated, or gated but not landed (e.g. interrupted): nothing to compare with
            out.append(Recording(spec_id, heads[base] + 1, base, a, c, prop, verdict, run_id,
                                 summary.get("agent", ""), seeds.get((a, c), {}), failed.get((a, c)),
                                 manifests.get((a, c))))
    out.sort(key=lambda r: (str(r.run_id or ""), r.attempt, r.candidate))
    return out


class ReplayAgent:
    name = "replay"

    def __init__(self, model: str = "", root: str | Path = ".", budget=None):
        self.model = model or "recorded"
        self.root = Path(root)
        self._cursor: dict[str, int] = {}

    def propose(self, request: AgentRequest) -> AgentResponse:
        recs = recordings(self.root, request.spec.id)
        i = self._cursor.get(request.spec.id, 0)
        if i >= len(recs):
            raise AgentError(f"replay: no more recorded proposals for spec {request.spec.id} "
                             f"({len(recs)} recorded); use a live agent")
        self._cursor[request.spec.id] = i + 1
        r = recs[i]
        return AgentResponse(text=f"(recorded proposal {i + 1}/{len(recs)}, run {r.run_id})", proposal=r.proposal,
                             usage=Usage(), model=self.model,
                             meta={"recorded_verdict": r.recorded_verdict, "entry_seq": r.entry_seq})


SELECTION_HELP = ("comma-separated: N (1-based), A-B, first, last, last:N, failed (recorded as not passing), all")


def select_recordings(recs: list[Recording], selection: str | None) -> list[tuple[int, Recording]]:
    """The recordings a replay re-gates, each with its 1-based number among all of the spec's recordings (numbers
    stay the same whatever is selected, so reports of partial replays compare). ``None`` or "all": every one.
    Each recording is re-gated on its own parent state, so any subset is a valid replay. Order: recording order,
    each at most once. An unknown term or an index out of range is a HarnessError naming it."""
    n = len(recs)
    if selection is None or selection.strip() in ("", "all"):
        return list(enumerate(recs, start=1))
    chosen: set[int] = set()
    for term in (t.strip() for t in selection.split(",")):
        try:
            if term == "all":
                chosen.update(range(1, n + 1))
            elif term == "first":
                chosen.add(1)
            elif term == "last":
                chosen.add(n)
            elif term.startswith("last:"):
                k = int(term[5:])
                if k < 1:
                    raise ValueError
                chosen.update(range(max(1, n - k + 1), n + 1))
            elif term == "failed":
                chosen.update(i for i, r in enumerate(recs, start=1) if r.recorded_verdict != "pass")
            elif "-" in term:
                a, b = (int(x) for x in term.split("-", 1))
                if not 1 <= a <= b <= n:
                    raise HarnessError(f"replay --recordings: range {term} is outside 1-{n}")
                chosen.update(range(a, b + 1))
            else:
                k = int(term)
                if not 1 <= k <= n:
                    raise HarnessError(f"replay --recordings: recording {k} does not exist (the spec has {n})")
                chosen.add(k)
        except ValueError:
            raise HarnessError(f"replay --recordings: cannot read {term!r} ({SELECTION_HELP})") from None
    return [(i, recs[i - 1]) for i in sorted(chosen)]
