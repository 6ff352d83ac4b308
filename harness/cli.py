"""The `vt-agent` command line. Every subcommand prints a human summary, or with --json one JSON object on stdout,
and exits with a documented code (README.md, "Exit codes"):

  0 accepted / ok   1 rejected by a gate   2 error (bad input, bad state)   3 budget spent
  4 stuck (same failure repeated)   5 replay mismatch or reproduce mismatch   130 interrupted
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from harness import gitops
from harness.agents.replay_agent import SELECTION_HELP
from harness.interfaces import GateConfig, HarnessError
from harness.runner import (EXIT_ACCEPTED, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_MISMATCH, Outcome, Runner,
                            RunOptions, describe_comparison, replay_spec)


def repo_root() -> Path:
    env = os.environ.get("VT_REPO")
    if env:
        return Path(env).resolve()
    try:
        out = gitops.git(Path.cwd(), "rev-parse", "--show-toplevel").strip()
    except HarnessError:
        raise HarnessError("not inside the vt-agent repository (no git top level); cd into it or set VT_REPO")
    root = Path(out)
    if not (root / "specs").is_dir() and not (root / "harness").is_dir():
        raise HarnessError(f"{root} does not look like a vt-agent repository (no specs/ or harness/)")
    return root


def _emit(args, payload: dict, human: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(human)


def _outcome(args, out: Outcome, title: str) -> int:
    lines = [f"{title}: {out.status} — {out.reason}",
             f"  run log: {out.run_dir}", f"  attempts: {out.attempts}, wall time: {out.wall_s:.1f} s"]
    u = out.usage or {}
    if u.get("calls"):
        cost = "unknown" if u.get("cost_usd") is None else f"${u['cost_usd']:.4f}"
        lines.append(f"  tokens: {u.get('input_tokens', 0)} in / {u.get('output_tokens', 0)} out, cost {cost}")
    if out.ledger_seq:
        lines.append(f"  ledger entry: {out.ledger_seq}")
    counts = out.extra.get("counts")
    if counts:
        lines.append(f"  recordings: {counts['match']} match, {counts['other_gate']} match at another gate"
                     f"{' (fail the replay: --strict-gates)' if out.extra.get('strict_gates') else ''}, "
                     f"{counts['mismatch']} mismatch, {counts.get('not_reproducible', 0)} not reproducible, "
                     f"{counts.get('validator_fixed', 0)} passing since a validator fix (counted apart); "
                     f"{counts['verdict_only']} compared by verdict only, "
                     f"{counts.get('annotated', 0)} annotated, {counts.get('manifest', 0)} judged with the "
                     "protected files their run recorded"
                     + (f" ({len(out.extra['recordings'])} of {out.extra['recordings_of']} recordings selected: "
                        f"{', '.join(map(str, out.extra['recordings']))})"
                        if len(out.extra.get("recordings", ())) < out.extra.get("recordings_of", 0) else ""))
    for d in out.details:
        if "recorded" in d:
            then = d["recorded"] + (f" at {d['recorded_gate']}" if d.get("recorded_gate") else "")
            now = ("today " + d["today"] + (f" at {d['today_gate']}" if d.get("today_gate") else "")
                   if d.get("today") else "not re-gated")
            lines.append(f"  recording {d['recording']} (entry {d['entry_seq']}, attempt {d['attempt']}): "
                         f"recorded {then}, {now} -> {describe_comparison(d)}")
            if d.get("annotation"):  # Note [Replay annotations]: every exception to the rule is shown
                lines.append(f"      {d['judged_with']}")
            elif d.get("judged_by") == "manifest" or d.get("damaged"):
                lines.append(f"      judged with {d['judged_with']}" if d.get("judged_with")
                             else f"      {d['damaged']}")
        elif "name" in d:
            lines.append(f"  gate {d['name']}: {d['status']} ({d['duration_s']:.1f} s) {d['summary'][:200]}")
    _emit(args, out.to_dict(), "\n".join(lines))
    return out.exit_code


# ----------------------------------------------------------------------------------------------------------------


def cmd_specs(args) -> int:
    from harness.ledger import Ledger
    from harness.specs import check_specs

    root = repo_root()
    specs, problems = check_specs(root)
    if args.action == "check":
        payload = {"ok": not problems, "problems": problems, "specs": [s.id for s in specs]}
        human = ("every spec is valid: " + ", ".join(s.id for s in specs)) if not problems else \
            "spec problems:\n  " + "\n  ".join(problems)
        _emit(args, payload, human)
        return 0 if not problems else EXIT_ERROR
    accepted = Ledger(root).accepted_specs()
    rows = []
    for s in specs:
        blocked = [d for d in s.depends_on if d not in accepted]
        state = "accepted" if s.id in accepted else ("blocked by " + ", ".join(blocked) if blocked else "pending")
        rows.append({"id": s.id, "title": s.title, "state": state, "depends_on": s.depends_on,
                     "gates": [g.name for g in s.gates]})
    human = "\n".join(f"{r['id']:<28} {r['state']:<36} {r['title']}" for r in rows) or "no specs"
    if problems:
        human += "\n(there are spec problems: run `vt-agent specs check`)"
    _emit(args, {"specs": rows, "problems": problems}, human)
    return 0


def _agent_options(args, root: Path) -> dict:
    opts: dict = {}
    backend = args.agent.split(":", 1)[0]
    if backend == "replay":
        opts["root"] = str(root)
    if getattr(args, "base_url", None):
        opts["base_url"] = args.base_url
    if getattr(args, "api", None):
        opts["api"] = args.api
    if getattr(args, "cmd", None):
        opts["cmd"] = args.cmd
    if getattr(args, "script", None):
        opts["script"] = args.script
    if getattr(args, "agent_timeout", None):
        opts["timeout_s"] = args.agent_timeout
    return opts


def cmd_run(args) -> int:
    from harness.specs import find_spec

    root = repo_root()
    runner = Runner(root)
    if args.resume:
        from harness.runlog import RunLog

        summary = RunLog.open_existing(runner.log_root, args.resume).summary
        spec = find_spec(root, summary["spec_id"])
        args.agent = args.agent or (summary.get("agent", "replay") + (f":{summary['model']}" if summary.get("model") else ""))
    else:
        if not args.spec:
            raise HarnessError("vt-agent run: give a SPEC (id, id prefix or path) or --resume RUN_ID")
        spec = find_spec(root, args.spec)
    args.agent = args.agent or "replay"
    if args.agent == "replay" and not args.resume:
        return _outcome(args, replay_spec(runner, spec, progress=not args.json, strict_gates=args.strict_gates,
                                           selection=args.recordings),
                        f"replay {spec.id}")
    opts = RunOptions(agent=args.agent, agent_options=_agent_options(args, root), candidates=args.candidates,
                      max_attempts=args.max_attempts, budget_usd=args.budget_usd, nop_check=not args.no_nop_check,
                      allow_nop=args.allow_nop, progress=not args.json)
    return _outcome(args, runner.run(spec, opts, resume_id=args.resume), f"run {spec.id}")


def cmd_submit(args) -> int:
    from harness.specs import find_spec

    root = repo_root()
    spec = find_spec(root, args.spec)
    opts = RunOptions(agent="external", message=args.message, nop_check=not args.no_nop_check,
                      allow_nop=args.allow_nop, progress=not args.json)
    return _outcome(args, Runner(root).submit(spec, opts), f"submit {spec.id}")


def _gate_list(names: str | None) -> list[GateConfig]:
    from validators import sort_gate_names

    return [GateConfig(n) for n in sort_gate_names([n.strip() for n in names.split(",") if n.strip()])]


def cmd_validate(args) -> int:
    from harness.specs import find_spec

    root = repo_root()
    spec = find_spec(root, args.spec) if args.spec else None
    gates = _gate_list(args.gates) if args.gates else (spec.gates if spec else _gate_list("build,ctest,pytest"))
    return _outcome(args, Runner(root).validate(spec, gates, progress=not args.json), "validate")


def cmd_reproduce(args) -> int:
    from harness.ledger import Ledger, check_against_tree

    root = repo_root()
    ledger = Ledger(root)
    t0 = time.monotonic()
    if args.from_specs:
        return _reproduce_from_specs(args, root)
    if args.check:
        ok, msg = check_against_tree(root)
        n = len(ledger.entries())
        dt = time.monotonic() - t0
        payload = {"ok": ok, "message": msg, "entries": n, "seconds": round(dt, 3),
                   "seconds_per_entry": round(dt / n, 4) if n else None}
        _emit(args, payload, f"{'ok' if ok else 'MISMATCH'}: {msg} ({dt:.2f} s)")
        return EXIT_ACCEPTED if ok else EXIT_MISMATCH
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="vt-reproduce-"))
    if out.exists() and any(p.name != ".git" for p in out.iterdir()):
        raise HarnessError(f"{out} is not empty; reproduce writes into a fresh folder")
    results = []

    def on_entry(entry, dest: Path) -> None:
        row = {"seq": entry.seq, "spec_id": entry.spec_id, "tree": entry.result_tree, "tree_ok": True}
        if args.gates:
            row["gates"] = _gate_replayed(root, entry, dest, args)
            row["gates_ok"] = all(g["status"] == "pass" for g in row["gates"])
        results.append(row)
        if not args.json:
            extra = "" if not args.gates else ("  gates " + ("ok" if row["gates_ok"] else "FAILED"))
            print(f"  entry {entry.seq:4d} {entry.spec_id:<28} tree {entry.result_tree[:12]} ok{extra}", flush=True)

    final = ledger.replay(out, on_entry=on_entry)
    ok = all(r.get("gates_ok", True) for r in results)
    _emit(args, {"ok": ok, "out": str(out), "final_tree": final, "entries": results},
          f"{'reproduced' if ok else 'reproduced, but gates FAILED'}: {len(results)} entries into {out} "
          f"(tree {final})")
    return EXIT_ACCEPTED if ok else EXIT_MISMATCH


def _gate_replayed(root: Path, entry, dest: Path, args) -> list[dict]:
    """Re-run an entry's gates on the replayed state in dest (validators and protected tests from root)."""
    from harness.specs import find_spec

    runner = Runner(root)
    spec = find_spec(root, entry.spec_id)
    return runner.validate(spec, spec.gates, progress=False, source=dest).details


