"""Command backend: runs a black-box coding-agent CLI inside the candidate worktree; its proposal is what it changed.

Policy:
- The CLI is a shell command string run by ``/bin/sh -c`` with cwd = ``request.worktree``. The rendered prompt is
  written to a file outside the worktree (never part of the diff), named by ``$VT_PROMPT_FILE`` and by
  ``{prompt_file}`` in the command (shell-quoted), and also fed on stdin.
- Environment: ``harness.secrets.scrubbed_env`` (no keys or tokens) plus ``VT_PROMPT_FILE``; a CLI that needs its
  own key gets it only through the explicit allow-list ``pass_env=["MY_KEY"]`` (copied from our environment).
- Own process group (``start_new_session``); on timeout the whole group gets SIGTERM, then SIGKILL after
  ``kill_grace_s``, and ``AgentTimeout`` is raised. After a normal exit, stray children left in the group are killed.
- Proposal (kind "worktree"): ``git add -A`` + ``git diff --cached --binary`` against the HEAD recorded before the CLI
  ran (a CLI that commits does not hide its change), built in a temporary index (GIT_INDEX_FILE) so the worktree's
  own index is untouched. A non-zero exit is an AgentError naming the exit code and the output's tail.
- Usage: one call, zero tokens, cost None, unless the CLI prints a JSON line ``{"vt_usage": {"input_tokens": N,
  "output_tokens": N, "cost_usd": X}}`` (the last one wins).
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from harness.agents.budget import RunBudget
from harness.interfaces import AgentError, AgentRequest, AgentResponse, AgentTimeout, HarnessError, Proposal, Usage
from harness.secrets import redact, scrubbed_env

OUTPUT_TAIL_CHARS = 4000


def render_prompt(request: AgentRequest) -> str:
    parts = [f"# System\n\n{request.system}"]
    parts += [f"# {m['role'].capitalize()}\n\n{m['content']}" for m in request.messages]
    return "\n\n".join(parts) + "\n"


def parse_vt_usage(output: str) -> Usage:
    usage = Usage(calls=1)
    for line in output.splitlines():
        line = line.strip()
        if not (line.startswith("{") and "vt_usage" in line):
            continue
        try:
            reported = json.loads(line)["vt_usage"]
            cost = reported.get("cost_usd")
            usage = Usage(int(reported.get("input_tokens", 0)), int(reported.get("output_tokens", 0)),
                          None if cost is None else float(cost), calls=1)
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # a malformed usage line is ignored, not fatal
    return usage


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class CommandAgent:
    name = "command"

    def __init__(self, model: str | None = None, *, cmd: str | None = None, pass_env: Sequence[str] = (),
                 timeout_s: float | None = None, budget: RunBudget | None = None, kill_grace_s: float = 2.0):
        self.cmd = cmd or model
        if not self.cmd:
            raise HarnessError("command agent: no command given (use 'command:CLI' or the cmd option)")
        self.model = model or self.cmd.split()[0]
        self.pass_env = list(pass_env)
        self.timeout_s = timeout_s
        self.budget = budget
        self.kill_grace_s = kill_grace_s

    def _git(self, worktree: Path, args: list[str], env: dict[str, str]) -> str:
        result = subprocess.run(["git", *args], cwd=worktree, env=env, capture_output=True, timeout=300)
        if result.returncode != 0:
            raise AgentError(f"command agent: git {' '.join(args)} failed in {worktree}: "
                             f"{result.stderr.decode(errors='replace').strip()}")
        return result.stdout.decode("utf-8", errors="surrogateescape")

    def _environment(self, prompt_file: Path) -> dict[str, str]:
        env = scrubbed_env()
        for name in self.pass_env:
            if name in os.environ:
                env[name] = os.environ[name]
        env["VT_PROMPT_FILE"] = str(prompt_file)
        return env

    def propose(self, request: AgentRequest) -> AgentResponse:
        worktree = Path(request.worktree)
        if not worktree.is_dir():
            raise HarnessError(f"command agent: worktree {worktree} does not exist")
        if self.budget is not None:
            self.budget.check()
        timeout_s = self.timeout_s if self.timeout_s is not None else request.timeout_s
        git_env = scrubbed_env()
        base_commit = self._git(worktree, ["rev-parse", "HEAD"], git_env).strip()
        prompt = render_prompt(request)
        with tempfile.TemporaryDirectory(prefix="vt-command-agent-") as scratch:
            prompt_file = Path(scratch) / "prompt.md"
            prompt_file.write_text(prompt)
            command = self.cmd.replace("{prompt_file}", shlex.quote(str(prompt_file)))
            started = time.monotonic()
            process = subprocess.Popen(["/bin/sh", "-c", command], cwd=worktree, env=self._environment(prompt_file),
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       start_new_session=True)
            try:
                stdout, stderr = process.communicate(prompt.encode(), timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(process.pid, signal.SIGTERM)
                try:
                    process.communicate(timeout=self.kill_grace_s)
                except subprocess.TimeoutExpired:
                    _kill_group(process.pid, signal.SIGKILL)
                    try:
                        process.communicate(timeout=self.kill_grace_s)
                    except subprocess.TimeoutExpired:  # a child that left the group still holds the pipes
                        process.kill()
                if self.budget is not None:
                    self.budget.charge(Usage(calls=1), model=self.model)
                raise AgentTimeout(f"command agent: {self.model!r} did not finish within {timeout_s:g} s "
                                   "(process group killed)") from None
            finally:
                _kill_group(process.pid, signal.SIGKILL)  # stray children left in the group
            wall_s = time.monotonic() - started
            out = stdout.decode("utf-8", errors="replace")
            err = stderr.decode("utf-8", errors="replace")
            usage = parse_vt_usage(out)
            if self.budget is not None:
                self.budget.charge(usage, model=self.model)
            if process.returncode != 0:
                tail = redact((out + err)[-OUTPUT_TAIL_CHARS:])
                raise AgentError(f"command agent: {self.model!r} exited with code {process.returncode}:\n{tail}")
            diff = self._worktree_diff(worktree, base_commit, Path(scratch) / "index")
        meta: dict[str, Any] = {"exit_code": process.returncode, "wall_s": round(wall_s, 3),
                                "stderr_tail": redact(err[-OUTPUT_TAIL_CHARS:]), "base_commit": base_commit}
        return AgentResponse(text=redact(out), proposal=Proposal(kind="worktree", text=diff), usage=usage,
                             model=self.model, meta=meta)

    def _worktree_diff(self, worktree: Path, base_commit: str, index_file: Path) -> str:
        env = {**scrubbed_env(), "GIT_INDEX_FILE": str(index_file)}
        self._git(worktree, ["read-tree", base_commit], env)
        self._git(worktree, ["add", "-A"], env)
        return self._git(worktree, ["-c", "core.quotepath=off", "diff", "--cached", "--binary", "--no-color",
                                    "--no-ext-diff", "--no-textconv", base_commit], env)
