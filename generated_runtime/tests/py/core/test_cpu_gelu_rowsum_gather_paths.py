"""CPU fast paths of issue 3 against PyTorch CPU and float64 references: the piecewise exact gelu (float32, AVX2+FMA
build: lanes |x| <= 4, others from the full-range formula; tails, misaligned starts, mixed vectors, thread counts),
last-dim row sums of float32/float64 (prefetching lane kernels: tails, strided rows, zero sizes, thread counts),
the checked-then-unchecked last-dim gather, and set_num_threads reaching OpenBLAS."""
import ctypes
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vt_core_helpers import assert_same


def _gelu_ref(x32):
    xd = torch.tensor(np.asarray(x32, np.float32), dtype=torch.float64)
    return (0.5 * xd * torch.special.erfc(-xd / math.sqrt(2.0))).numpy()


def _gelu(x):
    return vt.nn.functional.gelu(x).numpy()


class _threads:
    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.old = vt.get_num_threads()
        vt.set_num_threads(self.n)

    def __exit__(self, *exc):
        vt.set_num_threads(self.old)


def _rel_ok(got, x, bound=1e-6):
    ref = _gelu_ref(x)
    big = np.abs(ref) > 1e-37
    rel = np.abs(got.astype(np.float64)[big] - ref[big]) / np.abs(ref[big])
    assert rel.size == 0 or rel.max() < bound, (rel.max(), np.asarray(x)[big][rel.argmax()])
    assert np.all(np.abs(got.astype(np.float64)[~big] - ref[~big]) < 1e-43)


def test_gelu_fast_range_every_float_slice():
    # every 307th float in [0, 4.25], both signs: the piecewise intervals, their edges (k/2) and the [-4, 4] border
    bits = np.arange(0, np.float32(4.25).view(np.uint32), 307, dtype=np.uint32)
    x = bits.view(np.float32)
    edges = np.float32([k / 2 for k in range(9)])
    edges = np.concatenate([edges, np.nextafter(edges, np.float32(0)), np.nextafter(edges, np.float32(9))])
    x = np.concatenate([x, -x, edges, -edges]).astype(np.float32)
    _rel_ok(_gelu(vt.tensor(x)), x, 6e-7)
    # and against torch where its float32 1 + erf does not cancel (x > -1; at x = -2 torch is off by ~6e-5)
    m = x > -1
    np.testing.assert_allclose(_gelu(vt.tensor(x[m])), torch.nn.functional.gelu(torch.tensor(x[m])).numpy(),
                               rtol=3e-6, atol=1e-30)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 1000, 1021])
def test_gelu_tails_and_misaligned_starts(n):
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n + 3) * 2).astype(np.float32)
    full = _gelu(vt.tensor(x))
    _rel_ok(full, x)
    # a result depends on its own input only: a view starting 1..3 elements later gives the same bits
    v = vt.tensor(x)
    for s in (1, 2, 3):
        assert np.array_equal(_gelu(v[s:]), full[s:])
    assert _gelu(vt.tensor(x[:0])).shape == (0,)


def test_gelu_vectors_mixing_fast_and_full_range_lanes():
    x = np.float32([0.5, -4.5, 3.99, np.nan, -1.0, np.inf, -np.inf, 4.0, -4.0, 4.0000005, -13.5, 2.0, -0.0, 0.0,
                    -20.0, 1e-30, 7.0, -7.0, 0.25])
    got = _gelu(vt.tensor(x))
    single = np.concatenate([_gelu(vt.tensor(x[i:i + 1])) for i in range(x.size)])
    assert np.array_equal(got, single, equal_nan=True)  # neighbours do not change a lane's value
    # NaN where torch's float64 formula has one (-inf, NaN): torch's float32 vector loop also gives NaN for +inf
    # on some CPUs (torch 2.13 on an AVX-512 EPYC), inf on others
    exp = torch.nn.functional.gelu(torch.tensor(x, dtype=torch.float64)).numpy()
    assert np.array_equal(np.isnan(got), np.isnan(exp))
    ok = np.isfinite(x)
    _rel_ok(got[ok], x[ok])
    assert np.signbit(got[12]) and got[13] == 0 and got[5] == np.inf
    # wide inputs: about a third of the vectors take the full-range formula for some lanes
    rng = np.random.default_rng(7)
    w = (rng.standard_normal(100_003) * 3).astype(np.float32)
    _rel_ok(_gelu(vt.tensor(w)), w)


def test_gelu_thread_count_and_layouts():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((300, 517)).astype(np.float32)
    x[::7, ::11] *= 5  # some lanes beyond 4
    outs = []
    for n in (1, 2):
        with _threads(n):
            outs.append(_gelu(vt.tensor(x)))
    assert np.array_equal(outs[0], outs[1])
    _rel_ok(outs[0].ravel(), x.ravel())
    xt = vt.tensor(x).transpose(0, 1)  # strided: the scalar loop
    _rel_ok(_gelu(xt).ravel(), x.T.ravel())
    assert_same(vt.nn.functional.gelu(vt.tensor(x)), torch.nn.functional.gelu(torch.tensor(x)), rtol=1e-5, atol=1e-6)


ROW_SHAPES = [(5, 1), (3, 31), (7, 32), (4, 33), (6, 45), (3, 63), (2, 100), (9, 2047), (2, 4100), (1, 65536 + 5),
              (1100, 40)]


