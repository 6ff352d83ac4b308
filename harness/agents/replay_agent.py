"""The `replay` agent: recorded proposals, offline, in the order they were made.

Recordings of a spec come from the ledger (each accepted entry) and, where the entry's run log exists, from that
run's ``proposal`` events (failed attempts included, each with the verdict it got then). A ``submit`` entry's only
recording is its ledger patch. ``propose`` hands them out in order; when they are exhausted it raises AgentError.

Offline ``vt-agent run SPEC --agent replay`` uses ``recordings`` directly (harness.replay) to re-gate each recorded
proposal on the ledger state it was made on and compare today's verdict with the recorded one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.interfaces import AgentError, AgentRequest, AgentResponse, Proposal, Usage
from harness.ledger import Ledger


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


def recordings(root: Path, spec_id: str) -> list[Recording]:
    out: list[Recording] = []
    for e in Ledger(root).entries():
        if e.spec_id != spec_id:
            continue
        run_id = e.meta.get("run_id")
        events_path = root / "logs" / "runs" / str(run_id) / "events.jsonl"
        from_log: list[Recording] = []
        if run_id and events_path.is_file():
            verdicts = {}
            props = []
            for line in events_path.read_text(encoding="utf-8").splitlines():
                try:
                    ev = json.loads(line)
                except json.JSONDecodeError:
                    continue
                key = (ev.get("attempt"), ev.get("candidate"))
                if ev.get("type") == "proposal" and "text" in ev:
                    props.append((key, Proposal(ev.get("kind", "diff"), ev["text"])))
                elif ev.get("type") == "attempt_end":
                    verdicts[key] = ev.get("status", "fail")
            for (a, c), prop in props:
                from_log.append(Recording(spec_id, e.seq, e.parent_tree, a, c, prop, verdicts.get((a, c), "error"),
                                          run_id, e.meta.get("agent", "")))
        if not any(r.recorded_verdict == "pass" for r in from_log):
            from_log.append(Recording(spec_id, e.seq, e.parent_tree, len(from_log) + 1, 0,
                                      Proposal("diff", e.patch_bytes().decode("utf-8", errors="surrogateescape")),
                                      "pass", run_id, e.meta.get("agent", "")))
        out += from_log
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
