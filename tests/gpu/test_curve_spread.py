"""tests/gpu/curve_spread.py on CPU: the per-quarter summary, the --run parser, and a tiny torch-vs-torch run."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import curve_spread  # noqa: E402


def windows(rels):
    return [{"start": 10 * i, "end": 10 * i + 10, "rel_diff": r} for i, r in enumerate(rels)]


def test_summary_takes_the_largest_difference_per_quarter_and_the_first_window_beyond_tolerance():
    s = curve_spread.summarize(windows([0.0, 0.01, 0.03, 0.02, 0.5, 0.1, 0.04, 0.2]), tolerance=0.02)
    assert s["max_rel_diff"] == 0.5
    assert s["quarters"] == [0.01, 0.03, 0.5, 0.2]
    assert s["first_beyond"] == [20, 30]          # 0.02 itself is within tolerance, 0.03 is not


def test_an_unfinished_window_counts_as_beyond_tolerance():
    s = curve_spread.summarize(windows([0.0, None]), tolerance=0.02)
    assert s["first_beyond"] == [10, 20] and s["max_rel_diff"] == float("inf")


def test_run_needs_module_and_device():
    assert curve_spread.parse_run("vibetensor.torch:cuda") == ("vibetensor.torch", "cuda")
    with pytest.raises(Exception, match="MODULE:DEVICE"):
        curve_spread.parse_run("torch")


def test_one_reference_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        curve_spread.main(["--run", "torch:cpu", "--out", str(tmp_path)])


def test_torch_against_itself_on_cpu_has_no_spread(tmp_path, capsys):
    pytest.importorskip("torch")
    rc = curve_spread.main(["--workload", "reversal", "--profile", "ci", "--steps", "4", "--window", "2",
                            "--run", "torch:cpu", "--run", "torch:cpu", "--out", str(tmp_path)])
    assert rc == 0
    report = json.loads((tmp_path / "spread.json").read_text())
    row = report["seeds"]["0"]["runs"][0]
    assert row["max_rel_diff"] == 0.0 and row["first_beyond"] is None and len(row["windows"]) == 2
    assert "torch:cpu" in capsys.readouterr().out


def test_a_failing_run_makes_the_exit_status_nonzero(tmp_path):
    rc = curve_spread.main(["--workload", "reversal", "--profile", "ci", "--steps", "2",
                            "--run", "no_such_module_xyz:cpu", "--run", "torch:cpu", "--out", str(tmp_path)])
    assert rc == 1
    assert "error" in json.loads((tmp_path / "spread.json").read_text())["seeds"]["0"]
