"""Parity fixture: torch, except that ``sub`` kills the process (os._exit) and ``div`` hangs.

The gate must fail naming elementwise.sub as the op the checking process died in; with a short op timeout it must
fail elementwise.div as timed out.
"""
import os
import time

from _torch_proxy import forward_to_torch as __getattr__  # noqa: F401


def sub(a, b, alpha=1, out=None):
    os._exit(7)


def div(a, b, rounding_mode=None, out=None):
    time.sleep(3600)
