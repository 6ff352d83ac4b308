"""The training gate end to end.

Most tests use a fixture workload (a small MLP classifier, ``tiny``) in a fixture trusted tree that holds the real
examples/common.py, so they exercise the real workload interface in a second or two per run. The "candidates" are
fixture modules written into a site folder: each patches torch inside the candidate's own subprocess and then
stands in for it (``sys.modules[name] = torch``), so the gate sees a framework that is torch with one thing wrong.
One test runs the three real workloads (generated_runtime/examples) for a few steps, torch against itself.
All tests share one cache folder, so each workload's torch reference runs once.
"""
from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from validators.training_gate import TrainingGate

REPO = Path(__file__).resolve().parents[2]
STEPS = 60

TINY_WORKLOAD = '''
"""Fixture workload: an MLP learns which of 4 random directions a 16-d point is closest to."""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

PROFILES = {"ci": dict(dim=16, hidden=32, classes=4, batch=32, lr=1e-2)}


def prepare(T, profile, seed, device="cpu"):
    cfg = PROFILES[profile]
    nn = T.nn
    model = nn.Sequential(nn.Linear(cfg["dim"], cfg["hidden"]), nn.GELU(), nn.Linear(cfg["hidden"], cfg["classes"]))
    common.init_parameters(T, model, seed, std=0.3)
    optimizer = T.optim.Adam(model.parameters(), lr=cfg["lr"])
    teacher = common.numpy_rng(seed, 99).standard_normal((cfg["dim"], cfg["classes"]))

    def batch(step):
        x = common.numpy_rng(seed, 1, step).standard_normal((cfg["batch"], cfg["dim"])).astype(np.float32)
        y = np.argmax(x @ teacher, axis=1).astype(np.int64)
        return common.to_device(T, x, device), common.to_device(T, y, device)

    def loss(batch):
        x, y = batch
        return T.nn.functional.cross_entropy(model(x), y)

    return common.TrainingJob(model, optimizer, batch, loss, items_per_step=cfg["batch"], item_unit="pt")
'''

FIXTURE_MODULES = {
    # A loss with a wrong temperature (logits scaled by 1.5): plausible numbers, wrong training.
    "vt_temperature_bug": """
        import sys, torch
        import torch.nn.functional as F
        _cross_entropy = F.cross_entropy
        F.cross_entropy = lambda input, *args, **kw: _cross_entropy(input * 1.5, *args, **kw)
        sys.modules[__name__] = torch
    """,
    # The loss turns NaN at step 30 (the 31st call).
    "vt_nan_at_30": """
        import sys, torch
        import torch.nn.functional as F
        _cross_entropy, calls = F.cross_entropy, [0]
        def cross_entropy(*args, **kwargs):
            calls[0] += 1
            loss = _cross_entropy(*args, **kwargs)
            return loss * float("nan") if calls[0] == 31 else loss
        F.cross_entropy = cross_entropy
        sys.modules[__name__] = torch
    """,
    # Every step keeps 2 MiB alive forever.
    "vt_leaky": """
        import sys, torch
        import torch.nn.functional as F
        _cross_entropy, kept = F.cross_entropy, []
        def cross_entropy(*args, **kwargs):
            kept.append(torch.ones(512 * 1024))
            return _cross_entropy(*args, **kwargs)
        F.cross_entropy = cross_entropy
        sys.modules[__name__] = torch
    """,
    # Crashes in the middle of training.
    "vt_crash_at_10": """
        import sys, torch
        import torch.nn.functional as F
        _cross_entropy, calls = F.cross_entropy, [0]
        def cross_entropy(*args, **kwargs):
            calls[0] += 1
            if calls[0] == 11:
                raise RuntimeError("vt_crash_at_10: kernel exploded")
            return _cross_entropy(*args, **kwargs)
        F.cross_entropy = cross_entropy
        sys.modules[__name__] = torch
    """,
    # Dies of a segfault at step 5 (a native crash, not a Python exception).
    "vt_segfault_at_5": """
        import ctypes, sys, torch
        import torch.nn.functional as F
        _cross_entropy, calls = F.cross_entropy, [0]
        def cross_entropy(*args, **kwargs):
            calls[0] += 1
            if calls[0] == 6:
                ctypes.string_at(0)
            return _cross_entropy(*args, **kwargs)
        F.cross_entropy = cross_entropy
        sys.modules[__name__] = torch
    """,
}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    for name, body in FIXTURE_MODULES.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(body))
    return folder


