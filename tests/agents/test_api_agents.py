"""The real openai and anthropic SDKs against the fake provider over HTTP: proposals, usage and cost, retries,
timeouts, budgets, and that the key travels in a header and never in the prompt."""
from __future__ import annotations

import json
import time

import pytest

from harness.agents import make_agent
from harness.agents.anthropic_agent import AnthropicAgent
from harness.agents.budget import RunBudget
from harness.agents.openai_agent import OpenAIAgent
from harness.agents.pricing import cost
from harness.agents.retry import RetryPolicy
from harness.interfaces import AgentError, AgentTimeout, BudgetExceeded, HarnessError
from tests.agents.conftest import make_request
from tests.fakes.fake_llm_server import (EDITS_ANSWER, GOOD_DIFF_ANSWER, MALFORMED_DIFF_ANSWER, FakeLLMServer,
                                         Reply)

SECRET = "sk-test-SECRET-value-0123456789"
BACKENDS = ["openai-chat", "openai-responses", "anthropic"]
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")
PATHS = {"openai-chat": "/v1/chat/completions", "openai-responses": "/v1/responses", "anthropic": "/v1/messages"}


def fast_retry(max_retries: int = 2, sleeps: list[float] | None = None, max_delay_s: float = 0.2) -> RetryPolicy:
    return RetryPolicy(max_retries=max_retries, base_delay_s=0.01, max_delay_s=max_delay_s,
                       sleep=(sleeps.append if sleeps is not None else time.sleep))


def build(backend: str, server: FakeLLMServer, model: str | None = None, **options):
    if backend == "anthropic":
        return AnthropicAgent(model or "claude-sonnet-4-5", base_url=server.url, api_key=SECRET, **options)
    api = backend.split("-")[1]
    return OpenAIAgent(model or "gpt-4.1", base_url=server.openai_base_url, api=api, api_key=SECRET, **options)


@pytest.mark.parametrize("backend", BACKENDS)
def test_good_diff_usage_cost_and_headers(backend):
    with FakeLLMServer([Reply.answer(GOOD_DIFF_ANSWER, input_tokens=1200, output_tokens=300)]) as server:
        agent = build(backend, server, retry=fast_retry())
        response = agent.propose(make_request(ask="Add bye(). Feedback: gate build failed."))
    assert response.proposal.kind == "diff"
    assert response.proposal.text.startswith("--- a/generated_runtime/hello.py\n+++ b/generated_runtime/hello.py\n")
    assert "+def bye():" in response.proposal.text
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.calls) == (1200, 300, 1)
    assert response.usage.cost_usd == pytest.approx(cost(agent.model, 1200, 300))
    assert response.usage.cost_usd > 0
    (recorded,) = server.requests
    assert recorded.path == PATHS[backend]
    auth = recorded.headers.get("authorization", "") + recorded.headers.get("x-api-key", "")
    assert SECRET in auth
    body = json.dumps(recorded.body)
    assert SECRET not in body
    assert "Feedback: gate build failed." in body and "You are a careful engineer." in body


@pytest.mark.parametrize("backend", BACKENDS)
def test_malformed_diff_and_edits_are_classified(backend):
    with FakeLLMServer([Reply.answer(MALFORMED_DIFF_ANSWER), Reply.answer(EDITS_ANSWER)]) as server:
        agent = build(backend, server, retry=fast_retry())
        malformed = agent.propose(make_request())
        edits = agent.propose(make_request())
    assert malformed.proposal.kind == "diff"
    assert "this line has lost its prefix" not in malformed.proposal.text  # prose ends the diff...
    assert "@@ -1,9 +1,2 @@\n def hello():\n" in malformed.proposal.text  # ...the broken hunk reaches the applier
    assert edits.proposal.kind == "edits"
    assert "```python\nimport vibetensor.torch as vt\n```\n>>>>>>> REPLACE\n" in edits.proposal.text
    assert edits.proposal.text.startswith("generated_runtime/README.md\n<<<<<<< SEARCH\n")


@pytest.mark.parametrize("backend", BACKENDS)
def test_rate_limit_then_success_honours_retry_after_within_cap(backend):
    sleeps: list[float] = []
    replies = [Reply.error(429, "slow down", retry_after="0.05"), Reply.error(429, "slow down", retry_after="30"),
               Reply.answer(GOOD_DIFF_ANSWER)]
    with FakeLLMServer(replies) as server:
        agent = build(backend, server, retry=fast_retry(max_retries=3, sleeps=sleeps, max_delay_s=0.2))
        response = agent.propose(make_request())
    assert response.proposal.kind == "diff"
    assert response.meta["retries"] == 2 and len(server.requests) == 3
    assert sleeps[0] >= 0.05  # Retry-After honoured over the 0.01 s backoff
    assert sleeps[1] == pytest.approx(0.2)  # ... but never past max_delay_s


