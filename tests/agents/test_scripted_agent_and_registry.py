"""The scripted fake model (steps, faults, exhaustion, recorded requests) and the backend registry."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.agents import BACKENDS, make_agent, parse_agent_spec
from harness.agents.budget import RunBudget
from harness.agents.scripted_agent import ScriptedAgent
from harness.interfaces import AgentError, AgentTimeout, BudgetExceeded, HarnessError
from tests.agents.conftest import make_request
from tests.fakes.fake_llm_server import EDITS_ANSWER, GOOD_DIFF_ANSWER


def test_steps_faults_and_recorded_feedback():
    agent = ScriptedAgent(script=[{"fault": "timeout"}, {"fault": "error"}, {"fault": "garbage"},
                                  GOOD_DIFF_ANSWER, {"text": EDITS_ANSWER, "input_tokens": 7, "output_tokens": 3}])
    with pytest.raises(AgentTimeout, match="injected timeout at step 0"):
        agent.propose(make_request(ask="attempt 1"))
    with pytest.raises(AgentError, match="injected error at step 1"):
        agent.propose(make_request(ask="attempt 2"))
    assert agent.propose(make_request(ask="attempt 3")).proposal.kind == "empty"
    assert agent.propose(make_request(ask="attempt 4: gate ctest failed: test_add")).proposal.kind == "diff"
    last = agent.propose(make_request(ask="attempt 5"))
    assert last.proposal.kind == "edits"
    assert (last.usage.input_tokens, last.usage.output_tokens, last.usage.cost_usd) == (7, 3, 0.0)
    assert [r.messages[-1]["content"] for r in agent.requests][3] == "attempt 4: gate ctest failed: test_add"
    with pytest.raises(AgentError, match="script exhausted after 5 steps"):
        agent.propose(make_request())


def test_slow_step_respects_the_timeout():
    agent = make_agent("scripted", script=[{"text": "late", "delay_s": 5}, {"text": "on time", "delay_s": 0.05}],
                       timeout_s=0.1)
    with pytest.raises(AgentTimeout, match="past the 0.1 s timeout"):
        agent.propose(make_request())
    assert agent.propose(make_request()).text == "on time"


def test_cycle_and_script_files(tmp_path: Path):
    yaml_file = tmp_path / "script.yaml"
    yaml_file.write_text("- first answer\n- fault: garbage\n")
    agent = make_agent(f"scripted:{yaml_file}", cycle=True)
    texts = [agent.propose(make_request()).text for _ in range(3)]
    assert texts[0] == texts[2] == "first answer" and texts[1] != "first answer"
    json_file = tmp_path / "script.json"
    json_file.write_text(json.dumps([GOOD_DIFF_ANSWER]))
    assert ScriptedAgent(script=json_file).propose(make_request()).proposal.kind == "diff"


@pytest.mark.parametrize("script, message", [
    ([{"fault": "explode"}], "unknown fault 'explode'"),
    ([42], "step 0 must be a string"),
    (["ok", {"text": "x", "delay_s": "soon"}], "step 1: delay_s must be a number"),
    ([], "script is empty"),
    ("/no/such/script.yaml", "not found"),
])
def test_bad_scripts_are_clear_errors(script, message):
    with pytest.raises(HarnessError, match=message):
        ScriptedAgent(script=script)


def test_scripted_agent_charges_the_budget_even_for_faults():
    budget = RunBudget(max_calls=2)
    agent = ScriptedAgent(script=[{"fault": "garbage"}, {"fault": "timeout"}, "never served"], budget=budget)
    agent.propose(make_request())
    with pytest.raises(AgentTimeout):
        agent.propose(make_request())
    with pytest.raises(BudgetExceeded, match="2 of 2 calls"):
        agent.propose(make_request())
    assert len(agent.requests) == 2


def test_registry_names_and_errors():
    assert set(BACKENDS) == {"openai", "anthropic", "command", "scripted", "replay", "external"}
    assert parse_agent_spec("openai:gpt-4.1") == ("openai", "gpt-4.1")
    assert parse_agent_spec("command:my-cli --flag") == ("command", "my-cli --flag")
    assert parse_agent_spec("replay") == ("replay", None)
    with pytest.raises(HarnessError, match="known: anthropic, command, external, openai, replay, scripted"):
        make_agent("gemini:pro")
    with pytest.raises(HarnessError, match="expected BACKEND"):
        make_agent(":gpt-4.1")
    with pytest.raises(HarnessError, match="does not accept these options"):
        make_agent("scripted", script=["x"], temperature=0.5)
    agent = make_agent("openai:gpt-4.1-mini", base_url="http://127.0.0.1:9/v1", api="responses")
    assert (agent.name, agent.model, agent.api) == ("openai", "gpt-4.1-mini", "responses")
    assert agent.client.max_retries == 0  # our retry policy is the only one
    claude = make_agent("anthropic", base_url="http://127.0.0.1:9", api_key="k", timeout_s=None, max_retries=1)
    assert (claude.model, claude.client.max_retries, claude.retry.max_retries) == ("claude-sonnet-4-5", 0, 1)
