"""Retries for API agents: ours is the only retry policy (the SDKs are built with ``max_retries=0``).

Policy: retry rate limits (429), overloads and server errors (408, 409, 5xx, 529), timeouts and connection errors,
with exponential backoff ``base_delay_s * 2**n`` and jitter (up to ``jitter`` of the delay taken off), at most
``max_retries`` times. A ``Retry-After`` (or ``retry-after-ms``) header is honoured: the wait is at least what the
server asked, capped at ``max_delay_s`` like every wait. Other errors (bad request, credentials, not found) fail at
once. Each try gets the full per-request timeout. The final failure is an ``AgentTimeout`` when the last try timed
out, else an ``AgentError``; its message names the provider, the tries and the reason (secrets redacted).
Errors are classified with the SDK's own exception classes.
"""
from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, TypeVar

from harness.interfaces import AgentError, AgentTimeout, HarnessError
from harness.secrets import redact

T = TypeVar("T")
_RETRYABLE_STATUS = {408, 409, 429}


@dataclass
class RetryPolicy:
    max_retries: int = 3
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    jitter: float = 0.25  # fraction of the delay that may be taken off at random
    sleep: Callable[[float], None] = time.sleep  # tests pass a recorder
    delays: list[float] = field(default_factory=list)  # every wait taken, in order (for logs and tests)

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.base_delay_s < 0 or self.max_delay_s < 0 or not 0 <= self.jitter <= 1:
            raise HarnessError(f"bad retry policy: max_retries={self.max_retries}, base_delay_s={self.base_delay_s},"
                               f" max_delay_s={self.max_delay_s}, jitter={self.jitter}")

    def delay(self, retry_index: int, retry_after_s: float | None) -> float:
        backoff = self.base_delay_s * (2 ** retry_index)
        backoff *= 1.0 - self.jitter * random.random()
        if retry_after_s is not None:
            backoff = max(backoff, retry_after_s)
        return min(backoff, self.max_delay_s)


@dataclass
class Failure:
    retryable: bool
    timeout: bool
    reason: str
    retry_after_s: float | None = None


def parse_retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date); None when absent or bad."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - time.time())


def classify_sdk_error(exc: BaseException, sdk: ModuleType) -> Failure | None:
    """Classify an exception of the ``openai`` or ``anthropic`` SDK (both define these classes); None if foreign."""
    if isinstance(exc, sdk.APITimeoutError):
        return Failure(retryable=True, timeout=True, reason="request timed out")
    if isinstance(exc, sdk.APIStatusError):
        status = exc.status_code
        retryable = status in _RETRYABLE_STATUS or status >= 500
        message = getattr(exc, "message", None) or str(exc)
        return Failure(retryable=retryable, timeout=status == 408, reason=f"HTTP {status}: {message}",
                       retry_after_s=parse_retry_after(exc.response.headers))
    if isinstance(exc, sdk.APIConnectionError):
        return Failure(retryable=True, timeout=False, reason=f"connection error: {exc}")
    if isinstance(exc, sdk.APIError):  # e.g. a response the SDK could not validate
        return Failure(retryable=False, timeout=False, reason=f"API error: {exc}")
    return None


def call_with_retries(fn: Callable[[], T], policy: RetryPolicy, classify: Callable[[BaseException], Failure | None],
                      provider: str, before_try: Callable[[], None] | None = None) -> tuple[T, int]:
    """Call ``fn`` until it succeeds; returns (result, retries used). ``before_try`` runs before every try (budget
    check: its exceptions pass through untouched)."""
    tries = 0
    while True:
        if before_try is not None:
            before_try()
        tries += 1
        try:
            return fn(), tries - 1
        except Exception as exc:  # noqa: BLE001 - classified below, foreign errors re-raised
            failure = classify(exc)
            if failure is None:
                raise
            if not failure.retryable or tries > policy.max_retries:
                what = f"{provider}: gave up after {tries} tr{'y' if tries == 1 else 'ies'}: {failure.reason}"
                error_class = AgentTimeout if failure.timeout else AgentError
                raise error_class(redact(what)) from exc
            wait = policy.delay(tries - 1, failure.retry_after_s)
            policy.delays.append(wait)
            policy.sleep(wait)
