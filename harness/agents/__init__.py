"""Agent backends, by short name. The registry is explicit; a backend's module is imported only when used, so the
SDKs of backends you do not use are never loaded.

``make_agent("BACKEND[:MODEL]", **options)``: e.g. ``openai:gpt-4.1``, ``anthropic:claude-sonnet-4-5``,
``command:my-cli``, ``scripted:script.yaml``, ``replay``. Every backend class is constructed as
``Class(model=MODEL, **options)`` (``model`` left out when the spec has none) and must satisfy
``harness.interfaces.Agent``. Options set to None are dropped (a caller may pass one option set to every
backend); any other option the backend does not take is a HarnessError.
Common options: base_url, api ("chat" | "responses", openai), timeout_s, max_retries, budget (RunBudget),
prices, cmd and pass_env (command), script and cycle (scripted).
"""
from __future__ import annotations

import importlib
from typing import Any

from harness.interfaces import Agent, HarnessError

BACKENDS: dict[str, str] = {
    "openai": "harness.agents.openai_agent:OpenAIAgent",
    "anthropic": "harness.agents.anthropic_agent:AnthropicAgent",
    "command": "harness.agents.command_agent:CommandAgent",
    "scripted": "harness.agents.scripted_agent:ScriptedAgent",
    "replay": "harness.agents.replay_agent:ReplayAgent",
    "external": "harness.agents.external_agent:ExternalAgent",
}


def backend_class(backend: str) -> type:
    if backend not in BACKENDS:
        raise HarnessError(f"unknown agent backend {backend!r}; known: {', '.join(sorted(BACKENDS))}")
    module_name, _, class_name = BACKENDS[backend].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise HarnessError(f"agent backend {backend!r} cannot be loaded: {exc}") from None
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise HarnessError(f"agent backend {backend!r}: {module_name} has no class {class_name}") from None


def parse_agent_spec(spec: str) -> tuple[str, str | None]:
    backend, _, model = spec.strip().partition(":")
    if not backend:
        raise HarnessError(f"bad agent spec {spec!r}: expected BACKEND[:MODEL], e.g. openai:gpt-4.1")
    return backend, (model or None)


def make_agent(spec: str, **options: Any) -> Agent:
    backend, model = parse_agent_spec(spec)
    cls = backend_class(backend)
    kwargs = {name: value for name, value in options.items() if value is not None}  # None: "not set"
    if model is not None:
        kwargs["model"] = model
    try:
        return cls(**kwargs)
    except TypeError as exc:
        if "argument" not in str(exc):  # a bug inside the backend, not a bad option
            raise
        raise HarnessError(f"agent backend {backend!r} does not accept these options: {exc}") from None
