"""Judging the candidate's observations against torch's answers: numpy only, run in the gate's own process.

Policy:
- Result dtype must equal torch's (type promotion), shape must match, NaN positions must match, infinities must be
  equal, finite values within ``atol + rtol * |expected|`` (ints and bool exactly).
- Every input's storage after the call must be byte-for-byte what it was just before the call ("op wrote into
  its inputs"; the before-snapshot must hold the values that were passed in, NaN payloads aside); an out= buffer starts poisoned and must be fully overwritten; an in-place op must bump ``_version``
  when the module has one.
- Statuses: ``pass``; ``fail`` (wrong answer, crash, timeout); ``missing`` (the module lacks the op: a failure,
  never a skip); ``error`` (the op table itself is wrong: torch rejected a case; the harness's bug, not the
  candidate's). One report row per op x dtype x case x form, over both calls.
"""
from __future__ import annotations

import numpy as np

from validators.parity.tensors import FLOATS

SCHEMA = "vt-agent/parity-report/1"
DEFAULT_TOL = {"float64": (1e-10, 1e-9), "float32": (1e-5, 1e-5), "float16": (1e-3, 2e-3), "bfloat16": (1e-2, 1.6e-2)}
GRAD_TOL = (1e-9, 1e-7)  # float64 gradients vs torch's
FD_TOL = (1e-5, 1e-4)  # float64 gradients vs central finite differences of the candidate's own forward
STATUS_RANK = {"pass": 0, "fail": 1, "missing": 2, "error": 3}
REPORT_ORDER = {"fail": 0, "missing": 1, "error": 2, "pass": 3}  # report rows: failures first
NO_AUTOGRAD = "no autograd in runtime"


class Verdict:
    """What one check found: the worst status, the largest errors, the first message."""

    def __init__(self) -> None:
        self.status, self.message = "pass", ""
        self.max_abs_err: float | None = None
        self.max_rel_err: float | None = None

    def problem(self, message: str, status: str = "fail") -> None:
        if STATUS_RANK[status] > STATUS_RANK[self.status] or (status == self.status and not self.message):
            self.status, self.message = status, message

    def errors(self, max_abs: float, max_rel: float) -> None:
        self.max_abs_err = max(max_abs, self.max_abs_err or 0.0)
        self.max_rel_err = max(max_rel, self.max_rel_err or 0.0)


def _index(flat: int, shape) -> list[int]:
    return [int(i) for i in np.unravel_index(flat, shape)] if shape else []


def compare_values(actual: np.ndarray, expected: np.ndarray, dtype: str, atol: float, rtol: float):
    """(message or None, max abs err, max rel err) for two same-shape arrays of dtype ``dtype``."""
    if expected.size == 0:
        return None, 0.0, 0.0
    with np.errstate(all="ignore"):  # garbage values (uninitialised memory) must not spam warnings
        return _compare_values(actual, expected, dtype, atol, rtol)


