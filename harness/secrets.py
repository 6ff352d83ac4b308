"""Secrets: scrub them from subprocess environments and redact them from everything the harness writes.

Policy: an environment variable is secret when its name looks like a credential (KEY, TOKEN, SECRET, PASSWORD,
CREDENTIAL, AUTH) or it is one of the providers' known variables. Gates and command agents get an environment
without any of them; logs get every secret value replaced by ``[REDACTED]``.
"""
from __future__ import annotations

import os
import re

_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|COOKIE|SESSION)", re.I)
_KNOWN = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_ORG_ID", "GITHUB_TOKEN", "HF_TOKEN", "AWS_SECRET_ACCESS_KEY"}
# Values that look like keys even when we do not know the variable (sk-..., sk-ant-...).
_KEY_PATTERN = re.compile(r"\b(sk-(?:ant-)?[A-Za-z0-9_\-]{16,})\b")


def is_secret_name(name: str) -> bool:
    return name in _KNOWN or bool(_SECRET_NAME.search(name))


def scrubbed_env(base: dict[str, str] | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in (base if base is not None else os.environ).items() if not is_secret_name(k)}
    if extra:
        env.update({k: v for k, v in extra.items() if not is_secret_name(k)})
    return env


def secret_values() -> list[str]:
    return sorted({v for k, v in os.environ.items() if is_secret_name(k) and len(v) >= 6}, key=len, reverse=True)


def redact(text: str) -> str:
    for v in secret_values():
        text = text.replace(v, "[REDACTED]")
    return _KEY_PATTERN.sub("[REDACTED]", text)
