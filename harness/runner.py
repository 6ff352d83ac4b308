"""The run loop: spec -> prompt -> agent -> proposal -> worktree -> gates -> ledger, with feedback between attempts.

Policy:
- The state (generated_runtime/ and the ledger) lives in ``state_root``; validators, specs and protected tests are
  always read from ``trusted_root``. Both are the repository for ``run`` and ``submit``; ``reproduce --from-specs``
  points ``state_root`` at a fresh repository.
- Candidates of one attempt run in parallel, each in its own slot worktree. The first candidate (lowest index) whose
  gates all pass is accepted; otherwise the failing gate summaries of the best candidate become the next prompt.
- A run ends for one reason, recorded in run.json: accepted, rejected (attempts spent), budget, stuck (the same
  failure twice in a row after a change of strategy), error, interrupted. Ctrl-C or a crash leaves the ledger and
  generated_runtime/ as before (the ledger append is the only write to them, and it is atomic) and removes the
  worktrees.
- Every step is logged (harness.runlog) before the next one starts, so a run can be inspected and resumed.
"""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import gitops
from harness.interfaces import (AgentError, AgentRequest, BudgetExceeded, GateConfig, GateContext, GateResult,
                                HarnessError, LedgerError, Proposal, ProposalRejected, Spec, Usage)
from harness.ledger import Ledger
from harness.runlog import RunLog, new_run_id, utcnow
from harness.safety import vet_paths
from harness.secrets import scrubbed_env
from harness.specs import path_matches
from harness.worktree import Slot, discard, runtime_files

# Exit codes (documented in README.md).
EXIT_ACCEPTED = 0
EXIT_REJECTED = 1
EXIT_ERROR = 2
EXIT_BUDGET = 3
EXIT_STUCK = 4
EXIT_MISMATCH = 5
EXIT_INTERRUPTED = 130
EXIT_FOR_STATUS = {"accepted": EXIT_ACCEPTED, "ok": EXIT_ACCEPTED, "rejected": EXIT_REJECTED, "error": EXIT_ERROR,
                   "budget": EXIT_BUDGET, "stuck": EXIT_STUCK, "mismatch": EXIT_MISMATCH,
                   "interrupted": EXIT_INTERRUPTED}


REPORT_GZIP_ABOVE = 256 * 1024  # bytes: larger gate reports are archived as <name>.json.gz


@dataclass
class RunOptions:
    agent: str = "replay"
    agent_options: dict[str, Any] = field(default_factory=dict)
    candidates: int = 1
    max_attempts: int | None = None
    budget_usd: float | None = None
    nop_check: bool = True
    allow_nop: bool = False
    progress: bool = True
    message: str = ""
    gate_timeout_s: float = 3600.0
    pending: list[str] = field(default_factory=list)  # submit: changed files outside the spec's paths, left alone


@dataclass
class CandidateResult:
    candidate: int
    status: str  # pass | fail | rejected | error
    gates: list[GateResult] = field(default_factory=list)
    feedback: str = ""
    signature: str = ""
    apply_failed: bool = False  # "rejected" because the proposal did not apply (not because of a vetted path)
    failed_gate: str | None = None  # first failing gate, or "vet" / "apply" (Note [Replay compares the failing gate])
    protected_manifest: dict | None = None  # what the gates were judged with (Note [Protected-file manifest])
    patch: bytes = b""
    result_tree: str = ""
    proposal: Proposal | None = None
    response_text: str = ""
    usage: Usage = field(default_factory=Usage)
    model: str = ""


@dataclass
class Outcome:
    status: str
    reason: str
    run_id: str
    run_dir: str
    ledger_seq: int | None = None
    attempts: int = 0
    usage: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    details: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # command-specific fields of the JSON output (replay counts)

    @property
    def exit_code(self) -> int:
        return EXIT_FOR_STATUS.get(self.status, EXIT_ERROR)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "run_id": self.run_id, "run_dir": self.run_dir,
                "ledger_seq": self.ledger_seq, "attempts": self.attempts, "usage": self.usage,
                "wall_s": round(self.wall_s, 3), "exit_code": self.exit_code, "details": self.details, **self.extra}


def _sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