@pytest.fixture(scope="module")
def fixture_tree(tmp_path_factory) -> Path:
    """A trusted tree whose examples/ holds the real common.py and the fixture workload ``tiny``."""
    root = tmp_path_factory.mktemp("trusted")
    examples = root / "generated_runtime" / "examples"
    examples.mkdir(parents=True)
    shutil.copy(REPO / "generated_runtime" / "examples" / "common.py", examples / "common.py")
    (examples / "tiny.py").write_text(TINY_WORKLOAD)
    return root


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("training-cache")


@pytest.fixture
def run_gate(make_ctx, site, shared_cache, fixture_tree):
    def run(tree=None, **options):
        options = {"workloads": ["tiny"], "profile": "ci", "steps": STEPS, "forbid_torch": False, **options}
        ctx = make_ctx(tree or fixture_tree, cache_dir=shared_cache, options=options,
                       state={"site_dir": str(site)}, timeout_s=300)
        result = TrainingGate().run(ctx)
        report = json.loads(Path(result.report_path).read_text()) if result.report_path else None
        return result, report

    return run


def test_agreeing_curves_pass_with_both_curves_in_the_report(run_gate):
    result, report = run_gate(module="torch")
    assert result.status == "pass", result.summary
    torch_loss = report["curves"]["torch"]["loss"]
    assert len(torch_loss) == STEPS and report["curves"]["vibetensor"]["loss"] == torch_loss
    assert len(report["curves"]["torch"]["step_time_s"]) == STEPS
    assert len(report["curves"]["vibetensor"]["step_time_s"]) == STEPS
    assert all(w["ok"] and w["rel_diff"] == 0.0 for w in report["windows"]) and len(report["windows"]) == 6
    assert report["step_time_ratio"] > 0 and report["nan_step"] is None and report["memory"]["ok"]
    assert torch_loss[-1] < 0.7 * torch_loss[0]  # the workload learns, so a wrong framework shows in the curve
    assert "tiny/ci (60 steps): pass" in result.summary and "step time" in result.summary
    assert result.metrics["tiny"]["status"] == "pass"


def test_divergent_loss_fails_on_the_curve_and_a_step_time_bound_is_gated(run_gate):
    # a ratio bound forces a fresh torch run beside the candidate; no run is 1e6 times faster than torch
    result, report = run_gate(module="vt_temperature_bug", max_step_time_ratio=1e-6)
    assert result.status == "fail"
    assert "loss diverges from torch in steps" in result.summary
    bad = [w for w in report["windows"] if not w["ok"]]
    assert bad and all(w["reason"] == "outside tolerance" for w in bad)
    assert report["nan_step"] is None and report["memory"]["ok"]
    assert "step time" in result.summary and "> 0.00x" in result.summary
    assert report["torch_curve_from_cache"] is False and report["step_time_ratio"] > 1e-6


def test_window_comparison_against_a_hand_made_curve():
    """curves.compare_windows on numbers worked out by hand: tolerance is relative to torch's window mean."""
    from validators.training import curves

    torch_curve = [2.0, 2.0, 1.0, 1.0, 0.5]
    vt_curve = [2.0, 2.2, 1.0, 1.0]  # window 0 mean 2.1 (5% off), window 1 exact, window 2 not reached
    windows = curves.compare_windows(torch_curve, vt_curve, window=2, tolerance=0.04)
    assert [(w["start"], w["end"]) for w in windows] == [(0, 2), (2, 4), (4, 5)]
    assert windows[0]["rel_diff"] == pytest.approx(0.05) and windows[0]["reason"] == "outside tolerance"
    assert windows[1]["ok"] and windows[2]["reason"] == "not reached"
    assert curves.compare_windows(torch_curve, vt_curve, window=2, tolerance=0.06)[0]["ok"]
    assert curves.compare_windows(torch_curve, [2.0, float("nan")], 2, 0.5)[0]["reason"] == "not finite"
    assert curves.memory_growth_mb([10.0] * 4 + [10.0, 11.0, 30.0, 31.0], warmup=4, window=2) == pytest.approx(20.0)
    assert curves.step_time_ratio([9.0, 1.0, 1.0, 1.0], [9.0, 2.0, 2.0, 3.0], warmup=1) == pytest.approx(2.0)


