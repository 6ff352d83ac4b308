"""Parity gate: every op in the parity table against PyTorch, on fresh random inputs, judged out of process.

Flow (each subprocess through ``validators.sandbox.run_sandboxed``: own session, timeout, everything killed):
1. ``run_checks reference`` (torch, never the candidate): inputs and torch's answers for a seed chosen fresh per
   run (option ``seed`` pins it; it is recorded in the report).
2. The gate loads inputs and answers into memory and deletes the answers from disk.
3. ``run_checks candidate`` (the module under test, never torch) with ``ctx.state["site_dir"]`` first on its
   sys.path: replays the inputs, writes observations and a progress file.
4. ``validators.parity.compare`` (numpy, this process) judges; the report goes to ``work_dir/parity.json``.
A crash or hang of step 3 is a failure naming the op that was running. An op the module lacks is a failure
("missing op"), never a skip. Rows whose status is ``error`` mean the table itself is wrong (torch rejected it).

Options: ``module`` (default "vibetensor.torch"), ``ops`` ("all", a list, names or globs like "elementwise.*"),
``dtypes`` ("all" or a list), ``seed`` (int), ``device`` ("cpu"; "cuda" is a later issue), ``op_timeout_s``
(default 60), ``site_dir`` (used when ctx.state has none), ``keep_artifacts`` (keep the input/observation arrays).
"""
from __future__ import annotations

import json
import secrets
import shutil
import sys
import time
from pathlib import Path

from harness.interfaces import GateContext, GateResult
from validators.parity import compare
from validators.parity.op_table import OPS_BY_NAME, select_ops
from validators.parity.tensors import DTYPES, load_arrays
from validators.sandbox import bounded, run_sandboxed

SUMMARY_FAILURES = 15


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
    if value in (None, "all"):
        return "all"
    return [value] if isinstance(value, str) else [str(v) for v in value]


