"""RunBudget: the limits of one run (or of a whole batch, when shared), enforced by the agent backends.

Policy: every backend calls ``check()`` before each model call and ``charge(usage)`` after each answer, including
answers that fail to parse (they cost the same). ``check(projected_tokens=N)`` also refuses a call whose prompt
alone would take the token total past the limit, so the call that would exceed is never made.
An unknown price (``usage.cost_usd is None``) neither crashes nor counts as $0: the spent cost stays a lower bound,
``cost_unknown`` becomes True, and one warning is logged and kept in ``warnings`` for the runner to show; the cost
limit is then enforced on the known part only. Thread-safe: parallel candidates may share one budget.
Units: tokens (int), dollars (float), seconds (float, wall clock since the budget was created).
"""
from __future__ import annotations

import logging
import threading
import time

from harness.interfaces import BudgetExceeded, HarnessError, Usage

log = logging.getLogger(__name__)


class RunBudget:
    def __init__(self, max_tokens: int | None = None, max_cost_usd: float | None = None,
                 max_wall_s: float | None = None, max_calls: int | None = None):
        for label, value in (("max_tokens", max_tokens), ("max_cost_usd", max_cost_usd),
                             ("max_wall_s", max_wall_s), ("max_calls", max_calls)):
            if value is not None and value < 0:
                raise HarnessError(f"budget {label} must not be negative, got {value}")
        self.max_tokens = max_tokens
        self.max_cost_usd = max_cost_usd
        self.max_wall_s = max_wall_s
        self.max_calls = max_calls
        self.spent = Usage(cost_usd=0.0)  # cost_usd: the known part (a lower bound when cost_unknown)
        self.cost_unknown = False
        self.warnings: list[str] = []
        self._started = time.monotonic()
        self._lock = threading.Lock()

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self._started

    def check(self, projected_tokens: int = 0) -> None:
        """Raise BudgetExceeded, with the reason, if another call (of about ``projected_tokens``) is not allowed."""
        with self._lock:
            spent = self.spent
            tokens = spent.input_tokens + spent.output_tokens
            if self.max_calls is not None and spent.calls >= self.max_calls:
                raise BudgetExceeded(f"call budget spent: {spent.calls} of {self.max_calls} calls made")
            if self.max_tokens is not None and tokens + projected_tokens > self.max_tokens:
                if projected_tokens:
                    raise BudgetExceeded(f"token budget: {tokens} tokens spent + about {projected_tokens} for the "
                                         f"next prompt would exceed the limit of {self.max_tokens}")
                raise BudgetExceeded(f"token budget spent: {tokens} of {self.max_tokens} tokens")
            if self.max_cost_usd is not None and (spent.cost_usd or 0.0) >= self.max_cost_usd:
                raise BudgetExceeded(f"cost budget spent: ${spent.cost_usd:.4f} of ${self.max_cost_usd:.4f}"
                                     + (" (lower bound: some prices unknown)" if self.cost_unknown else ""))
            if self.max_wall_s is not None and self.elapsed_s >= self.max_wall_s:
                raise BudgetExceeded(f"wall-time budget spent: {self.elapsed_s:.1f} s of {self.max_wall_s:.1f} s")

    def charge(self, usage: Usage, model: str = "") -> None:
        with self._lock:
            self.spent.add(usage)
            if usage.cost_usd is None and (usage.input_tokens or usage.output_tokens) and not self.cost_unknown:
                self.cost_unknown = True
                message = (f"price of model {model or '(unnamed)'} is unknown: cost shown as a lower bound"
                           + ("; the cost limit cannot be fully enforced" if self.max_cost_usd is not None else "")
                           + " (set VT_PRICE_<MODEL>='IN,OUT' dollars per million tokens to fix)")
                self.warnings.append(message)
                log.warning(message)

    def snapshot(self) -> Usage:
        with self._lock:
            s = self.spent
            return Usage(s.input_tokens, s.output_tokens, None if self.cost_unknown else s.cost_usd, s.calls)
