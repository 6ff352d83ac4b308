"""Interop benchmark: DLPack round trips and SafeTensors loading, vibetensor against PyTorch / the safetensors package.

Run (with the built package on PYTHONPATH):
    PYTHONPATH=SITE python tests/benchmarks/bench_interop.py [--repeats 9] [--size-mb 1024] [--dir /tmp]
                                                             [--quick] [--out interop.json]

DLPack: for float32 tensors of 1 KiB .. 256 MiB, the median time of
  vt -> torch -> vt   ``vt.from_dlpack(torch.from_dlpack(x))``
  vt -> numpy         ``np.from_dlpack(x)``
  torch -> numpy -> torch (reference: PyTorch's own zero-copy path)
and whether the result shares x's memory (``zero_copy``: same data pointer). A zero-copy exchange costs the same at
every size; the report gives the least-squares slope (ns per MiB) and the ratio of the largest size's time to the
smallest's. Nothing is asserted.

SafeTensors: writes one file of ``--size-mb`` MiB of float32 tensors (16 MiB each) with the ``safetensors``
package, then per repeat (order alternating) times
  vt     ``vibetensor.safetensors.load_file`` + a sum of every tensor (touches every byte: the loader
         memory-maps, so without the touch the time would hide the reading)
  torch  ``safetensors.torch.load_file`` + the same sums
The sums are numpy float64 sums over zero-copy DLPack views by default (identical code for both loaders, so the
difference is the loader's); ``--touch framework`` uses each framework's own ``sum`` instead.
  raw    ``cat FILE > /dev/null``: the disk (or page cache) bound
each in two states: "cold" (the file's pages evicted from the page cache with posix_fadvise(DONTNEED) just
before; residency checked with mincore through ``fincore`` when available) and "warm" (file in the page cache).
The touch alone on already-loaded tensors is timed too, so the touch cost can be separated from the load.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

import vibetensor.torch as vt
import vibetensor.safetensors as vst

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ops import cpu_model  # noqa: E402  (same folder)

KIB, MIB = 1 << 10, 1 << 20


def median_time(fn: Callable[[], Any], repeats: int, inner: int = 1) -> tuple[float, list[float]]:
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t) / inner)
    return statistics.median(samples), samples


def slope_ns_per_mib(sizes: list[int], times: list[float]) -> float:
    x = np.array(sizes, dtype=np.float64) / MIB
    y = np.array(times, dtype=np.float64) * 1e9
    return float(np.polyfit(x, y, 1)[0])


# ----------------------------------------------------------------------------------------------------------- DLPack
def bench_dlpack(sizes: list[int], repeats: int, inner: int = 200) -> dict:
    tensors = {}
    for nbytes in sizes:
        x = vt.empty(nbytes // 4, dtype=vt.float32)
        x.fill_(1.0)
        tensors[nbytes] = (x, torch.ones(nbytes // 4, dtype=torch.float32))
    paths = {
        "vt_torch_vt": lambda x, t: vt.from_dlpack(torch.from_dlpack(x)),
        "vt_numpy": lambda x, t: np.from_dlpack(x),
        "torch_numpy_torch": lambda x, t: torch.from_dlpack(np.from_dlpack(t)),
    }
    samples = {(n, k): [] for n in sizes for k in paths}
    for n, (x, t) in tensors.items():
        for f in paths.values():
            f(x, t)
    # round robin over sizes and paths inside every repeat, so a burst of load from elsewhere hits all sizes alike
    for _ in range(repeats):
        for n, (x, t) in tensors.items():
            for k, f in paths.items():
                start = time.perf_counter()
                for _ in range(inner):
                    f(x, t)
                samples[(n, k)].append((time.perf_counter() - start) / inner)
    rows = []
    print(f"{'bytes':>10} {'vt->torch->vt':>14} {'vt->numpy':>11} {'torch->np->torch':>17}  zero-copy (vt-torch-vt, "
          f"vt-numpy)")
    for n, (x, t) in tensors.items():
        rt, arr = vt.from_dlpack(torch.from_dlpack(x)), np.from_dlpack(x)
        row = {"bytes": n, **{f"{k}_s": statistics.median(samples[(n, k)]) for k in paths},
               "zero_copy_vt_torch_vt": rt.data_ptr() == x.data_ptr() and tuple(rt.shape) == tuple(x.shape),
               "zero_copy_vt_numpy": arr.ctypes.data == x.data_ptr() and arr.shape == tuple(x.shape)}
        rows.append(row)
        print(f"{n:>10} {row['vt_torch_vt_s'] * 1e6:>11.2f} us {row['vt_numpy_s'] * 1e6:>8.2f} us "
              f"{row['torch_numpy_torch_s'] * 1e6:>14.2f} us  {row['zero_copy_vt_torch_vt']}, "
              f"{row['zero_copy_vt_numpy']}", flush=True)
    sz = [r["bytes"] for r in rows]
    summary = {}
    for key in paths:
        ts = [r[f"{key}_s"] for r in rows]
        summary[key] = {"slope_ns_per_MiB": slope_ns_per_mib(sz, ts), "largest_over_smallest": ts[-1] / ts[0]}
        print(f"  {key}: slope {summary[key]['slope_ns_per_MiB']:+.3f} ns/MiB, time at {sz[-1] // MIB} MiB / "
              f"time at {sz[0]} B = {summary[key]['largest_over_smallest']:.2f}")
    return {"sizes": rows, "summary": summary, "inner_calls_per_sample": inner, "repeats": repeats}


# ------------------------------------------------------------------------------------------------------- SafeTensors
def write_file(path: Path, size_mb: int) -> dict:
    from safetensors.numpy import save_file
    per = 16 * MIB // 4
    count = max(1, size_mb // 16)
    gen = np.random.default_rng(0)
    tensors = {f"layer{i:04d}.weight": gen.standard_normal(per, dtype=np.float32).reshape(1024, -1)
               for i in range(count)}
    t = time.perf_counter()
    save_file(tensors, str(path))
    os.sync()
    return {"tensors": count, "bytes": path.stat().st_size, "write_s": time.perf_counter() - t,
            "expected_sums": {k: float(v.sum(dtype=np.float64)) for k, v in list(tensors.items())[:3]}}


def evict(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def resident_fraction(path: Path) -> float | None:
    """Fraction of the file's pages in the page cache (util-linux ``fincore``), None if unavailable."""
    if shutil.which("fincore") is None:
        return None
    p = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES,SIZE", str(path)],
                       capture_output=True, text=True)
    try:
        res, size = (int(v) for v in p.stdout.split())
        return res / size if size else None
    except ValueError:
        return None


