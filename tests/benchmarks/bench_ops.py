"""Op benchmark: vibetensor.torch against PyTorch on CPU, side by side in one process.

Run (with the built package on PYTHONPATH):
    PYTHONPATH=SITE python tests/benchmarks/bench_ops.py [--repeats 15] [--threads N] [--quick] [--out ops.json]

Method: every case builds the same inputs (made with numpy, loaded into both frameworks) and a zero-argument
callable per framework. Both frameworks run with the same intra-op thread count (``set_num_threads`` on both;
the value is reported). After warm-up, an inner iteration count is calibrated so one sample lasts at least
``--min-sample-ms``; then vibetensor and PyTorch samples alternate (the order flips every repeat) and the median
per-call time over ``--repeats`` samples is reported with the ratio vt/torch (> 1 means vibetensor is slower;
ratios above 2 are flagged SLOW). Each case's first outputs are compared once (``agree``: whether vt's result
matches torch's within a loose tolerance), so a broken op is visible next to its time. Nothing is asserted: this
is a benchmark, not a test. The training-step cases run one optimizer step (forward, backward, clipping when the
workload uses it, optimizer step, ``loss.item()``) of each workload in generated_runtime/examples at the ci
profile, built through the workload's own ``prepare(T, "ci", seed)``.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

import vibetensor.torch as vt

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "generated_runtime" / "examples"

Case = tuple[str, str, Callable[[Any], Callable[[], Any]], float | None, str | None]
# (name, group, make(T) -> fn, work amount per call or None, work unit: "B" bytes moved or "FLOP")


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def randn(seed: int, *shape: int) -> np.ndarray:
    return rng(seed).standard_normal(shape, dtype=np.float32)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ---------------------------------------------------------------------------------------------------------- cases
def elementwise(name: str, shapes: list[tuple[int, ...]], fn: Callable[..., Any], out_numel: int,
                group: str = "elementwise") -> Case:
    def make(T: Any) -> Callable[[], Any]:
        args = [T.tensor(randn(i, *s)) for i, s in enumerate(shapes)]
        return lambda: fn(T, *args)
    moved = 4.0 * (sum(int(np.prod(s)) for s in shapes) + out_numel)
    return (name, group, make, moved, "B")


def reduction(name: str, shape: tuple[int, ...], fn: Callable[..., Any]) -> Case:
    def make(T: Any) -> Callable[[], Any]:
        x = T.tensor(randn(0, *shape))
        return lambda: fn(T, x)
    return (name, "reduction", make, 4.0 * float(np.prod(shape)), "B")


def matmul(name: str, a: tuple[int, ...], b: tuple[int, ...], batched: bool = False) -> Case:
    def make(T: Any) -> Callable[[], Any]:
        x, y = T.tensor(randn(0, *a)), T.tensor(randn(1, *b))
        return (lambda: T.bmm(x, y)) if batched else (lambda: T.matmul(x, y))
    flops = 2.0 * float(np.prod(a)) * b[-1]
    return (name, "matmul", make, flops, "FLOP")


def index_select_case(T: Any) -> Callable[[], Any]:
    x = T.tensor(randn(0, 100_000, 64))
    idx = T.tensor(rng(1).integers(0, 100_000, 10_000).astype(np.int64))
    return lambda: T.index_select(x, 0, idx)


def gather_case(T: Any) -> Callable[[], Any]:
    x = T.tensor(randn(0, 1024, 1024))
    idx = T.tensor(rng(1).integers(0, 1024, (1024, 256)).astype(np.int64))
    return lambda: T.gather(x, 1, idx)


def cat_case(dim: int) -> Callable[[Any], Callable[[], Any]]:
    def make(T: Any) -> Callable[[], Any]:
        parts = [T.tensor(randn(i, 512, 1024)) for i in range(4)]
        return lambda: T.cat(parts, dim=dim)
    return make


def layer_norm_case(T: Any) -> Callable[[], Any]:
    x, w, b = T.tensor(randn(0, 4096, 1024)), T.tensor(randn(1, 1024)), T.tensor(randn(2, 1024))
    return lambda: T.nn.functional.layer_norm(x, (1024,), w, b, 1e-5)


def cross_entropy_case(T: Any) -> Callable[[], Any]:
    logits = T.tensor(randn(0, 4096, 1000))
    target = T.tensor(rng(1).integers(0, 1000, 4096).astype(np.int64))
    return lambda: T.nn.functional.cross_entropy(logits, target)


def mlp_case(T: Any) -> Callable[[], Any]:
    """Linear(256, 1024) - GELU - Linear(1024, 256), batch 128: forward, mean-square loss, backward."""
    nn = T.nn
    model = nn.Sequential(nn.Linear(256, 1024), nn.GELU(), nn.Linear(1024, 256))
    state = {n: T.tensor(randn(10 + i, *tuple(p.shape)) * 0.05) for i, (n, p) in enumerate(model.named_parameters())}
    model.load_state_dict(state)
    x = T.tensor(randn(0, 128, 256))

    def step() -> Any:
        for p in model.parameters():
            p.grad = None
        loss = (model(x) ** 2).mean()
        loss.backward()
        return loss.detach()
    return step


def autograd_chain_case(T: Any) -> Callable[[], Any]:
    """Autograd overhead per node: a chain of 128 tiny ops (64 x (mul, add) on a (4,) tensor), then sum and
    backward; 130 graph nodes, so time / 130 is the cost of one node forward + backward."""
    x = T.tensor(randn(0, 4)).requires_grad_()

    def step() -> Any:
        x.grad = None
        y = x
        for _ in range(64):
            y = y * 1.0001 + 0.001
        y.sum().backward()
        return x.grad
    return step


def training_case(module_name: str, profile: str = "ci") -> Callable[[Any], Callable[[], Any]]:
    def make(T: Any) -> Callable[[], Any]:
        if str(EXAMPLES) not in sys.path:
            sys.path.insert(0, str(EXAMPLES))
        import importlib
        workload = importlib.import_module(module_name)
        job = workload.prepare(T, profile, 0)
        job.model.train()
        batch = job.batch(0)  # the batch is data preparation, not the framework's work: made once

        def step() -> float:
            loss = job.loss(batch)
            job.optimizer.zero_grad()
            loss.backward()
            if job.clip_grad_norm is not None:
                T.nn.utils.clip_grad_norm_(job.model.parameters(), job.clip_grad_norm)
            job.optimizer.step()
            return float(loss.item())
        return step
    return make


def cases(quick: bool) -> list[Case]:
    F = lambda T: T.nn.functional  # noqa: E731
    big = 4096 if not quick else 2048  # side of the large elementwise / reduction operands
    out: list[Case] = [
        # per-op overhead: Python call to result on tiny tensors
        elementwise("add tiny (4,)", [(4,), (4,)], lambda T, a, b: a + b, 4, "overhead"),
        elementwise("mul scalar tiny (4,)", [(4,)], lambda T, a: a * 2.0, 4, "overhead"),
        reduction("sum tiny (4,)", (4,), lambda T, x: x.sum()),
        # large elementwise throughput
        elementwise(f"add ({big},{big})", [(big, big), (big, big)], lambda T, a, b: a + b, big * big),
        elementwise("add bcast (1024,1024)+(1024,)", [(1024, 1024), (1024,)], lambda T, a, b: a + b, 1 << 20),
        elementwise("mul bcast (64,1,1024)*(1,64,1024)", [(64, 1, 1024), (1, 64, 1024)],
                    lambda T, a, b: a * b, 64 * 64 * 1024),
        # the optimizer's elementwise ops (Adam's single-tensor step, SGD's p.add_(d_p, alpha=-lr))
        elementwise("add alpha (1024,1024)", [(1024, 1024), (1024, 1024)], lambda T, a, b: T.add(a, b, alpha=0.3),
                    1 << 20),
        elementwise("lerp scalar (1024,1024)", [(1024, 1024), (1024, 1024)], lambda T, a, b: T.lerp(a, b, 0.1),
                    1 << 20),
        elementwise("addcmul (1024,1024)", [(1024, 1024)] * 3, lambda T, a, b, c: T.addcmul(a, b, c, value=0.3),
                    1 << 20),
        elementwise("addcdiv (1024,1024)", [(1024, 1024)] * 3, lambda T, a, b, c: T.addcdiv(a, b, c, value=0.3),
                    1 << 20),
        elementwise(f"exp ({big},{big})", [(big, big)], lambda T, a: T.exp(a), big * big),
        elementwise("gelu (2048,2048)", [(2048, 2048)], lambda T, a: F(T).gelu(a), 2048 * 2048),
        elementwise("gelu tanh (2048,2048)", [(2048, 2048)], lambda T, a: F(T).gelu(a, approximate="tanh"),
                    2048 * 2048),
        # reductions
        reduction(f"sum all ({big},{big})", (big, big), lambda T, x: x.sum()),
        reduction("sum dim=1 (2048,2048)", (2048, 2048), lambda T, x: x.sum(dim=1)),
        reduction("sum dim=0 (2048,2048)", (2048, 2048), lambda T, x: x.sum(dim=0)),
        reduction("mean dims=(0,2) (64,256,256)", (64, 256, 256), lambda T, x: x.mean(dim=(0, 2))),
        reduction("softmax dim=-1 (1024,1024)", (1024, 1024), lambda T, x: T.softmax(x, dim=-1)),
        # linear algebra
        matmul("matmul 64x64", (64, 64), (64, 64)),
        matmul("matmul 256x256", (256, 256), (256, 256)),
        matmul("matmul 1024x1024", (1024, 1024), (1024, 1024)),
        matmul("bmm (32,128,64)@(32,64,128)", (32, 128, 64), (32, 64, 128), batched=True),
        # indexing and shape
        ("index_select (100000,64)[10000]", "indexing", index_select_case, 4.0 * 2 * 10_000 * 64, "B"),
        ("gather (1024,1024) idx (1024,256)", "indexing", gather_case, 4.0 * 1024 * 256 * 2 + 8.0 * 1024 * 256,
         "B"),
        ("cat 4x(512,1024) dim=0", "indexing", cat_case(0), 4.0 * 2 * 4 * 512 * 1024, "B"),
        ("cat 4x(512,1024) dim=1", "indexing", cat_case(1), 4.0 * 2 * 4 * 512 * 1024, "B"),
        # nn helpers
        ("layer_norm (4096,1024)", "nn", layer_norm_case, 4.0 * 2 * 4096 * 1024, "B"),
        ("cross_entropy (4096,1000)", "nn", cross_entropy_case, 4.0 * 4096 * 1000, "B"),
        ("MLP 256-1024-256 fwd+bwd b128", "nn", mlp_case, None, None),
        # one optimizer step of each example workload at the ci profile
        ("train step reversal (ci)", "training", training_case("reversal"), None, None),
        ("train step vit (ci)", "training", training_case("vit"), None, None),
        ("train step minigpt (ci)", "training", training_case("minigpt"), None, None),
        # the autograd issue's targets: overhead per autograd node, and the reversal workload at its paper size
        ("autograd chain 130 nodes (4,) fwd+bwd", "overhead", autograd_chain_case, None, None),
        ("train step reversal (paper)", "training", training_case("reversal", "paper"), None, None),
    ]
    return out


# --------------------------------------------------------------------------------------------------------- timing
CLOCK = time.perf_counter  # --clock cpu: time.process_time (CPU seconds of all threads)


def sample(fn: Callable[[], Any], iters: int) -> float:
    """Seconds per call over ``iters`` back-to-back calls, garbage collector off."""
    gc_was = gc.isenabled()
    gc.disable()
    try:
        t = CLOCK()
        for _ in range(iters):
            fn()
        return (CLOCK() - t) / iters
    finally:
        if gc_was:
            gc.enable()


def to_numpy(x: Any) -> np.ndarray | float:
    if isinstance(x, (int, float)):
        return float(x)
    return np.asarray(x.detach().numpy() if hasattr(x, "detach") else x.numpy())


def agree(a: Any, b: Any) -> bool | None:
    try:
        x, y = to_numpy(a), to_numpy(b)
        return bool(np.allclose(x, y, rtol=1e-3, atol=1e-3)) and np.shape(x) == np.shape(y)
    except Exception:  # noqa: BLE001 - an unconvertible result is reported as "unknown", not raised
        return None


def run_case(case: Case, repeats: int, min_sample_s: float, warmup: int) -> dict:
    name, group, make, work, unit = case
    row: dict = {"name": name, "group": group}
    fns: dict[str, Callable[[], Any]] = {}
    first: dict[str, Any] = {}
    for label, T in (("vt", vt), ("torch", torch)):
        try:
            fns[label] = make(T)
            first[label] = fns[label]()
        except Exception as exc:  # noqa: BLE001 - an unsupported op is a result of the benchmark
            row["error"] = f"{label}: {type(exc).__name__}: {exc}"[:300]
            return row
    row["agree"] = agree(first["vt"], first["torch"]) if group != "training" else None
    if group == "training":  # losses of step 0 from the same weights and batch
        row["loss_step0"] = {"vt": first["vt"], "torch": first["torch"]}
    one = {}
    for label, fn in fns.items():
        for _ in range(warmup):
            fn()
        one[label] = sample(fn, 1)
    iters = max(1, int(min_sample_s / max(min(one.values()), 1e-9)))
    times: dict[str, list[float]] = {"vt": [], "torch": []}
    for r in range(repeats):
        order = ("vt", "torch") if r % 2 == 0 else ("torch", "vt")
        for label in order:
            times[label].append(sample(fns[label], iters))
    med = {k: statistics.median(v) for k, v in times.items()}
    row.update({
        "iters_per_sample": iters,
        "vt_s": med["vt"], "torch_s": med["torch"],
        "vt_min_s": min(times["vt"]), "torch_min_s": min(times["torch"]),
        "ratio": med["vt"] / med["torch"],
        "slow": med["vt"] / med["torch"] > 2.0,
    })
    if work is not None:
        row["work_per_call"] = work
        row["work_unit"] = unit
        row["vt_rate"] = work / med["vt"]
        row["torch_rate"] = work / med["torch"]
    return row


def fmt_time(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:8.1f} us"
    if s < 1:
        return f"{s * 1e3:8.2f} ms"
    return f"{s:8.3f} s "


def fmt_rate(v: float | None, unit: str | None) -> str:
    if v is None:
        return ""
    return f"{v / 1e9:7.2f} {'GB/s' if unit == 'B' else 'GFLOP/s'}"


def print_header() -> None:
    head = f"{'op':<38} {'vt':>11} {'torch':>11} {'vt/torch':>9}  {'vt rate':>15} {'torch rate':>15}  note"
    print(head)
    print("-" * len(head))


def print_rows(rows: list[dict]) -> None:
    for r in rows:
        if "error" in r:
            print(f"{r['name']:<38} {'ERROR':>11} {'':>11} {'':>9}  {r['error']}")
            continue
        notes = []
        if r["slow"]:
            notes.append("SLOW")
        if r.get("agree") is False:
            notes.append("MISMATCH")
        print(f"{r['name']:<38} {fmt_time(r['vt_s']):>11} {fmt_time(r['torch_s']):>11} {r['ratio']:9.2f}  "
              f"{fmt_rate(r.get('vt_rate'), r.get('work_unit')):>15} "
              f"{fmt_rate(r.get('torch_rate'), r.get('work_unit')):>15}  {' '.join(notes)}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15, help="timed samples per framework and op (default 15)")
    ap.add_argument("--threads", type=int, default=None,
                    help="intra-op threads for both frameworks (default: torch's default, i.e. the core count)")
    ap.add_argument("--min-sample-ms", type=float, default=None, help="minimum duration of one sample")
    ap.add_argument("--warmup", type=int, default=3, help="untimed calls per framework before timing (default 3)")
    ap.add_argument("--quick", action="store_true",
                    help="smaller large operands (2048^2), 5 repeats, 10 ms samples, unless given explicitly")
    ap.add_argument("-k", dest="select", action="append", default=None,
                    help="only cases whose name contains this substring (repeatable: any of them)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="wall: time.perf_counter (default); cpu: time.process_time, CPU seconds of all threads "
                         "(steadier than wall time on a loaded machine; with several threads it also counts "
                         "their spinning, so read it for --threads 1)")
    ap.add_argument("--out", help="write the JSON report here")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    repeats = args.repeats if not args.quick or "--repeats" in sys.argv else 5
    min_sample_ms = args.min_sample_ms if args.min_sample_ms is not None else (10.0 if args.quick else 50.0)

    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    vt.set_num_threads(threads)
    report: dict = {
        "benchmark": "bench_ops",
        "device": cpu_model(),
        "cores": os.cpu_count(),
        "machine": platform.node(),
        "python": platform.python_version(),
        "torch_version": torch.__version__,
        "threads": {"requested": threads, "torch": torch.get_num_threads(), "vt": vt.get_num_threads()},
        "repeats": repeats, "min_sample_ms": min_sample_ms, "warmup": args.warmup, "quick": args.quick,
        "clock": args.clock,
        "statistic": "median seconds per call; ratio = vt / torch (> 1: vibetensor slower); slow = ratio > 2",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "results": [],
    }
    print(f"device {report['device']} | torch {torch.__version__} | threads torch={report['threads']['torch']} "
          f"vt={report['threads']['vt']} | repeats {repeats} | min sample {min_sample_ms} ms | clock {args.clock}",
          flush=True)
    selected = [c for c in cases(args.quick) if args.select is None or any(k in c[0] for k in args.select)]
    rows = []
    print_header()
    for case in selected:
        row = run_case(case, repeats, min_sample_ms / 1e3, args.warmup)
        rows.append(row)
        print_rows([row])
    report["results"] = rows
    ok = [r for r in rows if "ratio" in r]
    if ok:
        report["geomean_ratio"] = float(np.exp(np.mean([np.log(r["ratio"]) for r in ok])))
        report["slow_ops"] = [r["name"] for r in ok if r["slow"]]
        print(f"\ngeometric mean vt/torch over {len(ok)} ops: {report['geomean_ratio']:.2f}; "
              f"slow (> 2x): {len(report['slow_ops'])}; errors: {len(rows) - len(ok)}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