class Runner:
    def __init__(self, trusted_root: Path, state_root: Path | None = None, log_root: Path | None = None):
        self.trusted_root = trusted_root.resolve()
        self.state_root = (state_root or trusted_root).resolve()
        self.ledger = Ledger(self.state_root)
        self.log_root = log_root or self.state_root / "logs" / "runs"

    # ------------------------------------------------------------------------------------------------------------
    # Trees

    def ensure_tree(self, tree: str, upto_seq: int | None = None) -> None:
        """Make sure tree (a ledger state) is an object in state_root's store; rebuild it by replay if not."""
        if gitops.has_object(self.state_root, tree):
            return
        with tempfile.TemporaryDirectory(prefix="vt-replay-") as tmp:
            self.ledger.replay(Path(tmp), upto=upto_seq)
            with tempfile.TemporaryDirectory() as idx:
                env = {"GIT_INDEX_FILE": str(Path(idx) / "index")}
                gd = ["--git-dir", str(self.state_root / ".git"), "--work-tree", tmp]
                gitops.git(self.state_root, *gd, "add", "-A", "--", gitops.RUNTIME, env=env)
                got = gitops.git(self.state_root, *gd, "write-tree", f"--prefix={gitops.RUNTIME}/", env=env).strip()
        if got != tree:
            raise LedgerError(f"replaying the ledger gives {got}, expected {tree}")

    # ------------------------------------------------------------------------------------------------------------
    # Gates

    def gate_context(self, spec: Spec | None, slot: Slot, work_dir: Path, options: dict, state: dict) -> GateContext:
        env = scrubbed_env(extra={"CCACHE_DIR": str(self.state_root / ".vt" / "cache" / "ccache"),
                                  "PYTHONDONTWRITEBYTECODE": "1"})
        return GateContext(spec=spec, candidate_root=slot.path, trusted_root=self.trusted_root, work_dir=work_dir,
                           cache_dir=slot.cache_dir, env=env, options=options, state=state)

    def run_gates(self, spec: Spec | None, gates: list[GateConfig], slot: Slot, work_dir: Path, on_result,
                  timeout_s: float = 3600.0) -> list[GateResult]:
        from validators.chain import run_gates

        state: dict[str, Any] = {}

        def ctx_factory(cfg: GateConfig) -> GateContext:
            d = work_dir / cfg.name
            d.mkdir(parents=True, exist_ok=True)
            ctx = self.gate_context(spec, slot, d, dict(cfg.options), state)
            ctx.timeout_s = float(cfg.options.get("timeout_s", timeout_s))
            return ctx

        return run_gates(gates, ctx_factory, on_result)

    def _archive_gate(self, log: RunLog, attempt: int, cand: int, res: GateResult) -> GateResult:
        """Copy a gate's log and report from the (ignored) work folder into the run log folder."""
        if res.log_path and Path(res.log_path).is_file():
            dst = log.gate_log_path(attempt, cand, res.name)
            shutil.copyfile(res.log_path, dst)
            res.log_path = os.path.relpath(dst, self.state_root)
        if res.report_path and Path(res.report_path).is_file():
            dst = log.report_path(attempt, cand, res.name)
            src = Path(res.report_path)
            if src.stat().st_size > REPORT_GZIP_ABOVE:  # committed run logs stay small (parity reports are MBs)
                import gzip

                dst = dst.with_name(dst.name + ".gz")
                dst.write_bytes(gzip.compress(src.read_bytes(), mtime=0))
            else:
                shutil.copyfile(src, dst)
            res.report_path = os.path.relpath(dst, self.state_root)
        return res

    # ------------------------------------------------------------------------------------------------------------
    # One candidate

    def evaluate(self, spec: Spec, gates: list[GateConfig], slot: Slot, proposal: Proposal, log: RunLog,
                 attempt: int, cand: int, progress, trusted_submitter: bool = False) -> CandidateResult:
        """Vet, apply and gate one proposal in slot's prepared worktree."""
        from harness.proposals import apply_proposal, failure_signature, touched_paths

        res = CandidateResult(cand, "fail", proposal=proposal)
        wt = slot.path
        if proposal.kind == "empty" or not proposal.text.strip():
            if proposal.kind != "worktree":
                res.status, res.feedback, res.signature = "rejected", "the answer held no diff and no edit blocks", "empty"
                res.failed_gate = "apply"
                return res
        allowed = spec if not trusted_submitter else _without_protected(spec)
        stage = "vet"
        try:
            if proposal.kind in ("diff", "edits"):
                vet_paths(touched_paths(proposal.text), allowed, wt)
                stage = "apply"
                report = apply_proposal(proposal.text, wt, proposal.kind)
                log.event("apply", attempt=attempt, candidate=cand, ok=report.ok, mode=report.mode,
                          feedback=report.feedback() if not report.ok else "")
                if not report.ok:
                    res.status, res.feedback, res.signature = "rejected", report.feedback(), failure_signature(report)
                    res.apply_failed, res.failed_gate = True, "apply"
                    return res
            stage = "vet"
            changed = gitops.changed_paths(wt)
            vet_paths(changed, allowed, wt)
        except ProposalRejected as exc:  # a forbidden path (vet), or a proposal that cannot be parsed (apply)
            log.event("apply", attempt=attempt, candidate=cand, ok=False, rejected=str(exc))
            res.status, res.feedback, res.signature = "rejected", str(exc), _sha(str(exc))
            res.apply_failed = stage == "apply"
            res.failed_gate = stage
            return res
        if not changed:
            res.status, res.feedback, res.signature = "rejected", "the proposal changes nothing", "nochange"
            res.failed_gate = "apply"
            return res
        installed = install_protected(spec, self.trusted_root, wt)
        res.protected_manifest = self.record_protected(spec, gates, installed, log, attempt, cand, _base_of(wt))
        res.patch = gitops.worktree_diff(wt, "HEAD", [gitops.RUNTIME]).encode()
        res.result_tree = gitops.runtime_tree_hash(wt)
        work = self.state_root / ".vt" / "work" / log.run_id / f"A{attempt}-C{cand}"

        def on_result(r: GateResult) -> None:
            self._archive_gate(log, attempt, cand, r)
            log.event("gate", attempt=attempt, candidate=cand, **r.to_dict())
            progress.update(cand, gate=(r.name, r.status))

        progress.update(cand, phase="gates")
        res.gates = self.run_gates(spec, gates, slot, work, on_result)
        ok = len(res.gates) == len(gates) and all(g.passed for g in res.gates)
        res.status = "pass" if ok else "fail"
        if not ok:
            failing = [g for g in res.gates if not g.passed]
            res.signature = _sha(json.dumps([(g.name, g.status, g.summary) for g in failing]))
            # every gate passed but the chain was cut short (cannot happen today): name the first gate not run
            res.failed_gate = failing[0].name if failing else gates[len(res.gates)].name
        return res

    def record_protected(self, spec: Spec, gates: list[GateConfig], installed: dict[str, bytes], log: RunLog,
                         attempt: int, cand: int, base_tree: str, nop: bool = False) -> dict[str, Any]:
        """Write the manifest of the protected files a candidate is judged with (Note [Protected-file manifest],
        harness/protected.py) into the run folder; returns its record for the attempt summary. A failure to write
        it does not stop the run: the record then says why, and a replay judges that recording by the rule."""
        from harness import protected

        try:
            globs = protected.judged_globs(spec, gates)
            files = protected.capture(self.trusted_root, globs, installed)
            rec = protected.write_manifest(log.dir, attempt, cand, self.state_root, base_tree, globs, files)
        except (OSError, HarnessError, subprocess.SubprocessError) as exc:
            rec = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        log.event("protected_manifest", attempt=attempt, candidate=cand, **({"nop": True} if nop else {}), **rec)
        return rec

    # ------------------------------------------------------------------------------------------------------------
    # The nop check

    def nop_check(self, spec: Spec, gates: list[GateConfig], base_tree: str, log: RunLog, progress) -> list[GateResult]:
        """Gate the unchanged base tree. A spec whose gates pass on it tests nothing."""
        slot = Slot(self.state_root, 0)
        try:
            slot.prepare(base_tree)
            installed = install_protected(spec, self.trusted_root, slot.path)
            log.summary["nop_protected_manifest"] = self.record_protected(spec, gates, installed, log, 0, 0,
                                                                          base_tree, nop=True)
            progress.update(0, attempt=0, phase="nop check")
            work = self.state_root / ".vt" / "work" / log.run_id / "nop"

            def on_result(r: GateResult) -> None:
                self._archive_gate(log, 0, 0, r)
                log.event("gate", attempt=0, candidate=0, nop=True, **r.to_dict())
                progress.update(0, gate=(r.name, r.status))

            return self.run_gates(spec, gates, slot, work, on_result)
        finally:
            slot.release()

    # ------------------------------------------------------------------------------------------------------------
    # run / submit

    def run(self, spec: Spec, opts: RunOptions, resume_id: str | None = None, submit_tree: str | None = None) -> Outcome:
        """Run spec through opts.agent. submit_tree: the working tree already holds this change (``submit``), so
        the ledger append must find it there instead of applying it."""
        from harness import prompts  # (here, not at the top: validate needs no Jinja2)
        from harness.agents import make_agent
        from harness.agents.budget import RunBudget

        t0 = time.monotonic()
        gates = spec.gates
        missing = [d for d in spec.depends_on if d not in self.ledger.accepted_specs()]
        if missing:
            raise HarnessError(f"spec {spec.id} is blocked: its dependencies {', '.join(missing)} are not in the ledger")
        max_attempts = opts.max_attempts or spec.budget.max_attempts
        budget_usd = opts.budget_usd if opts.budget_usd is not None else spec.budget.max_cost_usd
        budget = RunBudget(max_tokens=spec.budget.max_tokens, max_cost_usd=budget_usd,
                           max_wall_s=spec.budget.max_wall_s)
        agent = make_agent(opts.agent, budget=budget, **opts.agent_options)
        messages: list[dict[str, str]] = []
        first_attempt = 1
        if resume_id:
            log = RunLog.open_existing(self.log_root, resume_id)
            if log.summary.get("status") in ("accepted",):
                raise HarnessError(f"run {resume_id} already ended: {log.summary.get('status')}")
            messages, first_attempt = _messages_from_events(log.events())
            first_attempt += 1
        else:
            log = RunLog(self.log_root, new_run_id(spec.id), {
                "spec_id": spec.id, "agent": agent.name, "model": agent.model, "started_at": utcnow(),
                "status": "running", "reason": "", "attempts": [], "usage": Usage().__dict__, "ledger_seq": None,
                "candidates": opts.candidates, "mode": "run" if agent.name != "external" else "submit",
                "agent_options": {k: v for k, v in opts.agent_options.items() if k not in ("budget", "patch")},
                "pending_outside_spec": opts.pending})
        base_tree = self.ledger.head_tree()
        log.summary.setdefault("base_tree", base_tree)
        log.save()
        self.ensure_tree(base_tree)
        usage = Usage(**{k: v for k, v in log.summary.get("usage", {}).items() if k in Usage().__dict__})
        slots = [Slot(self.state_root, i) for i in range(opts.candidates)]
        last_sig = ""
        repeats = 0
        status, reason = "rejected", f"no candidate passed in {max_attempts} attempts"
        accepted: CandidateResult | None = None
        progress = _progress(spec, opts)
        try:
            with progress:
                if opts.nop_check and not resume_id:
                    nop = self.nop_check(spec, gates, base_tree, log, progress)
                    nop_passed = len(nop) == len(gates) and all(g.passed for g in nop)
                    log.summary["nop_check"] = {"passed_unchanged_tree": nop_passed,
                                                "gates": [g.to_dict() for g in nop]}
                    log.save()
                    if nop_passed and not opts.allow_nop:
                        raise _End("error", f"spec {spec.id} tests nothing: its gates pass on the unchanged tree "
                                            "(add acceptance tests, or pass --allow-nop)")
                for attempt in range(first_attempt, max_attempts + 1):
                    budget.check()
                    results = self._attempt(spec, gates, agent, slots, base_tree, messages, attempt, log,
                                            progress, opts)
                    for r in results:
                        usage.add(r.usage)
                    log.summary["usage"] = usage.__dict__
                    winners = [r for r in results if r.status == "pass"]
                    if winners:
                        accepted = winners[0]
                        break
                    best = _best(results)
                    sig = best.signature
                    repeats = repeats + 1 if sig and sig == last_sig else 0
                    last_sig = sig
                    rejected = best.feedback if best.status == "rejected" and not best.apply_failed else ""
                    feedback = prompts.render_feedback(attempt, best.gates, rejected=rejected,
                                                       apply_feedback=best.feedback if best.apply_failed else "",
                                                       repeated=repeats >= 1)
                    if best.response_text:
                        messages.append({"role": "assistant", "content": best.response_text})
                    messages.append({"role": "user", "content": feedback})
                    log.event("feedback", attempt=attempt, text=feedback, repeated=repeats)
                    if repeats >= 2:
                        raise _End("stuck", f"the same failure {repeats + 1} times in a row (last at attempt {attempt})")
                if accepted is not None:
                    if submit_tree is not None:
                        if accepted.result_tree != submit_tree:
                            raise LedgerError(f"the gated tree {accepted.result_tree} is not the working tree "
                                              f"{submit_tree}")
                        now = self.scoped_tree(spec, base_tree)[0]
                        if now != submit_tree:
                            log.summary["changed_while_gating"] = True
                            log.event("note", text="generated_runtime/ changed inside the spec's paths while the "
                                                   "gates ran; the entry is the gated snapshot, the newer edits "
                                                   "stay pending in the working tree")
                    seq = self._accept(spec, agent, accepted, base_tree, log, t0, opts,
                                       apply_to_state=submit_tree is None)
                    status, reason = "accepted", f"candidate {accepted.candidate} passed every gate; ledger entry {seq}"
                    log.summary["ledger_seq"] = seq
                    log.drop_proposal(attempt, accepted.candidate)  # the ledger holds it now
        except _End as end:
            status, reason = end.status, end.reason
        except BudgetExceeded as exc:
            status, reason = "budget", str(exc)
        except (AgentError, LedgerError, HarnessError) as exc:
            status, reason = "error", str(exc)
        except KeyboardInterrupt:
            status, reason = "interrupted", "interrupted by the user (Ctrl-C); the ledger and tree are unchanged"
        finally:
            for s in slots:
                s.release()
            discard(self.state_root, self.state_root / ".vt" / "work" / log.run_id)
            log.summary.update(status=status, reason=reason, ended_at=utcnow(), usage=usage.__dict__,
                               wall_s=round(time.monotonic() - t0, 3), warnings=list(budget.warnings),
                               cost_unknown=budget.cost_unknown)
            log.event("run_end", status=status, reason=reason)
            log.save()
        return Outcome(status, reason, log.run_id, str(log.dir), log.summary.get("ledger_seq"),
                       len(log.summary["attempts"]), usage.__dict__, time.monotonic() - t0)

    def _attempt(self, spec, gates, agent, slots, base_tree, messages, attempt, log, progress, opts):
        from harness import prompts

        def one(slot: Slot) -> CandidateResult:
            cand = slot.index
            started = time.monotonic()
            progress.update(cand, attempt=attempt, phase="worktree")
            wt = slot.prepare(base_tree)
            user = messages[-1]["content"] if messages else prompts.render_task(spec, wt, base_tree)
            msgs = messages if messages else [{"role": "user", "content": user}]
            system = prompts.render_system(spec)
            req = AgentRequest(spec=spec, system=system, messages=list(msgs), worktree=wt, attempt=attempt)
            log.event("prompt", attempt=attempt, candidate=cand, system=system, messages=msgs[-1:],
                      digest=prompts.digest(system, *[m["content"] for m in msgs]))
            progress.update(cand, phase=f"asking {agent.name}")
            try:
                resp = agent.propose(req)
            except (AgentError, BudgetExceeded):
                raise
            log.event("response", attempt=attempt, candidate=cand, text=resp.text[:200_000], model=resp.model,
                      usage=resp.usage.__dict__, meta=resp.meta)
            prop = resp.proposal
            if agent.name == "external":
                # Note [Stored submit proposals]: a submit's patch can be megabytes, so it is not inlined in the
                # events; it is kept compressed beside them until it is accepted (then the ledger holds it and the
                # copy is removed), so a rejected submit can be replayed and must fail again.
                ref = log.store_proposal(attempt, cand, prop.text)
                log.event("proposal", attempt=attempt, candidate=cand, kind=prop.kind, sha256=_sha(prop.text),
                          ref=ref)
            else:
                log.event("proposal", attempt=attempt, candidate=cand, kind=prop.kind, sha256=_sha(prop.text),
                          text=prop.text)
            progress.update(cand, phase="applying")
            r = self.evaluate(spec, gates, slot, prop, log, attempt, cand, progress,
                              trusted_submitter=(agent.name == "external"))
            r.usage, r.response_text, r.model = resp.usage, resp.text, resp.model
            summary = {"attempt": attempt, "candidate": cand, "status": r.status, "failed_gate": r.failed_gate,
                       "protected_manifest": r.protected_manifest, "proposal_kind": prop.kind,
                       "proposal_sha256": _sha(prop.text), "gates": [g.to_dict() for g in r.gates],
                       "feedback": r.feedback, "usage": resp.usage.__dict__, "started_at": utcnow(),
                       "wall_s": round(time.monotonic() - started, 3)}
            log.summary["attempts"].append(summary)
            log.event("attempt_end", **summary)
            log.save()
            progress.update(cand, phase=r.status)
            return r

        if len(slots) == 1:
            return [one(slots[0])]
        pool = cf.ThreadPoolExecutor(len(slots))
        try:
            return list(pool.map(one, slots))
        except KeyboardInterrupt:
            # Ctrl-C reaches the main thread only: a gate run there stops itself (validators.sandbox.run_sandboxed);
            # the other candidates' gates are stopped here, before shutdown would wait for them
            from validators import sandbox
            sandbox.stop_all_gates()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _accept(self, spec, agent, cand: CandidateResult, base_tree, log: RunLog, t0, opts, apply_to_state) -> int:
        meta = {"agent": agent.name, "model": agent.model or None, "message": opts.message or spec.title,
                "run_id": log.run_id, "prompt_digest": _prompt_digest(log),
                "gates": [g.to_dict() for g in cand.gates], "usage": cand.usage.__dict__,
                "wall_s": round(time.monotonic() - t0, 3), "attempts": len(log.summary["attempts"])}
        entry = self.ledger.append(spec_id=spec.id, patch=cand.patch, parent_tree=base_tree,
                                   result_tree=cand.result_tree,
                                   apply_to=self.state_root if apply_to_state else None, meta=meta,
                                   snapshot=not apply_to_state)
        return entry.seq

    def scoped_tree(self, spec: Spec, base: str) -> tuple[str, list[str]]:
        """The working tree's runtime restricted to spec's paths on top of base.

        Note [Scoped submit]: several specs are often worked on at once in one working tree. `submit SPEC` gates
        and records only the changed files inside SPEC's paths (globs, '!' excludes); the others stay in the
        working tree, untouched, for a later submit of their own spec, and the run log lists them. The candidate
        tree is the ledger head plus exactly those files, so the gates judge what the entry will contain. The entry
        is that snapshot, taken when submit starts: edits made while the gates run are not in it and stay pending
        (the run log says so), and `reproduce --check` shows any difference until they are submitted too."""
        def include(rel: str) -> bool:
            return path_matches(f"{gitops.RUNTIME}/{rel}", spec.paths)
        return gitops.scoped_tree_hash(self.state_root, base, include)

    def submit(self, spec: Spec, opts: RunOptions) -> Outcome:
        """The `external` agent: gate the change already made in generated_runtime/ and record it."""
        base = self.ledger.head_tree()
        if gitops.runtime_tree_hash(self.state_root) == base:
            raise HarnessError("nothing to submit: generated_runtime/ equals the ledger's head")
        self.ensure_tree(base)
        current, pending = self.scoped_tree(spec, base)
        if current == base:
            raise HarnessError(f"nothing to submit for {spec.id}: all {len(pending)} changed files in "
                               f"generated_runtime/ are outside its paths (e.g. {pending[0]})")
        opts.pending = pending
        opts.agent = "external"
        opts.agent_options = {**opts.agent_options, "patch": gitops.tree_diff(self.state_root, base, current)}
        opts.max_attempts = 1
        return self.run(spec, opts, submit_tree=current)

    # ------------------------------------------------------------------------------------------------------------
    # validate: gates on the current tree, no agent

    def validate(self, spec: Spec | None, gates: list[GateConfig], progress: bool = True,
                 source: Path | None = None) -> Outcome:
        """Gate source/generated_runtime (default: the state repository's, uncommitted changes included).

        Note [Validate leaves nothing behind]: the gates' work folder ``.vt/work/RUN_ID`` (site folder, logs,
        JUnit files) is discarded on every exit path -- a verdict, a gate that raised, an error before or between
        gates, Ctrl-C -- like the worktree (``worktree.discard``: moved to ``.vt/trash``, deleted in the
        background). What is worth keeping is copied out first, as a run does: the gates' logs and reports go to the
        validate log (``.vt/validate/RUN_ID/{gates,reports}``), which the returned details point to. An exception
        still propagates (the CLI turns it into exit 2 or 130) after the log records status "error" or
        "interrupted"."""
        t0 = time.monotonic()
        source = source or self.state_root
        log = RunLog(self.state_root / ".vt" / "validate", new_run_id(spec.id if spec else "00-validate"),
                     {"mode": "validate", "spec_id": spec.id if spec else None, "started_at": utcnow(),
                      "attempts": []})
        slot = Slot(self.state_root, 0)
        work = self.state_root / ".vt" / "work" / log.run_id
        prog = Progress_(f"validate {spec.id if spec else ''}", progress)
        results: list[GateResult] = []
        status, reason = "error", "validate stopped before a verdict"
        # the source's tree hash (for the log) is taken while the copy is made: both only read the source
        hashing = cf.ThreadPoolExecutor(1)
        tree = hashing.submit(gitops.runtime_tree_hash, source)
        try:
            with prog:
                slot.prepare_copy(source)  # Note [Validate gates a plain copy] (worktree.py)
                log.summary["tree"] = tree.result()

                def on_result(r: GateResult) -> None:
                    self._archive_gate(log, 1, 0, r)
                    results.append(r)
                    log.event("gate", **r.to_dict())
                    prog.update(0, gate=(r.name, r.status))

                prog.update(0, attempt=1, phase="gates")
                results[:] = self.run_gates(spec, gates, slot, work, on_result)
            ok = len(results) == len(gates) and all(g.passed for g in results)
            status = "ok" if ok else "rejected"
            reason = "every gate passed" if ok else "; ".join(f"{g.name}: {g.status}" for g in results
                                                              if not g.passed)
        except KeyboardInterrupt:
            status, reason = "interrupted", "interrupted by the user (Ctrl-C)"
            raise
        except Exception as exc:
            status, reason = "error", f"{type(exc).__name__}: {exc}"[:2000]
            raise
        finally:
            hashing.shutdown(wait=True)
            slot.release()
            discard(self.state_root, work)
            log.summary.update(status=status, reason=reason, gates=[g.to_dict() for g in results],
                               ended_at=utcnow(), wall_s=round(time.monotonic() - t0, 3))
            log.save()
        return Outcome(status, reason, log.run_id, str(log.dir), attempts=1, wall_s=time.monotonic() - t0,
                       details=[g.to_dict() for g in results])


