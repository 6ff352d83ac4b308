# The two README commands. Both do their own set-up (.ci/setup.sh: Debian packages, .venv, torch CPU).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo demo-all test
setup: $(VENV)/.ready
$(VENV)/.ready: pyproject.toml .ci/setup.sh
	bash .ci/setup.sh $(VENV)

# The main job, offline: re-gate recorded proposals of the first spec with the replay agent: the first, every
# recorded failure (each must fail again, at the same gate) and the newest. Each takes minutes (a runtime build and
# its gates), so demo-all (every recording, an hour and growing with the ledger) is the full check.
demo: setup
	$(BIN)/vt-agent run 01-runtime-core --agent replay --recordings first,failed,last

demo-all: setup
	$(BIN)/vt-agent run 01-runtime-core --agent replay

# The whole test suite: harness, agents, proposals, gates, dashboards, and the runtime through its real gates.
test: setup
	$(BIN)/python -m pytest tests -q -p no:cacheprovider
