"""The harness's small interfaces, in one file (mini-swe-agent style).

Everything that crosses a module boundary is defined here: specs, agents and their proposals, gates and their
results. Modules import these types; nothing else is shared between backends, gates and the runner.

Units: durations in seconds (float), money in US dollars (float; ``None`` means "price unknown", never 0),
token counts as ints.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

# ----------------------------------------------------------------------------------------------------------------
# Errors. Every one carries a message meant for a person; the CLI prints it and maps the class to an exit code.


class HarnessError(Exception):
    """A clear, user-facing error (bad input, bad state). Never leaves the ledger or the tree half-changed."""


class SpecError(HarnessError):
    """A spec file is malformed: the message names the file, the field and the problem."""


class LedgerError(HarnessError):
    """The ledger is inconsistent (tampered patch, broken chain, hash mismatch)."""


class AgentError(HarnessError):
    """An agent backend failed in a way retries did not fix (provider outage, bad credentials, crash)."""


class AgentTimeout(AgentError):
    """The agent did not answer within its time limit."""


class BudgetExceeded(HarnessError):
    """The spec's or the run's budget (attempts, tokens, cost, wall time) is spent."""


class ProposalRejected(HarnessError):
    """A proposal touches a path it may not (protected, outside the tree, harness files) or cannot be parsed."""


# ----------------------------------------------------------------------------------------------------------------
# Specs


@dataclass
class GateConfig:
    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Budget:
    max_attempts: int = 3
    max_tokens: int | None = None
    max_cost_usd: float | None = None
    max_wall_s: float | None = None


@dataclass
class Spec:
    id: str  # e.g. "01-runtime-skeleton"
    title: str
    path: Path  # the spec file
    depends_on: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=lambda: ["generated_runtime/**"])  # globs the agent may change
    protected: list[str] = field(default_factory=list)  # globs the agent may not change (acceptance tests)
    gates: list[GateConfig] = field(default_factory=list)
    budget: Budget = field(default_factory=Budget)
    body: str = ""  # the Markdown guidance after the front matter


# ----------------------------------------------------------------------------------------------------------------
# Agents


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None  # None: the model's price is unknown (shown as "unknown", not $0)
    calls: int = 0

    def add(self, other: "Usage") -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.calls += other.calls
        if other.cost_usd is not None:
            self.cost_usd = (self.cost_usd or 0.0) + other.cost_usd


ProposalKind = Literal["diff", "edits", "worktree", "empty"]


@dataclass
class Proposal:
    """What an agent proposes. ``text`` is a unified diff (kind "diff" and "worktree", paths relative to the
    repository root, e.g. ``generated_runtime/src/x.cpp``), search/replace edit blocks (kind "edits"), or empty."""

    kind: ProposalKind
    text: str


@dataclass
class AgentRequest:
    spec: Spec
    system: str  # rendered system prompt
    messages: list[dict[str, str]]  # [{"role": "user"|"assistant", "content": str}, ...]; last one is the ask
    worktree: Path  # repository-shaped candidate worktree (command agents edit it in place)
    attempt: int  # 1-based
    timeout_s: float = 600.0


@dataclass
class AgentResponse:
    text: str  # the raw answer (API agents) or the CLI's output (command agent)
    proposal: Proposal
    usage: Usage
    model: str
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. {"recorded_verdict": "fail"} for replay


class Agent(Protocol):
    name: str  # backend short name: "openai", "anthropic", "command", "replay", "external", "scripted"
    model: str

    def propose(self, request: AgentRequest) -> AgentResponse: ...


# ----------------------------------------------------------------------------------------------------------------
# Gates

GateStatus = Literal["pass", "fail", "error"]


@dataclass
class GateContext:
    spec: Spec | None
    candidate_root: Path  # repository-shaped tree under test; the runtime is candidate_root / "generated_runtime"
    trusted_root: Path  # the trusted repository: validators and protected tests are always read from here
    work_dir: Path  # harness-owned folder for this gate's outputs (logs, JUnit, reports); not inside the candidate
    cache_dir: Path  # persistent caches shared between attempts (build folder, ccache)
    env: dict[str, str]  # scrubbed environment: no API keys or tokens
    timeout_s: float = 1800.0
    options: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)  # passed along the gate chain (e.g. build -> pytest: site dir)


@dataclass
class GateResult:
    name: str
    status: GateStatus
    duration_s: float
    summary: str  # short; what the agent sees
    metrics: dict[str, Any] = field(default_factory=dict)  # for the dashboards
    log_path: str | None = None  # full log (relative to the repository root when under logs/)
    report_path: str | None = None  # machine-readable report (parity table, training curves, ...)
    cached: bool = False

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GateResult":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class Gate(Protocol):
    name: str
    version: str  # bump when the gate's checks change: verdict caches are keyed by it

    def run(self, ctx: GateContext) -> GateResult: ...
