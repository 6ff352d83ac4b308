"""Parity fixture: the functional ops of a core-only build (no ``nn`` package), served from torch.nn.functional.
Used with the parity option ``functional_module``."""
import torch.nn.functional as _F


def __getattr__(name):
    return getattr(_F, name)
