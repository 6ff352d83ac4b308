"""The fast paths of the CUDA kernels vs PyTorch on the CPU: split (two-pass) full and few-row reductions,
outer-dim (column) reductions, and the contiguous vectorised elementwise/copy path (ReduceNote in reduce_gemm.cu,
VecNote in elementwise.cu). Sizes are chosen to hit each path and its edges (tails, misaligned views, NaN,
half/bfloat16, integers). Every test needs a GPU and a build with the CUDA kernels; otherwise it is skipped."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt

HAS_GPU = vt.cuda.is_available()
HAS_OPS = vt.cuda._tensors.has_ops()
pytestmark = pytest.mark.skipif(not (HAS_GPU and HAS_OPS),
                                reason="needs a CUDA GPU and a build with the CUDA kernels "
                                       f"(is_available()={HAS_GPU}, has_ops()={HAS_OPS})")

DT = {"float32": (vt.float32, torch.float32), "float64": (vt.float64, torch.float64),
      "float16": (vt.float16, torch.float16), "bfloat16": (vt.bfloat16, torch.bfloat16),
      "int64": (vt.int64, torch.int64), "int32": (vt.int32, torch.int32), "int8": (vt.int8, torch.int8),
      "uint8": (vt.uint8, torch.uint8), "bool": (vt.bool, torch.bool)}


def make(shape, dt, seed=0):
    g = torch.Generator().manual_seed(seed)
    tdt = DT[dt][1]
    if tdt == torch.bool:
        return torch.rand(shape, generator=g) > 0.5
    if tdt.is_floating_point:
        return torch.randn(shape, generator=g, dtype=torch.float64).to(tdt)
    lo = 0 if tdt == torch.uint8 else -20
    return torch.randint(lo, 20, shape, generator=g, dtype=tdt)


def to_vt(t):
    if t.dtype == torch.bfloat16:
        return vt.tensor(t.float().numpy()).to(vt.bfloat16).to("cuda")
    return vt.tensor(t.numpy()).to("cuda")


def to_torch(v):
    v = v.cpu()
    if v.dtype == vt.bfloat16:
        return torch.from_numpy(np.asarray(v.float().numpy())).to(torch.bfloat16)
    return torch.from_numpy(np.array(v.numpy()))


def close(vres, tres, rtol, atol):
    assert vres.device.type == "cuda"
    host = to_torch(vres)
    assert tuple(host.shape) == tuple(tres.shape), (host.shape, tres.shape)
    assert str(host.dtype) == str(tres.dtype), (host.dtype, tres.dtype)
    if tres.dtype.is_floating_point:
        torch.testing.assert_close(host.double(), tres.double(), rtol=rtol, atol=atol, equal_nan=True)
    else:
        assert torch.equal(host, tres)


def sum_tol(t, dims=None):
    """A bound for a float sum's rounding error: a small multiple of eps times the sum of |x|."""
    eps = {torch.float32: 1.2e-7, torch.float64: 2.3e-16, torch.float16: 1e-3, torch.bfloat16: 8e-3}[t.dtype]
    a = t.double().abs()
    s = a.sum() if dims is None else a.sum(dims)
    return float(s.max()) * eps * 64 + 1e-6


