"""The throughput paths of the CPU kernels against PyTorch CPU (or a float64 reference where torch's float32
is less accurate): the all-float exact gelu (tails, specials, strided fallback), float32 sums through the
AVX2 lane/row kernels (column sums with odd widths, several non-adjacent reduced dims, the chunked sum of
everything and its independence of the thread count), the float-only last pass of (log_)softmax, the
contiguous copy / cast / broadcast runs of copy_ (cat, clone, to), and the fused forward-only layer_norm."""
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vt_core_helpers import assert_same


def _gelu_ref(x32):
    xd = torch.tensor(x32, dtype=torch.float64)
    return (0.5 * xd * torch.special.erfc(-xd / math.sqrt(2.0))).numpy()  # no 1 + erf cancellation


def test_gelu_f32_accuracy_over_the_float_range():
    bits = np.arange(0, 0x7F800000, 6007, dtype=np.uint32)
    x = bits.view(np.float32)
    x = x[np.abs(x) <= 40]
    x = np.concatenate([x, -x, np.float32([-14.5, -14.4, -13.0, -9.5, -5.5, -0.75, 0.75, 3.8])])
    got = vt.nn.functional.gelu(vt.tensor(x)).numpy().astype(np.float64)
    ref = _gelu_ref(x)
    big = np.abs(ref) > 1e-37
    rel = np.abs(got[big] - ref[big]) / np.abs(ref[big])
    assert rel.max() < 1e-6, (rel.max(), x[big][rel.argmax()])
    assert np.abs(got[~big] - ref[~big]).max() < 1e-43  # subnormal results
    # the tail keeps its relative accuracy where torch's float32 1 + erf cancels
    tail = np.float32([-6.0, -8.0, -10.0, -12.0])
    np.testing.assert_allclose(vt.nn.functional.gelu(vt.tensor(tail)).numpy(), _gelu_ref(tail), rtol=1e-6)


def test_gelu_f32_special_values_and_layouts():
    x = np.float32([0.0, -0.0, np.inf, -np.inf, np.nan, 100.0, -100.0, 1e-30, -1e-30, -20.0])
    got = vt.nn.functional.gelu(vt.tensor(x)).numpy()
    # torch's float64 formula rounded to float32 (its float32 vector loop gives NaN for +inf on some CPUs)
    exp = torch.nn.functional.gelu(torch.tensor(x, dtype=torch.float64)).float().numpy()
    assert np.array_equal(np.isnan(got), np.isnan(exp))
    ok = ~np.isnan(exp)
    np.testing.assert_allclose(got[ok], exp[ok], rtol=1e-6, atol=0)
    assert np.signbit(got[1]) and got[6] == 0.0
    # strided input goes through a buffer into the array loop: same accuracy
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((67, 45)) * 4).astype(np.float32)
    vs = vt.tensor(a).transpose(0, 1)
    np.testing.assert_allclose(vt.nn.functional.gelu(vs).numpy(), _gelu_ref(a.T), rtol=1e-6, atol=1e-30)
    # float64 is unchanged: torch's formula
    d = rng.standard_normal(1001) * 3
    np.testing.assert_allclose(vt.nn.functional.gelu(vt.tensor(d)).numpy(),
                               torch.nn.functional.gelu(torch.tensor(d)).numpy(), rtol=1e-12, atol=1e-15)


COLUMN_SHAPES = [(37, 1003), (1, 5), (2049, 17), (9, 16), (8, 15), (3, 529)]


@pytest.mark.parametrize("shape", COLUMN_SHAPES)
def test_column_sums_odd_sizes(shape):
    rng = np.random.default_rng(1)
    a = rng.standard_normal(shape).astype(np.float32) * 10
    v, t = vt.tensor(a), torch.tensor(a)
    ref = a.astype(np.float64).sum(0)
    np.testing.assert_allclose(v.sum(0).numpy().astype(np.float64), ref, rtol=2e-7, atol=1e-5)
    assert_same(v.sum(0), t.sum(0), atol=1e-4)  # torch's float32 cascade is the less accurate one here
    assert_same(v.mean(0, keepdim=True), t.mean(0, keepdim=True), atol=1e-5)
    # the transposed layout reduces over the inner dim
    np.testing.assert_allclose(v.transpose(0, 1).sum(1).numpy().astype(np.float64), ref, rtol=2e-7, atol=1e-5)


@pytest.mark.parametrize("dims", [(0, 2), (1, 3), (0, 1, 3), (0, 3), (2,), None])
def test_multi_dim_float32_sums(dims):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((6, 35, 9, 70)).astype(np.float32)
    v, t = vt.tensor(a), torch.tensor(a)
    args = () if dims is None else (dims,)
    assert_same(v.sum(*args), t.sum(*args), atol=1e-5)
    assert_same(v.mean(*args), t.mean(*args))
    ref = a.astype(np.float64).sum(axis=dims)
    np.testing.assert_allclose(np.asarray(v.sum(*args).numpy(), dtype=np.float64), ref, rtol=2e-7, atol=1e-5)
    # non-contiguous views of the same values
    vp, tp = v.permute(3, 1, 0, 2), t.permute(3, 1, 0, 2)
    assert_same(vp.sum(dim=(1, 3)), tp.sum(dim=(1, 3)), atol=1e-5)
    vs, ts = v[:, ::2, :, 1::3], t[:, ::2, :, 1::3]
    assert_same(vs.sum(*args), ts.sum(*args), atol=1e-5)