class ParityGate:
    name = "parity"
    version = "1"

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

        module = str(opts.get("module", "vibetensor.torch"))
        device = str(opts.get("device", "cpu"))
        if device != "cpu":
            return result("error", f"parity: device {device!r} is not supported yet (only 'cpu')")
        try:
            specs = select_ops(_as_list(opts.get("ops", "all")))
            dtypes = _as_list(opts.get("dtypes", "all"))
            unknown = [d for d in dtypes if d not in DTYPES] if dtypes != "all" else []
            if unknown:
                raise ValueError(f"parity: unknown dtype(s) {', '.join(unknown)} (known: {', '.join(DTYPES)})")
            seed = int(opts["seed"]) if opts.get("seed") is not None else secrets.randbits(31)
            op_timeout = float(opts.get("op_timeout_s", 60))
        except (ValueError, TypeError) as e:
            return result("error", str(e))
        site_dir = ctx.state.get("site_dir") or opts.get("site_dir") or ""
        run_dir = work_dir / "parity-run"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        inputs_dir, expected_dir, observed_dir = run_dir / "inputs", run_dir / "expected", run_dir / "observed"
        # one thread: the inputs are tiny, and thread pools only add contention on a shared 2-core CI machine
        env = {**ctx.env, "PYTHONPATH": str(Path(ctx.trusted_root).resolve()), "PYTHONDONTWRITEBYTECODE": "1",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        base_cmd = [sys.executable, "-m", "validators.parity.run_checks"]
        deadline = start + ctx.timeout_s

        # 1. reference (torch only)
        ref = run_sandboxed(base_cmd + ["reference", "--ops", " ".join(s.name for s in specs),
                                        "--dtypes", " ".join(dtypes) if dtypes != "all" else "all",
                                        "--seed", str(seed), "--inputs", str(inputs_dir),
                                        "--expected", str(expected_dir)],
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

        # 3. candidate (the module under test only)
        cand = run_sandboxed(base_cmd + ["candidate", "--module", module, "--site-dir", str(site_dir),
                                         "--inputs", str(inputs_dir), "--observed", str(observed_dir),
                                         "--op-timeout", str(op_timeout)],
                             cwd=Path(ctx.trusted_root), env=env, timeout_s=max(1.0, deadline - time.monotonic()),
                             log_path=log_path)
        events = _read_progress(observed_dir / "progress.jsonl")

        # 4. judge
        rows, fatal = self._judge(plan["ops"], tasks, inputs, answers, expected, observed_dir, events, cand, module)
        overall, per_category = compare.totals(rows)
        report = {"schema": compare.SCHEMA, "gate_version": self.version, "module": module, "seed": seed,
                  "device": device, "ops": plan["ops"], "dtypes": plan["dtypes"],
                  "finished": any(e.get("event") == "finished" for e in events), "fatal": fatal,
                  "duration_s": round(time.monotonic() - start, 3), "totals": overall, "categories": per_category,
                  "rows": rows}
        report_path.write_text(json.dumps(report, indent=1))
        if not opts.get("keep_artifacts"):
            shutil.rmtree(run_dir, ignore_errors=True)
        failed = overall["fail"] + overall["missing"]
        status = "fail" if failed or fatal else ("error" if overall["error"] or not rows else "pass")
        head = (f"parity {status.upper()}: {overall['pass']} of {overall['checks']} checks passed, {overall['fail']} "
                f"failed, {overall['missing']} missing, {overall['error']} table errors ({len(plan['ops'])} ops; "
                f"module {module}; seed {seed}; device {device})")
        bad = sorted((r for r in rows if r["status"] != "pass"), key=lambda r: -compare.STATUS_RANK[r["status"]])
        lines = ([f"FATAL {fatal}"] if fatal else []) + [compare.failure_line(r) for r in bad[:SUMMARY_FAILURES]]
        if len(bad) > SUMMARY_FAILURES:
            lines.append(f"... and {len(bad) - SUMMARY_FAILURES} more in {report_path}")
        passed = ", ".join(f"{c} {t['pass']}/{t['checks']}" for c, t in per_category.items())
        metrics = {"seed": seed, **overall, "categories": per_category, "duration_s": round(time.monotonic() - start, 3)}
        return result(status, "\n".join([head] + lines + [f"passed per category: {passed}"]), metrics, report=True)

    def _judge(self, ops, tasks, inputs, answers, expected, observed_dir: Path, events, cand, module):
        """(report rows, fatal message or None)."""
        started = [e["op"] for e in events if e.get("event") == "start" and isinstance(e.get("op"), str)]
        done = {e["op"] for e in events if e.get("event") == "done"}
        finished = any(e.get("event") == "finished" for e in events)
        import_failed = next((e for e in events if e.get("event") == "import_failed"), None)
        fatal, crashed_in = None, None
        if cand.timed_out:
            how = "timed out"
        elif cand.error:
            how = f"failed ({cand.error})"
        else:
            how = f"exited with code {cand.returncode}" if cand.returncode >= 0 else f"was killed by signal {-cand.returncode}"
        if import_failed:
            fatal = f"cannot import module {module}: {import_failed.get('error')}"
        elif not finished:
            crashed_in = next((op for op in reversed(started) if op not in done), None)
            fatal = (f"the checking process {how} while running {crashed_in}" if crashed_in
                     else f"the checking process {how} before checking any op (while importing {module}?)")
        rows: list[dict] = []
        for name in ops:
            category = OPS_BY_NAME[name].category
            if name not in done:
                message = ("crashed or hung here: " + fatal) if name == crashed_in else f"not run: {fatal}"
                rows.append(compare.missing_row(name, category, message, status="fail"))
                continue
            try:
                doc = json.loads((observed_dir / f"{name}.json").read_text())
                observations = {o["id"]: o for o in doc["observations"] if isinstance(o, dict)}
                observed = load_arrays(observed_dir / f"{name}.arrays")
            except (OSError, ValueError, KeyError, TypeError) as e:
                rows.append(compare.missing_row(name, category, f"observations unreadable: {e}", status="fail"))
                continue
            if "*" in observations and observations["*"].get("missing"):
                rows.append(compare.missing_row(name, category, f"missing op: {observations['*']['missing']}"))
                continue
            spec = OPS_BY_NAME[name]

            def tol_for(dtype: str, spec=spec) -> tuple[float, float]:
                return spec.tol.get(dtype, compare.DEFAULT_TOL.get(dtype, (0.0, 0.0)))

            try:
                rows.extend(compare.check_op(name, category, tasks[name], answers[name], observations, inputs[name],
                                             expected[name], observed, tol_for))
            except (KeyError, TypeError, ValueError, AttributeError) as e:  # malformed observations
                rows.append(compare.missing_row(name, category, f"observations malformed: {type(e).__name__}: {e}",
                                                status="fail"))
        return rows, fatal