# ---- full and few-row reductions (split into chunks, partials combined by a second kernel)
class TestLongReductions:
    @pytest.mark.parametrize("n", [16383, 32768, 1 << 20, 3_000_017])
    def test_sum_mean_float32(self, n):
        t = make((n,), "float32", seed=n % 97)
        v = to_vt(t)
        ref = t.double().sum()
        tol = sum_tol(t)
        close(vt.sum(v), ref.float(), rtol=0, atol=tol)
        close(vt.mean(v), (ref / n).float(), rtol=0, atol=tol / n + 1e-7)

    @pytest.mark.parametrize("dt", ["float16", "bfloat16", "float64"])
    def test_sum_mean_other_floats(self, dt):
        t = make((1_000_003,), dt, seed=3) * 0.01
        v = to_vt(t)
        ref = t.double().sum()
        # the result is rounded to the dtype: allow its ulp at |ref| plus the accumulation bound
        ulp = {"float16": 1e-3, "bfloat16": 8e-3, "float64": 1e-15}[dt]
        tol = sum_tol(t.float() if dt != "float64" else t) + abs(float(ref)) * ulp
        close(vt.sum(v), ref.to(DT[dt][1]), rtol=0, atol=tol)
        close(vt.mean(v), (ref / t.numel()).to(DT[dt][1]), rtol=2 * ulp, atol=tol / t.numel() + 1e-6)

    @pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16", "float64", "int32", "int64", "int8", "uint8",
                                    "bool"])
    def test_amax_amin_exact(self, dt):
        t = make((2_000_001,), dt, seed=5)
        v = to_vt(t)
        close(vt.amax(v), torch.amax(t), 0, 0)
        close(vt.amin(v), torch.amin(t), 0, 0)

    @pytest.mark.parametrize("dt", ["int32", "int64", "uint8", "bool"])
    def test_integer_sum_exact(self, dt):
        t = make((1_500_007,), dt, seed=7)
        close(vt.sum(to_vt(t)), torch.sum(t), 0, 0)

    @pytest.mark.parametrize("pos", [0, 123_456, 2_999_999])
    def test_nan_propagates(self, pos):
        t = make((3_000_000,), "float32", seed=11)
        t[pos] = float("nan")
        v = to_vt(t)
        for f in (vt.sum, vt.mean, vt.amax, vt.amin):
            assert torch.isnan(to_torch(f(v))).item(), f

    def test_inf_max(self):
        t = make((1_000_000,), "float32", seed=2)
        t[777_777] = float("inf")
        t[5] = float("-inf")
        v = to_vt(t)
        close(vt.amax(v), torch.amax(t), 0, 0)
        close(vt.amin(v), torch.amin(t), 0, 0)

    @pytest.mark.parametrize("shape", [(3, 1_000_003), (7, 65_536), (100, 20_000), (1, 1 << 20)])
    def test_few_long_rows(self, shape):
        t = make(shape, "float32", seed=13)
        v = to_vt(t)
        ref = t.double().sum(-1)
        close(vt.sum(v, dim=-1), ref.float(), rtol=0, atol=sum_tol(t, -1))
        close(vt.mean(v, dim=1, keepdim=True), (ref / shape[1]).float().unsqueeze(1), rtol=0,
              atol=sum_tol(t, -1) / shape[1] + 1e-7)
        close(vt.amax(v, dim=-1), torch.amax(t, dim=-1), 0, 0)
        close(vt.amin(v, dim=1), torch.amin(t, dim=1), 0, 0)

    def test_nan_in_one_row(self):
        t = make((5, 400_000), "float32", seed=17)
        t[3, 399_999] = float("nan")
        v = to_vt(t)
        for vf, tf in ((vt.amax, torch.amax), (vt.sum, torch.sum)):
            r = to_torch(vf(v, dim=1))
            assert torch.isnan(r[3]).item() and not torch.isnan(r[[0, 1, 2, 4]]).any().item()
            torch.testing.assert_close(r[[0, 1, 2, 4]], tf(t, dim=1)[[0, 1, 2, 4]], rtol=1e-4, atol=1e-2)

    def test_deterministic(self):
        t = make((5_000_000,), "float32", seed=19)
        v = to_vt(t)
        a = to_torch(vt.sum(v)).item()
        for _ in range(3):
            assert to_torch(vt.sum(v)).item() == a

    def test_full_reduction_of_noncontiguous(self):
        t = make((2048, 1500), "float32", seed=23)
        v = to_vt(t)
        close(vt.sum(v.t()), t.double().sum().float(), rtol=0, atol=sum_tol(t))
        close(vt.amax(v[:, ::3]), torch.amax(t[:, ::3]), 0, 0)