def test_zero_size_float32_sums():
    for shape, dims in (((0, 7), (0,)), ((7, 0), (1,)), ((3, 0, 5), (0, 2)), ((0,), None), ((4, 0), (0,))):
        a = np.zeros(shape, np.float32)
        args = () if dims is None else (dims,)
        assert_same(vt.tensor(a).sum(*args), torch.tensor(a).sum(*args))


def test_sum_all_chunked_is_accurate_and_thread_independent():
    rng = np.random.default_rng(3)
    a = (rng.standard_normal(3 * 65536 + 7) * 100).astype(np.float32)
    v = vt.tensor(a)
    old = vt.get_num_threads()
    try:
        vals = []
        for n in (1, 2):
            vt.set_num_threads(n)
            vals.append(float(v.sum()))
    finally:
        vt.set_num_threads(old)
    assert vals[0] == vals[1]
    np.testing.assert_allclose(vals[0], a.astype(np.float64).sum(), rtol=2e-7, atol=1e-3)
    np.testing.assert_allclose(float(v.mean()), a.astype(np.float64).mean(), rtol=2e-7, atol=1e-8)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_float_pass(op):
    rng = np.random.default_rng(4)
    a = (rng.standard_normal((33, 1031)) * 5).astype(np.float32)
    a[3, :] = -np.inf
    a[4, 7] = np.inf
    a[5, :] = -np.inf
    a[5, 9] = 1.0
    a[6, 11] = np.nan
    v, t = getattr(vt, op)(vt.tensor(a), -1), getattr(torch, op)(torch.tensor(a), -1)
    assert_same(v, t)
    d = a.astype(np.float64)
    ref = getattr(torch, op)(torch.tensor(d[7:]), -1).numpy()
    # float32 x - max carries up to ~2e-6 relative rounding of exp's argument (|x - max| <= ~40 here)
    np.testing.assert_allclose(v.numpy()[7:].astype(np.float64), ref, rtol=5e-6, atol=1e-30)


def test_cat_and_copy_runs():
    rng = np.random.default_rng(5)
    parts = [rng.standard_normal((5, k)).astype(np.float32) for k in (3, 17, 1, 64)]
    vp, tp = [vt.tensor(p) for p in parts], [torch.tensor(p) for p in parts]
    assert_same(vt.cat(vp, dim=1), torch.cat(tp, dim=1))
    assert_same(vt.cat([p.transpose(0, 1) for p in vp], dim=0), torch.cat([p.transpose(0, 1) for p in tp], dim=0))
    mixed_v = [vt.tensor(parts[0]), vt.tensor(parts[1].astype(np.float64)), vt.tensor((parts[2] * 9).astype(np.int32))]
    mixed_t = [torch.tensor(parts[0]), torch.tensor(parts[1].astype(np.float64)),
               torch.tensor((parts[2] * 9).astype(np.int32))]
    assert_same(vt.cat(mixed_v, dim=1), torch.cat(mixed_t, dim=1))  # cast runs
    x = vt.tensor(parts[3])
    y = x.clone()
    assert_same(y, torch.tensor(parts[3]))
    y[1:].copy_(y[:-1].clone())
    ty = torch.tensor(parts[3])
    ty[1:].copy_(ty[:-1].clone())
    assert_same(y, ty)
    z = vt.zeros(4, 6)
    z.copy_(vt.tensor(np.float32([2.5])))  # broadcast of one value
    assert_same(z, torch.full((4, 6), 2.5))
    assert_same(x.to(vt.float64), torch.tensor(parts[3]).to(torch.float64))


@pytest.mark.parametrize("name", ["float32", "float64"])
@pytest.mark.parametrize("affine", ["none", "weight", "bias", "both"])
def test_fused_layer_norm_matches_torch(name, affine):
    rng = np.random.default_rng(6)
    dt = np.float32 if name == "float32" else np.float64
    for shape, ns in (((37, 1027), (1027,)), ((2, 3, 5, 7), (5, 7)), ((4, 1), (1,)), ((0, 9), (9,)),
                      ((3, 5000), (5000,))):
        a = (rng.standard_normal(shape) * 3 + 7).astype(dt)
        w = rng.standard_normal(ns).astype(dt) if affine in ("weight", "both") else None
        b = rng.standard_normal(ns).astype(dt) if affine in ("bias", "both") else None
        V = lambda z: None if z is None else vt.tensor(z)  # noqa: E731
        T = lambda z: None if z is None else torch.tensor(z)  # noqa: E731
        got = vt.nn.functional.layer_norm(vt.tensor(a), ns, V(w), V(b), 1e-5)
        exp = torch.nn.functional.layer_norm(torch.tensor(a), ns, T(w), T(b), 1e-5)
        assert_same(got, exp, rtol=1e-5 if name == "float32" else 1e-10, atol=1e-5 if name == "float32" else 1e-10)
    # non-contiguous input
    a = rng.standard_normal((64, 48)).astype(dt)
    got = vt.nn.functional.layer_norm(vt.tensor(a).transpose(0, 1), (64,))
    exp = torch.nn.functional.layer_norm(torch.tensor(a).transpose(0, 1), (64,))
    assert_same(got, exp, rtol=1e-5, atol=1e-5)


