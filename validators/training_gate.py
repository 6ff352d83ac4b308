"""Training gate: the same model code trained with ``torch`` and with the module under test must agree.

For each workload (generated_runtime/examples/{reversal,vit,minigpt}.py, always taken from the TRUSTED tree so a
candidate cannot simplify the model it is judged on) the gate runs validators/training/worker.py twice, in
sandboxed subprocesses (validators.sandbox): once with ``torch``, once with the candidate module (option
``module``, default ``vibetensor.torch``, found on PYTHONPATH = ctx.state["site_dir"] from the build gate). Both
runs start from the same numpy-made weights and see the same numpy-made batches (examples/common.py), so they
differ only in the framework. Candidate code never runs in the harness process.

Checks, per workload (any failing check fails the gate; the summary names the first problem of each kind):
- no NaN/Inf loss in the candidate run, and the run completes all steps;
- loss curves agree window by window: |vt_mean - torch_mean| <= tolerance * |torch_mean| (validators/training/
  curves.py);
- memory is flat after warm-up: growth of the candidate's allocator memory (when it reports it) or RSS is at most
  ``max_memory_growth_mb`` more than the torch run's own growth;
- the step-time ratio vt/torch (medians after warm-up) is recorded, and fails only when over
  ``max_step_time_ratio``.
A broken reference (the torch run fails) is an "error", not the candidate's fault.

Options (ctx.options):
  workloads / workload  names or one name (files examples/<name>.py exposing PROFILES, prepare(T, profile, seed,
                        device) and common; see examples/common.py), default the study's three
  profile               "ci" | "small" | "paper", default "ci"
  steps                 default per profile: ci 120, small 300, paper 1000 (ci's reversal model learns its task in
                        about 150 steps, so 120 steps cover the phase where a wrong attention shows in the loss)
  window                steps per compared window, default 10
  tolerance             relative, default 0.02. Measured on ci (150 steps, window 10): a correct framework that
                        rounds differently (float64 matmuls) differs by at most 0.13% per window; a softmax with a
                        1.5x temperature error by 5-15% on reversal from step 50 on
  warmup_steps          default max(2, steps // 4)
  max_memory_growth_mb  default 32                                max_step_time_ratio  default None (record only)
  module                default "vibetensor.torch"                device    "cpu" (default) | "cuda"
  seed                  default 0                                 run_timeout_s  per run, default ctx.timeout_s
  threads               OMP/MKL threads of both runs; default 1 on cpu (steady timings on shared cores), else unset
  forbid_torch          default True: the candidate run fails when the module under test imported torch
  reuse_reference       default True: the torch curve is cached in ctx.cache_dir, keyed by the trusted workload and
                        worker sources, the torch version and the options; always rerun when max_step_time_ratio is
                        set, so a gated ratio compares two runs made side by side
Outputs in ctx.work_dir: training-<workload>.json (report), training-<workload>-<side>.log (run logs),
training.json (several workloads: {"status", "workloads": [each workload's full report + "report": its file]}).
GateResult.report_path: the one workload's report, or training.json. Report schema: validators/README.md.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.interfaces import GateContext, GateResult, HarnessError
from validators.sandbox import (bounded, check_result_folder, grant_to_user, new_result_folder, reclaim_from_user,
                                resolve_sandbox_user, run_sandboxed)
from validators.training import curves

WORKLOADS = ("reversal", "vit", "minigpt")
DEFAULT_STEPS = {"ci": 120, "small": 300, "paper": 1000}
PROFILES = tuple(DEFAULT_STEPS)
WORKER = Path(__file__).resolve().parent / "training" / "worker.py"
CURVE_FILE = "curve.jsonl"
REFERENCE_MODULE = "torch"


@dataclass
class TrainingOptions:
    workloads: list[str]
    profile: str = "ci"
    steps: int = 120
    window: int = 10
    tolerance: float = 0.02
    warmup_steps: int = 10
    max_memory_growth_mb: float = 32.0
    max_step_time_ratio: float | None = None
    module: str = "vibetensor.torch"
    device: str = "cpu"
    seed: int = 0
    run_timeout_s: float | None = None
    threads: int | None = 1
    reuse_reference: bool = True
    forbid_torch: bool = True

    @classmethod
    def parse(cls, options: dict[str, Any]) -> "TrainingOptions":
        """Validate ctx.options; a bad value raises HarnessError naming the option."""
        known = {"workloads", "workload", "profile", "steps", "window", "tolerance", "warmup_steps",
                 "max_memory_growth_mb", "max_step_time_ratio", "module", "device", "seed", "run_timeout_s",
                 "threads", "reuse_reference", "forbid_torch"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise HarnessError(f"training gate: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        names = options.get("workloads", options.get("workload", list(WORKLOADS)))
        names = [names] if isinstance(names, str) else list(names)
        bad = [n for n in names if not isinstance(n, str) or not n.isidentifier() or n == "common"]
        if bad or not names:
            raise HarnessError(f"training gate: workloads {bad or names} are not workload names (files "
                               f"generated_runtime/examples/<name>.py; the study's are {', '.join(WORKLOADS)})")
        profile = str(options.get("profile", "ci"))
        if profile not in PROFILES:
            raise HarnessError(f"training gate: profile {profile!r} not among {', '.join(PROFILES)}")
        steps = _positive_int(options, "steps", DEFAULT_STEPS[profile])
        window = _positive_int(options, "window", 10)
        if window > steps:
            raise HarnessError(f"training gate: window {window} is longer than steps {steps}")
        warmup = options.get("warmup_steps", max(2, steps // 4))
        if not isinstance(warmup, int) or isinstance(warmup, bool) or not 0 <= warmup < steps:
            raise HarnessError(f"training gate: warmup_steps must be an int in [0, steps), got {warmup!r}")
        ratio = options.get("max_step_time_ratio")
        timeout = options.get("run_timeout_s")
        device = str(options.get("device", "cpu"))
        threads = options.get("threads", 1 if device == "cpu" else None)
        if threads is not None:
            threads = _positive_int(options, "threads", 1)
        reuse = options.get("reuse_reference", True)
        forbid_torch = options.get("forbid_torch", True)
        for key, value in (("reuse_reference", reuse), ("forbid_torch", forbid_torch)):
            if not isinstance(value, bool):
                raise HarnessError(f"training gate: option {key} must be true or false, got {value!r}")
        return cls(workloads=names, profile=profile, steps=steps, window=window,
                   tolerance=_positive_float(options, "tolerance", 0.02), warmup_steps=warmup,
                   max_memory_growth_mb=_positive_float(options, "max_memory_growth_mb", 32.0),
                   max_step_time_ratio=None if ratio is None else _positive_float(options, "max_step_time_ratio", 0),
                   module=_module_name(options.get("module", "vibetensor.torch")),
                   device=device, seed=_positive_int(options, "seed", 0, minimum=0),
                   run_timeout_s=None if timeout is None else _positive_float(options, "run_timeout_s", 0),
                   threads=threads, reuse_reference=reuse and ratio is None, forbid_torch=forbid_torch)


def _positive_int(options: dict, key: str, default: int, minimum: int = 1) -> int:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise HarnessError(f"training gate: option {key} must be an int >= {minimum}, got {value!r}")
    return value


def _positive_float(options: dict, key: str, default: float) -> float:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise HarnessError(f"training gate: option {key} must be a positive number, got {value!r}")
    return float(value)


def _module_name(value: Any) -> str:
    parts = str(value).split(".")
    if not all(p.isidentifier() for p in parts):
        raise HarnessError(f"training gate: module {value!r} is not a Python module path")
    return str(value)


class TrainingGate:
    name = "training"
    version = "2"

    def run(self, ctx: GateContext) -> GateResult:
        start = time.monotonic()
        work = Path(ctx.work_dir)
        work.mkdir(parents=True, exist_ok=True)
        log_path = work / "training.log"
        log_path.write_text("")

        def result(status: str, summary: str, metrics: dict | None = None, report: Path | None = None) -> GateResult:
            return GateResult(self.name, status, time.monotonic() - start, bounded(summary),
                              {"duration_s": round(time.monotonic() - start, 3), **(metrics or {})}, str(log_path),
                              str(report) if report else None)

        examples = Path(ctx.trusted_root).resolve() / "generated_runtime" / "examples"
        try:
            opts = TrainingOptions.parse(dict(ctx.options))
            user = resolve_sandbox_user(ctx.options, ctx.env)
        except HarnessError as exc:
            return result("error", str(exc))
        missing = [w for w in opts.workloads if not (examples / f"{w}.py").is_file()]
        if missing:
            return result("error", f"trusted tree lacks workload files: {', '.join(f'{w}.py' for w in missing)} "
                                   f"(in {examples})")
        site = ctx.state.get("site_dir")
        if site is not None and not Path(site).is_dir():
            return result("error", f"site folder {site} (ctx.state['site_dir']) does not exist")

        deadline = start + ctx.timeout_s
        verdicts = []
        for workload in opts.workloads:
            runner = _RunContext(ctx, opts, examples, site, user, log_path, deadline)
            verdicts.append(_judge_workload(runner, workload))

        status = ("error" if any(v["status"] == "error" for v in verdicts)
                  else "fail" if any(v["status"] == "fail" for v in verdicts) else "pass")
        summary = "\n".join(v["summary"] for v in verdicts)
        metrics = {v["workload"]: v["metrics"] for v in verdicts}
        if len(verdicts) == 1:
            report = verdicts[0]["report_path"]
        else:
            report = work / "training.json"
            # each workload's full report inline (the run log keeps only the gate's one report_path file), with
            # "report" naming the per-workload file it came from
            report.write_text(json.dumps({"status": status, "workloads": [
                {**json.loads(Path(v["report_path"]).read_text()), "workload": v["workload"], "status": v["status"],
                 "report": str(v["report_path"])} for v in verdicts]}, indent=1))
        return result(status, summary, metrics, report)


@dataclass
class _RunContext:
    ctx: GateContext
    opts: TrainingOptions
    examples: Path
    site: str | None
    user: tuple[int, int] | None
    log_path: Path
    deadline: float
    last_curve_file: Path | None = None  # the curve file of the last finished run

    def train(self, workload: str, side: str, module: str) -> tuple[curves.Curve | None, str | None]:
        """Run the worker; (curve, None) when it finished, (partial curve or None, why not) otherwise."""
        work = Path(self.ctx.work_dir)
        folder, started_ns = new_result_folder(work)
        grant_to_user([folder], self.user)
        run_log = work / f"training-{workload}-{side}.log"
        run_log.write_text("")
        cmd = [sys.executable, "-P", str(WORKER), "--examples-dir", str(self.examples), "--workload", workload,
               "--module", module, "--profile", self.opts.profile, "--steps", str(self.opts.steps),
               "--seed", str(self.opts.seed), "--device", self.opts.device, "--out", str(folder / CURVE_FILE)]
        env = dict(self.ctx.env)
        env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0")
        if self.opts.threads is not None:
            for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                env[name] = str(self.opts.threads)
        env.pop("PYTHONPATH", None)
        if self.site:
            env["PYTHONPATH"] = str(Path(self.site).resolve())
        remaining = self.deadline - time.monotonic()
        timeout = min(self.opts.run_timeout_s or remaining, remaining)
        if timeout <= 1:
            return None, "the gate's time budget is spent"
        run = run_sandboxed(cmd, cwd=folder, env=env, timeout_s=timeout, log_path=run_log, user=self.user)
        if self.user is not None:
            reclaim_from_user(folder)
        with open(self.log_path, "a") as log:
            log.write(f"{workload}/{side}: rc {run.returncode}, {run.duration_s:.1f}s, log {run_log}\n")
        curve, problem = None, None
        if (folder / CURVE_FILE).exists():
            problem = check_result_folder(folder, CURVE_FILE, started_ns, run.child_exit_ns)
            if problem is None:
                try:
                    curve = curves.read_curve(folder / CURVE_FILE)
                except curves.CurveError as exc:
                    problem = f"unreadable curve: {exc}"
        if run.error:
            return curve, run.error
        if run.timed_out:
            return curve, f"timed out after {timeout:.0f}s"
        if run.returncode != 0:
            return curve, f"exited with status {run.returncode}: {_log_tail(run_log)}"
        if problem:
            return curve, problem
        if curve is None or curve.end is None:
            return curve, "finished without writing a complete curve"
        self.last_curve_file = folder / CURVE_FILE
        return curve, None

    def reference(self, workload: str) -> tuple[curves.Curve | None, str | None, bool]:
        """The torch run: (curve, problem, from_cache). Cached curves are reused under the key of the file note."""
        cached = None
        if self.opts.reuse_reference:
            cached = Path(self.ctx.cache_dir) / "training-reference" / f"{self._reference_key(workload)}.jsonl"
            if cached.is_file():
                try:
                    return curves.read_curve(cached), None, True
                except curves.CurveError:
                    cached.unlink()  # a damaged cache entry is dropped and rebuilt
        curve, problem = self.train(workload, "torch", REFERENCE_MODULE)
        if cached is not None and problem is None and curves.first_non_finite(curve.loss) is None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(f".{os.getpid()}.tmp")
            shutil.copyfile(self.last_curve_file, partial)
            os.replace(partial, cached)
        return curve, problem, False

    def _reference_key(self, workload: str) -> str:
        digest = hashlib.sha256()
        sources = [WORKER, Path(curves.__file__), *sorted(self.examples.glob("*.py"))]
        for path in sources:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        try:
            torch_version = importlib.metadata.version("torch")
        except importlib.metadata.PackageNotFoundError:
            torch_version = "unknown"
        o = self.opts
        digest.update(json.dumps([TrainingGate.version, torch_version, sys.version, workload, o.profile, o.steps,
                                  o.seed, o.device, o.threads]).encode())
        return f"{workload}-{o.profile}-{digest.hexdigest()[:24]}"


def _log_tail(path: Path, lines: int = 3) -> str:
    text = [l for l in path.read_text(errors="replace").splitlines() if not l.startswith(("$ ", "  (cwd", "[sandbox]"))]
    return " | ".join(text[-lines:]) or "(no output)"


def _judge_workload(runner: _RunContext, workload: str) -> dict[str, Any]:
    opts = runner.opts
    head = f"{workload}/{opts.profile} ({opts.steps} steps)"
    report_path = Path(runner.ctx.work_dir) / f"training-{workload}.json"
    ref, ref_problem, ref_cached = runner.reference(workload)
    if ref_problem is None and curves.first_non_finite(ref.loss) is not None:
        ref_problem = f"torch loss is not finite at step {curves.first_non_finite(ref.loss)}"
    if ref_problem is not None:
        report = {"workload": workload, "profile": opts.profile, "steps": opts.steps, "status": "error",
                  "error": f"reference run failed: {ref_problem}"}
        report_path.write_text(json.dumps(curves.json_safe(report), indent=1))
        return {"workload": workload, "status": "error", "report_path": report_path, "metrics": {},
                "summary": f"{head}: ERROR reference (torch) run failed: {ref_problem}"}

    vt, vt_problem = runner.train(workload, "vibetensor", opts.module)
    vt = vt or curves.Curve()
    problems: list[str] = []
    nan_step = curves.first_non_finite(vt.loss)
    if nan_step is not None:
        problems.append(f"loss is {vt.loss[nan_step]} at step {nan_step}")
    elif vt_problem is not None:
        problems.append(f"{opts.module} run failed after {len(vt.loss)} steps: {vt_problem}")
    torch_imported = bool((vt.end or {}).get("torch_imported")) and opts.module != REFERENCE_MODULE
    if torch_imported and opts.forbid_torch:
        problems.append(f"{opts.module} imported torch (the reference) during training: agreement with torch "
                        f"proves nothing when the framework calls it (forbid_torch)")

    windows = curves.compare_windows(ref.loss, vt.loss, opts.window, opts.tolerance)
    diverged = next((w for w in windows if not w["ok"] and w["reason"] == "outside tolerance"), None)
    if diverged is not None:
        problems.append(f"loss diverges from torch in steps {diverged['start']}-{diverged['end'] - 1}: "
                        f"torch {diverged['torch_mean']:.4f}, {opts.module} {diverged['vt_mean']:.4f} "
                        f"(rel {diverged['rel_diff']:.1%} > {opts.tolerance:.1%})")

    use_allocator = bool(vt.allocated_mb) and all(a is not None for a in vt.allocated_mb) and \
        bool(ref.allocated_mb) and all(a is not None for a in ref.allocated_mb)
    source = "allocated_mb" if use_allocator else "rss_mb"
    vt_growth = curves.memory_growth_mb(getattr(vt, source), opts.warmup_steps, opts.window)
    ref_growth = curves.memory_growth_mb(getattr(ref, source), opts.warmup_steps, opts.window)
    bound = opts.max_memory_growth_mb + max(ref_growth or 0.0, 0.0)
    memory_ok = vt_growth is None or vt_growth <= bound
    if not memory_ok:
        problems.append(f"memory grows {vt_growth:.1f} MiB after warm-up ({source}; torch {ref_growth or 0:.1f} MiB, "
                        f"bound {bound:.1f} MiB)")

    ratio = curves.step_time_ratio(ref.step_time_s, vt.step_time_s, opts.warmup_steps)
    if opts.max_step_time_ratio is not None and ratio is not None and ratio > opts.max_step_time_ratio:
        problems.append(f"step time {ratio:.2f}x torch > {opts.max_step_time_ratio:.2f}x")

    status = "fail" if problems else "pass"
    max_rel = max((w["rel_diff"] for w in windows if w["rel_diff"] is not None and math.isfinite(w["rel_diff"])),
                  default=None)
    memory = {"source": source, "warmup_steps": opts.warmup_steps, "vt_growth_mb": vt_growth,
              "torch_growth_mb": ref_growth, "bound_mb": bound, "ok": memory_ok}
    report = {"workload": workload, "profile": opts.profile, "steps": opts.steps, "status": status,
              "module": opts.module, "device": opts.device, "seed": opts.seed, "threads": opts.threads,
              "torch_curve_from_cache": ref_cached,
              "curves": {"torch": ref.to_report(), "vibetensor": vt.to_report()},
              "tolerance": {"relative": opts.tolerance, "window": opts.window},
              "windows": windows, "nan_step": nan_step, "step_time_ratio": ratio, "memory": memory,
              "torch_imported": torch_imported,
              "problems": problems}
    report_path.write_text(json.dumps(curves.json_safe(report), indent=1))
    metrics = curves.json_safe({"status": status, "max_rel_diff": max_rel, "step_time_ratio": ratio,
                                "memory_growth_mb": vt_growth, "nan_step": nan_step, "steps_done": len(vt.loss),
                                "final_loss_torch": ref.loss[-1], "final_loss_vt": vt.loss[-1] if vt.loss else None})
    ratio_text = "step time ratio n/a" if ratio is None else \
        f"step time {ratio:.2f}x torch" + (" (torch timed earlier, cached)" if ref_cached else "")
    if problems:
        summary = f"{head}: FAIL " + "; ".join(problems) + f"; {ratio_text}"
    else:
        growth = f"{vt_growth:+.1f} MiB" if vt_growth is not None else "n/a"
        summary = (f"{head}: pass, max window rel diff {max_rel:.2%} (tolerance {opts.tolerance:.1%}), "
                   f"memory {growth} after warm-up, {ratio_text}")
    return {"workload": workload, "status": status, "report_path": report_path, "metrics": metrics,
            "summary": summary}
