"""Subprocess entry point of the parity gate, in two phases that never run in one process.

    python -m validators.parity.run_checks reference --ops all --dtypes all --seed S [--backward] --inputs DIR
        --expected DIR
    python -m validators.parity.run_checks candidate --module M [--site-dir D] [--ops OPS] [--device cpu|cuda]
        --inputs DIR --observed DIR

``reference`` imports torch (never the candidate): for every op x dtype x case x form and two calls with fresh
random inputs it writes the inputs (``DIR/<op>.json`` + ``.arrays``) and, separately, torch's results.
``candidate`` imports the module under test (never torch: a candidate cannot patch the reference) after putting
``--site-dir`` first on sys.path, replays the inputs and writes what it observed: outputs, every input's storage
after the call, out= buffers, ``_version`` bumps, gradients. It judges nothing; ``validators.parity.compare``
does, in the gate's own process. Progress goes to ``DIR/progress.jsonl`` (one line as each op starts and ends) so
a crash or a hang names the op it happened in (the gate then restarts this phase after that op with ``--ops``).
A per-op alarm stops a slow op; a watchdog exits the process if an op hangs inside native code. Also noted there:
``no_autograd`` (gradient checks were asked for, the module has no working autograd: those checks fail with the
reason, they are never skipped silently) and ``torch_imported`` (the module under test imported the reference).

Array files (``tensors.save_arrays``) hold plain numbers only; keys are ``k<n>``.
"""
from __future__ import annotations

import argparse
import faulthandler
import importlib
import json
import signal
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from validators.parity.op_table import OpSpec, required_attributes, select_ops
from validators.parity.tensors import (FLOATS, apply_layout, flatten_outputs, is_tensor, load_arrays, make_array,
                                       save_arrays, to_framework, to_numpy)

FORMS = ("functional", "inplace", "out", "backward")
CALLS = (1, 2)  # every check runs twice on fresh inputs: a result cached from an earlier call cannot pass
REDRAWS = 8  # call 2 redraws its inputs (up to this many times) until torch's answer differs from call 1's
FD_MAX_ELEMENTS = 48  # finite differences only for small inputs (2 forward calls per element)
FD_EPS = 1e-6


def _same_answer(outs: list, first: list) -> bool:
    """Whether torch's answer for call 2 equals call 1's bit for bit (then a cached result would pass unnoticed).
    An answer with no elements is never "the same": redrawing cannot change it."""
    if len(outs) != len(first) or not any(np.asarray(v).size for _, (_, _, v) in outs):
        return False
    return all(la == lb and da == db and list(sa) == list(sb) and np.asarray(va).tobytes() == np.asarray(vb).tobytes()
               for (la, (da, sa, va)), (lb, (db, sb, vb)) in zip(outs, first))


