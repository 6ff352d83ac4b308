"""Timing helper of the GPU benchmarks in tests/gpu: median seconds per call over repeats, each repeat timing
`calls` back-to-back calls between two synchronisations (one warm-up call first)."""
from __future__ import annotations

import statistics
import time


def timed(fn, sync, calls: int, repeats: int = 9) -> tuple[float, list[float]]:
    """(median seconds per call, the per-repeat samples)."""
    fn()
    sync()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples), samples