# ---- outer-dim reductions (columns, each thread one output, the reduced dim split over blocks when few)
class TestColumnReductions:
    @pytest.mark.parametrize("shape,dims", [
        ((4096, 37), (0,)),          # few outputs, long reduced dim: split
        ((32768, 64), (0,)),
        ((513, 1000), (0,)),         # many outputs: one pass
        ((5, 300, 7), (1,)),         # outer and inner
        ((2, 3000, 40), (1,)),
        ((60, 50, 33), (0, 1)),      # a run of two reduced dims
        ((3, 4, 5, 6), (1, 2)),
        ((8, 1, 2000, 3), (1, 2)),   # size-1 dims around the run
        ((1, 9000, 33), (1,)),
    ])
    @pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16", "float64"])
    def test_float(self, shape, dims, dt):
        t = make(shape, dt, seed=len(shape))
        v = to_vt(t)
        tdt = DT[dt][1]
        close(vt.amax(v, dim=list(dims)), torch.amax(t, dim=dims), 0, 0)
        close(vt.amin(v, dim=list(dims), keepdim=True), torch.amin(t, dim=dims, keepdim=True), 0, 0)
        ref = t.double().sum(dims)
        ulp = {"float32": 1.2e-7, "float16": 1e-3, "bfloat16": 8e-3, "float64": 1e-15}[dt]
        tol = sum_tol(t.float() if dt in ("float16", "bfloat16") else t, dims) + float(ref.abs().max()) * ulp
        close(vt.sum(v, dim=list(dims)), ref.to(tdt), rtol=0, atol=tol)
        cnt = 1
        for d in dims:
            cnt *= shape[d]
        close(vt.mean(v, dim=list(dims), keepdim=True), (t.double().sum(dims, keepdim=True) / cnt).to(tdt),
              rtol=2 * ulp, atol=tol / cnt + 1e-6)

    @pytest.mark.parametrize("dt", ["int32", "int64", "int8", "uint8", "bool"])
    def test_integers_exact(self, dt):
        t = make((5000, 45), dt, seed=29)
        v = to_vt(t)
        close(vt.sum(v, dim=0), torch.sum(t, dim=0), 0, 0)
        close(vt.amax(v, dim=0), torch.amax(t, dim=0), 0, 0)
        close(vt.amin(v, dim=0), torch.amin(t, dim=0), 0, 0)
        t3 = make((6, 700, 9), dt, seed=31)
        close(vt.sum(to_vt(t3), dim=1), torch.sum(t3, dim=1), 0, 0)

    def test_nan_column(self):
        t = make((10000, 40), "float32", seed=37)
        t[9876, 3] = float("nan")
        t[0, 39] = float("nan")
        v = to_vt(t)
        for vf, tf in ((vt.amax, torch.amax), (vt.amin, torch.amin)):
            close(vf(v, dim=0), tf(t, dim=0), 0, 0)
        s = to_torch(vt.sum(v, dim=0))
        assert torch.isnan(s[3]).item() and torch.isnan(s[39]).item()
        assert torch.isnan(s).sum().item() == 2

    def test_matches_transposed_path(self):
        t = make((3000, 50), "float32", seed=41)
        v = to_vt(t)
        # the same reduction through a non-contiguous input (permute + copy + row path) and the column path
        torch.testing.assert_close(to_torch(vt.amax(v, dim=0)), to_torch(vt.amax(v.t(), dim=1)), rtol=0, atol=0)
        torch.testing.assert_close(to_torch(vt.sum(v, dim=0)), to_torch(vt.sum(v.t(), dim=1)), rtol=1e-5,
                                   atol=1e-3)

    def test_empty_and_errors(self):
        v = vt.zeros(0, 5, device="cuda")
        close(vt.sum(v, dim=0), torch.zeros(5), 0, 0)
        assert torch.isnan(to_torch(vt.mean(v, dim=0))).all().item()
        with pytest.raises((IndexError, RuntimeError), match="non-zero size"):
            vt.amax(v, dim=0)
        close(vt.sum(vt.zeros(5, 0, 3, device="cuda"), dim=0), torch.zeros(0, 3), 0, 0)


# ---- contiguous elementwise and copies (vectorised packs, misaligned views, broadcast scalars, tails)
SIZES = [1, 3, 17, 4099, 1_000_003]