class ArrayStore:
    """Numbered arrays for one op, saved as one array file next to a JSON document."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def put(self, array: np.ndarray) -> str:
        key = f"k{len(self.arrays)}"
        self.arrays[key] = np.array(array, order="C", copy=True)  # (ascontiguousarray would make 0-dim 1-dim)
        return key

    def save(self, path: Path) -> None:
        save_arrays(path, self.arrays)


def grad_args(spec: OpSpec, case) -> list[int]:
    if spec.grad is True:
        return [i for i, arg in enumerate(case.args) if arg.dtype is None]
    return list(spec.grad or ())


def poison_for(expected: np.ndarray, dtype: str, call: int) -> np.ndarray:
    """An out= buffer's initial contents: NaN for floats; for ints a value absent from the expected result; for bool
    all-True on call 1 and all-False on call 2 (an unwritten element is caught on at least one call)."""
    if dtype in FLOATS:
        return np.full(expected.shape, np.nan, dtype=expected.dtype)
    if dtype == "bool":
        return np.full(expected.shape, call == 1)
    info = np.iinfo(expected.dtype)
    present = set(np.unique(expected).tolist())
    sentinel = next(v for v in range(int(info.max), int(info.min) - 1, -1) if v not in present)
    return np.full(expected.shape, sentinel, dtype=expected.dtype)


# ---------------------------------------------------------------------------------------------------------------
# Reference phase (torch)


def _torch_inputs(torch, case, arrays, dtype, requires_grad=()):
    bases, views = [], []
    for i, (arg, arr) in enumerate(zip(case.args, arrays)):
        base = to_framework(torch, arr.copy(), arg.dtype or dtype)
        if i in requires_grad:
            base.requires_grad_(True)
        bases.append(base)
        views.append(apply_layout(base, arg.layout, arg.shape))
    return bases, views


def reference_op(torch, spec: OpSpec, dtypes: list[str], seed: int,
                 backward: bool = True) -> tuple[dict, ArrayStore, dict, ArrayStore]:
    """(task document, input arrays, expected document, expected arrays) for one op; gradient checks only when
    ``backward``."""
    inputs, expected = ArrayStore(), ArrayStore()
    tasks, answers = [], []
    for dtype in [d for d in spec.dtypes if d in dtypes]:
        for case_index, case in enumerate(spec.cases):
            rng = np.random.default_rng([seed, zlib.crc32(f"{spec.name}|{dtype}|{case.label}".encode())])
            first_outs = None
            for call in CALLS:
                for _attempt in range(REDRAWS):
                    arrays = [make_array(rng, arg, dtype) for arg in case.args]
                    _, views = _torch_inputs(torch, case, arrays, dtype)
                    try:
                        ref_fn = spec.reference or spec.fn
                        outs = [(label, to_numpy(torch, t)) for label, t in flatten_outputs(ref_fn(torch, *views))]
                        error = None
                    except Exception as e:  # a case torch rejects is a bug in the table
                        outs, error = [], f"reference (torch) raised {type(e).__name__}: {e}"
                    if first_outs is None or error or not _same_answer(outs, first_outs):
                        break
                if call == 1:
                    first_outs = outs
                arg_docs = [{"key": inputs.put(arr), "dtype": arg.dtype or dtype, "layout": arg.layout,
                             "shape": list(arg.shape)} for arg, arr in zip(case.args, arrays)]
                base_id = f"{dtype}|{case.label}|{{form}}|{call}"
                task = {"dtype": dtype, "case": case.label, "call": call, "args": arg_docs}
                answer = {"outputs": [{"label": lb, "dtype": d, "shape": list(s), "key": expected.put(v)}
                                      for lb, (d, s, v) in outs], "error": error}
                tasks.append({**task, "id": base_id.format(form="functional"), "form": "functional"})
                answers.append({**answer, "id": base_id.format(form="functional")})
                if error:
                    continue
                if spec.inplace is not None:
                    bases, views = _torch_inputs(torch, case, arrays, dtype)
                    try:
                        returned = spec.inplace(*views)
                        self_after = to_numpy(torch, bases[0])[2]
                        ret = to_numpy(torch, returned)
                    except Exception:  # torch rejects this in-place case (broadcast self, int self, ...)
                        pass
                    else:
                        tasks.append({**task, "id": base_id.format(form="inplace"), "form": "inplace"})
                        answers.append({"id": base_id.format(form="inplace"), "self_after": expected.put(self_after),
                                        "outputs": [{"label": "returned", "dtype": ret[0], "shape": list(ret[1]),
                                                     "key": expected.put(ret[2])}]})
                if spec.out and len(outs) == 1:
                    label, (out_dtype, out_shape, out_values) = outs[0]
                    poison = poison_for(out_values, out_dtype, call)
                    _, views = _torch_inputs(torch, case, arrays, dtype)
                    try:
                        buffer = to_framework(torch, poison.copy(), out_dtype)
                        spec.fn(torch, *views, out=buffer)
                        ok = np.array_equal(to_numpy(torch, buffer)[2], out_values, equal_nan=out_dtype in FLOATS)
                    except Exception:
                        ok = False
                    if ok:
                        tasks.append({**task, "id": base_id.format(form="out"), "form": "out",
                                      "out": {"dtype": out_dtype, "shape": list(out_shape),
                                              "poison": inputs.put(poison)}})
                        answers.append({"id": base_id.format(form="out"),
                                        "outputs": [{"label": "out", "dtype": out_dtype, "shape": list(out_shape),
                                                     "key": expected.put(out_values)}]})
                wrt = grad_args(spec, case)
                if backward and spec.grad and dtype == "float64" and wrt:
                    cotangents = [rng.standard_normal(v.shape) if d in FLOATS else None for _, (d, _, v) in outs]
                    bases, views = _torch_inputs(torch, case, arrays, dtype, requires_grad=wrt)
                    try:
                        leaves = flatten_outputs(spec.fn(torch, *views))
                        loss = sum((t * torch.tensor(c)).sum() for (_, t), c in zip(leaves, cotangents)
                                   if c is not None)
                        grads = torch.autograd.grad(loss, [bases[i] for i in wrt], allow_unused=True)
                    except Exception as e:  # a table bug, like a functional case torch rejects
                        tasks.append({**task, "id": base_id.format(form="backward"), "form": "backward"})
                        answers.append({"id": base_id.format(form="backward"),
                                        "error": f"reference (torch) backward raised {type(e).__name__}: {e}"})
                        continue
                    tasks.append({**task, "id": base_id.format(form="backward"), "form": "backward",
                                  "wrt": wrt, "cotangents": [None if c is None else inputs.put(c) for c in cotangents],
                                  "finite_differences": case_index == 0 and call == 1
                                  and sum(arrays[i].size for i in wrt) <= FD_MAX_ELEMENTS})
                    answers.append({"id": base_id.format(form="backward"), "grads": [
                        {"arg": i, "key": expected.put(np.zeros(arrays[i].shape) if g is None else g.numpy())}
                        for i, g in zip(wrt, grads)]})
    return {"op": spec.name, "tasks": tasks}, inputs, {"op": spec.name, "answers": answers}, expected


def run_reference(args) -> int:
    import warnings

    import torch  # the reference; imported only in this phase

    warnings.filterwarnings("ignore")  # torch's deprecation notes (out= resizing) are not findings

    torch.set_num_threads(1)
    specs = select_ops(args.ops)
    dtypes = args.dtypes.replace(",", " ").split() if args.dtypes != "all" else list(FLOATS) + [
        "int8", "uint8", "int16", "int32", "int64", "bool"]
    inputs_dir, expected_dir = Path(args.inputs), Path(args.expected)
    inputs_dir.mkdir(parents=True, exist_ok=True)
    expected_dir.mkdir(parents=True, exist_ok=True)
    for spec in specs:
        task_doc, inputs, answer_doc, expected = reference_op(torch, spec, dtypes, args.seed, args.backward)
        (inputs_dir / f"{spec.name}.json").write_text(json.dumps(task_doc))
        inputs.save(inputs_dir / f"{spec.name}.arrays")
        (expected_dir / f"{spec.name}.json").write_text(json.dumps(answer_doc))
        expected.save(expected_dir / f"{spec.name}.arrays")
    (inputs_dir / "plan.json").write_text(json.dumps({"seed": args.seed, "ops": [s.name for s in specs],
                                                      "dtypes": dtypes, "backward": args.backward}))
    return 0


# ---------------------------------------------------------------------------------------------------------------
# Candidate phase (the module under test)


class OpTimeout(Exception):
    pass


def _on_alarm(signum, frame):  # noqa: ARG001
    raise OpTimeout()


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"[:500]


DEVICE = "cpu"  # set by run_candidate: where the candidate's inputs live (the reference is always torch on CPU)


def _on_device(vt, t):
    return t if DEVICE == "cpu" else t.to(DEVICE)


def _candidate_inputs(vt, task, arrays, requires_grad=()):
    bases, views = [], []
    for i, arg in enumerate(task["args"]):
        base = _on_device(vt, to_framework(vt, arrays[arg["key"]].copy(), arg["dtype"]))
        if i in requires_grad:
            returned = base.requires_grad_(True)
            base = base if returned is None else returned
        bases.append(base)
        views.append(apply_layout(base, arg["layout"], tuple(arg["shape"])))
    return bases, views


def _device_type(t) -> str:
    dev = getattr(t, "device", "cpu")
    return str(getattr(dev, "type", dev)).split(":")[0]


def _observe_outputs(vt, result, store: ArrayStore, obs: dict | None = None) -> list[dict]:
    observed = []
    for label, leaf in flatten_outputs(result):
        if not is_tensor(leaf):
            observed.append({"label": label, "not_tensor": type(leaf).__name__})
            continue
        if obs is not None and _device_type(leaf) != DEVICE.split(":")[0] and "device_mismatch" not in obs:
            obs["device_mismatch"] = f"{label} is on device {_device_type(leaf)}, the inputs on {DEVICE}"
        d, s, v = to_numpy(vt, leaf)
        observed.append({"label": label, "dtype": d, "shape": list(s), "key": store.put(v)})
    return observed


def _version(t):
    v = getattr(t, "_version", None)
    return v if isinstance(v, int) else None


def _loss(vt, spec, views, cotangents):
    leaves = flatten_outputs(spec.fn(vt, *views))
    terms = [(t * _on_device(vt, to_framework(vt, c, "float64"))).sum()
             for (_, t), c in zip(leaves, cotangents) if c is not None]
    if len(leaves) != len(cotangents):
        raise ValueError(f"op returned {len(leaves)} outputs, torch returns {len(cotangents)}")
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def observe_task(vt, spec: OpSpec, task: dict, arrays, store: ArrayStore) -> dict:
    obs: dict = {"id": task["id"]}
    form = task["form"]
    wrt = task.get("wrt", [])
    bases, views = _candidate_inputs(vt, task, arrays, requires_grad=wrt if form == "backward" else ())
    obs["inputs_before"] = [store.put(to_numpy(vt, b)[2]) for b in bases]
    if form == "functional":
        obs["outputs"] = _observe_outputs(vt, spec.fn(vt, *views), store, obs)
    elif form == "inplace":
        before = _version(views[0])
        returned = spec.inplace(*views)
        after = _version(views[0])
        obs["version_bumped"] = None if before is None or after is None else after > before
        obs["self_after"] = store.put(to_numpy(vt, bases[0])[2])
        obs["outputs"] = [{**o, "label": "returned"} for o in _observe_outputs(vt, returned, store, obs)]
    elif form == "out":
        buffer = _on_device(vt, to_framework(vt, arrays[task["out"]["poison"]].copy(), task["out"]["dtype"]))
        before = _version(buffer)
        returned = spec.fn(vt, *views, out=buffer)
        after = _version(buffer)
        obs["version_bumped"] = None if before is None or after is None else after > before
        obs["outputs"] = _observe_outputs(vt, buffer, store, obs)
        obs["returned"] = _observe_outputs(vt, returned, store, obs) if returned is not None else []
    elif form == "backward":
        cotangents = [None if k is None else arrays[k] for k in task["cotangents"]]
        _loss(vt, spec, views, cotangents).backward()
        grads = []
        for i in wrt:
            g = getattr(bases[i], "grad", None)
            grads.append({"arg": i, "key": None if g is None else store.put(to_numpy(vt, g)[2])})
        obs["grads"] = grads
        if task.get("finite_differences"):
            obs["fd_grads"] = [{"arg": i, "key": store.put(_finite_differences(vt, spec, task, arrays, cotangents, i))}
                               for i in wrt]
    bases_after = bases if form != "inplace" else [None] + bases[1:]
    obs["inputs_after"] = [None if b is None else store.put(to_numpy(vt, b)[2]) for b in bases_after]
    return obs


def _finite_differences(vt, spec, task, arrays, cotangents, arg_index) -> np.ndarray:
    """Central differences of the candidate's own forward loss with respect to argument ``arg_index``."""
    key = task["args"][arg_index]["key"]
    base = arrays[key]
    grad = np.zeros(base.shape)
    for j in range(base.size):
        values = []
        for step in (FD_EPS, -FD_EPS):
            perturbed = dict(arrays)
            shifted = base.copy()
            shifted.flat[j] += step
            perturbed[key] = shifted
            with_grad = ()
            _, views = _candidate_inputs(vt, task, perturbed, with_grad)
            values.append(float(to_numpy(vt, _loss(vt, spec, views, cotangents))[2]))
        grad.flat[j] = (values[0] - values[1]) / (2 * FD_EPS)
    return grad