def test_fused_layer_norm_op_checks():
    x = vt.tensor(np.ones((3, 4), np.float32))
    with pytest.raises(RuntimeError, match="_fused_layer_norm"):
        vt._fused_layer_norm(x, [5])
    with pytest.raises(RuntimeError, match="_fused_layer_norm"):
        vt._fused_layer_norm(vt.tensor(np.ones((3, 4), np.int64)), [4])
    with pytest.raises(RuntimeError, match="_fused_layer_norm"):
        vt._fused_layer_norm(x, [4], vt.tensor(np.ones(4, np.float64)))
    # constant rows: variance 0 -> (x - mean) * 1/sqrt(eps) = 0, like torch
    y = vt._fused_layer_norm(x, [4], None, None, 1e-5)
    assert np.array_equal(y.numpy(), np.zeros((3, 4), np.float32))


def test_layer_norm_half_uses_composite():
    a = np.random.default_rng(7).standard_normal((5, 8)).astype(np.float16)
    got = vt.nn.functional.layer_norm(vt.tensor(a), (8,))
    exp = torch.nn.functional.layer_norm(torch.tensor(a), (8,))
    assert_same(got, exp, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("name", ["float32", "float64", "int32", "int64", "float16"])
def test_gather_last_dim_rows(name):
    rng = np.random.default_rng(8)
    big = (rng.standard_normal((6, 5, 40)) * 50).astype(name)
    idx = rng.integers(0, 17, (4, 3, 23)).astype(np.int64)  # leading dims smaller than self's
    v_self, t_self = vt.tensor(big)[:, :, :17], torch.tensor(big)[:, :, :17]  # last dim contiguous, rows strided
    assert_same(vt.gather(v_self, 2, vt.tensor(idx)), torch.gather(t_self, 2, torch.tensor(idx)))
    assert_same(vt.gather(v_self, -1, vt.tensor(idx.astype(np.int32))), torch.gather(t_self, -1, torch.tensor(idx)))
    big_idx = rng.integers(0, 17, (6, 5, 3000)).astype(np.int64)  # enough rows to run in parallel
    assert_same(vt.gather(v_self, 2, vt.tensor(big_idx)), torch.gather(t_self, 2, torch.tensor(big_idx)))
    bad = big_idx.copy()
    bad[5, 4, 2999] = 17
    with pytest.raises(IndexError, match="gather"):
        vt.gather(v_self, 2, vt.tensor(bad))
    bad[5, 4, 2999] = -18
    with pytest.raises(IndexError, match="gather"):
        vt.gather(v_self, 2, vt.tensor(bad))
    bad[0, 0, 0] = 1 << 40
    with pytest.raises(IndexError, match="gather"):
        vt.gather(v_self, 2, vt.tensor(bad))
    # a 0-d self with a 1-d index does not take the row path
    assert_same(vt.gather(vt.tensor(3.0), 0, vt.tensor([0, 0])), torch.gather(torch.tensor(3.0), 0, torch.tensor([0, 0])))
    empty = np.zeros((4, 3, 0), np.int64)
    assert_same(vt.gather(v_self, 2, vt.tensor(empty)), torch.gather(t_self, 2, torch.tensor(empty)))


def test_small_work_stays_serial_and_large_work_goes_parallel():
    """Spec 01: every CPU parallel loop has the size threshold. A thread team for a few hundred elements costs more
    than the work, and on a busy machine it waits for a worker that may not get a core: a 6-layer model's backward
    took 35-100 ms instead of 2 ms on a loaded 2-core machine while layer_norm's backward split every input."""
    old = vt.get_num_threads()

    def backward_regions(rows, n):
        x = vt.randn(rows, n, requires_grad=True)
        w, b = vt.ones(n, requires_grad=True), vt.zeros(n, requires_grad=True)
        y = vt.nn.functional.layer_norm(x, (n,), w, b)
        g = vt.ones(rows, n)
        before = vt._C._parallel_regions()
        y.backward(g)
        return vt._C._parallel_regions() - before, x.grad

    try:
        vt.set_num_threads(2)
        if vt.get_num_threads() < 2:
            pytest.skip("built without OpenMP: every loop is serial")
        small, gx = backward_regions(32, 32)
        assert small == 0, f"a 32x32 layer_norm backward started {small} thread teams"
        assert gx.shape == (32, 32)
        large, _ = backward_regions(256, 512)
        assert large >= 1, "a 256x512 layer_norm backward ran serially"
    finally:
        vt.set_num_threads(old)