class TestContiguousElementwise:
    @pytest.mark.parametrize("n", SIZES)
    @pytest.mark.parametrize("offset", [0, 1, 3])
    @pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16", "float64", "int32", "int8"])
    def test_binary_and_unary(self, n, offset, dt):
        a = make((n + offset,), dt, seed=n)
        b = make((n + offset,), dt, seed=n + 1)
        va, vb = to_vt(a), to_vt(b)
        ta, tb = a[offset:], b[offset:]
        sa, sb = va[offset:], vb[offset:]
        exact = (0, 0)
        close(vt.add(sa, sb), ta + tb, *exact)
        close(vt.mul(sa, sb), ta * tb, *exact)
        close(vt.sub(sa, vb[:n]), ta - b[:n], *exact)   # one operand aligned, the other not (offset > 0)
        close(vt.relu(sa), torch.relu(ta), *exact)
        close(vt.neg(sa), -ta, *exact)
        close(sa.clone(), ta.clone(), *exact)
        close(vt.mul(sa, 3), ta * 3, *exact)            # a broadcast scalar operand
        if DT[dt][1].is_floating_point:
            rt = {"float32": 1e-6, "float64": 1e-14, "float16": 1e-3, "bfloat16": 8e-3}[dt]
            close(vt.exp(sa), torch.exp(ta), rtol=rt, atol=rt)
            close(vt.add(sa, sb, alpha=0.5), torch.add(ta, tb, alpha=0.5), rtol=rt, atol=rt)

    @pytest.mark.parametrize("n", SIZES)
    @pytest.mark.parametrize("offset", [0, 1, 5])
    def test_casts(self, n, offset):
        t = make((n + offset,), "float32", seed=7) * 50
        v = to_vt(t)[offset:]
        r = t[offset:]
        for dt in ("float16", "bfloat16", "float64", "int32", "int8", "bool"):
            close(v.to(DT[dt][0]), r.to(DT[dt][1]), 0, 0)
        h = to_vt(r.half())
        close(h.to(vt.float32), r.half().float(), 0, 0)

    @pytest.mark.parametrize("n", [5, 4096, 1_000_001])
    def test_inplace_and_copy_(self, n):
        a = make((n + 2,), "float32", seed=1)
        b = make((n + 2,), "float32", seed=2)
        va, vb = to_vt(a), to_vt(b)
        va.add_(vb)
        close(va, a + b, 0, 0)
        dst = vt.zeros(n + 2, device="cuda")
        dst[1:].copy_(vb[:-1])                            # misaligned destination
        ref = torch.zeros(n + 2)
        ref[1:] = b[:-1]
        close(dst, ref, 0, 0)
        dst2 = vt.zeros(n, device="cuda", dtype=vt.float16)
        dst2.copy_(vb[2:])                                # cast on copy_
        close(dst2, b[2:].half(), 0, 0)

    def test_broadcast_and_strided_keep_working(self):
        a = make((300, 257), "float32", seed=3)
        b = make((257,), "float32", seed=4)
        va, vb = to_vt(a), to_vt(b)
        close(vt.add(va, vb), a + b, 0, 0)                # row broadcast: generic path
        close(vt.mul(va.t(), 2.0), a.t() * 2.0, 0, 0)     # transposed input
        close(vt.relu(va[:, ::2]), torch.relu(a[:, ::2]), 0, 0)

    def test_nan_and_comparisons(self):
        t = make((100_003,), "float32", seed=5)
        t[::7] = float("nan")
        v = to_vt(t)
        close(vt.relu(v), torch.relu(t), 0, 0)
        close(vt.maximum(v, vt.zeros(100_003, device="cuda")), torch.maximum(t, torch.zeros(100_003)), 0, 0)
        close(vt.eq(v, v), torch.eq(t, t), 0, 0)
        close(vt.lt(v[1:], v[:-1]), torch.lt(t[1:], t[:-1]), 0, 0)


# ---- layer_norm forward (_fused_layer_norm's CUDA kernel) and softmax / log_softmax (one block per row)
def _call(name, *args):
    from vibetensor.torch._ops import call
    return call(name, *args)


NORM_TOL = {"float32": (2e-5, 2e-5), "float64": (1e-12, 1e-12), "float16": (2e-3, 2e-3), "bfloat16": (1.6e-2, 1.6e-2)}


