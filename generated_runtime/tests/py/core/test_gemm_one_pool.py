"""Matrix products on the runtime's one thread pool (Note [One thread pool] in src/vbt/cpu/parallel.cpp; that
OpenBLAS stays single-threaded is checked in test_cpu_gelu_rowsum_gather_paths.py): large GEMMs are split by batch
entries or rows over parallel_for's team, small ones run on the calling thread, and every split gives numpy's
result."""
import numpy as np
import pytest

import vibetensor.torch as vt

rng = np.random.default_rng(5)


def rn(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


@pytest.fixture
def two_threads():
    old = vt.get_num_threads()
    vt.set_num_threads(2)
    yield
    vt.set_num_threads(old)


def _regions(fn):
    before = vt._C._parallel_regions()
    out = fn()
    return vt._C._parallel_regions() - before, out


# (a, b, what): row splits of one matrix (plain, transposed-stored a, odd row counts), batch splits, float64
CASES = [
    (rn(301, 257), rn(257, 129), "rows"),
    (rn(257, 301), rn(257, 129), "rows of a transposed a"),
    (rn(3, 211, 190), rn(3, 190, 97), "batches"),
    (rn(1, 513, 64), rn(1, 64, 300), "one batch entry, rows"),
    (rn(97, 333, dtype=np.float64), rn(333, 171, dtype=np.float64), "float64 rows"),
]


@pytest.mark.parametrize("a,b,what", CASES, ids=[c[2] for c in CASES])
def test_large_products_split_over_the_pool_and_match_numpy(a, b, what, two_threads):
    va = vt.from_numpy(a).t() if "transposed" in what else vt.from_numpy(a)  # a.T, stored transposed
    a_ = a.T if "transposed" in what else a
    n, out = _regions(lambda: va @ vt.from_numpy(b))
    assert n >= 1, f"{what}: a product of {a_.shape}@{b.shape} ran on the calling thread"
    tol = 1e-10 if a.dtype == np.float64 else 2e-4
    np.testing.assert_allclose(out.numpy(), a_ @ b, rtol=tol, atol=tol)


def test_small_products_stay_on_the_calling_thread(two_threads):
    n, out = _regions(lambda: vt.from_numpy(np.eye(8, dtype=np.float32)) @ vt.ones(8, 8))
    assert n == 0 and out.numpy().sum() == 64.0


def test_one_thread_never_starts_a_region():
    old = vt.get_num_threads()
    vt.set_num_threads(1)
    try:
        n, out = _regions(lambda: vt.from_numpy(rn(300, 300)) @ vt.from_numpy(rn(300, 300)))
    finally:
        vt.set_num_threads(old)
    assert n == 0 and out.shape == (300, 300)
