"""The runtime as it stands in this checkout, through the real gates: every gate of every spec the ledger has
accepted (build, ctest, pytest, parity, allocator, training, ...) run once on generated_runtime/. This is how CI
catches a runtime that no longer builds or passes from a clean clone; the ledger check (`reproduce --check`)
separately proves that the tree is exactly the replay of accepted, gated diffs."""
from __future__ import annotations

import os
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


# VT_RUNTIME_GATES_CUDA=OFF (set by .ci/run): the build gate configures with VBT_ENABLE_CUDA=OFF, as on a machine
# without nvcc. CI's CUDA compile check has already compiled every CUDA source, linked _C with CUDA and run the
# tests that need the CUDA build (the fabric host tests), so the gate does not compile the kernels a second time.
CUDA_SWITCH = "VT_RUNTIME_GATES_CUDA"


def with_cuda_switch(gates: list[GateConfig], env=os.environ) -> list[GateConfig]:
    value = env.get(CUDA_SWITCH, "").strip().upper()
    if not value:
        return gates
    if value not in ("ON", "OFF", "AUTO"):
        raise ValueError(f"{CUDA_SWITCH} must be ON, OFF or AUTO (got {env[CUDA_SWITCH]!r})")
    out = []
    for g in gates:
        if g.name == "build":
            defines = {**dict(g.options.get("cmake_defines", {})), "VBT_ENABLE_CUDA": value}
            g = GateConfig(g.name, {**g.options, "cmake_defines": defines})
        out.append(g)
    return out


def test_cuda_switch_sets_the_build_gates_cmake_define():
    gates = [GateConfig("build", {"cmake_defines": {"X": "1"}}), GateConfig("ctest", {})]
    assert with_cuda_switch(gates, {}) == gates
    out = with_cuda_switch(gates, {CUDA_SWITCH: "off"})
    assert out[0].options["cmake_defines"] == {"X": "1", "VBT_ENABLE_CUDA": "OFF"}
    assert out[1] == gates[1] and gates[0].options["cmake_defines"] == {"X": "1"}  # the input is not changed
    with pytest.raises(ValueError, match="ON, OFF or AUTO"):
        with_cuda_switch(gates, {CUDA_SWITCH: "maybe"})


def test_accepted_gates_merge_options():
    gates = accepted_gates(ROOT)
    names = [g.name for g in gates]
    assert len(names) == len(set(names))
    for g in gates:
        if g.name in ("ctest", "pytest"):
            assert not NARROWING & set(g.options), g.options  # the union runs every C++ and Python test


def test_runtime_passes_every_accepted_gate():
    gates = with_cuda_switch(accepted_gates(ROOT))
    if not gates:
        pytest.fail("the ledger has no accepted spec: there is no runtime to check")
    out = Runner(ROOT).validate(None, gates, progress=False)
    failing = [f"{d['name']}: {d['status']}: {d.get('summary', '')[:2000]}" for d in out.details
               if d["status"] != "pass"]
    assert out.status == "ok", "\n".join(failing) or out.reason
    assert [d["name"] for d in out.details] == [g.name for g in gates]
