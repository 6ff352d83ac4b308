"""CUDA benchmark, vibetensor against torch side by side in one process on the same device buffers (DLPack):

- device copy bandwidth (torch's and ours): the practical ceiling for memory-bound kernels;
- elementwise ops at large sizes: effective bandwidth (bytes read + written / time) and its fraction of the copy
  bandwidth (issue 5's target: at least 90%);
- reductions and the NN kernels (softmax, layer_norm, cross_entropy) at large sizes;
- per-op launch overhead from Python: a 1-element add called in a loop, microseconds per call;
- allocator churn: allocate and free tensors of random sizes (1 KiB .. 64 MiB), microseconds per alloc+free,
  against torch's caching allocator.
Timing: host wall clock around a batch of calls with the device synchronised before and after, median of
--repeats; vt and torch samples alternate. An effective bandwidth above 1.1x the measured copy bandwidth is flagged
IMPOSSIBLE (a timing or correctness bug), not celebrated. Each case also checks that both results agree.

    PYTHONPATH=SITE python3 tests/benchmarks/bench_cuda.py [--quick] [--out r.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

import vibetensor.torch as vt
from vibetensor.interop import from_dlpack


DEV = "cuda"


def timed_pair(fn_t, fn_v, calls: int, repeats: int) -> tuple[float, float]:
    for fn in (fn_t, fn_v):
        fn()
    torch.cuda.synchronize()
    ts, vs = [], []
    for _ in range(repeats):
        for fn, sync, acc in ((fn_t, torch.cuda.synchronize, ts), (fn_v, vt.cuda.synchronize, vs)):
            sync()
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            sync()
            acc.append((time.perf_counter() - start) / calls)
    return statistics.median(ts), statistics.median(vs)


def agree(a_t, a_v, rtol=1e-4, atol=1e-5) -> bool:
    b = torch.from_dlpack(a_v) if not isinstance(a_v, torch.Tensor) else a_v
    return bool(torch.allclose(a_t.float(), b.float(), rtol=rtol, atol=atol, equal_nan=True))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="64M elements instead of 256M, 5 repeats")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--device", default="cuda", help="cpu only smoke-tests this script (numbers mean nothing)")
    ap.add_argument("--elements-log2", type=int, default=None, help="override the large size (2**k elements)")
    a = ap.parse_args()
    global DEV
    DEV = a.device
    if DEV == "cpu":
        torch.cuda.synchronize = vt.cuda.synchronize = lambda: None
    n = 2**a.elements_log2 if a.elements_log2 else (64 if a.quick else 256) * 2**20
    repeats = a.repeats or (5 if a.quick else 9)
    rows = []

    x_t = torch.randn(n, device=DEV)
    y_t = torch.randn(n, device=DEV)
    out_t = torch.empty_like(x_t)
    x_v, y_v, out_v = from_dlpack(x_t), from_dlpack(y_t), from_dlpack(out_t)
    nbytes = 4 * n

    tc, vc = timed_pair(lambda: out_t.copy_(x_t), lambda: out_v.copy_(x_v), 5, repeats)
    copy_bw = 2 * nbytes / tc
    rows.append({"case": f"copy float32 [{n}]", "kind": "bandwidth", "torch_s": tc, "vt_s": vc,
                 "torch_gbps": 2 * nbytes / tc / 1e9, "vt_gbps": 2 * nbytes / vc / 1e9, "agree": agree(out_t, out_v)})

    def elementwise(name, fn, reads, writes=1):
        tt, tv = timed_pair(lambda: fn(torch, x_t, y_t), lambda: fn(vt, x_v, y_v), 5, repeats)
        moved = (reads + writes) * nbytes
        row = {"case": f"{name} float32 [{n}]", "kind": "bandwidth", "torch_s": tt, "vt_s": tv,
               "torch_gbps": moved / tt / 1e9, "vt_gbps": moved / tv / 1e9,
               "vt_fraction_of_copy_bw": moved / tv / copy_bw,
               "agree": agree(fn(torch, x_t, y_t), fn(vt, x_v, y_v))}
        if moved / tv > 1.1 * copy_bw:
            row["flag"] = "IMPOSSIBLE: faster than the device's copy bandwidth"
        rows.append(row)

    elementwise("add", lambda T, x, y: T.add(x, y), 2)
    elementwise("mul scalar", lambda T, x, y: T.mul(x, 1.5), 1)
    elementwise("relu", lambda T, x, y: T.relu(x), 1)
    elementwise("gelu", lambda T, x, y: T.nn.functional.gelu(x), 1)
    elementwise("exp", lambda T, x, y: T.exp(x), 1)

    def kernel(name, fn_t, fn_v, moved, calls=5, rtol=1e-4):
        tt, tv = timed_pair(fn_t, fn_v, calls, repeats)
        rows.append({"case": name, "kind": "bandwidth", "torch_s": tt, "vt_s": tv, "torch_gbps": moved / tt / 1e9,
                     "vt_gbps": moved / tv / 1e9, "vt_fraction_of_copy_bw": moved / tv / copy_bw,
                     "agree": agree(fn_t(), fn_v(), rtol=rtol, atol=1e-2)})

    kernel(f"sum float32 [{n}]", lambda: x_t.sum(), lambda: x_v.sum(), nbytes, rtol=1e-3)
    m2_t = x_t.view(-1, 8192)
    m2_v = from_dlpack(m2_t)
    kernel(f"sum dim=-1 {list(m2_t.shape)}", lambda: m2_t.sum(-1), lambda: m2_v.sum(-1), nbytes, rtol=1e-3)
    kernel(f"amax dim=0 {list(m2_t.shape)}", lambda: m2_t.amax(0), lambda: m2_v.amax(0), nbytes)
    sm_t = x_t[: 8192 * 4096].view(8192, 4096)
    sm_v = from_dlpack(sm_t)
    kernel("softmax dim=-1 [8192, 4096]", lambda: torch.softmax(sm_t, -1), lambda: vt.softmax(sm_v, -1),
           2 * 4 * sm_t.numel())
    ln_t = x_t[: 16384 * 1024].view(16384, 1024)
    ln_v = from_dlpack(ln_t)
    w_t, b_t = torch.randn(1024, device=DEV), torch.randn(1024, device=DEV)
    w_v, b_v = from_dlpack(w_t), from_dlpack(b_t)
    kernel("layer_norm [16384, 1024]", lambda: torch.nn.functional.layer_norm(ln_t, (1024,), w_t, b_t),
           lambda: vt.nn.functional.layer_norm(ln_v, (1024,), w_v, b_v), 2 * 4 * ln_t.numel())
    logits_t = x_t[: 4096 * 8192].view(4096, 8192)
    logits_v = from_dlpack(logits_t)
    target_t = torch.randint(0, 8192, (4096,), device=DEV)
    target_v = from_dlpack(target_t)
    kernel("cross_entropy [4096, 8192]", lambda: torch.nn.functional.cross_entropy(logits_t, target_t),
           lambda: vt.nn.functional.cross_entropy(logits_v, target_v), 4 * logits_t.numel(), rtol=1e-3)

    # launch overhead: a 1-element add, many calls, one sync at the end
    s_t = torch.ones(1, device=DEV)
    s_v = from_dlpack(s_t.clone())
    tt, tv = timed_pair(lambda: torch.add(s_t, s_t), lambda: vt.add(s_v, s_v), 2000, repeats)
    rows.append({"case": "launch overhead: add of 1 element", "kind": "latency", "torch_us": tt * 1e6,
                 "vt_us": tv * 1e6, "vt_over_torch": tv / tt})

    # allocator churn: random sizes 1 KiB .. 64 MiB, each freed when the next one replaces it (a pool of 8 live)
    sizes = np.exp(np.random.default_rng(0).uniform(np.log(256), np.log(16 * 2**20), size=2000)).astype(np.int64)

    def churn(T):
        live = [None] * 8
        for i, s in enumerate(sizes):
            live[i % 8] = T.empty(int(s), device=DEV)
    tt, tv = timed_pair(lambda: churn(torch), lambda: churn(vt), 1, repeats)
    rows.append({"case": "allocator churn: empty(1 KiB..64 MiB) x 2000, 8 live", "kind": "latency",
                 "torch_us": tt / len(sizes) * 1e6, "vt_us": tv / len(sizes) * 1e6, "vt_over_torch": tv / tt})

    name = torch.cuda.get_device_name(0) if DEV == "cuda" else "cpu (smoke test)"
    print(f"device {name}; measured copy bandwidth (torch) {copy_bw / 1e9:,.0f} GB/s")
    for r in rows:
        if r["kind"] == "bandwidth":
            frac = r.get("vt_fraction_of_copy_bw")
            print(f"{r['case']:42s} torch {r['torch_gbps']:8,.0f} GB/s | vt {r['vt_gbps']:8,.0f} GB/s "
                  f"({r['vt_gbps'] / r['torch_gbps']:.2f}x torch"
                  + (f", {frac:.0%} of copy bw" if frac is not None else "") + f") | agree {r['agree']}"
                  + (f" | {r['flag']}" if "flag" in r else ""))
        else:
            print(f"{r['case']:42s} torch {r['torch_us']:8.2f} us | vt {r['vt_us']:8.2f} us "
                  f"({r['vt_over_torch']:.2f}x torch)")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"device": name, "torch": torch.__version__, "elements": n,
                       "copy_bandwidth_gbps": copy_bw / 1e9, "repeats": repeats,
                       "timing": "host wall clock around a batch of calls, device synchronised, median; "
                                 "vt and torch alternate", "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