class _End(Exception):
    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def install_protected(spec: Spec, trusted_root: Path, candidate_root: Path) -> dict[str, bytes]:
    """Copy the spec's protected files (acceptance tests) from the trusted tree over the candidate, so the tree
    under test, and the entry that lands, always carry the trusted versions (mode and times kept, as a copy2).
    Returns path -> the bytes written: each file is read once, so the protected-file manifest records exactly
    what the candidate got even while the trusted tree is being edited (Note [Protected-file manifest])."""
    from harness.specs import path_matches

    copied: dict[str, bytes] = {}
    for rel in runtime_files(trusted_root):
        p = trusted_root / rel
        if p.is_file() and path_matches(rel, spec.protected):
            dst = candidate_root / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            data = p.read_bytes()
            if dst.is_symlink():
                dst.unlink()
            dst.write_bytes(data)
            shutil.copystat(p, dst)
            copied[rel] = data
    return copied


def _base_of(worktree: Path) -> str:
    """The runtime tree a slot worktree was prepared on (its HEAD's generated_runtime/; Slot.prepare)."""
    try:
        return gitops.git(worktree, "rev-parse", f"HEAD:{gitops.RUNTIME}").strip()
    except HarnessError:  # no runtime at HEAD: the empty state
        return gitops.EMPTY_TREE