def _attribute_missing(vt, path: str) -> bool:
    obj = vt
    for part in path.split("."):
        if not hasattr(obj, part):
            return True
        obj = getattr(obj, part)
    return False


def autograd_problem(vt, module: str) -> str | None:
    """None when the module has a working autograd surface; else why the gradient checks cannot run."""
    if not hasattr(vt, "autograd"):
        return f"{module} has no autograd subpackage ({module}.autograd)"
    try:
        leaf = vt.tensor([1.0, 2.0])
        returned = leaf.requires_grad_(True)
        leaf = leaf if returned is None else returned
        if not callable(getattr(leaf, "backward", None)):
            return f"{module} tensors have no backward()"
        (leaf * leaf).sum().backward()
        grad = getattr(leaf, "grad", None)
        if grad is None:
            return "backward() on (x * x).sum() left x.grad as None"
    except Exception as e:  # noqa: BLE001
        return f"a minimal backward ((x * x).sum().backward()) raised {_describe(e)}"
    return None


def _with_functional(vt, functional):
    """``vt`` seen through a module whose ``nn.functional`` is ``functional``: for a core-only build whose torch-like
    functional ops live outside the (subsystem) ``nn`` package. Every other attribute is ``vt``'s own."""
    import types

    class CoreView(types.ModuleType):
        def __getattr__(self, name):
            return getattr(vt, name)

    view = CoreView(vt.__name__)
    view.nn = types.SimpleNamespace(functional=functional)
    return view


