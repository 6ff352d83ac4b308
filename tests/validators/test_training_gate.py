"""The training gate end to end, with torch standing in for the runtime.

"Candidates" are fixture modules written into a site folder: each patches torch inside the candidate's own
subprocess and then stands in for it (``sys.modules[name] = torch``), so the gate sees a framework that is torch
with one thing wrong. All tests share one cache folder, so each workload's torch reference runs once.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from validators.training_gate import TrainingGate

REPO = Path(__file__).resolve().parents[2]
STEPS = 80  # reversal's ci model leaves its plateau around step 50: a wrong attention shows from there on

FIXTURE_MODULES = {
    # A softmax with a wrong temperature (inputs scaled by 1.5): plausible output, wrong numbers.
    "vt_softmax_bug": """
        import sys, torch
        import torch.nn.functional as F
        _softmax = F.softmax
        F.softmax = lambda input, dim=None, **kw: _softmax(input * 1.5, dim=dim)
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
}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    for name, body in FIXTURE_MODULES.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(body))
    return folder


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("training-cache")


@pytest.fixture
def run_gate(make_ctx, site, shared_cache):
    def run(**options):
        ctx = make_ctx(REPO, cache_dir=shared_cache, options={"profile": "ci", "steps": STEPS, **options},
                       state={"site_dir": str(site)}, timeout_s=300)
        result = TrainingGate().run(ctx)
        report = json.loads(Path(result.report_path).read_text()) if result.report_path else None
        return result, report

    return run


def test_torch_against_itself_passes_every_workload(run_gate):
    result, index = run_gate(module="torch")
    assert result.status == "pass", result.summary
    assert [w["workload"] for w in index["workloads"]] == ["reversal", "vit", "minigpt"]
    for entry in index["workloads"]:
        report = json.loads(Path(entry["report"]).read_text())
        torch_loss = report["curves"]["torch"]["loss"]
        assert len(torch_loss) == STEPS and report["curves"]["vibetensor"]["loss"] == torch_loss
        assert all(w["ok"] and w["rel_diff"] == 0.0 for w in report["windows"])
        assert len(report["windows"]) == STEPS // 10
        assert report["step_time_ratio"] > 0 and report["nan_step"] is None and report["memory"]["ok"]
        assert torch_loss[-1] < torch_loss[0]  # the workloads do learn
    assert set(result.metrics) >= {"reversal", "vit", "minigpt"}


def test_wrong_softmax_fails_on_the_loss_curve(run_gate):
    result, report = run_gate(module="vt_softmax_bug", workloads=["reversal"])
    assert result.status == "fail"
    assert "loss diverges from torch in steps" in result.summary
    bad = [w for w in report["windows"] if not w["ok"]]
    assert bad and all(w["reason"] == "outside tolerance" for w in bad)
    assert report["windows"][0]["ok"]  # same initial weights: the first steps still agree
    assert report["nan_step"] is None and report["memory"]["ok"]


def test_nan_loss_is_reported_with_its_step(run_gate):
    result, report = run_gate(module="vt_nan_at_30", workloads=["reversal"])
    assert result.status == "fail"
    assert "at step 30" in result.summary
    assert report["nan_step"] == 30
    assert len(report["curves"]["vibetensor"]["loss"]) == 31 and report["curves"]["vibetensor"]["loss"][30] is None
    assert [w["ok"] for w in report["windows"][:3]] == [True, True, True]
    assert report["windows"][3]["reason"] == "not finite" and report["windows"][4]["reason"] == "not reached"


def test_memory_leak_fails_with_its_growth(run_gate):
    result, report = run_gate(module="vt_leaky", workloads=["reversal"])
    assert result.status == "fail"
    assert "memory grows" in result.summary and "rss_mb" in result.summary
    assert report["memory"]["vt_growth_mb"] > 40 and not report["memory"]["ok"]
    assert all(w["ok"] for w in report["windows"])  # the numbers themselves are right


def test_crash_mid_run_keeps_the_partial_curve(run_gate):
    result, report = run_gate(module="vt_crash_at_10", workloads=["reversal"])
    assert result.status == "fail"
    assert "failed after 10 steps" in result.summary and "kernel exploded" in result.summary
    assert len(report["curves"]["vibetensor"]["loss"]) == 10


def test_missing_module_fails_clearly(run_gate):
    result, _ = run_gate(module="no_such_framework", workloads=["reversal"])
    assert result.status == "fail"
    assert "No module named 'no_such_framework'" in result.summary


def test_step_time_ratio_bound_fails_a_slow_candidate(run_gate):
    # a ratio bound forces a fresh torch run beside the candidate; no run is 1e6 times faster than torch
    result, report = run_gate(module="torch", workloads=["reversal"], steps=20, max_step_time_ratio=1e-6)
    assert result.status == "fail" and "step time" in result.summary and "> 0.00x" in result.summary
    assert report["torch_curve_from_cache"] is False and report["step_time_ratio"] > 1e-6
    assert all(w["ok"] for w in report["windows"])


@pytest.mark.parametrize("options, message", [
    ({"workloads": ["mnist"]}, "not among"),
    ({"profile": "huge"}, "profile 'huge'"),
    ({"steps": 0}, "steps must be an int"),
    ({"window": 500}, "longer than steps"),
    ({"tolerance": -1}, "tolerance must be a positive number"),
    ({"module": "os; rm -rf"}, "not a Python module path"),
    ({"colour": "blue"}, "unknown option(s) colour"),
])
def test_bad_options_are_errors(run_gate, options, message):
    result, _ = run_gate(**options)
    assert result.status == "error" and message in result.summary
