"""vibetensor: a PyTorch-style eager tensor runtime.

The native core is the private extension ``vibetensor._C``; the public, torch-compatible API is
``vibetensor.torch`` (``import vibetensor.torch as vt``).
"""
from . import _C  # noqa: F401

__version__ = "0.1.0"
__all__ = ["torch"]


def __getattr__(name):
    # `import vibetensor; vibetensor.torch` works without importing the overlay eagerly.
    if name == "torch":
        import importlib
        return importlib.import_module("vibetensor.torch")
    raise AttributeError(f"module 'vibetensor' has no attribute {name!r}")