TOUCH = "numpy"  # set from --touch


def touch(tensors: dict) -> float:
    """Read every byte: a float64 sum per tensor, with numpy through zero-copy DLPack (the same code for both
    loaders, so the comparison isolates the loader) or with the framework's own ``sum`` (``--touch framework``)."""
    total = 0.0
    for v in tensors.values():
        total += float(np.from_dlpack(v).sum(dtype=np.float64)) if TOUCH == "numpy" else float(v.sum())
    return total


def load_vt(path: Path) -> float:
    return touch(vst.load_file(str(path)))


def load_torch(path: Path) -> float:
    from safetensors.torch import load_file
    return touch(load_file(str(path)))


def raw_read(path: Path) -> None:
    subprocess.run(f"cat '{path}' > /dev/null", shell=True, check=True)


def bench_safetensors(directory: Path, size_mb: int, repeats: int, keep: bool) -> dict:
    work = Path(tempfile.mkdtemp(prefix="vt-bench-st-", dir=directory))
    path = work / "model.safetensors"
    try:
        info = write_file(path, size_mb)
        print(f"wrote {path} ({info['bytes'] / MIB:.0f} MiB, {info['tensors']} tensors) in {info['write_s']:.1f} s",
              flush=True)
        sums = {"vt": load_vt(path), "torch": load_torch(path)}
        # the sum alone on loaded tensors (warm, already faulted in): the touch's share of a load
        dv = vst.load_file(str(path))
        dt = __import__("safetensors.torch", fromlist=["load_file"]).load_file(str(path))
        touch_only = {"vt": median_time(lambda: touch(dv), 3)[0], "torch": median_time(lambda: touch(dt), 3)[0]}
        del dv, dt
        cands = {"vt": lambda: load_vt(path), "torch": lambda: load_torch(path), "raw_cat": lambda: raw_read(path)}
        results: dict = {}
        for state in ("cold", "warm"):
            samples: dict[str, list[float]] = {k: [] for k in cands}
            residency: dict[str, list[float | None]] = {k: [] for k in cands}
            for r in range(repeats):
                order = list(cands) if r % 2 == 0 else list(reversed(cands))
                for k in order:
                    if state == "cold":
                        evict(path)
                    else:
                        raw_read(path)  # make sure it is cached
                    residency[k].append(resident_fraction(path))
                    t = time.perf_counter()
                    cands[k]()
                    samples[k].append(time.perf_counter() - t)
            results[state] = {k: {"median_s": statistics.median(v), "samples_s": v,
                                  "GBps": info["bytes"] / statistics.median(v) / 1e9,
                                  "resident_before_max": max((x for x in residency[k] if x is not None), default=None)}
                              for k, v in samples.items()}
            res = results[state]
            results[state]["vt_over_torch"] = res["vt"]["median_s"] / res["torch"]["median_s"]
            results[state]["vt_over_raw"] = res["vt"]["median_s"] / res["raw_cat"]["median_s"]
            print(f"  {state:>4}: vt {res['vt']['median_s']:.3f} s ({res['vt']['GBps']:.2f} GB/s) | torch "
                  f"{res['torch']['median_s']:.3f} s ({res['torch']['GBps']:.2f} GB/s) | raw cat "
                  f"{res['raw_cat']['median_s']:.3f} s ({res['raw_cat']['GBps']:.2f} GB/s) | vt/torch "
                  f"{res['vt_over_torch']:.2f} vt/raw {res['vt_over_raw']:.2f}", flush=True)
        print(f"  touch only (loaded, warm): vt {touch_only['vt']:.3f} s, torch {touch_only['torch']:.3f} s; "
              f"checksums vt {sums['vt']:.6g} torch {sums['torch']:.6g}")
        return {"file": {k: v for k, v in info.items() if k != "expected_sums"}, "size_mb": size_mb,
                "repeats": repeats, "touch": TOUCH, "touch_only_s": touch_only, "checksum": sums,
                "checksums_agree": bool(np.isclose(sums["vt"], sums["torch"], rtol=1e-4, atol=1e-2)),
                "cache_eviction": "posix_fadvise(POSIX_FADV_DONTNEED) on the file before each cold sample; "
                                  "resident_before_max = largest page-cache fraction seen just before a sample",
                **results}
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9, help="DLPack samples per size (default 9)")
    ap.add_argument("--st-repeats", type=int, default=5, help="SafeTensors samples per state (default 5)")
    ap.add_argument("--size-mb", type=int, default=1024, help="SafeTensors file size in MiB (default 1024)")
    ap.add_argument("--dir", default=tempfile.gettempdir(), help="where the SafeTensors file is written")
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads for both frameworks")
    ap.add_argument("--quick", action="store_true", help="5 DLPack repeats, 3 SafeTensors repeats (unless given)")
    ap.add_argument("--skip-dlpack", action="store_true")
    ap.add_argument("--skip-safetensors", action="store_true")
    ap.add_argument("--touch", choices=("numpy", "framework"), default="numpy",
                    help="how every byte is read after loading (default numpy: the same code for both loaders)")
    ap.add_argument("--keep", action="store_true", help="keep the SafeTensors file")
    ap.add_argument("--out", help="write the JSON report here")
    args = ap.parse_args()
    global TOUCH
    TOUCH = args.touch
    repeats = 5 if args.quick and "--repeats" not in sys.argv else args.repeats
    st_repeats = 3 if args.quick and "--st-repeats" not in sys.argv else args.st_repeats
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    vt.set_num_threads(threads)
    import safetensors
    free = shutil.disk_usage(args.dir).free
    report: dict = {
        "benchmark": "bench_interop", "device": cpu_model(), "cores": os.cpu_count(), "machine": platform.node(),
        "python": platform.python_version(), "torch_version": torch.__version__, "numpy_version": np.__version__,
        "safetensors_version": safetensors.__version__,
        "threads": {"torch": torch.get_num_threads(), "vt": vt.get_num_threads()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "disk_free_bytes": free,
    }
    print(f"device {report['device']} | torch {torch.__version__} | safetensors {safetensors.__version__} | "
          f"threads {threads}", flush=True)
    if not args.skip_dlpack:
        sizes = [KIB, 64 * KIB, MIB, 16 * MIB, 256 * MIB]
        report["dlpack"] = bench_dlpack(sizes, repeats)
    if not args.skip_safetensors:
        if free < 3 * args.size_mb * MIB:
            print(f"not enough room in {args.dir} for {args.size_mb} MiB (free {free / MIB:.0f} MiB); skipped")
            report["safetensors"] = {"skipped": f"free space {free} bytes"}
        else:
            report["safetensors"] = bench_safetensors(Path(args.dir), args.size_mb, st_repeats, args.keep)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