def test_nan_loss_is_reported_with_its_step(run_gate):
    result, report = run_gate(module="vt_nan_at_30")
    assert result.status == "fail"
    assert "at step 30" in result.summary
    assert report["nan_step"] == 30
    assert len(report["curves"]["vibetensor"]["loss"]) == 31 and report["curves"]["vibetensor"]["loss"][30] is None
    assert [w["ok"] for w in report["windows"][:3]] == [True, True, True]
    assert report["windows"][3]["reason"] == "not finite" and report["windows"][4]["reason"] == "not reached"


def test_memory_leak_fails_with_its_growth_and_importing_torch_fails_by_default(run_gate):
    result, report = run_gate(module="vt_leaky", forbid_torch=True)
    assert result.status == "fail"
    assert "memory grows" in result.summary and "rss_mb" in result.summary
    assert report["memory"]["vt_growth_mb"] > 40 and not report["memory"]["ok"]
    assert all(w["ok"] for w in report["windows"])  # the numbers themselves are right
    # the fixture is torch in disguise: with forbid_torch (the default) that alone fails the run
    assert "imported torch (the reference)" in result.summary and report["torch_imported"] is True


def test_crash_mid_run_keeps_the_partial_curve(run_gate):
    result, report = run_gate(module="vt_crash_at_10")
    assert result.status == "fail"
    assert "failed after 10 steps" in result.summary and "kernel exploded" in result.summary
    assert len(report["curves"]["vibetensor"]["loss"]) == 10


def test_segfault_mid_run_fails_naming_the_signal(run_gate):
    result, report = run_gate(module="vt_segfault_at_5")
    assert result.status == "fail"
    assert "failed after 5 steps" in result.summary and "status -11" in result.summary
    assert len(report["curves"]["vibetensor"]["loss"]) == 5


def test_missing_module_fails_clearly(run_gate):
    result, _ = run_gate(module="no_such_framework")
    assert result.status == "fail"
    assert "No module named 'no_such_framework'" in result.summary


@pytest.mark.parametrize("workload", ["reversal", "vit", "minigpt"])
def test_the_real_workloads_speak_the_worker_interface(workload, tmp_path, monkeypatch):
    """The gate's worker drives generated_runtime/examples/<workload>.py (torch, 3 steps), in this process so the
    torch import is paid once: catches drift between the examples' interface and the gate."""
    import sys

    from validators.training import curves, worker

    out = tmp_path / "curve.jsonl"
    monkeypatch.setattr(sys, "argv", ["worker", "--examples-dir", str(REPO / "generated_runtime" / "examples"),
                                      "--workload", workload, "--module", "torch", "--profile", "ci", "--steps", "3",
                                      "--out", str(out)])
    monkeypatch.setattr(sys, "path", list(sys.path))
    examples = str(REPO / "generated_runtime" / "examples")
    try:
        assert worker.main() == 0
    finally:  # the examples' modules (common, reversal, ...) must not leak into other tests
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", None) or "").startswith(examples):
                del sys.modules[name]
    curve = curves.read_curve(out)
    assert len(curve.loss) == 3 and all(l > 0 for l in curve.loss) and curve.end["stopped"] == "done"
    assert curve.start["parameters"] > 0 and all(t > 0 for t in curve.step_time_s)


@pytest.mark.parametrize("options, message", [
    ({"workloads": ["mnist"]}, "lacks workload files: mnist.py"),
    ({"workloads": ["../evil"]}, "are not workload names"),
    ({"profile": "huge"}, "profile 'huge'"),
    ({"steps": 0}, "steps must be an int"),
    ({"window": 500}, "longer than steps"),
    ({"tolerance": -1}, "tolerance must be a positive number"),
    ({"module": "os; rm -rf"}, "not a Python module path"),
    ({"forbid_torch": "no"}, "forbid_torch must be true or false"),
    ({"colour": "blue"}, "unknown option(s) colour"),
])
def test_bad_options_are_errors(run_gate, options, message):
    result, _ = run_gate(**options)
    assert result.status == "error" and message in result.summary
