"""The dashboards' data model: specs, ledger and run logs read into plain page data.

Policy:
- Read-only. Every source may be missing, half-written or malformed (a run still in progress, a crashed one, a
  hand-edited file). Nothing here raises on bad input: each problem becomes a one-line note in ``Model.problems``
  (or on the run/spec it concerns) and the pages say what is missing.
- Cheap first: ``load_model`` reads each run's ``run.json`` and only the tail of its ``events.jsonl`` (to see whether
  the run ended and whether the last line is half-written). Full events, proposals and gate reports are read by
  ``load_run_detail`` / ``load_report`` for one run page at a time.
- Nothing read from a log is trusted to name a file outside the repository: gate log and report paths are resolved
  and kept only when they stay under ``repo_root`` (see ``resolve_inside``).
- Units: durations in seconds, money in US dollars, ``None`` cost means "unknown" (shown so, never as $0).
"""
from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.runlog import read_stored_proposal
from harness.specs import spec_files

RUN_STALE_AFTER_S = 15 * 60  # a "running" run with no write for this long is shown as crashed
HALF_LINE_GRACE_S = 30  # a half-written last line this fresh may be a write in flight, not a crash
EVENTS_TAIL_BYTES = 64 * 1024
LOG_TRUNCATE_BYTES = 2 * 1024 * 1024  # gate logs above this are cut: head + tail, with a note
LOG_HEAD_BYTES = 1536 * 1024
LOG_TAIL_BYTES = 256 * 1024
REPORT_MAX_BYTES = 32 * 1024 * 1024
REPORT_GATES = ("parity", "training", "allocator", "perf")  # gates whose reports have their own page views
ENDED_STATUSES = {"accepted", "rejected", "budget", "error", "interrupted", "stuck"}


# ------------------------------------------------------------------------------------------------ small helpers


