"""Prices (table, overrides, unknown = None), the thread-safe run budget, and the retry delays."""
from __future__ import annotations

import threading

import pytest

from harness.agents.budget import RunBudget
from harness.agents.pricing import PRICE_TABLE, cost, env_var_name
from harness.agents.retry import RetryPolicy, parse_retry_after
from harness.interfaces import BudgetExceeded, HarnessError, Usage


def test_cost_from_table_dated_ids_and_unknown_models():
    price_in, price_out = PRICE_TABLE["gpt-4.1"]
    assert cost("gpt-4.1", 1_000_000, 500_000) == pytest.approx(price_in + price_out / 2)
    assert cost("gpt-4.1-2025-04-14", 1000, 0) == cost("gpt-4.1", 1000, 0)
    assert cost("claude-sonnet-4-5-20250929", 0, 1000) == cost("claude-sonnet-4-5", 0, 1000)
    assert cost("gpt-4.1-mini", 1000, 0) != cost("gpt-4.1", 1000, 0)
    assert cost("gpt-4.1-turbo-experimental", 1000, 1000) is None  # no loose prefix matching
    assert cost("my-local-llama", 1000, 1000) is None


def test_price_overrides_env_and_options(monkeypatch):
    assert env_var_name("qwen2.5-coder:32b") == "VT_PRICE_QWEN2_5_CODER_32B"
    monkeypatch.setenv("VT_PRICE_QWEN2_5_CODER_32B", "0,0")
    assert cost("qwen2.5-coder:32b", 5000, 5000) == 0.0  # an explicit free price, not "unknown"
    monkeypatch.setenv("VT_PRICE_GPT_4_1", "1, 2")
    assert cost("gpt-4.1", 1_000_000, 1_000_000) == pytest.approx(3.0)
    assert cost("gpt-4.1", 1_000_000, 0, prices={"gpt-4.1": (10, 20)}) == pytest.approx(10.0)
    monkeypatch.setenv("VT_PRICE_BROKEN", "cheap")
    with pytest.raises(HarnessError, match="VT_PRICE_BROKEN"):
        cost("broken", 1, 1)


def test_budget_limits_each_raise_with_reason():
    budget = RunBudget(max_tokens=100, max_cost_usd=0.01, max_calls=3)
    budget.check()
    budget.charge(Usage(40, 20, 0.004, calls=1))
    with pytest.raises(BudgetExceeded, match=r"60 tokens spent \+ about 50"):
        budget.check(projected_tokens=50)
    budget.check(projected_tokens=40)
    budget.charge(Usage(0, 0, 0.007, calls=1))
    with pytest.raises(BudgetExceeded, match="cost budget spent"):
        budget.check()
    wall = RunBudget(max_wall_s=0.0)
    with pytest.raises(BudgetExceeded, match="wall-time budget"):
        wall.check()
    with pytest.raises(HarnessError, match="must not be negative"):
        RunBudget(max_tokens=-1)


def test_unknown_price_warns_once_and_keeps_a_lower_bound():
    budget = RunBudget(max_cost_usd=1.0)
    budget.charge(Usage(10, 10, 0.5, calls=1), model="gpt-4.1")
    budget.charge(Usage(10, 10, None, calls=1), model="mystery")
    budget.charge(Usage(10, 10, None, calls=1), model="mystery")
    assert budget.cost_unknown and len(budget.warnings) == 1
    assert "cost limit cannot be fully enforced" in budget.warnings[0]
    assert budget.spent.cost_usd == pytest.approx(0.5) and budget.snapshot().cost_usd is None
    budget.check()  # does not crash, still under the known part


def test_budget_is_thread_safe():
    budget = RunBudget()

    def work():
        for _ in range(2000):
            budget.charge(Usage(1, 2, 0.001, calls=1))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (budget.spent.input_tokens, budget.spent.output_tokens, budget.spent.calls) == (16000, 32000, 16000)
    assert budget.spent.cost_usd == pytest.approx(16.0)


def test_retry_delays_backoff_jitter_and_retry_after():
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=5.0, jitter=0.25)
    for index, nominal in enumerate([1.0, 2.0, 4.0]):
        for _ in range(50):
            assert 0.75 * nominal <= policy.delay(index, None) <= nominal
    assert policy.delay(10, None) == 5.0
    assert policy.delay(0, 3.0) == 3.0
    assert policy.delay(0, 100.0) == 5.0
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert parse_retry_after({"retry-after": "soon"}) is None
    with pytest.raises(HarnessError, match="bad retry policy"):
        RetryPolicy(max_retries=-1)
