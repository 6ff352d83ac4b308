"""Parity fixture: a faithful stand-in for ``vibetensor.torch`` -- torch itself behind a module of its own.

Every attribute is torch's; the parity gate must PASS this module on the whole table.
"""
import torch as _torch


def __getattr__(name):
    return getattr(_torch, name)
