"""The ring all-reduce plugin (generated_runtime/plugins/fabric_ring_allreduce, op fabric::ring_all_reduce) timed
against NCCL's all-reduce (single process, ncclCommInitAll + a group call) on the same buffers, float32 SUM, one
buffer per GPU on all visible GPUs (at least 2). Per size: median of repeats, each timing a batch of calls with
every device synchronised before and after (host wall clock); algorithm bandwidth = bytes / time, bus bandwidth =
algbw * 2 (n - 1) / n (NCCL's convention). Before timing, each size checks the plugin's result against NCCL's.

    NCCL_NVLS_ENABLE=0 python3 tests/gpu/ring_plugin_bench.py SITE PLUGIN_DIR OUT.json [MiB per rank ...]
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, sys.argv[1])
os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, os.pardir, os.pardir, "generated_runtime", "tests", "py", "plugins"))
import numpy as np  # noqa: E402
import vibetensor.torch as vt  # noqa: E402
from vibetensor import _C  # noqa: E402
from ring_nccl_ref import NcclAllReduce  # noqa: E402
from timing import timed  # noqa: E402 (tests/gpu/timing.py)


def main() -> None:
    site, plugin_dir, out = sys.argv[1], sys.argv[2], sys.argv[3]
    sizes_mib = [float(x) for x in sys.argv[4:]] or [0.25, 1, 4, 16, 64, 256, 1024]
    n = int(_C._cuda_device_count())
    if n < 2:
        raise SystemExit(f"ring_plugin_bench: needs 2 or more GPUs, found {n}")
    vt.ops.load_library(os.path.join(plugin_dir, "libvbt_fabric_ring_allreduce.so"))
    ring = vt.ops.fabric.ring_all_reduce
    nccl = NcclAllReduce(range(n))
    streams = [vt.cuda.current_stream(r).cuda_stream for r in range(n)]

    def sync():
        for r in range(n):
            vt.cuda.synchronize(r)

    rows = []
    for mib in sizes_mib:
        count = int(mib * (1 << 20)) // 4
        rng = np.random.default_rng(int(mib * 16))
        host = [rng.standard_normal(min(count, 1 << 24)).astype(np.float32) for _ in range(n)]
        mine = [vt.from_dlpack(np.resize(h, count)).to(f"cuda:{r}") for r, h in enumerate(host)]
        theirs = [t.clone() for t in mine]
        ptrs = [t.data_ptr() for t in theirs]
        ring(mine)
        nccl(ptrs, count, streams)
        sync()
        a, b = [np.from_dlpack(t.to("cpu")) for t in mine], [np.from_dlpack(t.to("cpu")) for t in theirs]
        max_abs_diff = max(float(np.max(np.abs(x - y))) if count else 0.0 for x, y in zip(a, b))
        bitwise_equal = all(np.array_equal(x, y) for x, y in zip(a, b))
        nbytes = count * 4
        calls = max(3, min(200, int(2e9 / max(nbytes, 1))))
        ring_s, ring_samples = timed(lambda: ring(mine), sync, calls)
        nccl_s, nccl_samples = timed(lambda: nccl(ptrs, count, streams), sync, calls)
        row = {"mib_per_rank": mib, "count": count, "ranks": n, "calls_per_sample": calls,
               "ring_s": ring_s, "nccl_s": nccl_s, "ring_samples_s": ring_samples, "nccl_samples_s": nccl_samples,
               "max_abs_diff_vs_nccl": max_abs_diff, "bitwise_equal_to_nccl": bitwise_equal}
        for key in ("ring", "nccl"):
            algbw = nbytes / row[f"{key}_s"] / 1e9
            row[f"{key}_algbw_GBps"] = algbw
            row[f"{key}_busbw_GBps"] = algbw * 2 * (n - 1) / n
        row["ring_vs_nccl"] = nccl_s / ring_s
        rows.append(row)
        print(f"{mib:8.2f} MiB/rank x{n}: ring {ring_s * 1e6:10.1f} us busbw {row['ring_busbw_GBps']:7.1f} GB/s | "
              f"nccl {nccl_s * 1e6:10.1f} us busbw {row['nccl_busbw_GBps']:7.1f} GB/s | ring/nccl speed "
              f"{row['ring_vs_nccl']:.2f} | max|diff| {max_abs_diff:.2e}", flush=True)
        del mine, theirs
    nccl.close()
    report = {"bench": "ring_plugin_vs_nccl", "ranks": n, "devices": [str(_C._cuda_device_name(r)) for r in range(n)],
              "nccl_version": nccl.nccl.version(), "nccl_library": nccl.nccl.path,
              "timing": "host wall clock over a batch of calls, all devices synchronised; median of 9", "rows": rows}
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
