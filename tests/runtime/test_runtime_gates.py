"""The runtime as it stands in this checkout, through the real gates: every gate of every spec the ledger has
accepted (build, ctest, pytest, parity, allocator, training, ...) run once on generated_runtime/. This is how CI
catches a runtime that no longer builds or passes from a clean clone; the ledger check (`reproduce --check`)
separately proves that the tree is exactly the replay of accepted, gated diffs."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.interfaces import GateConfig
from harness.ledger import Ledger
from harness.runner import Runner
from harness.specs import load_specs

ROOT = Path(__file__).resolve().parents[2]


# Options that narrow what a gate looks at to one spec's part (ctest's include, pytest's paths): the union runs
# everything. Without "paths" here the union's pytest ran only the last narrowing spec's folder (12 tests).
NARROWING = {"include", "exclude", "label", "min_passed", "paths", "markexpr"}


def accepted_gates(root: Path) -> list[GateConfig]:
    """The union of the accepted specs' gates in spec order; a gate named twice keeps one config with the
    options merged (later specs add demands, e.g. parity's backward: true) and without narrowing options."""
    accepted = Ledger(root).accepted_specs()
    by_name: dict[str, list[GateConfig]] = {}
    for spec in load_specs(root):
        if spec.id in accepted:
            for g in spec.gates:
                by_name.setdefault(g.name, []).append(g)
    merged = []
    for name, configs in by_name.items():
        options: dict = {}
        for g in configs:
            options.update(g.options)
        if len(configs) > 1:  # several specs' gate of one name: the union looks at everything
            options = {k: v for k, v in options.items() if k not in NARROWING}
        merged.append(GateConfig(name, options))
    return merged


def test_accepted_gates_merge_options():
    gates = accepted_gates(ROOT)
    names = [g.name for g in gates]
    assert len(names) == len(set(names))
    for g in gates:
        if g.name in ("ctest", "pytest"):
            assert not NARROWING & set(g.options), g.options  # the union runs every C++ and Python test


def test_runtime_passes_every_accepted_gate():
    gates = accepted_gates(ROOT)
    if not gates:
        pytest.fail("the ledger has no accepted spec: there is no runtime to check")
    out = Runner(ROOT).validate(None, gates, progress=False)
    failing = [f"{d['name']}: {d['status']}: {d.get('summary', '')[:2000]}" for d in out.details
               if d["status"] != "pass"]
    assert out.status == "ok", "\n".join(failing) or out.reason
    assert [d["name"] for d in out.details] == [g.name for g in gates]
