"""OpenAI backend: the official ``openai`` SDK, Chat Completions (default) or the Responses API.

Policy: ``base_url`` reaches any OpenAI-compatible server (vLLM, llama.cpp, Ollama); with a base_url and no key a
placeholder key is sent. The key comes from ``api_key`` or OPENAI_API_KEY and is never put in a prompt or a log.
SDK retries are off (``max_retries=0``): ``harness.agents.retry`` is the only policy. The system prompt goes in the
"system" message (chat) or ``instructions`` (responses).
"""
from __future__ import annotations

import os
from typing import Any

import openai

from harness.agents.api_agent_base import ApiAgentBase, ApiAnswer
from harness.agents.retry import Failure, classify_sdk_error
from harness.interfaces import AgentRequest, HarnessError

APIS = ("chat", "responses")


class OpenAIAgent(ApiAgentBase):
    name = "openai"
    default_model = "gpt-4.1"

    def __init__(self, model: str | None = None, *, api: str = "chat", **options: Any):
        api_key = options.pop("api_key", None)
        super().__init__(model, **options)
        if api not in APIS:
            raise HarnessError(f"openai agent: api must be one of {', '.join(APIS)}, got {api!r}")
        self.api = api
        self.client = openai.OpenAI(api_key=self._resolve_key(api_key, "OPENAI_API_KEY", dict(os.environ)),
                                    base_url=self.base_url, max_retries=0)

    def _classify(self, exc: BaseException) -> Failure | None:
        return classify_sdk_error(exc, openai)

    def _call(self, request: AgentRequest, timeout_s: float) -> ApiAnswer:
        extra: dict[str, Any] = {}
        if self.temperature is not None:
            extra["temperature"] = self.temperature
        if self.api == "responses":
            if self.max_output_tokens is not None:
                extra["max_output_tokens"] = self.max_output_tokens
            response = self.client.responses.create(
                model=self.model, instructions=request.system, timeout=timeout_s, **extra,
                input=[{"role": m["role"], "content": m["content"]} for m in request.messages])
            usage = response.usage
            return ApiAnswer(response.output_text or "", usage.input_tokens if usage else 0,
                             usage.output_tokens if usage else 0, response.model or "",
                             {"api": "responses", "status": response.status})
        if self.max_output_tokens is not None:
            extra["max_completion_tokens"] = self.max_output_tokens
        messages = [{"role": "system", "content": request.system}] + [
            {"role": m["role"], "content": m["content"]} for m in request.messages]
        completion = self.client.chat.completions.create(model=self.model, messages=messages, timeout=timeout_s,
                                                         **extra)
        choice = completion.choices[0] if completion.choices else None
        usage = completion.usage
        finish_reason = choice.finish_reason if choice else None
        return ApiAnswer((choice.message.content if choice else None) or "",
                         usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0,
                         completion.model or "", {"api": "chat", "finish_reason": finish_reason})
