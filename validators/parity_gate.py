"""Parity gate: every op in the parity table against PyTorch CPU, on fresh random inputs, judged out of process.

Spec form: ``parity: {ops: core, dtypes: all, backward: true, device: cpu}``.

Flow (each subprocess through ``validators.sandbox.run_sandboxed``: own session, timeout, everything killed):
1. ``run_checks reference`` (torch, never the candidate): inputs and torch's answers for a seed drawn fresh from a
   nonce each run (option ``seed`` pins it; it is recorded in the report). Every check is made twice, on two
   different random inputs (the second redrawn until torch's answer differs from the first, which small integer
   ranges would otherwise often repeat), so an op returning a cached result fails its second call.
2. The gate loads inputs and answers into memory and deletes the answers from disk.
3. ``run_checks candidate`` (the module under test, never torch) with ``ctx.state["site_dir"]`` first on its
   sys.path: replays the inputs, writes observations and a progress file. When it crashes (a segfault) or hangs
   inside an op, that op fails, naming the signal, and the phase is restarted after it (up to ``max_restarts``
   times), so one crashing op does not hide the verdict on the others.
4. ``validators.parity.compare`` (numpy, this process) judges; the report goes to ``work_dir/parity.json``.
An op the module lacks is a failure ("missing op"), never a skip. ``backward: true`` without autograd in the
runtime fails every gradient check with "no autograd in runtime", never a silent pass. Rows whose status is
``error`` mean the table itself is wrong (torch rejected it): the gate then reports "error" (harness bug).
The module under test importing torch while it is checked fails the gate (``forbid_torch``): parity against the
reference proves nothing when the candidate can call the reference.

Options: ``module`` (default "vibetensor.torch"), ``ops`` ("core" = "all" = the whole table, a list, names or globs
like "elementwise.*"), ``dtypes`` ("all" or a list), ``backward`` (bool, default false: gradients in float64 vs
torch.autograd and finite differences), ``device`` ("cpu" or "cuda": where the candidate's tensors live; the
reference is torch on CPU), ``seed`` (int), ``op_timeout_s`` (default 60), ``max_restarts`` (default 8),
``forbid_torch`` (default true), ``functional_module`` (serves ``T.nn.functional`` when the module has no ``nn``:
a core-only build, e.g. "vibetensor.torch._functional"; unused when ``nn`` exists), ``site_dir`` (used when ctx.state has none), ``keep_artifacts`` (keep the
input/observation arrays). Report schema: validators/README.md.
"""
from __future__ import annotations

import json
import secrets
import shutil
import signal
import sys
import time
from pathlib import Path

from harness.interfaces import GateContext, GateResult
from validators.parity import compare
from validators.parity.op_table import OPS_BY_NAME, select_ops
from validators.parity.tensors import DTYPES, load_arrays
from validators.sandbox import bounded, run_sandboxed

SUMMARY_FAILURES = 12
OPTIONS = {"module", "ops", "dtypes", "backward", "device", "seed", "op_timeout_s", "max_restarts", "forbid_torch",
           "site_dir", "keep_artifacts", "functional_module"}


def _read_progress(path: Path) -> list[dict]:
    events = []
    if path.is_file():
        for line in path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.append(event)
    return events


def _as_list(value) -> list[str] | str:
    if value in (None, "all", "core"):
        return "all"
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _bool(opts: dict, key: str, default: bool) -> bool:
    value = opts.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"parity: option {key} must be true or false, got {value!r}")
    return value


def _how(run) -> str:
    if run.timed_out:
        return "timed out"
    if run.error:
        return f"failed ({run.error})"
    if run.returncode < 0:
        try:
            name = signal.Signals(-run.returncode).name
        except ValueError:
            name = str(-run.returncode)
        return f"was killed by signal {-run.returncode} ({name})"
    return f"exited with code {run.returncode}"