@pytest.mark.parametrize("backend", BACKENDS)
def test_server_errors_exhaust_retries_into_agent_error(backend):
    with FakeLLMServer([Reply.error(500, "boom")] * 3) as server:
        agent = build(backend, server, retry=fast_retry(max_retries=2))
        with pytest.raises(AgentError, match=r"gave up after 3 tries: HTTP 500") as info:
            agent.propose(make_request())
    assert not isinstance(info.value, AgentTimeout)
    assert len(server.requests) == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_credentials_fail_at_once(backend):
    with FakeLLMServer([Reply.error(401, "invalid key"), Reply.answer(GOOD_DIFF_ANSWER)]) as server:
        agent = build(backend, server, retry=fast_retry(max_retries=3))
        with pytest.raises(AgentError, match="gave up after 1 try: HTTP 401"):
            agent.propose(make_request())
    assert len(server.requests) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_slow_answer_times_out_after_retries(backend):
    with FakeLLMServer([Reply.slow(3.0), Reply.slow(3.0)]) as server:
        agent = build(backend, server, retry=fast_retry(max_retries=1), timeout_s=0.3)
        started = time.monotonic()
        with pytest.raises(AgentTimeout, match="gave up after 2 tries: request timed out"):
            agent.propose(make_request())
        elapsed = time.monotonic() - started
    assert len(server.requests) == 2
    assert elapsed < 2.5  # two 0.3 s timeouts and a short backoff, not the server's 3 s


@pytest.mark.parametrize("backend", BACKENDS)
def test_budget_refuses_the_call_that_would_exceed(backend):
    budget = RunBudget(max_tokens=1000)
    with FakeLLMServer([Reply.answer("no diff here, sorry", input_tokens=700, output_tokens=200),
                        Reply.answer(GOOD_DIFF_ANSWER)]) as server:
        agent = build(backend, server, retry=fast_retry(), budget=budget)
        first = agent.propose(make_request())
        assert first.proposal.kind == "empty"  # an unparseable answer still costs
        assert budget.spent.input_tokens + budget.spent.output_tokens == 900
        with pytest.raises(BudgetExceeded, match="token budget"):
            agent.propose(make_request(ask="x" * 800))  # ~200 prompt tokens: 900 + 200 > 1000
    assert len(server.requests) == 1  # the refused call never reached the provider


@pytest.mark.parametrize("backend", BACKENDS)
def test_unknown_price_is_none_and_flagged_once(backend):
    budget = RunBudget(max_cost_usd=1.0)
    with FakeLLMServer([Reply.answer(GOOD_DIFF_ANSWER)] * 2) as server:
        agent = build(backend, server, model="local-model-7b", retry=fast_retry(), budget=budget)
        responses = [agent.propose(make_request()) for _ in range(2)]
    assert [r.usage.cost_usd for r in responses] == [None, None]
    assert budget.cost_unknown and len(budget.warnings) == 1 and "local-model-7b" in budget.warnings[0]
    assert budget.snapshot().cost_usd is None and budget.snapshot().calls == 2


def test_make_agent_builds_openai_for_a_local_server_without_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeLLMServer([Reply.answer(EDITS_ANSWER)]) as server:
        agent = make_agent("openai:qwen2.5-coder", base_url=server.openai_base_url, api="chat", timeout_s=5,
                           max_retries=0)
        response = agent.propose(make_request())
    assert agent.name == "openai" and agent.model == "qwen2.5-coder"
    assert response.proposal.kind == "edits"
    assert server.requests[0].headers["authorization"].startswith("Bearer ")


def test_key_from_environment_and_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    with FakeLLMServer([Reply.answer(GOOD_DIFF_ANSWER)]) as server:
        AnthropicAgent(base_url=server.url).propose(make_request())
    headers = server.requests[0].headers
    assert SECRET in headers.get("authorization", "") + headers.get("x-api-key", "")
    assert SECRET not in json.dumps(server.requests[0].body)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(HarnessError, match="OPENAI_API_KEY is not set"):
        OpenAIAgent("gpt-4.1")
    with pytest.raises(HarnessError, match="api must be one of"):
        OpenAIAgent("gpt-4.1", api="completions", api_key="x")