def _compare_values(actual: np.ndarray, expected: np.ndarray, dtype: str, atol: float, rtol: float):
    if dtype not in FLOATS:
        a, e = actual.astype(np.float64), expected.astype(np.float64)
        err = np.abs(a - e)
        bad = a != e
        rel = err / np.maximum(np.abs(e), 1.0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            return (f"values differ in {int(bad.sum())} of {e.size} elements; first at {_index(i, e.shape)}: got "
                    f"{actual.flat[i].item()!r}, torch gives {expected.flat[i].item()!r} (exact match required)",
                    float(err.max()), float(rel.max()))
        return None, 0.0, 0.0
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    if (nan_a != nan_e).any():
        i = int(np.flatnonzero(nan_a != nan_e)[0])
        return (f"NaN positions differ ({int((nan_a != nan_e).sum())} elements); first at {_index(i, e.shape)}: got "
                f"{float(a.flat[i])}, torch gives {float(e.flat[i])}", float("nan"), float("nan"))
    inf = (np.isinf(a) | np.isinf(e)) & ~nan_e
    if (inf & (a != e)).any():
        i = int(np.flatnonzero(inf & (a != e))[0])
        return f"infinities differ at {_index(i, e.shape)}: got {a.flat[i]}, torch gives {e.flat[i]}", float("inf"), float("inf")
    finite = ~(nan_e | inf)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.where(finite, np.abs(a - e), 0.0)
    rel = err / np.maximum(np.abs(e), np.finfo(np.float64).tiny)
    max_abs, max_rel = float(err.max()), float(rel.max())
    bad = err > atol + rtol * np.abs(np.where(finite, e, 0.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        return (f"values differ in {int(bad.sum())} of {e.size} elements; first at {_index(i, e.shape)}: got "
                f"{float(a.flat[i])!r}, torch gives {float(e.flat[i])!r} (max abs err {max_abs:.3g}, max rel err {max_rel:.3g}; "
                f"atol {atol:g}, rtol {rtol:g})", max_abs, max_rel)
    return None, max_abs, max_rel


def _check_tensor(verdict: Verdict, label: str, observed: dict | None, expected: dict, obs_arrays, exp_arrays,
                  tol: tuple[float, float], prefix: str) -> None:
    where = prefix + (f"{label}: " if label != "out" else "")
    if observed is None:
        verdict.problem(f"{where}missing output (torch returns {expected['label']})")
        return
    if "not_tensor" in observed:
        verdict.problem(f"{where}returned a {observed['not_tensor']} where torch returns a tensor")
        return
    if observed.get("dtype") != expected["dtype"]:
        verdict.problem(f"{where}result dtype {observed.get('dtype')}, torch gives {expected['dtype']} (type promotion)")
        return
    if list(observed.get("shape", [])) != list(expected["shape"]):
        verdict.problem(f"{where}shape {observed.get('shape')}, torch gives {expected['shape']}")
        return
    actual = obs_arrays.get(observed.get("key"))
    if actual is None or list(actual.shape) != list(expected["shape"]):
        verdict.problem(f"{where}the observed values are unreadable")
        return
    message, max_abs, max_rel = compare_values(actual, exp_arrays[expected["key"]], expected["dtype"], *tol)
    if not np.isnan(max_abs):
        verdict.errors(max_abs, max_rel)
    if message:
        verdict.problem(where + message)


def judge(task: dict, answer: dict, obs: dict | None, inputs, expected, observed, tol_for) -> Verdict:
    """The verdict on one call of one check. ``inputs``/``expected``/``observed``: the three array dicts;
    ``tol_for(dtype)``: (atol, rtol) for this op."""
    verdict = Verdict()
    if answer.get("error"):
        verdict.problem(f"{answer['error']} (the parity op table is wrong, not the candidate)", "error")
        return verdict
    if obs is None:
        verdict.problem("no observation: the checking process stopped before this check")
        return verdict
    if obs.get("no_autograd"):
        verdict.problem(f"{NO_AUTOGRAD}: {obs['no_autograd']} (backward: true asks for gradient checks)")
        return verdict
    if obs.get("device_mismatch"):
        verdict.problem(f"wrong device: {obs['device_mismatch']}")
    if obs.get("error"):
        missing = obs.get("error_type") == "AttributeError" and "has no attribute" in obs["error"]
        message = obs["error"] if obs.get("error_type") == "timeout" else f"raised {obs['error']}"
        verdict.problem(f"missing op: {obs['error']}" if missing else message, "missing" if missing else "fail")
        return verdict
    form = task["form"]
    outs = obs.get("outputs", [])
    exp_outs = answer.get("outputs", [])
    if form != "backward" and len(outs) != len(exp_outs):
        verdict.problem(f"returned {len(outs)} outputs, torch returns {len(exp_outs)}")
    for i, exp in enumerate(exp_outs if form != "backward" else []):
        _check_tensor(verdict, exp["label"], outs[i] if i < len(outs) else None, exp, observed, expected,
                      tol_for(exp["dtype"]), "out= buffer " if form == "out" else "")
    if form == "out":
        for ret in obs.get("returned", []):  # torch returns the out buffer; whatever is returned must agree
            _check_tensor(verdict, "returned", ret, exp_outs[0], observed, expected, tol_for(exp_outs[0]["dtype"]),
                          "returned value ")
    if form == "inplace":
        self_dtype = task["args"][0]["dtype"]
        actual = observed.get(obs.get("self_after"))
        want = expected[answer["self_after"]]
        if actual is None or actual.shape != want.shape:
            verdict.problem("in-place: the modified tensor is unreadable or changed shape")
        else:
            message, max_abs, max_rel = compare_values(actual, want, self_dtype, *tol_for(self_dtype))
            if message:
                verdict.problem(f"in-place: the tensor after the op: {message}")
    if form in ("inplace", "out") and obs.get("version_bumped") is False:
        verdict.problem(f"{'in-place' if form == 'inplace' else 'out='} write did not bump the tensor's _version")
    before_keys = obs.get("inputs_before", [])
    for i, key in enumerate(obs.get("inputs_after", [])):
        given = inputs[task["args"][i]["key"]]
        before = observed.get(before_keys[i]) if i < len(before_keys) else None
        if before is None or before.shape != given.shape or \
                compare_values(before, given, task["args"][i]["dtype"], 0.0, 0.0)[0] is not None:
            verdict.problem(f"converting argument {i} into the module's tensor (tensor()/to()) changed its values")
            continue
        after = observed.get(key) if key is not None else before
        if after is None or after.shape != before.shape or after.dtype != before.dtype or \
                after.tobytes() != before.tobytes():
            verdict.problem(f"op wrote into its inputs (argument {i} changed during the call)")
    if form == "backward":
        _judge_grads(verdict, answer, obs, expected, observed)
    return verdict


def _judge_grads(verdict: Verdict, answer: dict, obs: dict, expected, observed) -> None:
    got = {g["arg"]: g.get("key") for g in obs.get("grads", [])}
    for want in answer.get("grads", []):
        key = got.get(want["arg"])
        if key is None:
            verdict.problem(f"backward: no gradient for argument {want['arg']}")
            continue
        exp = {"label": f"grad of argument {want['arg']}", "dtype": "float64",
               "shape": list(expected[want["key"]].shape), "key": want["key"]}
        _check_tensor(verdict, exp["label"], {"dtype": "float64", "shape": list(observed[key].shape), "key": key},
                      exp, observed, expected, GRAD_TOL, "backward: ")
    for fd in obs.get("fd_grads", []):
        key = got.get(fd["arg"])
        if key is None or fd.get("key") not in observed:
            continue
        message, _, _ = compare_values(observed[key], observed[fd["key"]], "float64", *FD_TOL)
        if message:
            verdict.problem(f"backward: gradient of argument {fd['arg']} disagrees with finite differences of the "
                            f"op's own forward: {message.replace('torch gives', 'finite differences give')}")


def describe_shapes(args: list[dict], dtype: str | None = None) -> str:
    """The input shapes of a case as an agent reads them: ``[3,1] x [1,5]``, ``[4,5](transposed)``, ``0-d``,
    ``[6]:int64`` (an argument whose dtype is not the one under test)."""
    parts = []
    for arg in args:
        shape = "0-d" if not arg["shape"] else "[" + ",".join(str(n) for n in arg["shape"]) + "]"
        layout = arg.get("layout", "contiguous")
        parts.append(shape + ("" if layout == "contiguous" else f"({layout})")
                     + ("" if arg.get("dtype") in (None, "", dtype) else f":{arg['dtype']}"))
    return " x ".join(parts)


def _result_arrays(obs: dict | None, observed, form: str) -> list[bytes] | None:
    """The bytes of what one call produced (outputs, or gradients for backward); None when it produced nothing."""
    if not obs or obs.get("error") or obs.get("no_autograd"):
        return None
    keys = [g.get("key") for g in obs.get("grads", [])] if form == "backward" else \
        [o.get("key") for o in obs.get("outputs", [])]
    arrays = [observed.get(k) for k in keys]
    if not arrays or any(a is None for a in arrays):
        return None
    return [a.tobytes() for a in arrays]


def _answer_arrays(answer: dict, expected, form: str) -> list[bytes]:
    keys = [g["key"] for g in answer.get("grads", [])] if form == "backward" else \
        [o["key"] for o in answer.get("outputs", [])]
    return [expected[k].tobytes() for k in keys if k in expected]


def check_op(op: str, category: str, tasks: list[dict], answers: dict[str, dict], observations: dict[str, dict],
             inputs, expected, observed, tol_for, device: str = "cpu") -> list[dict]:
    """Report rows for one op: one per dtype x case x form, over both calls. A second call that returns exactly
    what the first returned, where torch's two answers differ, is named a cached result."""
    rows: dict[tuple, dict] = {}
    first_call: dict[tuple, tuple] = {}  # key -> (observed bytes, answer bytes) of call 1
    for task in tasks:
        obs = observations.get(task["id"])
        verdict = judge(task, answers[task["id"]], obs, inputs, expected, observed, tol_for)
        key = (task["dtype"], task["case"], task["form"])
        atol, rtol = tol_for(task["dtype"]) if task["form"] != "backward" else GRAD_TOL
        row = rows.setdefault(key, {"op": op, "dtype": task["dtype"], "device": device, "max_err": None,
                                    "tol": {"atol": atol, "rtol": rtol}, "status": "pass", "message": "",
                                    "category": category, "case": task["case"], "form": task["form"],
                                    "shapes": describe_shapes(task["args"], task["dtype"]), "max_abs_err": None,
                                    "max_rel_err": None, "atol": atol, "rtol": rtol, "calls": 0})
        row["calls"] += 1
        for field in ("max_abs_err", "max_rel_err"):
            value = getattr(verdict, field)
            if value is not None:
                row[field] = max(value, row[field] or 0.0)
        row["max_err"] = row["max_abs_err"]
        results = (_result_arrays(obs, observed, task["form"]), _answer_arrays(answers[task["id"]], expected,
                                                                                 task["form"]))
        if task["call"] == 1:
            first_call[key] = results
        if STATUS_RANK[verdict.status] > STATUS_RANK[row["status"]]:
            message = verdict.message
            if task["call"] > 1 and row["status"] == "pass":
                before = first_call.get(key)
                cached = before is not None and results[0] is not None and results[0] == before[0] \
                    and results[1] != before[1]
                message = (f"call {task['call']} returned exactly call 1's result for different inputs (torch's "
                           f"answers differ): a cached or stale result; {message}" if cached
                           else f"call {task['call']} (fresh inputs) failed after call 1 passed: {message}")
            row["status"] = verdict.status
            row["message"] = message
    return list(rows.values())


def missing_row(op: str, category: str, message: str, status: str = "missing", device: str = "cpu") -> dict:
    return {"op": op, "dtype": "*", "device": device, "max_err": None, "tol": None, "status": status,
            "message": message, "category": category, "case": "*", "form": "*", "shapes": "",
            "max_abs_err": None, "max_rel_err": None, "atol": None, "rtol": None, "calls": 0}


def sort_rows(rows: list[dict]) -> list[dict]:
    """Failures first (fail, missing, error, then pass); stable within a status (table order)."""
    return sorted(rows, key=lambda r: REPORT_ORDER[r["status"]])


def totals(rows: list[dict]) -> tuple[dict, dict]:
    """(totals over all rows, totals per category); keys: checks and one per status."""
    overall = {"checks": 0, **{s: 0 for s in STATUS_RANK}}
    per_category: dict[str, dict] = {}
    for row in rows:
        for bucket in (overall, per_category.setdefault(row["category"], {"checks": 0, **{s: 0 for s in STATUS_RANK}})):
            bucket["checks"] += 1
            bucket[row["status"]] += 1
    return overall, per_category


def failure_line(row: dict, limit: int | None = None) -> str:
    where = row["op"] if row["dtype"] == "*" else \
        f"{row['op']} {row['dtype']} {row['form']} case {row['case']} (inputs {row['shapes']})"
    message = row["message"] if limit is None or len(row["message"]) <= limit else row["message"][:limit] + " [...]"
    return f"{row['status'].upper()} {where}: {message}"