class ParityGate:
    name = "parity"
    version = "3"

    def run(self, ctx: GateContext) -> GateResult:
        start = time.monotonic()
        work_dir = Path(ctx.work_dir)
        work_dir.mkdir(parents=True, exist_ok=True)
        log_path, report_path = work_dir / "parity.log", work_dir / "parity.json"
        log_path.write_text("")
        opts = ctx.options or {}

        def result(status: str, summary: str, metrics: dict | None = None, report: bool = False) -> GateResult:
            return GateResult(self.name, status, time.monotonic() - start, bounded(summary), metrics or {},
                              str(log_path), str(report_path) if report else None)

        try:
            unknown = sorted(set(opts) - OPTIONS)
            if unknown:
                raise ValueError(f"parity: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(OPTIONS))}")
            module = str(opts.get("module", "vibetensor.torch"))
            functional_module = str(opts.get("functional_module") or "")
            for value in (module, functional_module):
                if value and not all(part.isidentifier() for part in value.split(".")):
                    raise ValueError(f"parity: module {value!r} is not a Python module path")
            device = str(opts.get("device", "cpu"))
            if device.split(":")[0] not in ("cpu", "cuda"):
                raise ValueError(f"parity: device {device!r} is not 'cpu' or 'cuda'")
            specs = select_ops(_as_list(opts.get("ops", "all")))
            dtypes = _as_list(opts.get("dtypes", "all"))
            unknown = [d for d in dtypes if d not in DTYPES] if dtypes != "all" else []
            if unknown:
                raise ValueError(f"parity: unknown dtype(s) {', '.join(unknown)} (known: {', '.join(DTYPES)})")
            backward = _bool(opts, "backward", False)
            forbid_torch = _bool(opts, "forbid_torch", True)
            seed = int(opts["seed"]) if opts.get("seed") is not None else secrets.randbits(31)
            op_timeout = float(opts.get("op_timeout_s", 60))
            max_restarts = int(opts.get("max_restarts", 8))
        except (ValueError, TypeError) as e:
            return result("error", str(e))
        site_dir = ctx.state.get("site_dir") or opts.get("site_dir") or ""
        run_dir = work_dir / "parity-run"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        inputs_dir, expected_dir, observed_dir = run_dir / "inputs", run_dir / "expected", run_dir / "observed"
        # one thread: the inputs are tiny, and thread pools only add contention on a shared 2-core CI machine
        env = {**ctx.env, "PYTHONPATH": str(Path(ctx.trusted_root).resolve()), "PYTHONDONTWRITEBYTECODE": "1",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        base_cmd = [sys.executable, "-m", "validators.parity.run_checks"]
        deadline = start + ctx.timeout_s

        # 1. reference (torch only)
        ref = run_sandboxed(base_cmd + ["reference", "--ops", " ".join(s.name for s in specs),
                                        "--dtypes", " ".join(dtypes) if dtypes != "all" else "all",
                                        "--seed", str(seed), "--inputs", str(inputs_dir),
                                        "--expected", str(expected_dir)] + (["--backward"] if backward else []),
                            cwd=Path(ctx.trusted_root), env=env, timeout_s=max(1.0, deadline - time.monotonic()),
                            log_path=log_path)
        if ref.returncode != 0 or ref.error:
            why = ref.error or ("timed out" if ref.timed_out else f"exit code {ref.returncode}")
            return result("error", f"parity: the reference run (torch) failed: {why}; see {log_path}")
        plan = json.loads((inputs_dir / "plan.json").read_text())
        # 2. everything the judge needs, in memory; the answers leave the disk before candidate code runs
        tasks, inputs, answers, expected = {}, {}, {}, {}
        for name in plan["ops"]:
            tasks[name] = json.loads((inputs_dir / f"{name}.json").read_text())["tasks"]
            inputs[name] = load_arrays(inputs_dir / f"{name}.arrays")
            answers[name] = {a["id"]: a for a in json.loads((expected_dir / f"{name}.json").read_text())["answers"]}
            expected[name] = load_arrays(expected_dir / f"{name}.arrays")
        shutil.rmtree(expected_dir)

        # 3. candidate (the module under test only), restarted after an op that kills it
        crashes, fatal, runs = {}, None, 0
        remaining = list(plan["ops"])
        while remaining:
            runs += 1
            seen = len(_read_progress(observed_dir / "progress.jsonl"))
            cand = run_sandboxed(base_cmd + ["candidate", "--module", module, "--site-dir", str(site_dir),
                                             "--inputs", str(inputs_dir), "--observed", str(observed_dir),
                                             "--ops", " ".join(remaining), "--device", device,
                                             "--functional-module", functional_module,
                                             "--op-timeout", str(op_timeout)],
                                 cwd=Path(ctx.trusted_root), env=env,
                                 timeout_s=max(1.0, deadline - time.monotonic()), log_path=log_path)
            events = _read_progress(observed_dir / "progress.jsonl")[seen:]  # this run's events
            if any(e.get("event") == "finished" for e in events):
                break
            import_failed = next((e for e in events if e.get("event") == "import_failed"), None)
            if import_failed:
                fatal = f"cannot import module {module}: {import_failed.get('error')}"
                break
            done = {e["op"] for e in events if e.get("event") == "done"}
            started = [e["op"] for e in events if e.get("event") == "start" and e.get("op") in remaining]
            crashed_in = next((op for op in reversed(started) if op not in done), None)
            if crashed_in is None:
                fatal = f"the checking process {_how(cand)} before checking any op (while importing {module}?)"
                break
            crashes[crashed_in] = f"the checking process {_how(cand)} while running {crashed_in}"
            remaining = [op for op in remaining[remaining.index(crashed_in) + 1:] if op not in done]
            if time.monotonic() > deadline - 1:
                fatal = f"the gate's time ({ctx.timeout_s:.0f}s) ran out after {crashes[crashed_in]}"
                break
            if runs > max_restarts and remaining:
                fatal = f"gave up after {runs} crashed runs of the checking process (max_restarts {max_restarts})"
                break
        events = _read_progress(observed_dir / "progress.jsonl")
        no_autograd = next((e.get("error") for e in events if e.get("event") == "no_autograd"), None)
        torch_imported = next((e.get("error") for e in events if e.get("event") == "torch_imported"), None)
        if torch_imported and forbid_torch and fatal is None:
            fatal = torch_imported + " (forbid_torch: parity against torch proves nothing when the module calls it)"

        # 4. judge
        rows = compare.sort_rows(self._judge(plan["ops"], tasks, inputs, answers, expected, observed_dir, events,
                                             crashes, fatal, device))
        overall, per_category = compare.totals(rows)
        report = {"schema": compare.SCHEMA, "gate_version": self.version, "module": module, "seed": seed,
                  "device": device, "backward": backward, "ops": plan["ops"], "dtypes": plan["dtypes"],
                  "finished": fatal is None, "fatal": fatal, "crashes": crashes, "no_autograd": no_autograd,
                  "torch_imported": torch_imported, "candidate_runs": runs,
                  "duration_s": round(time.monotonic() - start, 3), "totals": overall, "categories": per_category,
                  "rows": rows}
        report_path.write_text(json.dumps(report, indent=1))
        if not opts.get("keep_artifacts"):
            shutil.rmtree(run_dir, ignore_errors=True)
        failed = overall["fail"] + overall["missing"]
        status = "fail" if failed or fatal else ("error" if overall["error"] or not rows else "pass")
        head = (f"parity {status.upper()}: {overall['pass']} of {overall['checks']} checks passed, {overall['fail']} "
                f"failed, {overall['missing']} missing, {overall['error']} table errors ({len(plan['ops'])} ops; "
                f"module {module}; seed {seed}; device {device}; backward {'on' if backward else 'off'})")
        lines = [f"FATAL {fatal}"] if fatal else []
        lines += [f"CRASH {op}: {why}" for op, why in crashes.items()]
        bad = [r for r in rows if r["status"] != "pass"]
        if no_autograd:
            lines.append(f"FAIL backward: {compare.NO_AUTOGRAD}: {no_autograd}; "
                         f"{sum(compare.NO_AUTOGRAD in r['message'] for r in bad)} gradient checks failed unrun")
            bad = [r for r in bad if compare.NO_AUTOGRAD not in r["message"]]
        by_op: dict[str, list[dict]] = {}
        bad.sort(key=lambda r: r["status"] != "missing")  # missing ops first: the shortest fix for the agent
        for row in bad:  # one line per failing op: its first failure (with shapes) and how many checks failed
            if row["op"] not in crashes:  # (already on a CRASH line)
                by_op.setdefault(row["op"], []).append(row)
        checks = {op: sum(r["op"] == op for r in rows) for op in by_op}
        for op, op_rows in list(by_op.items())[:SUMMARY_FAILURES]:
            first = op_rows[0]
            count = "" if first["dtype"] == "*" else f" ({len(op_rows)} of {checks[op]} checks failed; first:)"
            lines.append(compare.failure_line(first, limit=200).replace(f" {op} ", f" {op}{count} ", 1))
        if len(by_op) > SUMMARY_FAILURES:
            lines.append(f"... and {len(by_op) - SUMMARY_FAILURES} more failing ops in {report_path}")
        passed = ", ".join(f"{c} {t['pass']}/{t['checks']}" for c, t in per_category.items())
        metrics = {"seed": seed, **overall, "categories": per_category, "crashes": len(crashes),
                   "duration_s": round(time.monotonic() - start, 3)}
        return result(status, "\n".join([head] + lines + [f"passed per category: {passed}"]), metrics, report=True)

    def _judge(self, ops, tasks, inputs, answers, expected, observed_dir: Path, events, crashes, fatal, device):
        """Report rows, one per op x dtype x case x form (or one per op that did not run)."""
        done = {e["op"] for e in events if e.get("event") == "done"}
        rows: list[dict] = []
        for name in ops:
            category = OPS_BY_NAME[name].category
            if name in crashes:
                rows.append(compare.missing_row(name, category, "crashed or hung here: " + crashes[name],
                                                status="fail", device=device))
                continue
            if name not in done:
                rows.append(compare.missing_row(name, category, f"not run: {fatal}", status="fail", device=device))
                continue
            try:
                doc = json.loads((observed_dir / f"{name}.json").read_text())
                observations = {o["id"]: o for o in doc["observations"] if isinstance(o, dict)}
                observed = load_arrays(observed_dir / f"{name}.arrays")
            except (OSError, ValueError, KeyError, TypeError) as e:
                rows.append(compare.missing_row(name, category, f"observations unreadable: {e}", status="fail",
                                                device=device))
                continue
            if "*" in observations and observations["*"].get("missing"):
                rows.append(compare.missing_row(name, category, f"missing op: {observations['*']['missing']}",
                                                device=device))
                continue
            spec = OPS_BY_NAME[name]

            def tol_for(dtype: str, spec=spec) -> tuple[float, float]:
                return spec.tol.get(dtype, compare.DEFAULT_TOL.get(dtype, (0.0, 0.0)))

            try:
                rows.extend(compare.check_op(name, category, tasks[name], answers[name], observations, inputs[name],
                                             expected[name], observed, tol_for, device))
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:  # malformed observations
                rows.append(compare.missing_row(name, category, f"observations malformed: {type(e).__name__}: {e}",
                                                status="fail", device=device))
        return rows