def _reproduce_from_specs(args, root: Path) -> int:
    import subprocess

    from harness.specs import load_specs

    if not args.agent:
        raise HarnessError("reproduce --from-specs needs --agent BACKEND[:MODEL] (e.g. replay, openai:gpt-4.1)")
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="vt-from-specs-"))
    if out.exists() and any(out.iterdir()):
        raise HarnessError(f"{out} is not empty; --from-specs writes a new tree")
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(out)], check=True)
    (out / ".gitignore").write_text(".vt/\nlogs/runs/*/gates/\n__pycache__/\n")
    gitops.git(out, "add", ".gitignore")
    gitops.git(out, "commit", "-q", "-m", "vt-agent reproduce --from-specs: empty state")
    runner = Runner(root, state_root=out)
    rows = []
    code = EXIT_ACCEPTED
    for spec in load_specs(root):
        opts = RunOptions(agent=args.agent, agent_options=_agent_options(args, root), nop_check=False,
                          progress=not args.json, max_attempts=args.max_attempts)
        o = runner.run(spec, opts)
        rows.append({"spec_id": spec.id, **o.to_dict()})
        if not args.json:
            print(f"  {spec.id:<28} {o.status}: {o.reason}", flush=True)
        if o.status != "accepted":
            code = o.exit_code
            break
    final = gitops.runtime_tree_hash(out)
    same = final == gitops.runtime_tree_hash(root)
    _emit(args, {"out": str(out), "specs": rows, "final_tree": final, "equals_current": same},
          f"regenerated into {out}: tree {final} ({'equals' if same else 'differs from'} generated_runtime/)")
    return code


