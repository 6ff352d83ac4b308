"""Shared by the broken parity fixtures: a module-level ``__getattr__`` that serves every name from torch."""
import torch


def forward_to_torch(name):
    return getattr(torch, name)
