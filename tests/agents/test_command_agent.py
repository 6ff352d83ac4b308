"""The command agent: its proposal is the worktree diff (temporary index), secrets stay out of its environment,
and a timeout kills its whole process group."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from harness.agents import make_agent
from harness.agents.budget import RunBudget
from harness.agents.command_agent import CommandAgent
from harness.interfaces import AgentError, AgentTimeout, BudgetExceeded, HarnessError
from tests.agents.conftest import make_request


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "wt"
    (root / "generated_runtime").mkdir(parents=True)
    (root / "generated_runtime" / "hello.py").write_text("def hello():\n    return 'hi'\n")
    (root / "generated_runtime" / "old.txt").write_text("to be deleted\n")
    (root / ".gitignore").write_text("build/\n")
    git(root, "init", "-q")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "base")
    return root


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie is dead, only not yet reaped


def test_proposal_is_the_worktree_diff_and_the_index_is_untouched(repo: Path):
    script = ("cat > ../stdin_copy.txt; cp {prompt_file} ../file_copy.txt; "
              "printf 'def hello():\\n    return \"hello\"\\n' > generated_runtime/hello.py; "
              "rm generated_runtime/old.txt; printf 'new\\n' > generated_runtime/new.py; "
              "mkdir -p build && echo junk > build/out.o; printf '\\000\\001\\002' > generated_runtime/blob.bin; "
              "echo '{\"vt_usage\": {\"input_tokens\": 10, \"output_tokens\": 5, \"cost_usd\": 0.25}}'")
    git(repo, "add", "generated_runtime/hello.py")  # something pre-staged in the real index must stay as it is
    index_before = git(repo, "ls-files", "--stage")
    agent = CommandAgent("fake-cli", cmd=script, timeout_s=30)
    response = agent.propose(make_request(repo, ask="Change hello to say hello."))
    diff = response.proposal.text
    assert response.proposal.kind == "worktree"
    assert "-    return 'hi'\n+    return \"hello\"\n" in diff
    assert "deleted file mode" in diff and "generated_runtime/old.txt" in diff
    assert "+++ b/generated_runtime/new.py\n@@ -0,0 +1 @@\n+new\n" in diff
    assert "GIT binary patch" in diff
    assert "build/out.o" not in diff and "stdin_copy" not in diff
    assert git(repo, "ls-files", "--stage") == index_before
    prompt_stdin = (repo.parent / "stdin_copy.txt").read_text()
    assert "Change hello to say hello." in prompt_stdin and "You are a careful engineer." in prompt_stdin
    assert (repo.parent / "file_copy.txt").read_text() == prompt_stdin
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.cost_usd) == (10, 5, 0.25)
    # the diff applies to a clean checkout of the base commit
    git(repo, "stash", "-u", "-q")
    subprocess.run(["git", "apply", "--index", "-"], cwd=repo, input=diff.encode(), check=True)
    assert (repo / "generated_runtime" / "new.py").read_text() == "new\n"


def test_a_cli_that_commits_still_shows_its_change_and_usage_defaults_to_unknown(repo: Path):
    script = ("echo x >> generated_runtime/hello.py && git -c user.name=a -c user.email=a@a commit -qam agent && "
              "echo done")
    response = CommandAgent(cmd=script).propose(make_request(repo, timeout_s=30))
    assert "+x\n" in response.proposal.text
    assert (response.usage.input_tokens, response.usage.cost_usd, response.usage.calls) == (0, None, 1)
    assert response.text.strip() == "done"


def test_secrets_are_scrubbed_unless_allow_listed(repo: Path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak-000000000000")
    monkeypatch.setenv("MY_CLI_TOKEN", "token-for-the-cli-only")
    monkeypatch.setenv("HARMLESS_SETTING", "kept")
    agent = make_agent("command:env-dumper", cmd="env > ../env.txt", pass_env=["MY_CLI_TOKEN"])
    agent.propose(make_request(repo, timeout_s=30))
    env_lines = (repo.parent / "env.txt").read_text().splitlines()
    names = {line.split("=", 1)[0] for line in env_lines}
    assert "OPENAI_API_KEY" not in names
    assert "sk-should-not-leak" not in "\n".join(env_lines)
    assert "MY_CLI_TOKEN=token-for-the-cli-only" in env_lines
    assert "HARMLESS_SETTING=kept" in env_lines
    assert any(line.startswith("VT_PROMPT_FILE=") for line in env_lines)


def test_timeout_kills_the_whole_process_group(repo: Path):
    script = "sleep 60 & echo $! > ../child.pid; sleep 60"
    agent = CommandAgent("sleepy", cmd=script, timeout_s=0.5, kill_grace_s=0.5)
    started = time.monotonic()
    with pytest.raises(AgentTimeout, match="did not finish within 0.5 s"):
        agent.propose(make_request(repo))
    assert time.monotonic() - started < 5
    child = int((repo.parent / "child.pid").read_text())
    deadline = time.monotonic() + 2
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def test_failure_exit_code_is_an_agent_error_with_redacted_output(repo: Path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret-value-000000000")
    agent = CommandAgent(cmd="echo crashing with sk-ant-secret-value-000000000 >&2; exit 3")
    with pytest.raises(AgentError, match="exited with code 3") as info:
        agent.propose(make_request(repo, timeout_s=30))
    assert "sk-ant-secret" not in str(info.value) and "[REDACTED]" in str(info.value)


def test_budget_counts_command_calls(repo: Path):
    budget = RunBudget(max_calls=1)
    agent = CommandAgent(cmd="true", budget=budget)
    agent.propose(make_request(repo, timeout_s=30))
    with pytest.raises(BudgetExceeded, match="call budget"):
        agent.propose(make_request(repo, timeout_s=30))


def test_missing_worktree_is_a_clear_error(tmp_path: Path):
    with pytest.raises(HarnessError, match="does not exist"):
        CommandAgent(cmd="true").propose(make_request(tmp_path / "nope"))
    with pytest.raises(HarnessError, match="no command given"):
        CommandAgent()