@pytest.mark.parametrize("shape", ROW_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_last_dim_row_sums(shape, dtype):
    rng = np.random.default_rng(shape[1])
    a = (rng.standard_normal(shape) * 10).astype(dtype)
    v, t = vt.tensor(a), torch.tensor(a)
    ref = np.array([math.fsum(r) for r in a.astype(np.float64)])
    got = v.sum(1).numpy().astype(np.float64)
    scale = np.abs(a).astype(np.float64).sum(1)
    if dtype == np.float32:
        np.testing.assert_allclose(got, ref, rtol=2e-7, atol=1e-12)  # float64 accumulation, then one rounding
    else:
        assert np.all(np.abs(got - ref) <= 1e-15 * scale + 1e-300)
    assert_same(v.sum(-1, keepdim=True), t.sum(-1, keepdim=True), rtol=1e-5, atol=1e-4)
    assert_same(v.mean(1), t.mean(1), rtol=1e-5, atol=1e-5)
    # strided rows (row stride > row length) and every other row
    if shape[1] > 1:
        vs, ts = v[:, 1:], t[:, 1:]
        assert_same(vs.sum(1), ts.sum(1), rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(vs.sum(1).numpy().astype(np.float64), a[:, 1:].astype(np.float64).sum(1),
                                   rtol=2e-7 if dtype == np.float32 else 1e-13, atol=1e-9)
    assert_same(v[::2].sum(1), t[::2].sum(1), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_sums_thread_independent_and_zero_size(dtype):
    rng = np.random.default_rng(11)
    a = (rng.standard_normal((700, 3001)) * 100).astype(dtype)
    outs = []
    for n in (1, 2):
        with _threads(n):
            outs.append(vt.tensor(a).sum(1).numpy())
    assert np.array_equal(outs[0], outs[1])
    for shape in ((0, 5), (5, 0), (0, 0)):
        z = np.zeros(shape, dtype)
        assert_same(vt.tensor(z).sum(1), torch.tensor(z).sum(1))
        assert_same(vt.tensor(z).sum(-1, keepdim=True), torch.tensor(z).sum(-1, keepdim=True))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
def test_gather_last_dim_fast_path(dtype):
    rng = np.random.default_rng(12)
    src = (rng.standard_normal((37, 300)) * 100).astype(dtype)
    idx = rng.integers(0, 300, (37, 129))
    for n in (1, 2):
        with _threads(n):
            assert_same(vt.gather(vt.tensor(src), 1, vt.tensor(idx)),
                        torch.gather(torch.tensor(src), 1, torch.tensor(idx)))
    # strided rows of self (row stride 300, 250 used), fewer index rows than self rows, a 3-d case
    assert_same(vt.gather(vt.tensor(src)[:, :250], 1, vt.tensor(idx[:20] % 250)),
                torch.gather(torch.tensor(src)[:, :250], 1, torch.tensor(idx[:20] % 250)))
    s3 = src.reshape(37, 3, 100)
    i3 = rng.integers(0, 100, (30, 2, 7))
    assert_same(vt.gather(vt.tensor(s3), 2, vt.tensor(i3)), torch.gather(torch.tensor(s3), 2, torch.tensor(i3)))
    # negative indices count from the end (torch rejects them; compare with the wrapped indices)
    neg = idx - 300
    assert_same(vt.gather(vt.tensor(src), 1, vt.tensor(neg)), torch.gather(torch.tensor(src), 1, torch.tensor(idx)))
    # zero-size index
    e = np.zeros((37, 0), np.int64)
    assert_same(vt.gather(vt.tensor(src), 1, vt.tensor(e)), torch.gather(torch.tensor(src), 1, torch.tensor(e)))


@pytest.mark.parametrize("bad", [300, -301, 2**62, -(2**63)])
def test_gather_last_dim_out_of_range(bad):
    src = np.arange(2 * 300, dtype=np.float32).reshape(2, 300)
    idx = np.zeros((2, 40), np.int64)
    idx[1, 17] = bad
    with pytest.raises(IndexError, match=f"index {bad} is out of bounds for dimension 1 with size 300"):
        vt.gather(vt.tensor(src), 1, vt.tensor(idx))


def _openblas_threads():
    try:
        lib = ctypes.CDLL("libopenblas.so.0")  # the copy the extension loaded (same soname)
        return lib.openblas_get_num_threads
    except (OSError, AttributeError):
        return None


def test_set_num_threads_sets_the_pool_and_openblas_stays_single_threaded():
    """Note [One thread pool] (src/vbt/cpu/parallel.cpp): the runtime's team runs the GEMMs, OpenBLAS one thread."""
    get_blas = _openblas_threads()
    old = vt.get_num_threads()
    try:
        for n in (1, 2):
            vt.set_num_threads(n)
            assert vt.get_num_threads() == n
            if get_blas is not None:
                assert get_blas() == 1
            a = np.random.default_rng(n).standard_normal((64, 48)).astype(np.float32)
            assert_same(vt.tensor(a) @ vt.tensor(a.T), torch.tensor(a) @ torch.tensor(a.T), rtol=1e-5, atol=1e-4)
    finally:
        vt.set_num_threads(old)
    for bad in (0, -1):
        with pytest.raises(RuntimeError, match="positive integer"):
            vt.set_num_threads(bad)
    with pytest.raises(RuntimeError, match="expects an int"):
        vt.set_num_threads(2.0)
    assert vt.get_num_threads() == old
