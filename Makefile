# The two README commands. Both do their own set-up (.ci/setup.sh: Debian packages, .venv, torch CPU).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test
setup: $(VENV)/.ready
$(VENV)/.ready: pyproject.toml .ci/setup.sh
	bash .ci/setup.sh $(VENV)

# The main job, offline: re-gate the recorded proposals of the first spec with the replay agent.
demo: setup
	$(BIN)/vt-agent run 01-runtime-core --agent replay

# The whole test suite: harness, agents, proposals, gates, dashboards, and the runtime through its real gates.
test: setup
	$(BIN)/python -m pytest tests -q -p no:cacheprovider
