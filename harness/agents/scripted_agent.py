"""Scripted backend: the deterministic fake model shipped with the harness, for tests and demos.

Policy: the script is a list of steps (a Python list, or a YAML/JSON file holding one). A step is an answer text
(a string, or ``{"text": ..., "input_tokens": N, "output_tokens": N}``) or a fault: ``{"fault": "timeout"}``
raises AgentTimeout, ``{"fault": "error"}`` raises AgentError, ``{"fault": "garbage"}`` answers bytes-like noise
(its proposal is "empty"). A text step may carry ``"delay_s"``: the agent waits that long, or raises AgentTimeout
after its timeout (``timeout_s``, else the request's) when the delay is longer. Steps are served in order; when they run out the agent raises AgentError, or starts
over with ``cycle=True``. Every request is recorded in ``requests`` (a deep copy) so tests can check what the
next prompt was told. Usage: tokens estimated as characters / 4 unless the step gives them; cost is $0 (a script
is free), charged to the budget like any backend, faults included (as a call with no tokens).
"""
from __future__ import annotations

import copy
import json
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from harness.agents.api_agent_base import estimate_prompt_tokens
from harness.agents.budget import RunBudget
from harness.agents.proposal_text import proposal_from_text
from harness.interfaces import AgentError, AgentRequest, AgentResponse, AgentTimeout, HarnessError, Usage

FAULTS = ("timeout", "error", "garbage")
GARBAGE_TEXT = "\x00\x1b[2J}{ <<<< ==== lorem ipsum @@ nonsense ::: \ufffd\ufffd ~~~ \n--- not a diff\n"


def load_script(source: str | Path | list[Any]) -> list[Any]:
    if isinstance(source, list):
        steps = source
    else:
        path = Path(source)
        if not path.is_file():
            raise HarnessError(f"scripted agent: script file {path} not found")
        text = path.read_text()
        try:
            steps = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise HarnessError(f"scripted agent: cannot parse {path}: {exc}") from None
        if not isinstance(steps, list):
            raise HarnessError(f"scripted agent: {path} must hold a list of steps, got {type(steps).__name__}")
    for index, step in enumerate(steps):
        if isinstance(step, str):
            continue
        if not isinstance(step, dict) or not ("text" in step or "fault" in step):
            raise HarnessError(f"scripted agent: step {index} must be a string, {{'text': ...}} or "
                               f"{{'fault': ...}}, got {step!r}")
        for number in ("delay_s", "input_tokens", "output_tokens"):
            if number in step and (isinstance(step[number], bool) or not isinstance(step[number], (int, float))
                                   or step[number] < 0):
                raise HarnessError(f"scripted agent: step {index}: {number} must be a number >= 0, "
                                   f"got {step[number]!r}")
        if "fault" in step and step["fault"] not in FAULTS:
            raise HarnessError(f"scripted agent: step {index}: unknown fault {step['fault']!r} "
                               f"(known: {', '.join(FAULTS)})")
    return list(steps)


class ScriptedAgent:
    name = "scripted"

    def __init__(self, model: str | None = None, *, script: str | Path | list[Any] | None = None,
                 cycle: bool = False, timeout_s: float | None = None, budget: RunBudget | None = None):
        if script is None:
            if model and Path(model).is_file():
                script = model
            else:
                raise HarnessError("scripted agent: no script given (option script=LIST|FILE or 'scripted:FILE')")
        self.model = model or "scripted"
        self.steps = load_script(script)
        if not self.steps:
            raise HarnessError("scripted agent: the script is empty")
        self.cycle = cycle
        self.timeout_s = timeout_s
        self.budget = budget
        self.requests: list[AgentRequest] = []
        self._position = 0
        self._lock = threading.Lock()

    def _next_step(self) -> tuple[int, Any]:
        with self._lock:
            if self._position >= len(self.steps):
                if not self.cycle:
                    raise AgentError(f"scripted agent: script exhausted after {len(self.steps)} steps")
                self._position = 0
            index = self._position
            self._position += 1
            return index, self.steps[index]

    def propose(self, request: AgentRequest) -> AgentResponse:
        if self.budget is not None:
            self.budget.check(projected_tokens=estimate_prompt_tokens(request))
        with self._lock:
            self.requests.append(copy.deepcopy(request))
        index, step = self._next_step()
        fault = step.get("fault") if isinstance(step, dict) else None
        if fault in ("timeout", "error"):
            if self.budget is not None:
                self.budget.charge(Usage(calls=1), model=self.model)
            error = AgentTimeout if fault == "timeout" else AgentError
            raise error(f"scripted agent: injected {fault} at step {index}")
        delay_s = float(step.get("delay_s", 0)) if isinstance(step, dict) else 0.0
        timeout_s = self.timeout_s if self.timeout_s is not None else request.timeout_s
        if delay_s > timeout_s:
            time.sleep(timeout_s)
            if self.budget is not None:
                self.budget.charge(Usage(calls=1), model=self.model)
            raise AgentTimeout(f"scripted agent: step {index} takes {delay_s:g} s, past the {timeout_s:g} s timeout")
        time.sleep(delay_s)
        text = GARBAGE_TEXT if fault == "garbage" else (step if isinstance(step, str) else str(step["text"]))
        given = step if isinstance(step, dict) else {}
        usage = Usage(int(given.get("input_tokens", estimate_prompt_tokens(request))),
                      int(given.get("output_tokens", len(text) // 4)), cost_usd=0.0, calls=1)
        if self.budget is not None:
            self.budget.charge(usage, model=self.model)
        return AgentResponse(text=text, proposal=proposal_from_text(text), usage=usage, model=self.model,
                             meta={"step": index, "fault": fault})