def cmd_dashboard(args) -> int:
    from harness.dashboard import build_site

    root = repo_root()
    out = Path(args.out) if args.out else root / ".vt" / "dashboard"
    index = build_site(root, out)
    _emit(args, {"index": str(index)}, f"dashboard written: {index}")
    return 0


def cmd_serve(args) -> int:
    from harness.dashboard import serve

    print(f"serving the dashboard on http://127.0.0.1:{args.port}/ (Ctrl-C to stop)", file=sys.stderr)
    serve(repo_root(), args.port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vt-agent", description="Run specs through coding agents; gate every diff; "
                                                             "keep a reproducible ledger.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp):
        sp.add_argument("--json", action="store_true", help="print one machine-readable JSON object")
        return sp

    s = common(sub.add_parser("specs", help="list specs in dependency order with their state; `specs check`"))
    s.add_argument("action", nargs="?", choices=["list", "check"], default="list")
    s.set_defaults(func=cmd_specs)

    r = common(sub.add_parser("run", help="run a spec through an agent and gate its proposals"))
    r.add_argument("spec", nargs="?")
    r.add_argument("--agent", help="BACKEND[:MODEL]: openai, anthropic, command, scripted, replay (default)")
    r.add_argument("--candidates", type=int, default=1, help="parallel candidates per attempt")
    r.add_argument("--max-attempts", type=int)
    r.add_argument("--budget-usd", type=float)
    r.add_argument("--base-url", help="OpenAI-compatible server (vLLM, llama.cpp, Ollama)")
    r.add_argument("--api", choices=["chat", "responses"], help="openai: Chat Completions or Responses")
    r.add_argument("--cmd", help="command agent: the CLI to run in the worktree ({prompt_file} is substituted)")
    r.add_argument("--script", help="scripted agent: a YAML/JSON list of answers and faults (tests, demos)")
    r.add_argument("--agent-timeout", type=float, help="seconds per agent call")
    r.add_argument("--resume", metavar="RUN_ID")
    r.add_argument("--no-nop-check", action="store_true", help="skip gating the unchanged tree first")
    r.add_argument("--allow-nop", action="store_true", help="accept a spec whose gates pass on the unchanged tree")
    r.add_argument("--strict-gates", action="store_true",
                   help="replay: a recorded failure that now fails at another gate is a mismatch (exit 5)")
    r.add_argument("--recordings", metavar="SELECTION",
                   help="replay: which recorded proposals to re-gate (default all); " + SELECTION_HELP)
    r.set_defaults(func=cmd_run)

    sm = common(sub.add_parser("submit", help="gate the change made in generated_runtime/ and record it"))
    sm.add_argument("spec")
    sm.add_argument("-m", "--message", required=True)
    sm.add_argument("--no-nop-check", action="store_true")
    sm.add_argument("--allow-nop", action="store_true")
    sm.set_defaults(func=cmd_submit)

    v = common(sub.add_parser("validate", help="run gates on the current tree, no agent"))
    v.add_argument("spec", nargs="?")
    v.add_argument("--gates", help="comma-separated gate names (default: the spec's)")
    v.set_defaults(func=cmd_validate)

    rp = common(sub.add_parser("reproduce", help="replay the ledger into a fresh folder, checking tree hashes"))
    rp.add_argument("--check", action="store_true", help="fast: compare the replay with generated_runtime/")
    rp.add_argument("--gates", action="store_true", help="re-run each entry's gates on its replayed state")
    rp.add_argument("--from-specs", action="store_true", help="regenerate from the specs with --agent")
    rp.add_argument("--agent")
    rp.add_argument("--max-attempts", type=int)
    rp.add_argument("--base-url")
    rp.add_argument("--out")
    rp.set_defaults(func=cmd_reproduce)

    d = common(sub.add_parser("dashboard", help="build the static validation dashboard"))
    d.add_argument("--out")
    d.set_defaults(func=cmd_dashboard)
    sv = sub.add_parser("serve", help="serve the dashboard on 127.0.0.1, live")
    sv.add_argument("--port", type=int, default=8765)
    sv.set_defaults(func=cmd_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except HarnessError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"status": "error", "reason": str(exc), "exit_code": EXIT_ERROR}))
        print(f"vt-agent: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