class TestRowKernels:
    @pytest.mark.parametrize("shape", [(1, 1), (3, 5), (16384 // 64, 1024), (7, 127), (2, 3, 1001), (4, 4096),
                                       (3, 4099), (2, 10_000), (1000, 64)])
    @pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16", "float64"])
    @pytest.mark.parametrize("affine", [False, True])
    def test_fused_layer_norm(self, shape, dt, affine):
        t = make(shape, dt, seed=shape[-1]) * 3 + 1
        n = shape[-1]
        w = make((n,), dt, seed=1) if affine else None
        b = make((n,), dt, seed=2) if affine else None
        r = _call("_fused_layer_norm", to_vt(t), [n], to_vt(w) if affine else None, to_vt(b) if affine else None,
                  1e-5)
        ref = torch.nn.functional.layer_norm(t.double(), (n,), None if w is None else w.double(),
                                             None if b is None else b.double(), 1e-5).to(t.dtype)
        close(r, ref, *NORM_TOL[dt])

    def test_fused_layer_norm_two_dims_and_views(self):
        t = make((6, 5, 40), "float32", seed=3)
        v = to_vt(t)
        r = _call("_fused_layer_norm", v, [5, 40], None, None, 1e-5)
        close(r, torch.nn.functional.layer_norm(t, (5, 40)), *NORM_TOL["float32"])
        tt = make((40, 30), "float32", seed=4)
        r = _call("_fused_layer_norm", to_vt(tt).t(), [40], None, None, 1e-3)   # non-contiguous input
        close(r, torch.nn.functional.layer_norm(tt.t(), (40,), eps=1e-3), *NORM_TOL["float32"])
        tn = make((3, 50), "float32", seed=5)
        tn[1, 7] = float("nan")
        r = to_torch(_call("_fused_layer_norm", to_vt(tn), [50], None, None, 1e-5))
        assert torch.isnan(r[1]).all().item() and not torch.isnan(r[[0, 2]]).any().item()

    def test_functional_layer_norm(self):
        t = make((33, 300), "float32", seed=6)
        w, b = make((300,), "float32", seed=7), make((300,), "float32", seed=8)
        r = vt.nn.functional.layer_norm(to_vt(t), (300,), to_vt(w), to_vt(b))
        close(r, torch.nn.functional.layer_norm(t, (300,), w, b), *NORM_TOL["float32"])

    @pytest.mark.parametrize("shape", [(5, 1), (4, 3), (9, 127), (8, 1000), (4, 4096), (3, 4097), (2, 10_000),
                                       (2, 3, 65)])
    @pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16", "float64"])
    def test_softmax_log_softmax(self, shape, dt):
        t = make(shape, dt, seed=shape[-1]) * 4
        v = to_vt(t)
        tol = NORM_TOL[dt]
        close(vt.softmax(v, -1), torch.softmax(t.double(), -1).to(t.dtype), *tol)
        close(vt.log_softmax(v, -1), torch.log_softmax(t.double(), -1).to(t.dtype), *tol)
        close(vt.softmax(v, 0), torch.softmax(t.double(), 0).to(t.dtype), *tol)

    def test_softmax_special_values(self):
        t = make((4, 600), "float32", seed=9)
        t[1, 5] = float("nan")
        t[2, :] = float("-inf")
        t[3, 17] = float("inf")
        v = to_vt(t)
        for vf, tf in ((vt.softmax, torch.softmax), (vt.log_softmax, torch.log_softmax)):
            close(vf(v, -1), tf(t, -1), 1e-5, 1e-5)

    def test_cross_entropy(self):
        x = make((64, 5000), "float32", seed=10)
        y = torch.randint(0, 5000, (64,), generator=torch.Generator().manual_seed(1))
        r = vt.nn.functional.cross_entropy(to_vt(x), to_vt(y))
        close(r, torch.nn.functional.cross_entropy(x, y), 1e-5, 1e-5)


# ---- norms and products of few long rows (split into chunks, second pass per row)
class TestLongRowReduce:
    @pytest.mark.parametrize("n", [32767, 32768 * 2 + 5, 1_000_003])
    @pytest.mark.parametrize("p", [2, 1, float("inf"), float("-inf"), 0, 3.0])
    def test_norm_full(self, n, p):
        t = make((n,), "float32", seed=n % 101)
        close(vt.norm(to_vt(t), p), torch.norm(t.double(), p).float(), rtol=1e-5, atol=1e-5)

    @pytest.mark.parametrize("dt", ["float16", "bfloat16", "float64"])
    def test_norm_other_dtypes(self, dt):
        t = make((500_000,), dt, seed=3)
        tol = {"float16": 2e-3, "bfloat16": 1.6e-2, "float64": 1e-12}[dt]
        close(vt.norm(to_vt(t)), torch.norm(t.double()).to(t.dtype), rtol=tol, atol=tol)

    def test_norm_rows_and_nan(self):
        t = make((3, 300_001), "float32", seed=5)
        t[1, 250_000] = float("nan")
        r = to_torch(vt.norm(to_vt(t), 2, [1]))
        assert torch.isnan(r[1]).item()
        torch.testing.assert_close(r[[0, 2]], torch.norm(t.double(), 2, 1)[[0, 2]].float(), rtol=1e-5, atol=1e-5)
        r = to_torch(vt.norm(to_vt(t), float("inf"), [1]))
        assert torch.isnan(r[1]).item()

    def test_prod_long(self):
        t = 1 + make((200_003,), "float64", seed=7) * 1e-4
        close(vt.prod(to_vt(t)), torch.prod(t), rtol=1e-10, atol=0)
        ti = (make((100_000,), "int64", seed=9) % 3) + 1
        close(vt.prod(to_vt(ti)), torch.prod(ti), 0, 0)   # wraps like torch


# ---- index_put_ with many index tuples (embedding's backward): the stable sort of the offsets, then one thread per
# (run, rest position) (launch_sorted_scatter). The result must equal the CPU kernel's bit for bit: duplicates are
# resolved in index order by both. 63 tuples take the one-thread-per-line kernel, 64 and more the sorted one.
@pytest.mark.parametrize("n", [63, 64, 1000, 20000])
@pytest.mark.parametrize("dt", ["float32", "float64", "int64", "bool", "float16"])
@pytest.mark.parametrize("accumulate", [True, False])
def test_index_put_many_indices_equals_the_cpu_kernel(n, dt, accumulate):
    g = torch.Generator().manual_seed(n)
    base, vals = make((50, 3, 7), dt, seed=1), make((n, 3, 7), dt, seed=2)
    idx = torch.randint(-50, 50, (n,), generator=g)  # negative indices too, and many duplicates
    cpu = vt.tensor(base.numpy()).index_put_((vt.tensor(idx.numpy()),), vt.tensor(vals.numpy()), accumulate)
    gpu = to_vt(base).index_put_((to_vt(idx),), to_vt(vals), accumulate)
    np.testing.assert_array_equal(gpu.cpu().numpy(), cpu.numpy())
    if accumulate:
        ref = base.clone().index_put_((idx,), vals, accumulate=True)
        close(gpu, ref, *{"float32": (1e-4, 1e-4), "float64": (1e-10, 1e-10), "float16": (1e-2, 2e-1)}.get(dt, (0, 0)))


def test_index_put_two_index_tensors_into_a_transposed_tensor():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(9, 4, 6, generator=g)
    i0, i1 = torch.randint(0, 9, (500,), generator=g), torch.randint(-6, 6, (500,), generator=g)
    vals = torch.randn(500, 4, generator=g)
    gpu = to_vt(base).transpose(1, 2)  # [9, 6, 4], strided
    gpu.index_put_((to_vt(i0), to_vt(i1)), to_vt(vals), True)
    cpu = vt.tensor(base.numpy()).transpose(1, 2)
    cpu.index_put_((vt.tensor(i0.numpy()), vt.tensor(i1.numpy())), vt.tensor(vals.numpy()), True)
    np.testing.assert_array_equal(gpu.cpu().numpy(), cpu.numpy())


def test_embedding_backward_many_tokens_equals_the_cpu():
    g = torch.Generator().manual_seed(3)
    w = torch.randn(100, 32, generator=g)
    tok = torch.randint(0, 100, (8, 256), generator=g)
    grads = {}
    for dev in ("cpu", "cuda"):
        wv = vt.tensor(w.numpy()).to(dev).requires_grad_()
        out = vt.nn.functional.embedding(vt.tensor(tok.numpy()).to(dev), wv)
        (out * vt.tensor(np.linspace(-1, 1, 32, dtype=np.float32)).to(dev)).sum().backward()
        grads[dev] = wv.grad.cpu().numpy()
    np.testing.assert_array_equal(grads["cuda"], grads["cpu"])


# ---- row reductions of few short rows (a 1-D tensor's norm, clip_grad_norm_'s per-parameter norms): a block per row
# from kFewRowsMinCols elements on, for at most kFewRows rows; one thread per row otherwise. From 8192 elements on a
# row is split into chunks of at least 2048 (8191, 8192, a 256x1024 weight's 262144).
@pytest.mark.parametrize("shape", [(127,), (128,), (1000,), (2047,), (4096, 200), (4097, 200), (3, 129), (8191,),
                                   (8192,), (262144,), (5, 12289)])
@pytest.mark.parametrize("p", [1.0, 2.0, float("inf"), 3.0, 0.0])
def test_norm_of_few_short_rows(shape, p):
    t = make(shape, "float32", seed=len(shape))
    r = vt.norm(to_vt(t), p, dim=-1)
    ref = torch.linalg.vector_norm(t.double(), p, dim=-1).float()
    close(r, ref, 1e-5, 1e-5)