def safe_name(text: Any) -> str:
    """A file-name-safe rendering of an untrusted name (run ids, gate names) for paths inside the site."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._") or "_"
    return cleaned[:120]


@functools.lru_cache(maxsize=8192)
def _real_dir(directory: str) -> str:
    return os.path.realpath(directory)


def resolve_inside(root: Path, candidate: Any) -> Path | None:
    """``candidate`` (relative to ``root`` or absolute) if it names an existing file under ``root``, else None.

    Symlinks are followed before the check, so a link that points out of ``root`` is refused too. Folders'
    real paths are cached for one load (``load_model`` clears the cache)."""
    if not isinstance(candidate, str) or not candidate or "\x00" in candidate:
        return None
    path = os.path.join(root, candidate)
    if not os.path.isfile(path):  # cheap stat first: most misses end here
        return None
    head, tail = os.path.split(path)
    real = os.path.realpath(path) if os.path.islink(path) else os.path.join(_real_dir(head), tail)
    real_root = _real_dir(str(root))
    return Path(real) if real.startswith(real_root.rstrip(os.sep) + os.sep) else None


def as_int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def as_str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def read_json(path: Path, max_bytes: int = REPORT_MAX_BYTES) -> tuple[Any, str | None]:
    """(data, None) or (None, problem) — never raises."""
    try:
        if path.stat().st_size > max_bytes:
            return None, f"{path.name}: larger than {max_bytes // (1024 * 1024)} MB, not read"
        if path.name.endswith(".gz"):  # archived large reports (runner.REPORT_GZIP_ABOVE)
            import gzip

            raw = gzip.decompress(path.read_bytes())
            if len(raw) > 8 * max_bytes:
                return None, f"{path.name}: larger than {8 * max_bytes // (1024 * 1024)} MB uncompressed, not read"
            return json.loads(raw.decode("utf-8", errors="replace")), None
        return json.loads(path.read_text(encoding="utf-8", errors="replace")), None
    except FileNotFoundError:
        return None, f"{path.name}: missing"
    except (OSError, ValueError) as exc:
        return None, f"{path.name}: unreadable ({type(exc).__name__}: {str(exc)[:120]})"


def parse_time(text: Any) -> _dt.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        stamp = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=_dt.timezone.utc)


@dataclass
class UsageTotals:
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0  # None as soon as one part is unknown
    unknown_cost_parts: int = 0
    calls: int = 0

    @classmethod
    def from_dict(cls, raw: Any) -> "UsageTotals":
        raw = as_dict(raw)
        cost = as_float(raw.get("cost_usd"))
        return cls(as_int(raw.get("input_tokens")), as_int(raw.get("output_tokens")), cost,
                   0 if cost is not None else 1, as_int(raw.get("calls")))

    def add(self, other: "UsageTotals") -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.calls += other.calls
        self.unknown_cost_parts += other.unknown_cost_parts
        self.cost_usd = None if self.cost_usd is None or other.cost_usd is None else self.cost_usd + other.cost_usd


# ------------------------------------------------------------------------------------------------ specs


@dataclass
class SpecInfo:
    id: str
    title: str
    file: str
    depends_on: list[str] = field(default_factory=list)
    gates: list[str] = field(default_factory=list)
    budget: dict[str, Any] = field(default_factory=dict)
    state: str = "pending"  # accepted | running | pending | blocked | missing (named as a dependency, no file)
    blocked_by: list[str] = field(default_factory=list)
    problem: str | None = None


def _gate_names(raw: Any) -> list[str]:
    names = []
    for gate in as_list(raw):
        if isinstance(gate, str):
            names.append(gate)
        elif isinstance(gate, dict) and isinstance(gate.get("name"), str):
            names.append(gate["name"])
        elif isinstance(gate, dict) and len(gate) == 1:  # {"parity": {options}}
            names.append(str(next(iter(gate))))
    return names


def load_spec_file(path: Path) -> SpecInfo:
    fallback_id = path.stem
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return SpecInfo(fallback_id, fallback_id, path.name, problem=f"unreadable: {exc}")
    match = re.match(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(\r?\n|\Z)", text, re.S)
    if not match:
        return SpecInfo(fallback_id, fallback_id, path.name, problem="no YAML front matter")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        return SpecInfo(fallback_id, fallback_id, path.name, problem=f"bad YAML front matter: {str(exc)[:160]}")
    if not isinstance(meta, dict):
        return SpecInfo(fallback_id, fallback_id, path.name, problem="front matter is not a mapping")
    spec_id = meta.get("id")
    problem = None if isinstance(spec_id, str) and spec_id else "front matter has no 'id'"
    spec_id = spec_id if isinstance(spec_id, str) and spec_id else fallback_id
    depends = [str(d) for d in as_list(meta.get("depends_on"))] if meta.get("depends_on") is not None else []
    return SpecInfo(spec_id, as_str(meta.get("title"), spec_id), path.name, depends, _gate_names(meta.get("gates")),
                    as_dict(meta.get("budget")), problem=problem)


# ------------------------------------------------------------------------------------------------ ledger


@dataclass
class GateView:
    name: str
    status: str
    duration_s: float | None
    summary: str
    metrics: dict[str, Any]
    log_path: str | None
    report_path: str | None
    cached: bool

    @classmethod
    def from_dict(cls, raw: Any) -> "GateView":
        raw = as_dict(raw)
        return cls(as_str(raw.get("name"), "?"), as_str(raw.get("status"), "unknown"), as_float(raw.get("duration_s")),
                   as_str(raw.get("summary")), as_dict(raw.get("metrics")), raw.get("log_path") if isinstance(
                       raw.get("log_path"), str) else None,
                   raw.get("report_path") if isinstance(raw.get("report_path"), str) else None,
                   bool(raw.get("cached")))


@dataclass
class LedgerEntry:
    seq: int
    spec_id: str
    agent: str
    model: str | None
    message: str
    run_id: str | None
    created_at: str
    gates: list[GateView]
    usage: UsageTotals
    wall_s: float | None
    attempts: int
    patch_file: str | None
    file: str
    problem: str | None = None


def load_ledger(repo_root: Path, problems: list[str]) -> list[LedgerEntry]:
    ledger_dir = repo_root / "logs" / "ledger"
    if not ledger_dir.is_dir():
        problems.append("logs/ledger/ is missing: no accepted diffs yet")
        return []
    entries = []
    for path in sorted(ledger_dir.glob("*.json")):
        data, problem = read_json(path)
        if not isinstance(data, dict):
            problems.append(f"ledger entry {problem or path.name + ': not a JSON object'}")
            continue
        seq_guess = re.match(r"(\d+)", path.name)
        seq = as_int(data.get("seq"), int(seq_guess.group(1)) if seq_guess else -1)
        patch_name = as_str(data.get("patch")) or None
        entry_problem = None
        if patch_name and resolve_inside(ledger_dir, patch_name) is None:
            entry_problem = f"patch file {patch_name} is missing"
        entries.append(LedgerEntry(
            seq=seq, spec_id=as_str(data.get("spec_id"), "?"), agent=as_str(data.get("agent"), "?"),
            model=data.get("model") if isinstance(data.get("model"), str) else None,
            message=as_str(data.get("message")), run_id=as_str(data.get("run_id")) or None,
            created_at=as_str(data.get("created_at")), gates=[GateView.from_dict(g) for g in as_list(data.get("gates"))],
            usage=UsageTotals.from_dict(data.get("usage")), wall_s=as_float(data.get("wall_s")),
            attempts=as_int(data.get("attempts"), 1), patch_file=patch_name, file=path.name, problem=entry_problem))
    entries.sort(key=lambda e: (e.seq, e.file))
    return entries


# ------------------------------------------------------------------------------------------------ runs


@dataclass
class RunSummary:
    run_id: str
    dir: Path
    spec_id: str
    agent: str
    model: str | None
    status: str  # run.json status, or "crashed" / "running" / "unknown" as derived here
    reason: str
    started_at: str
    ended_at: str
    attempts: list[dict[str, Any]]
    usage: UsageTotals
    ledger_seq: int | None
    wall_s: float | None
    mode: str
    has_run_json: bool
    ended: bool  # a run_end event was seen (or run.json says the run ended)
    half_written_events: bool
    last_event_type: str | None
    last_write: float | None  # epoch seconds of the newest of run.json / events.jsonl
    problems: list[str] = field(default_factory=list)
    nop_check: dict[str, Any] = field(default_factory=dict)  # run.json's record of the gates on the unchanged tree

    @property
    def attempt_count(self) -> int:
        return len({a.get("attempt") for a in self.attempts}) if self.attempts else 0


def _events_tail(path: Path) -> tuple[str | None, bool, bool]:
    """(type of the last complete event, run_end seen in the tail, last line half-written)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - EVENTS_TAIL_BYTES))
            tail = fh.read()
    except OSError:
        return None, False, False
    if not tail:
        return None, False, False
    half_written = not tail.endswith(b"\n")
    lines = tail.split(b"\n")
    complete = lines[:-1] if half_written else lines
    if size > EVENTS_TAIL_BYTES and complete:
        complete = complete[1:]  # the first line of the window may be cut
    last_type, ended = None, False
    for raw in complete:
        if not raw.strip():
            continue
        try:
            event = json.loads(raw)
        except ValueError:
            half_written = True  # a corrupt line in the middle: show it as such
            continue
        if isinstance(event, dict):
            last_type = as_str(event.get("type")) or last_type
            ended = ended or event.get("type") == "run_end"
    return last_type, ended, half_written


