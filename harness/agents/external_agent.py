"""The `external` agent (``vt-agent submit``): the change was already made in generated_runtime/ by a person or
any other agent. Its one proposal is the diff from the ledger's head to the working tree, computed by the runner."""
from __future__ import annotations

from harness.interfaces import AgentRequest, AgentResponse, Proposal, Usage


class ExternalAgent:
    name = "external"

    def __init__(self, patch: str, model: str = "", budget=None):
        self.model = model
        self._patch = patch

    def propose(self, request: AgentRequest) -> AgentResponse:
        return AgentResponse(text="(external change: vt-agent submit)", proposal=Proposal("diff", self._patch),
                             usage=Usage(), model=self.model)
