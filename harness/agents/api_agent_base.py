"""The shared skeleton of the HTTP API agents (openai, anthropic): one ``propose`` = one model answer.

Policy: before every try (retries included) the shared budget is checked, with the prompt's estimated size
(characters / 4) as the projected tokens; after the answer, its usage is charged whatever the answer contains
(a failed-to-parse answer costs the same). Retries follow ``harness.agents.retry`` only (SDK retries are off).
The answer text becomes a Proposal through ``proposal_from_text``. Cost is None when the price is unknown.
Subclasses implement ``_call(request, timeout_s) -> ApiAnswer`` and ``_classify(exc)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.agents.budget import RunBudget
from harness.agents.pricing import cost
from harness.agents.proposal_text import proposal_from_text
from harness.agents.retry import Failure, RetryPolicy, call_with_retries
from harness.interfaces import AgentRequest, AgentResponse, HarnessError, Usage

PLACEHOLDER_API_KEY = "sk-no-key-local-server"  # local OpenAI/Anthropic-compatible servers ignore the key


@dataclass
class ApiAnswer:
    text: str
    input_tokens: int
    output_tokens: int
    response_model: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def estimate_prompt_tokens(request: AgentRequest) -> int:
    chars = len(request.system) + sum(len(m.get("content", "")) for m in request.messages)
    return chars // 4


class ApiAgentBase:
    name = "api"
    default_model = ""

    def __init__(self, model: str | None = None, *, base_url: str | None = None, api_key: str | None = None,
                 timeout_s: float | None = None, max_retries: int = 3, retry: RetryPolicy | None = None,
                 budget: RunBudget | None = None, prices: dict[str, object] | None = None,
                 max_output_tokens: int | None = None, temperature: float | None = None):
        self.model = model or self.default_model
        if not self.model:
            raise HarnessError(f"{self.name} agent: no model given (use '{self.name}:MODEL')")
        if timeout_s is not None and timeout_s <= 0:
            raise HarnessError(f"{self.name} agent: timeout_s must be positive, got {timeout_s}")
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.retry = retry if retry is not None else RetryPolicy(max_retries=max_retries)
        self.budget = budget
        self.prices = prices
        self.max_output_tokens = max_output_tokens
        self.temperature = temperature

    def _resolve_key(self, api_key: str | None, env_name: str, env: dict[str, str]) -> str:
        key = api_key or env.get(env_name)
        if key:
            return key
        if self.base_url:
            return PLACEHOLDER_API_KEY
        raise HarnessError(f"{self.name} agent: {env_name} is not set (or pass base_url for a local server)")

    def _call(self, request: AgentRequest, timeout_s: float) -> ApiAnswer:
        raise NotImplementedError

    def _classify(self, exc: BaseException) -> Failure | None:
        raise NotImplementedError

    def propose(self, request: AgentRequest) -> AgentResponse:
        timeout_s = self.timeout_s if self.timeout_s is not None else request.timeout_s
        projected = estimate_prompt_tokens(request)

        def before_try() -> None:
            if self.budget is not None:
                self.budget.check(projected_tokens=projected)

        answer, retries = call_with_retries(lambda: self._call(request, timeout_s), self.retry, self._classify,
                                            provider=f"{self.name}:{self.model}", before_try=before_try)
        price_model = self.model
        call_cost = cost(price_model, answer.input_tokens, answer.output_tokens, self.prices)
        if call_cost is None and answer.response_model and answer.response_model != self.model:
            call_cost = cost(answer.response_model, answer.input_tokens, answer.output_tokens, self.prices)
        usage = Usage(answer.input_tokens, answer.output_tokens, call_cost, calls=1)
        if self.budget is not None:
            self.budget.charge(usage, model=self.model)
        meta = {"retries": retries, "response_model": answer.response_model, **answer.meta}
        return AgentResponse(text=answer.text, proposal=proposal_from_text(answer.text), usage=usage,
                             model=self.model, meta=meta)