def load_run_summary(run_dir: Path, now: float) -> RunSummary:
    problems: list[str] = []
    run_json = run_dir / "run.json"
    events_path = run_dir / "events.jsonl"
    data, problem = read_json(run_json)
    has_run_json = isinstance(data, dict)
    if not has_run_json:
        problems.append(f"run.json {problem or 'is not a JSON object'}" if problem else "run.json is not an object")
        data = {}
    last_type, saw_end, half_written = _events_tail(events_path)
    if not events_path.is_file():
        problems.append("events.jsonl is missing")
    if half_written:
        problems.append("events.jsonl ends with a half-written line (the writer stopped mid-line)")
    mtimes = [p.stat().st_mtime for p in (run_json, events_path) if p.is_file()]
    last_write = max(mtimes) if mtimes else None
    status = as_str(data.get("status"), "unknown")
    ended = saw_end or status in ENDED_STATUSES
    reason = as_str(data.get("reason"))
    if not ended:
        idle_s = now - last_write if last_write is not None else math.inf
        if idle_s > RUN_STALE_AFTER_S or (half_written and idle_s > HALF_LINE_GRACE_S):
            status = "crashed"
            stamp = _dt.datetime.fromtimestamp(last_write, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") \
                if last_write else "never"
            reason = (f"crashed: no run_end event; last event {last_type or 'none'}, last write {stamp}"
                      + ("; events.jsonl ends mid-line" if half_written else ""))
        else:
            status = "running"
            reason = reason or f"in progress (last event: {last_type or 'none'})"
    ledger_seq = data.get("ledger_seq")
    return RunSummary(
        run_id=as_str(data.get("run_id"), run_dir.name) or run_dir.name, dir=run_dir,
        spec_id=as_str(data.get("spec_id"), "?") or "?", agent=as_str(data.get("agent"), "?") or "?",
        model=data.get("model") if isinstance(data.get("model"), str) else None, status=status, reason=reason,
        started_at=as_str(data.get("started_at")), ended_at=as_str(data.get("ended_at")),
        attempts=[a for a in as_list(data.get("attempts")) if isinstance(a, dict)],
        usage=UsageTotals.from_dict(data.get("usage")),
        ledger_seq=ledger_seq if isinstance(ledger_seq, int) else None, wall_s=as_float(data.get("wall_s")),
        mode=as_str(data.get("mode")), has_run_json=has_run_json, ended=ended, half_written_events=half_written,
        last_event_type=last_type, last_write=last_write, problems=problems, nop_check=as_dict(data.get("nop_check")))


# ------------------------------------------------------------------------------------------------ whole model


@dataclass
class AgentTotals:
    agent: str
    model: str | None
    runs: int = 0
    accepted_runs: int = 0
    ledger_entries: int = 0
    attempts: int = 0
    usage: UsageTotals = field(default_factory=UsageTotals)

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted_runs / self.runs if self.runs else None

    @property
    def attempts_per_accepted(self) -> float | None:
        return self.attempts / self.accepted_runs if self.accepted_runs else None

    @property
    def cost_per_accepted(self) -> float | None:
        if not self.accepted_runs or self.usage.cost_usd is None:
            return None
        return self.usage.cost_usd / self.accepted_runs


@dataclass
class Model:
    repo_root: Path
    specs: list[SpecInfo]
    ledger: list[LedgerEntry]
    runs: list[RunSummary]
    totals: list[AgentTotals]
    problems: list[str]

    def __post_init__(self) -> None:
        self._runs_by_id = {r.dir.name: r for r in self.runs} | {r.run_id: r for r in self.runs}

    def run(self, run_id: str | None) -> RunSummary | None:
        return self._runs_by_id.get(run_id) if run_id else None


def _spec_states(specs: list[SpecInfo], accepted_ids: set[str]) -> list[SpecInfo]:
    known = {s.id for s in specs}
    missing = sorted({d for s in specs for d in s.depends_on if d not in known})
    specs = specs + [SpecInfo(d, d, "", state="missing", problem="named as a dependency; no spec file") for d in missing]
    for spec in specs:
        if spec.state == "missing":
            continue
        spec.blocked_by = [d for d in spec.depends_on if d not in accepted_ids]
        spec.state = "accepted" if spec.id in accepted_ids else ("blocked" if spec.blocked_by else "pending")
    return specs


def _agent_totals(runs: list[RunSummary], ledger: list[LedgerEntry]) -> list[AgentTotals]:
    table: dict[tuple[str, str | None], AgentTotals] = {}
    for run in runs:
        row = table.setdefault((run.agent, run.model), AgentTotals(run.agent, run.model))
        row.runs += 1
        row.accepted_runs += run.status == "accepted"
        row.attempts += run.attempt_count
        row.usage.add(run.usage)
    logged_runs = {r.run_id for r in runs}
    for entry in ledger:
        row = table.setdefault((entry.agent, entry.model), AgentTotals(entry.agent, entry.model))
        row.ledger_entries += 1
        if entry.run_id not in logged_runs:  # submitted/replayed without a run log: one accepted run of its own
            row.runs += 1
            row.accepted_runs += 1
            row.attempts += max(1, entry.attempts)
            row.usage.add(entry.usage)
    return sorted(table.values(), key=lambda t: (t.agent, t.model or ""))


def load_model(repo_root: Path, now: float | None = None) -> Model:
    """Everything the overview needs, from the repository's files; never raises on bad data."""
    repo_root = Path(repo_root)
    _real_dir.cache_clear()
    now = _dt.datetime.now(_dt.timezone.utc).timestamp() if now is None else now
    problems: list[str] = []
    spec_dir = repo_root / "specs"
    specs = [load_spec_file(p) for p in spec_files(spec_dir)] if spec_dir.is_dir() else []
    if not spec_dir.is_dir():
        problems.append("specs/ is missing")
    elif not specs:
        problems.append("specs/ holds no spec files (*.md)")
    problems += [f"spec {s.file}: {s.problem}" for s in specs if s.problem]
    seen_ids: dict[str, str] = {}
    for spec in specs:
        if spec.id in seen_ids:
            problems.append(f"spec id {spec.id} is defined twice ({seen_ids[spec.id]}, {spec.file})")
        seen_ids[spec.id] = spec.file
    ledger = load_ledger(repo_root, problems)
    problems += [f"ledger {e.file}: {e.problem}" for e in ledger if e.problem]
    runs_dir = repo_root / "logs" / "runs"
    runs = []
    if runs_dir.is_dir():
        runs = [load_run_summary(d, now) for d in sorted(runs_dir.iterdir()) if d.is_dir()]
    else:
        problems.append("logs/runs/ is missing: no runs recorded yet")
    runs.sort(key=lambda r: (r.started_at or "", r.run_id), reverse=True)
    specs = _spec_states(specs, {e.spec_id for e in ledger})
    running = {r.spec_id for r in runs if r.status == "running"}
    for spec in specs:  # a run in progress shows on a spec not yet accepted
        if spec.id in running and spec.state in ("pending", "blocked"):
            spec.state = "running"
    return Model(repo_root, specs, ledger, runs, _agent_totals(runs, ledger), problems)


# ------------------------------------------------------------------------------------------------ one run, in full


@dataclass
class LogCopy:
    """A gate log as shown in the site: maybe cut to head + tail."""

    text: str
    size: int
    truncated: bool
    source: str  # path relative to the repository, for the note


def read_log(path: Path, repo_root: Path) -> LogCopy:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if size <= LOG_TRUNCATE_BYTES:
            text, truncated = fh.read().decode("utf-8", errors="replace"), False
        else:
            head = fh.read(LOG_HEAD_BYTES).decode("utf-8", errors="replace")
            fh.seek(size - LOG_TAIL_BYTES)
            tail = fh.read().decode("utf-8", errors="replace")
            cut = size - LOG_HEAD_BYTES - LOG_TAIL_BYTES
            text = f"{head}\n\n[... {cut:,} bytes cut by the dashboard: the log is {size:,} bytes ...]\n\n{tail}"
            truncated = True
    real_root = _real_dir(str(repo_root))
    source = os.path.relpath(path, real_root) if str(path).startswith(real_root + os.sep) else path.name
    return LogCopy(text, size, truncated, source)


@dataclass
class GateRow:
    gate: GateView
    key: str  # "A1-C1-build": names the log/report pages of this gate in this run
    log_file: Path | None
    report_file: Path | None


@dataclass
class AttemptView:
    attempt: int
    candidate: int
    status: str
    proposal_kind: str
    proposal_text: str | None
    feedback: str
    gates: list[GateRow]
    usage: UsageTotals
    wall_s: float | None
    from_events_only: bool  # the run crashed before run.json recorded this attempt
    apply_notes: list[str] = field(default_factory=list)  # from "apply" events: how the proposal applied, or why not
    proposal_ref: str | None = None  # "ledger": the proposal was recorded as the ledger patch, not in the events


@dataclass
class RunDetail:
    summary: RunSummary
    attempts: list[AttemptView]
    events: int
    end_event: dict[str, Any] | None
    nop_gates: list[GateRow] = field(default_factory=list)  # the gates run on the unchanged tree first
    nop_passed: bool | None = None  # True: the spec's gates passed without any change (it tests nothing)


def _read_events(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    events, problems = [], []
    try:
        raw = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return [], []
    lines = raw.split("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            last = number == len(lines)
            problems.append(f"events.jsonl line {number}: {'half-written' if last else 'not JSON'}, ignored")
            continue
        if isinstance(event, dict):
            events.append(event)
    return events, problems


def _gate_from_event(event: dict[str, Any]) -> dict[str, Any]:
    for key in ("result", "gate"):
        if isinstance(event.get(key), dict):
            return event[key]
    return event


def _apply_note(event: dict[str, Any]) -> str:
    if event.get("rejected"):
        return f"rejected before gating: {as_str(event.get('rejected'), str(event.get('rejected')))}"
    if event.get("ok") is True:
        return f"applied ({as_str(event.get('mode'), 'mode not recorded')})"
    feedback = as_str(event.get("feedback"))
    return "did not apply" + (f": {feedback}" if feedback else " (no feedback recorded)")


def _proposal_from_event(event: dict[str, Any]) -> tuple[str | None, str]:
    proposal = event.get("proposal")
    if isinstance(proposal, dict):
        return (proposal.get("text") if isinstance(proposal.get("text"), str) else None), as_str(proposal.get("kind"))
    if isinstance(proposal, str):
        return proposal, as_str(event.get("kind"))
    return (event.get("text") if isinstance(event.get("text"), str) else None), as_str(event.get("kind"))


def load_run_detail(model: Model, run: RunSummary) -> RunDetail:
    events, problems = _read_events(run.dir / "events.jsonl")
    for problem in problems:
        if problem not in run.problems:
            run.problems.append(problem)
    proposals: dict[tuple[int, int], tuple[str | None, str]] = {}
    proposal_refs: dict[tuple[int, int], str] = {}
    applies: dict[tuple[int, int], list[str]] = {}
    event_gates: dict[tuple[int, int], list[dict[str, Any]]] = {}
    event_nop_gates: list[dict[str, Any]] = []
    event_attempt_status: dict[tuple[int, int], str] = {}
    end_event = None
    for event in events:
        key = (as_int(event.get("attempt"), 0), as_int(event.get("candidate"), 1))
        kind = event.get("type")
        if kind == "proposal":
            proposals[key] = _proposal_from_event(event)
            if isinstance(event.get("ref"), str):
                stored = read_stored_proposal(run.dir, event["ref"])
                if stored is not None:  # a submit's patch kept beside the events (rejected, so not in the ledger)
                    proposals[key] = (stored, proposals[key][1])
                # a stored patch that is gone was dropped when accepted: the ledger holds it
                proposal_refs[key] = "ledger" if stored is None else event["ref"]
        elif kind == "apply":
            applies.setdefault(key, []).append(_apply_note(event))
        elif kind == "gate" and event.get("nop"):
            event_nop_gates.append(_gate_from_event(event))
        elif kind == "gate":
            event_gates.setdefault(key, []).append(_gate_from_event(event))
        elif kind == "attempt_end":
            event_attempt_status[key] = as_str(event.get("status"), "?")
        elif kind == "run_end":
            end_event = event
    attempts = []
    recorded = set()
    for raw in run.attempts:
        key = (as_int(raw.get("attempt"), 0), as_int(raw.get("candidate"), 1))
        recorded.add(key)
        text, kind = proposals.get(key, (None, ""))
        attempts.append(_attempt_view(model, run, key, as_str(raw.get("status"), "?"),
                                      as_str(raw.get("proposal_kind"), kind), text, as_str(raw.get("feedback")),
                                      as_list(raw.get("gates")), UsageTotals.from_dict(raw.get("usage")),
                                      as_float(raw.get("wall_s")), False))
    for key in sorted((set(proposals) | set(event_gates)) - {(0, 0)}):  # attempts only the events know of (a crash)
        if key in recorded:
            continue
        text, kind = proposals.get(key, (None, ""))
        status = event_attempt_status.get(key, "unfinished")
        attempts.append(_attempt_view(model, run, key, status, kind, text, "", event_gates.get(key, []),
                                      UsageTotals(), None, True))
    for attempt in attempts:
        key = (attempt.attempt, attempt.candidate)
        attempt.apply_notes = applies.get(key, [])
        attempt.proposal_ref = proposal_refs.get(key)
    attempts.sort(key=lambda a: (a.attempt, a.candidate))
    nop = as_dict(run.nop_check)
    nop_raw = as_list(nop.get("gates")) if "gates" in nop else event_nop_gates
    nop_gates = [gate_row(model.repo_root, run.dir, (0, 0), GateView.from_dict(g)) for g in nop_raw]
    nop_passed = nop.get("passed_unchanged_tree") if isinstance(nop.get("passed_unchanged_tree"), bool) else None
    return RunDetail(run, attempts, len(events), end_event, nop_gates, nop_passed)


def _attempt_view(model: Model, run: RunSummary, key: tuple[int, int], status: str, kind: str, text: str | None,
                  feedback: str, gates_raw: list[Any], usage: UsageTotals, wall_s: float | None,
                  from_events: bool) -> AttemptView:
    rows = []
    for raw in gates_raw:
        gate = GateView.from_dict(raw)
        rows.append(gate_row(model.repo_root, run.dir, key, gate))
    return AttemptView(key[0], key[1], status, kind, text, feedback, rows, usage, wall_s, from_events)


def gate_row(repo_root: Path, run_dir: Path | None, key: tuple[int, int], gate: GateView) -> GateRow:
    stem = f"A{key[0]}-C{key[1]}-{gate.name}"
    log_file = resolve_inside(repo_root, gate.log_path)
    report_file = resolve_inside(repo_root, gate.report_path)
    if report_file is None and isinstance(gate.report_path, str) and gate.report_path.endswith(".json"):
        report_file = resolve_inside(repo_root, gate.report_path + ".gz")  # compressed after the run was logged
    if run_dir is not None:
        log_file = log_file or resolve_inside(repo_root, str(run_dir / "gates" / f"{stem}.log"))
        report_file = (report_file or resolve_inside(repo_root, str(run_dir / "reports" / f"{stem}.json"))
                       or resolve_inside(repo_root, str(run_dir / "reports" / f"{stem}.json.gz")))
    return GateRow(gate, safe_name(stem), log_file, report_file)


# ------------------------------------------------------------------------------------------------ gate reports


def report_kind(gate_name: str, data: Any) -> str:
    """parity | training | allocator | perf | other: by gate name first, then by the report's shape."""
    base = re.split(r"[:\-_.]", gate_name, maxsplit=1)[0]
    if base in REPORT_GATES:
        return base
    data = as_dict(data)
    if "rows" in data or "results" in data:
        return "parity"
    if "curves" in data or "workloads" in data:
        return "training"
    if "trace" in data or "snapshot" in data or "scenarios" in data or ("steps" in data and "scenario" in data):
        return "allocator"
    if "ratios" in data:
        return "perf"
    return "other"


def perf_over_ledger(model: Model) -> list[tuple[LedgerEntry, dict[str, float]]]:
    """Per ledger entry, its ratios of vibetensor time to PyTorch time: the perf gate's ``ratios`` (from the gate's
    metrics, else its report) and the training gate's step-time ratio per workload (``training <workload> step``)."""
    rows = []
    for entry in model.ledger:
        ratios: dict[str, float] = {}
        for gate in entry.gates:
            if gate.name == "perf":
                source = as_dict(gate.metrics.get("ratios"))
                if not source:
                    report = resolve_inside(model.repo_root, gate.report_path)
                    data, _ = read_json(report) if report else (None, None)
                    source = as_dict(as_dict(data).get("ratios"))
                ratios.update({str(k): float(v) for k, v in source.items() if as_float(v) is not None})
            elif gate.name == "training":
                for workload, metrics in gate.metrics.items():
                    ratio = as_float(as_dict(metrics).get("step_time_ratio"))
                    if ratio is not None and math.isfinite(ratio):
                        ratios[f"training {workload} step"] = ratio
        if ratios:
            rows.append((entry, ratios))
    return rows
