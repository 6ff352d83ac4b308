"""Model prices, per million tokens, in US dollars.

Policy: a price is known only when the table, an ``options`` override or an environment override names the model;
otherwise ``cost()`` returns ``None`` ("unknown"), never 0. Overrides win over the table, in this order:
``prices`` dict passed by the caller, then ``VT_PRICE_<MODEL>`` (model name upper-cased, every run of
non-alphanumerics turned into ``_``; value ``"IN,OUT"`` dollars per million tokens, e.g.
``VT_PRICE_QWEN2_5_CODER_32B="0,0"`` for a free local model), then the table.
A dated model id (``gpt-4.1-2025-04-14``, ``claude-sonnet-4-5-20250929``) or ``-latest`` takes its base's price.
"""
from __future__ import annotations

import os
import re

from harness.interfaces import HarnessError

PRICES_AS_OF = "2025-11"  # public list prices (standard tier, no caching or batch discounts) at this date
# model -> (input $/Mtok, output $/Mtok)
PRICE_TABLE: dict[str, tuple[float, float]] = {
    "gpt-5.1": (1.25, 10.00),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "o3": (2.00, 8.00),
    "o4-mini": (1.10, 4.40),
    "claude-opus-4-5": (5.00, 25.00),
    "claude-opus-4-1": (15.00, 75.00),
    "claude-opus-4": (15.00, 75.00),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-5-haiku": (0.80, 4.00),
}

_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


def env_var_name(model: str) -> str:
    return "VT_PRICE_" + re.sub(r"[^A-Za-z0-9]+", "_", model).strip("_").upper()


def _parse_price(text: str, where: str) -> tuple[float, float]:
    parts = [p.strip() for p in text.split(",")]
    try:
        if len(parts) != 2:
            raise ValueError
        price_in, price_out = float(parts[0]), float(parts[1])
    except ValueError:
        raise HarnessError(f"{where}: expected 'INPUT,OUTPUT' dollars per million tokens, got {text!r}") from None
    if price_in < 0 or price_out < 0:
        raise HarnessError(f"{where}: prices must not be negative, got {text!r}")
    return price_in, price_out


def price(model: str, prices: dict[str, object] | None = None) -> tuple[float, float] | None:
    """(input, output) dollars per million tokens for ``model``, or None when unknown."""
    base = _DATE_SUFFIX.sub("", model)
    for name in (model, base):
        if prices and name in prices:
            value = prices[name]
            if isinstance(value, str):
                return _parse_price(value, f"price override for {name}")
            try:
                price_in, price_out = value  # type: ignore[misc]
                return float(price_in), float(price_out)
            except (TypeError, ValueError):
                raise HarnessError(f"price override for {name}: expected (input, output), got {value!r}") from None
    for name in (model, base):
        env_value = os.environ.get(env_var_name(name))
        if env_value is not None:
            return _parse_price(env_value, env_var_name(name))
    for name in (model, base):
        if name in PRICE_TABLE:
            return PRICE_TABLE[name]
    return None


def cost(model: str, in_tok: int, out_tok: int, prices: dict[str, object] | None = None) -> float | None:
    """Dollars for one call, or None when the model's price is unknown."""
    known = price(model, prices)
    if known is None:
        return None
    return (in_tok * known[0] + out_tok * known[1]) / 1_000_000
