"""The gates, registered explicitly by short name (no import side effects).

``GATES`` maps a gate name to "module:Class"; a module is imported only when its gate is asked for, so a gate whose
module is not written yet (or fails to import) gives a clear error naming it, and the other gates still work.
``GATE_ORDER`` is cheap to expensive: chains run in this order and fail fast.
"""
from __future__ import annotations

import importlib

from harness.interfaces import Gate, HarnessError

GATES: dict[str, str] = {
    "build": "validators.build_gate:BuildGate",
    "ctest": "validators.ctest_gate:CTestGate",
    "pytest": "validators.pytest_gate:PytestGate",
    "parity": "validators.parity_gate:ParityGate",
    "allocator": "validators.allocator_gate:AllocatorGate",
    "training": "validators.training_gate:TrainingGate",
    "perf": "validators.perf_gate:PerfGate",
}

GATE_ORDER: tuple[str, ...] = ("build", "ctest", "pytest", "parity", "allocator", "training", "perf")


def get_gate(name: str) -> Gate:
    """A fresh instance of the gate registered under name."""
    if name not in GATES:
        raise HarnessError(f"unknown gate {name!r}; known gates: {', '.join(GATE_ORDER)}")
    module_name, class_name = GATES[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise HarnessError(f"gate {name!r}: module {module_name} failed to import: {e}") from e
        raise HarnessError(f"gate {name!r} is registered but its module {module_name} does not exist yet") from None
    gate_class = getattr(module, class_name, None)
    if gate_class is None:
        raise HarnessError(f"gate {name!r}: module {module_name} has no class {class_name}")
    return gate_class()


def sort_gate_names(names: list[str]) -> list[str]:
    """names in GATE_ORDER (unknown names raise the same clear error as get_gate)."""
    for name in names:
        if name not in GATES:
            raise HarnessError(f"unknown gate {name!r}; known gates: {', '.join(GATE_ORDER)}")
    return sorted(names, key=GATE_ORDER.index)