def _without_protected(spec: Spec) -> Spec:
    import dataclasses

    return dataclasses.replace(spec, protected=[])


def _best(results: list[CandidateResult]) -> CandidateResult:
    def score(r: CandidateResult) -> tuple:
        return (r.status == "fail", sum(g.passed for g in r.gates), -r.candidate)

    return max(results, key=score)


def _prompt_digest(log: RunLog) -> str | None:
    digests = [e.get("digest") for e in log.events() if e.get("type") == "prompt"]
    return digests[-1] if digests else None


def _messages_from_events(events: list[dict]) -> tuple[list[dict[str, str]], int]:
    messages: list[dict[str, str]] = []
    last = 0
    for e in events:
        if e.get("type") == "prompt" and not messages:
            messages.extend(e.get("messages", []))
        elif e.get("type") == "feedback":
            messages.append({"role": "user", "content": e["text"]})
        if e.get("type") == "attempt_end":
            last = max(last, int(e.get("attempt", 0)))
    return messages, last


def _progress(spec: Spec, opts: RunOptions):
    return Progress_(f"vt-agent run {spec.id} ({opts.agent})", opts.progress)


def Progress_(title: str, enabled: bool):
    from harness.progress import Progress

    return Progress(title, enabled)


def _trusted_root_at(runner: Runner, today_root: Path, tree: str) -> Path:
    """A temporary trusted root: today's harness, validators and specs with generated_runtime/ at ledger state
    tree (whose tests and workloads judge a replayed recording), plus today's files that no ledger state has
    (acceptance tests a person keeps outside the ledger). The caller removes it."""
    root = Path(tempfile.mkdtemp(prefix="vt-replay-trusted-"))
    subprocess.run(["git", "init", "-q", str(root)], check=True)  # the gates list its files with git
    for name in ("harness", "validators", "specs"):
        if (today_root / name).is_dir():
            shutil.copytree(today_root / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    gitops.materialize(runner.state_root, tree, root)
    # acceptance tests that never entered the ledger (kept only in the trusted tree) are today's
    head = runner.ledger.head_tree()
    runner.ensure_tree(head)  # (a fresh clone lacks the head's tree when the committed runtime is older)
    in_ledger = set(gitops.git(runner.state_root, "ls-tree", "-r", "--name-only", head).split("\n")) \
        if head != gitops.EMPTY_TREE else set()
    for rel in runtime_files(today_root):
        inner = rel[len(gitops.RUNTIME) + 1:]
        if inner not in in_ledger and (today_root / rel).is_file() and not (root / rel).exists():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(today_root / rel, root / rel)
    return root


def gates_with_recorded_seeds(gates: list[GateConfig], seeds: dict) -> list[GateConfig]:
    """The spec's gates with each recorded seed pinned (Note [Replay with the recorded seeds], replay_agent.py);
    a seed the spec itself pins is kept."""
    return [GateConfig(g.name, {**g.options, "seed": seeds[g.name]})
            if g.name in seeds and "seed" not in (g.options or {}) else g for g in gates]


# Per-recording results of a replay (Note [Replay compares the failing gate]); NOT_REPRODUCIBLE: not re-gated
# (Note [Replay annotations], replay_annotations.py) or its recorded protected files are damaged (Note
# [Protected-file manifest], protected.py).
MATCH, OTHER_GATE, MISMATCH, NOT_REPRODUCIBLE = "match", "other_gate", "mismatch", "not_reproducible"
# a recorded failure at a gate whose validator defect a later commit fixed, passing today (Note [Replay annotations])
VALIDATOR_FIXED = "validator_fixed"


def compare_with_recording(recorded_verdict: str, recorded_gate: str | None, today_status: str,
                           today_gate: str | None) -> dict[str, Any]:
    """Today's verdict against a recording's.

    Note [Replay compares the failing gate]: a recorded failure must fail again, and at the same place. Each
    recording gets one of three results:
      "match"       same verdict; for a failure, at the same gate (or pre-gate stage "vet"/"apply");
      "other_gate"  it fails again, but at another gate (recorded parity, now pytest): the recorded problem may be
                    gone and a new one hiding it, or a gate before it got stricter;
      "mismatch"    the verdict differs (a recorded pass fails, or a recorded failure passes).
    "other_gate" is reported and counted separately; it fails the replay (exit 5, like a mismatch) only with
    ``--strict-gates``, because a failure that moved to an earlier gate is often the intended effect of a stricter
    gate or test and still rejects the proposal. Old recordings that kept neither ``failed_gate`` nor their gate
    results can only be compared by verdict ("gate_compared": false; the report says so)."""
    then = "pass" if recorded_verdict == "pass" else "fail"
    today = "pass" if today_status == "pass" else "fail"
    d: dict[str, Any] = {"recorded": then, "today": today, "recorded_gate": recorded_gate if then == "fail" else None,
                         "today_gate": today_gate if today == "fail" else None, "gate_compared": True}
    if today != then:
        d["result"] = MISMATCH
    elif then == "pass":
        d["result"] = MATCH
    elif recorded_gate is None:
        d["result"], d["gate_compared"] = MATCH, False
    else:
        d["result"] = MATCH if recorded_gate == today_gate else OTHER_GATE
    d["match"] = d["result"] == MATCH  # the verdict and, where recorded, the failing gate
    return d


def not_reproducible(recorded_verdict: str, recorded_gate: str | None, why: str) -> dict[str, Any]:
    """The comparison fields of a recording that was not re-gated (why: "annotated", or what is damaged)."""
    then = "pass" if recorded_verdict == "pass" else "fail"
    return {"recorded": then, "today": None, "recorded_gate": recorded_gate if then == "fail" else None,
            "today_gate": None, "gate_compared": False, "result": NOT_REPRODUCIBLE, "match": False,
            "not_reproducible": why}


def describe_comparison(d: dict[str, Any]) -> str:
    """One line for a replay detail: "match", "match, other gate (recorded parity, now pytest)", "MISMATCH ...",
    "not reproducible (...)"."""
    if d["result"] == NOT_REPRODUCIBLE:
        return f"not reproducible ({d.get('not_reproducible', '')})"
    if d["result"] == VALIDATOR_FIXED:
        return (f"passes since the validator fix {d['validator_fixed']} (recorded fail at {d['recorded_gate']}; "
                "counted apart)")
    if d["result"] == OTHER_GATE:
        return f"match, other gate (recorded {d['recorded_gate']}, now {d['today_gate']})"
    if d["result"] == MISMATCH:
        at = f" at {d['today_gate']}" if d.get("today_gate") else ""
        return f"MISMATCH (recorded {d['recorded']}, today {d['today']}{at})"
    if d["recorded"] == "fail" and not d.get("gate_compared", True):
        return "match (verdict only: the recording names no failing gate)"
    return "match"


def _judging_root(runner: Runner, today_root: Path, rec, ann, results: dict[int, str]) -> tuple[Path, str, str]:
    """The temporary trusted root a recording is judged with, a description of it for the report, and what chose
    it ("manifest", "annotation" or "rule"):
    the run's protected-file manifest when it has one (Note [Protected-file manifest]); else the state an
    annotation names (Note [Replay annotations]); else the rule (Note [Replay judges with the tests of its time]).
    Raises ManifestError for a manifest that cannot be used. The caller removes the root."""
    from harness.protected import load_manifest, rebuild_trusted
    from harness.replay_annotations import BASE

    record = rec.protected_manifest if isinstance(rec.protected_manifest, dict) else None
    if record is not None and "ref" in record:
        run_dir = today_root / "logs" / "runs" / str(rec.run_id)
        manifest = load_manifest(run_dir, record)
        root = _trusted_root_at(runner, today_root, rec.parent_tree)
        try:
            n = rebuild_trusted(manifest, runner.state_root, root)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return root, (f"the protected files the run recorded (logs/runs/{rec.run_id}/{manifest['ref']}: "
                      f"{n['files']} files, {len(manifest['stored'])} stored with the run)"), "manifest"
    judged = results.get(rec.entry_seq, rec.parent_tree)  # the rule
    if judged != rec.parent_tree:  # an old ledger state: a fresh clone's store does not have it yet
        runner.ensure_tree(judged, upto_seq=rec.entry_seq)
    if ann is None or not ann.chooses_tests:
        what = (f"entry {rec.entry_seq}'s result" if rec.entry_seq in results else "the base state")
        return _trusted_root_at(runner, today_root, judged), f"the protected files of {what} (the rule)", "rule"
    state = rec.parent_tree if ann.judge_with == BASE else results[ann.entry] if ann.entry else judged
    if ann.entry:
        runner.ensure_tree(state, upto_seq=ann.entry)
    if not ann.paths:
        return _trusted_root_at(runner, today_root, state), ann.describe(), "annotation"
    from harness.specs import path_matches

    root = _trusted_root_at(runner, today_root, judged)
    try:
        names = set()
        for tree in {state, judged}:
            if tree != gitops.EMPTY_TREE:
                names |= set(gitops.git(runner.state_root, "ls-tree", "-r", "-z", "--name-only", tree).split("\0"))
        chosen = sorted(n for n in names if n and path_matches(f"{gitops.RUNTIME}/{n}", ann.paths))
        gitops.sync_paths_from_tree(runner.state_root, state, chosen, root)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return root, ann.describe(), "annotation"


def replay_spec(runner: Runner, spec: Spec, progress: bool = True, strict_gates: bool = False,
                selection: str | None = None) -> Outcome:
    """Offline ``run SPEC --agent replay``: re-gate every recorded proposal of an accepted spec (or those
    ``selection`` names, replay_agent.select_recordings) on the ledger state it was made on, and compare today's
    verdict, and the gate a failure failed at, with the recorded one (Note [Replay compares the failing gate]).
    strict_gates: a failure at another gate fails the replay too. Each recording is judged with the protected
    files its run recorded (Note [Protected-file manifest]), else as logs/replay_annotations.yaml says (Note
    [Replay annotations]), else by the rule (Note [Replay judges with the tests of its time])."""
    from harness.agents.replay_agent import recordings, select_recordings
    from harness.protected import ManifestError
    from harness.replay_annotations import ANNOTATIONS, load_annotations

    t0 = time.monotonic()
    all_recs = recordings(runner.trusted_root, spec.id)
    if not all_recs:
        raise HarnessError(f"replay: spec {spec.id} has no recorded proposals (it is not in the ledger); "
                           "use a live agent, e.g. --agent openai:MODEL")
    recs = select_recordings(all_recs, selection)
    results = {e.seq: e.result_tree for e in runner.ledger.entries()}
    annotations = load_annotations(runner.trusted_root)
    for i, rec in recs:  # mistakes in the annotations are errors before anything is gated
        ann = annotations.get(str(rec.run_id))
        if ann is None:
            continue
        has_manifest = isinstance(rec.protected_manifest, dict) and "ref" in rec.protected_manifest
        if has_manifest and ann.chooses_tests:
            raise HarnessError(f"{ANNOTATIONS}: run {ann.run_id} recorded its protected files (a manifest), and "
                               f"recording {i} is judged with them; remove its annotation")
        if ann.entry is not None and ann.entry not in results:
            raise HarnessError(f"{ANNOTATIONS}: run {ann.run_id}: judge_with {ann.judge_with!r}, but the ledger "
                               f"has no entry {ann.entry}")
    log = RunLog(runner.state_root / "logs" / "replays", new_run_id(spec.id),
                 {"mode": "replay", "spec_id": spec.id, "agent": "replay", "model": "recorded",
                  "started_at": utcnow(), "status": "running", "attempts": [], "strict_gates": strict_gates,
                  "recordings": {"selection": selection or "all", "selected": [i for i, _ in recs],
                                 "of": len(all_recs)}})
    log.save()
    slot = Slot(runner.state_root, 0)
    details = []
    status, reason = "ok", ""
    prog = Progress_(f"vt-agent run {spec.id} (replay)", progress)
    today_root = runner.trusted_root
    counts = {MATCH: 0, OTHER_GATE: 0, MISMATCH: 0, "verdict_only": 0, NOT_REPRODUCIBLE: 0, VALIDATOR_FIXED: 0,
              "annotated": 0, "manifest": 0}

    def record(d: dict[str, Any]) -> None:
        details.append(d)
        log.summary["attempts"].append(d)
        log.event("attempt_end", **d)
        log.save()

    try:
        with prog:
            for i, rec in recs:
                ann = annotations.get(str(rec.run_id))
                head = {"recording": i, "entry_seq": rec.entry_seq, "attempt": rec.attempt, "run_id": rec.run_id}
                if ann is not None:
                    counts["annotated"] += 1
                    head["annotation"] = ann.to_dict()
                if ann is not None and not ann.reproducible:
                    counts[NOT_REPRODUCIBLE] += 1
                    record({**head, **not_reproducible(rec.recorded_verdict, rec.recorded_gate, "annotated"),
                            "judged_with": ann.describe(), "judged_by": "annotation", "gates": [],
                            "feedback": ""})
                    continue
                runner.ensure_tree(rec.parent_tree, upto_seq=rec.entry_seq - 1)
                prog.update(0, attempt=i, phase=f"rebuilding ledger state before entry {rec.entry_seq}")
                slot.prepare(rec.parent_tree)
                # Note [Replay judges with the tests of its time]: the acceptance tests (protected files, the
                # training workloads) the recorded verdict was given with are those the run recorded in its
                # protected-file manifest (Note [Protected-file manifest], protected.py). Older runs kept none: they
                # are judged with those of the entry's result tree, not today's, which may test later features.
                # A run that made no entry is counted as the entry that followed on its base
                # (replay_agent.recordings): it is judged by that entry's tests, what the working tree held around
                # then, or by its base's when no entry followed. Where the evidence shows the trusted tree held
                # other tests, logs/replay_annotations.yaml says which (Note [Replay annotations]).
                try:
                    runner.trusted_root, judged_with, judged_by = _judging_root(runner, today_root, rec, ann,
                                                                                 results)
                except ManifestError as exc:
                    counts[NOT_REPRODUCIBLE] += 1
                    record({**head, **not_reproducible(rec.recorded_verdict, rec.recorded_gate,
                                                       f"its recorded protected files cannot be used: {exc}"),
                            "damaged": str(exc), "judged_with": None, "judged_by": "manifest", "gates": [],
                            "feedback": ""})
                    continue
                counts["manifest"] += judged_by == "manifest"
                try:
                    r = runner.evaluate(spec, gates_with_recorded_seeds(spec.gates, rec.gate_seeds), slot,
                                        rec.proposal, log, i, 0, prog, trusted_submitter=rec.agent == "external")
                finally:
                    shutil.rmtree(runner.trusted_root, ignore_errors=True)
                    runner.trusted_root = today_root
                cmp = compare_with_recording(rec.recorded_verdict, rec.recorded_gate, r.status, r.failed_gate)
                if (ann is not None and ann.validator_fixed and cmp["result"] == MISMATCH and cmp["today"] == "pass"
                        and cmp["recorded_gate"] == ann.gate):
                    cmp = {**cmp, "result": VALIDATOR_FIXED, "validator_fixed": ann.validator_fixed}
                counts[cmp["result"]] += 1
                counts["verdict_only"] += not cmp["gate_compared"]
                record({**head, **cmp, "judged_with": judged_with, "judged_by": judged_by,
                        "protected_manifest": r.protected_manifest,
                        "gates": [g.to_dict() for g in r.gates], "feedback": r.feedback[:2000]})
        mismatches = [d for d in details if d["result"] == MISMATCH]
        moved = [d for d in details if d["result"] == OTHER_GATE]
        damaged = [d for d in details if d.get("damaged")]
        unrepro = [d for d in details if d["result"] == NOT_REPRODUCIBLE and not d.get("damaged")]
        failing = mismatches + (moved if strict_gates else [])
        if failing:
            status = "mismatch"
            reason = "; ".join(f"recording {d['recording']}: {describe_comparison(d)}"
                               for d in sorted(failing + damaged, key=lambda d: d["recording"]))
        elif damaged:
            status = "error"
            reason = "; ".join(f"recording {d['recording']}: {describe_comparison(d)}" for d in damaged)
        else:
            regated = len(details) - len(unrepro)
            reason = (f"{regated} recorded proposal(s) re-gated"
                      + (f" (of {len(all_recs)}: {selection})" if len(recs) < len(all_recs) else "")
                      + "; every verdict matches the recording")
            if moved:
                reason += (f", {len(moved)} failing at another gate than recorded (not an error without "
                           "--strict-gates): " + "; ".join(f"recording {d['recording']}: recorded "
                                                           f"{d['recorded_gate']}, now {d['today_gate']}"
                                                           for d in moved))
        if counts["verdict_only"]:
            reason += (f" ({counts['verdict_only']} old recording(s) name no failing gate: compared by verdict "
                       "only)")
        if unrepro:
            reason += (f"; {len(unrepro)} not reproducible, not re-gated, as {ANNOTATIONS} says: "
                       + ", ".join(f"recording {d['recording']}" for d in unrepro))
        fixed = [d for d in details if d["result"] == VALIDATOR_FIXED]
        if fixed:
            reason += (f"; {len(fixed)} recorded failure(s) pass since a validator fix, counted apart, as "
                       f"{ANNOTATIONS} says: " + ", ".join(f"recording {d['recording']} ({d['recorded_gate']}, "
                                                           f"fixed by {d['validator_fixed']})" for d in fixed))
        judged_as_annotated = [d for d in details if d.get("annotation") and d["annotation"]["judge_with"]
                               and d["result"] != NOT_REPRODUCIBLE]
        if judged_as_annotated:
            reason += (f"; judged as {ANNOTATIONS} says: "
                       + ", ".join(f"recording {d['recording']} ({d['annotation']['judge_with']})"
                                   for d in judged_as_annotated))
    except KeyboardInterrupt:
        status, reason = "interrupted", "interrupted by the user (Ctrl-C)"
    finally:
        slot.release()
        discard(runner.state_root, runner.state_root / ".vt" / "work" / log.run_id)
        log.summary.update(status=status, reason=reason, ended_at=utcnow(), wall_s=round(time.monotonic() - t0, 3),
                           counts=counts)
        log.save()
    return Outcome(status, reason, log.run_id, str(log.dir), attempts=len(details), wall_s=time.monotonic() - t0,
                   details=details, extra={"counts": counts, "strict_gates": strict_gates,
                                           "recordings": [i for i, _ in recs], "recordings_of": len(all_recs)})
