"""Anthropic backend: the official ``anthropic`` SDK, Messages API.

Policy: as the OpenAI backend (``harness.agents.api_agent_base``): key from ``api_key`` or ANTHROPIC_API_KEY
(placeholder with a base_url and no key), SDK retries off, our retry policy and budget only. ``max_tokens`` is
required by the API: ``max_output_tokens`` (default 16000). The answer is the text blocks joined.
"""
from __future__ import annotations

import os
from typing import Any

import anthropic

from harness.agents.api_agent_base import ApiAgentBase, ApiAnswer
from harness.agents.retry import Failure, classify_sdk_error
from harness.interfaces import AgentRequest

DEFAULT_MAX_OUTPUT_TOKENS = 16000


class AnthropicAgent(ApiAgentBase):
    name = "anthropic"
    default_model = "claude-sonnet-4-5"

    def __init__(self, model: str | None = None, **options: Any):
        api_key = options.pop("api_key", None)
        super().__init__(model, **options)
        if self.max_output_tokens is None:
            self.max_output_tokens = DEFAULT_MAX_OUTPUT_TOKENS
        self.client = anthropic.Anthropic(api_key=self._resolve_key(api_key, "ANTHROPIC_API_KEY", dict(os.environ)),
                                          base_url=self.base_url, max_retries=0)

    def _classify(self, exc: BaseException) -> Failure | None:
        return classify_sdk_error(exc, anthropic)

    def _call(self, request: AgentRequest, timeout_s: float) -> ApiAnswer:
        extra: dict[str, Any] = {}
        if self.temperature is not None:
            extra["temperature"] = self.temperature
        message = self.client.messages.create(
            model=self.model, system=request.system, max_tokens=self.max_output_tokens, timeout=timeout_s,
            messages=[{"role": m["role"], "content": m["content"]} for m in request.messages], **extra)
        text = "".join(block.text for block in message.content if getattr(block, "type", "") == "text")
        return ApiAnswer(text, message.usage.input_tokens, message.usage.output_tokens, message.model or "",
                         {"api": "messages", "stop_reason": message.stop_reason})