def _watch_torch_imports() -> list[str]:
    """A list that fills with every import of torch from now on. An audit hook cannot be removed, so a module that
    imports torch and then deletes it from sys.modules is still seen (native code loading libtorch is not)."""
    seen: list[str] = []

    def hook(event: str, hook_args) -> None:
        if event == "import" and hook_args and str(hook_args[0]).split(".")[0] == "torch" and not seen:
            seen.append(str(hook_args[0]))

    sys.addaudithook(hook)
    return seen


def run_candidate(args) -> int:
    global DEVICE
    DEVICE = args.device
    inputs_dir, observed_dir = Path(args.inputs), Path(args.observed)
    observed_dir.mkdir(parents=True, exist_ok=True)
    progress = open(observed_dir / "progress.jsonl", "a", encoding="utf-8")

    def note(**event) -> None:
        progress.write(json.dumps({"t": round(time.time(), 3), **event}) + "\n")
        progress.flush()

    plan = json.loads((inputs_dir / "plan.json").read_text())
    ops = args.ops.replace(",", " ").split() if args.ops else plan["ops"]
    torch_before = "torch" in sys.modules
    torch_imports = _watch_torch_imports()
    if args.site_dir:
        sys.path.insert(0, args.site_dir)
    note(event="import", module=args.module)
    try:
        vt = importlib.import_module(args.module)
        if args.functional_module and not hasattr(vt, "nn"):
            vt = _with_functional(vt, importlib.import_module(args.functional_module))
            note(event="functional_module", module=args.functional_module)
    except BaseException as e:  # noqa: BLE001 (the candidate may raise anything, SystemExit included)
        note(event="import_failed", error=_describe(e))
        return 3
    no_autograd = None
    if plan.get("backward"):
        no_autograd = autograd_problem(vt, args.module)
        if no_autograd:
            note(event="no_autograd", error=no_autograd)
    signal.signal(signal.SIGALRM, _on_alarm)
    for name in ops:
        spec = select_ops([name])[0]
        task_doc = json.loads((inputs_dir / f"{name}.json").read_text())
        arrays = load_arrays(inputs_dir / f"{name}.arrays")
        note(event="start", op=name)
        store, observations = ArrayStore(), []
        missing = [p for p in required_attributes(spec) if _attribute_missing(vt, p)]
        if missing:
            observations.append({"id": "*", "missing": f"{args.module}.{missing[0]}"})
        else:
            timed_out = False
            for task in task_doc["tasks"]:
                if task["form"] == "backward" and no_autograd:
                    observations.append({"id": task["id"], "no_autograd": no_autograd})
                    continue
                if timed_out:
                    observations.append({"id": task["id"], "error": "not run: an earlier call of this op timed out",
                                         "error_type": "timeout"})
                    continue
                # per call: an alarm stops a Python-level hang; the watchdog ends a hang inside native code
                faulthandler.dump_traceback_later(args.op_timeout + 15, exit=True)
                signal.setitimer(signal.ITIMER_REAL, args.op_timeout)
                try:
                    observations.append(observe_task(vt, spec, task, arrays, store))
                except OpTimeout:
                    timed_out = True
                    observations.append({"id": task["id"], "error": f"timed out after {args.op_timeout}s",
                                         "error_type": "timeout"})
                except BaseException as e:  # noqa: BLE001 (candidate code may raise anything)
                    if isinstance(e, KeyboardInterrupt):
                        raise
                    observations.append({"id": task["id"], "error": _describe(e),
                                         "error_type": type(e).__name__})
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    faulthandler.cancel_dump_traceback_later()
        (observed_dir / f"{name}.json").write_text(json.dumps({"op": name, "observations": observations}))
        store.save(observed_dir / f"{name}.arrays")
        note(event="done", op=name)
    if (torch_imports or "torch" in sys.modules) and not torch_before:
        note(event="torch_imported", error=f"{args.module} imported torch (the reference) while it was checked")
    note(event="finished")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m validators.parity.run_checks", description=__doc__.split("\n")[0])
    phases = parser.add_subparsers(dest="phase", required=True)
    ref = phases.add_parser("reference", help="torch only: inputs and expected results")
    ref.add_argument("--ops", default="all")
    ref.add_argument("--dtypes", default="all")
    ref.add_argument("--seed", type=int, required=True)
    ref.add_argument("--inputs", required=True)
    ref.add_argument("--expected", required=True)
    ref.add_argument("--backward", action="store_true", help="also compute gradients (float64)")
    cand = phases.add_parser("candidate", help="the module under test only: observations")
    cand.add_argument("--module", default="vibetensor.torch")
    cand.add_argument("--site-dir", default="")
    cand.add_argument("--inputs", required=True)
    cand.add_argument("--observed", required=True)
    cand.add_argument("--ops", default="", help="check only these ops of the plan (default: all of them)")
    cand.add_argument("--device", default="cpu", help="where the candidate's tensors live (cpu, cuda)")
    cand.add_argument("--functional-module", default="",
                      help="serves T.nn.functional when the module has no nn (a core-only build)")
    cand.add_argument("--op-timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    try:
        return run_reference(args) if args.phase == "reference" else run_candidate(args)
    except ValueError as e:  # bad selection: a clear message, exit status 2
        print(f"parity: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
