"""The parity gate end to end on fixture runtimes (tests/validators/parity_fixtures/, put on the path as the
"site folder"): ``faithful_torch`` is torch behind a module of its own and must pass; ``broken_runtime`` has one
planted defect per op (see its docstring) and each must be caught, by name, in the agent's summary. Torch imports
cost seconds on a shared 2-core machine, so each fixture is gated once (module-scoped) and the tests read that
verdict."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from validators.parity import compare
from validators.parity_gate import ParityGate

FIXTURES = Path(__file__).resolve().parent / "parity_fixtures"
REPO = Path(__file__).resolve().parents[2]
# one op or two of every category, each with broadcast, non-contiguous, zero-size and 0-d cases
FAITHFUL_OPS = ["elementwise.add", "elementwise.where", "elementwise.exp", "reduction.sum", "reduction.max",
                "linalg.matmul", "indexing.gather", "nn.cross_entropy", "view.transpose"]
BROKEN_OPS = ["elementwise.add", "elementwise.mul", "elementwise.maximum", "elementwise.sub", "elementwise.exp",
              "elementwise.neg", "elementwise.div", "reduction.cumsum", "reduction.sum", "nn.layer_norm"]
REPORT_FIELDS = {"op", "dtype", "device", "max_err", "tol", "status", "message"}


@pytest.fixture(scope="module")
def module_ctx(tmp_path_factory):
    import os

    from harness.interfaces import GateContext, Spec
    from harness.secrets import scrubbed_env

    base = tmp_path_factory.mktemp("parity")
    counter = {"n": 0}

    def make(**options):
        counter["n"] += 1
        spec = Spec(id="00-test", title="test", path=base / "spec.md", protected=[])
        ctx = GateContext(spec=spec, candidate_root=REPO, trusted_root=REPO, work_dir=base / f"work{counter['n']}",
                          cache_dir=base / "cache", env=scrubbed_env(dict(os.environ)), timeout_s=600,
                          options=options, state={"site_dir": str(FIXTURES)})
        result = ParityGate().run(ctx)
        report = json.loads(Path(result.report_path).read_text()) if result.report_path else None
        return result, report

    return make


@pytest.fixture(scope="module")
def faithful(module_ctx):
    return module_ctx(module="faithful_torch", ops=FAITHFUL_OPS, dtypes="all", backward=True, forbid_torch=False)


@pytest.fixture(scope="module")
def broken(module_ctx):
    return module_ctx(module="broken_runtime", ops=BROKEN_OPS, dtypes=["float32", "float64", "int64"],
                      backward=True, op_timeout_s=2, functional_module="core_functional")


def _rows(report, op, status=None):
    rows = [r for r in report["rows"] if r["op"] == op]
    assert rows, f"no report rows for {op}"
    return [r for r in rows if status is None or r["status"] == status]


def test_faithful_runtime_passes_every_case_form_and_gradient(faithful):
    result, report = faithful
    assert result.status == "pass", result.summary
    assert report["totals"]["fail"] == report["totals"]["missing"] == report["totals"]["error"] == 0
    assert sorted(report["ops"]) == sorted(FAITHFUL_OPS)
    seen = {(r["op"], r["form"]) for r in report["rows"]}
    assert ("elementwise.add", "out") in seen and ("elementwise.add", "inplace") in seen
    assert ("elementwise.add", "backward") in seen and ("nn.cross_entropy", "backward") in seen
    cases = {r["case"] for r in report["rows"] if r["op"] == "elementwise.add"}
    assert {"broadcast[3,1]x[1,5]", "noncontig[4,5]T x strided", "zero_size[0,4]", "tensor_x_0d"} <= cases
    assert {r["dtype"] for r in report["rows"]} >= {"float32", "float64", "float16", "bfloat16", "int8", "bool"}
    assert all(r["calls"] == 2 for r in report["rows"])  # every check ran twice on fresh inputs
    for row in report["rows"]:
        assert REPORT_FIELDS <= set(row)
        assert row["device"] == "cpu" and row["tol"]["atol"] >= 0
    assert "parity PASS" in result.summary and result.metrics["checks"] == report["totals"]["checks"]


def test_each_run_draws_a_fresh_seed(faithful, broken):
    assert faithful[1]["seed"] != broken[1]["seed"]
    assert f"seed {broken[1]['seed']}" in broken[0].summary


def test_report_rows_are_sorted_failures_first(broken):
    _, report = broken
    order = [compare.REPORT_ORDER[r["status"]] for r in report["rows"]]
    assert order == sorted(order) and order[0] == 0 and order[-1] == compare.REPORT_ORDER["pass"]


def test_broken_runtime_fails(broken):
    result, _ = broken
    assert result.status == "fail"
    assert result.summary.startswith("parity FAIL")


def test_write_into_an_input_is_caught(broken):
    result, report = broken
    bad = _rows(report, "elementwise.add", "fail")
    assert any("op wrote into its inputs (argument 0" in r["message"] for r in bad)
    assert "elementwise.add" in result.summary


def test_cached_result_fails_on_the_second_fresh_call(broken):
    _, report = broken
    functional = [r for r in _rows(report, "elementwise.mul") if r["form"] == "functional"]
    assert functional and all(r["status"] == "fail" for r in functional if r["case"] != "zero_size[0,4]")
    assert all("call 2 returned exactly call 1's result for different inputs" in r["message"]
               and "a cached or stale result" in r["message"] for r in functional if r["status"] == "fail")
    assert all(r["status"] == "pass" for r in _rows(report, "elementwise.mul") if r["form"] == "out")


def test_unwritten_out_buffer_is_caught_by_the_poison(broken):
    _, report = broken
    rows = _rows(report, "elementwise.maximum")
    out_rows = [r for r in rows if r["form"] == "out" and r["case"] != "zero_size[0,4]"]
    assert out_rows and all(r["status"] == "fail" and "out= buffer" in r["message"] for r in out_rows)
    assert all(r["status"] == "pass" for r in rows if r["form"] == "functional")


def test_wrong_broadcast_fails_that_case_only_with_its_shapes(broken):
    result, report = broken
    rows = [r for r in _rows(report, "elementwise.sub") if r["form"] in ("functional", "out")]
    failing = {r["case"] for r in rows if r["status"] == "fail"}
    assert failing == {"broadcast[3,1]x[1,5]"}
    row = next(r for r in rows if r["status"] == "fail")
    assert row["shapes"] == "[3,1] x [1,5]" and row["max_err"] > row["tol"]["atol"]
    assert "values differ" in row["message"] and "torch gives" in row["message"]


def test_dropped_precision_fails_float64_only(broken):
    _, report = broken
    forward = [r for r in _rows(report, "elementwise.exp") if r["form"] == "functional"]
    assert {r["dtype"] for r in forward if r["status"] == "fail"} == {"float64"}
    assert all(r["status"] == "pass" for r in forward if r["dtype"] == "float32")


def test_segfault_is_named_and_the_other_ops_still_run(broken):
    result, report = broken
    assert "elementwise.neg" in report["crashes"]
    assert "signal 11 (SIGSEGV)" in report["crashes"]["elementwise.neg"]
    assert "CRASH elementwise.neg" in result.summary and "SIGSEGV" in result.summary
    assert report["candidate_runs"] == 2
    # ops after the crash were checked by the restarted process: sum is correct in the fixture
    assert _rows(report, "reduction.sum") and all(r["status"] == "pass" for r in _rows(report, "reduction.sum")
                                                  if r["form"] != "backward")


def test_hang_times_out(broken):
    _, report = broken
    rows = _rows(report, "elementwise.div", "fail")
    assert rows and any("timed out after 2.0s" in r["message"] for r in rows)


def test_missing_op_is_a_named_failure(broken):
    result, report = broken
    (row,) = _rows(report, "reduction.cumsum")
    assert row["status"] == "missing" and "broken_runtime.cumsum" in row["message"]
    assert "MISSING reduction.cumsum" in result.summary, result.summary


def test_no_autograd_fails_gradient_checks_explicitly(broken):
    result, report = broken
    assert "no autograd subpackage" in report["no_autograd"]
    backward = [r for r in report["rows"] if r["form"] == "backward"]
    assert backward and all(r["status"] == "fail" and compare.NO_AUTOGRAD in r["message"] for r in backward)
    assert f"FAIL backward: {compare.NO_AUTOGRAD}" in result.summary


def test_a_module_that_imports_the_reference_fails(broken):
    result, report = broken
    assert "imported torch" in report["torch_imported"] and "imported torch" in result.summary


@pytest.mark.parametrize("options, message", [
    ({"ops": ["no_such_op"]}, "no op matches 'no_such_op'"),
    ({"dtypes": ["complex64"]}, "unknown dtype(s) complex64"),
    ({"device": "tpu"}, "device 'tpu'"),
    ({"backward": "yes"}, "backward must be true or false"),
    ({"colour": "blue"}, "unknown option(s) colour"),
])
def test_bad_options_are_errors(make_ctx, options, message):
    result = ParityGate().run(make_ctx(REPO, options=options))
    assert result.status == "error" and message in result.summary


def test_ops_core_selects_the_whole_table():
    from validators.parity.op_table import OPS, select_ops
    from validators.parity_gate import _as_list

    assert [s.name for s in select_ops(_as_list("core"))] == [s.name for s in OPS]


def test_summary_names_every_planted_defect_within_its_bound(broken):
    result, _ = broken
    print(result.summary)
    assert len(result.summary) <= 2000
    for op in ("elementwise.add", "elementwise.mul", "elementwise.maximum", "elementwise.sub", "elementwise.exp",
               "elementwise.neg", "elementwise.div", "reduction.cumsum"):
        assert op in result.summary, op


def test_functional_module_serves_nn_functional_for_a_core_only_build(broken):
    _, report = broken
    forward = [r for r in _rows(report, "nn.layer_norm") if r["form"] != "backward"]
    assert forward and all(r["status"] == "pass" for r in forward), forward


def test_second_call_answers_differ_from_the_first_so_a_cached_result_cannot_pass():
    """Integer cases with a 0-d or expanded operand drawn from a small range often give torch the same answer twice
    (both 0-d operands 0); call 2 redraws its inputs until torch's answer differs, so the cached-result check bites
    on every seed. Seed 1826234866 is the one on which CI once saw an int64 ``tensor_x_0d`` row pass."""
    import torch

    from validators.parity.op_table import select_ops
    from validators.parity.run_checks import reference_op

    (spec,) = select_ops(["elementwise.mul"])
    for seed in [1826234866, *range(40)]:
        _, _, answers, store = reference_op(torch, spec, ["int64", "int8"], seed, backward=False)
        by_id = {a["id"]: a for a in answers["answers"]}
        for first_id in [i for i in by_id if i.endswith("|functional|1") and "zero_size" not in i]:
            first, second = by_id[first_id], by_id[first_id[:-1] + "2"]
            values = [[store.arrays[o["key"]].tobytes() for o in ans["outputs"]] for ans in (first, second)]
            assert values[0] != values[1], (seed, first_id)


def test_same_answer_ignores_empty_outputs():
    import numpy as np

    from validators.parity.run_checks import _same_answer

    one = [("out", ("int64", (2,), np.array([1, 2])))]
    assert _same_answer(one, [("out", ("int64", (2,), np.array([1, 2])))])
    assert not _same_answer(one, [("out", ("int64", (2,), np.array([1, 3])))])
    empty = [("out", ("int64", (0, 4), np.zeros((0, 4), dtype=np.int64)))]
    assert not _same_answer(empty, empty)
