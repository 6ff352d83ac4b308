"""Imports the optional subsystem subpackages of vibetensor.torch that exist in this installation.

The core works with every one of them absent. A subpackage that exists but fails to import is a bug:
the error propagates (set VBT_SKIP_SUBSYSTEMS=autograd,nn,... to leave some out while debugging).
"""
import importlib
import importlib.util
import os

SUBSYSTEMS = ("autograd", "nn", "optim", "cuda", "library", "utils", "safetensors", "plugins", "distributed")
loaded = []


def load(package):
    skip = {s.strip() for s in os.environ.get("VBT_SKIP_SUBSYSTEMS", "").split(",") if s.strip()}
    mod = importlib.import_module(package)
    for name in SUBSYSTEMS:
        if name in skip:
            continue
        full = f"{package}.{name}"
        if importlib.util.find_spec(full) is None:
            continue
        setattr(mod, name, importlib.import_module(full))
        loaded.append(name)
    return loaded
