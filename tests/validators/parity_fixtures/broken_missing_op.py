"""Parity fixture: torch without ``cumsum``. The gate must report reduction.cumsum as a missing op (a failure)."""
import torch as _torch


def __getattr__(name):
    if name == "cumsum":
        raise AttributeError(f"module {__name__!r} has no attribute 'cumsum'")
    return getattr(_torch, name)
