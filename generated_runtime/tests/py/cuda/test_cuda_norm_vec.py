"""The CUDA row kernels' dispatch branches (LayerNormNote, SoftmaxNote and FusedNnNote in
src/vbt/cuda/ops/reduce_gemm.cu): layer_norm forward (row groups of 4..32 lanes with 2 or 4 16-byte vectors per lane,
a block per row with 2 vectors per thread, the one-block-per-row fallback with 4 or 16 registers per thread or three
reads), mean/rstd of the forward with grad, the fused layer_norm backward (dx + dweight + dbias, one row chunk per lane
group, 8 or more rows per chunk) and its per-row fallback, softmax / log_softmax (row groups of 4..32 lanes up to 128
vectors, softmax_blk, or the fallback) and their backward as one op (_softmax_backward_data,
_log_softmax_backward_data: the same three shapes).

Shapes hit every branch: cols 1, 3, 31, 33 (not a multiple of the vector), 32, 48, 128, 256, 384, 512 (row groups /
the fused backward), 1000, 1024, 4096, 5000 (block per row), 70000 (fallback, rows read three times); rows 1, 7, 8192,
20000 (more than 8 rows per backward chunk). Misaligned views (storage offset 1: data, weight, grad) take the
fallbacks. float32 / float16 / bfloat16 / float64, with and without weight / bias. The reference is torch in float64
on the CPU from the same (rounded) inputs, and torch on CUDA in the same dtype when this torch has CUDA. The fused
backward must be deterministic (two runs bit-equal). Every test needs a GPU and a build with the CUDA kernels;
otherwise it is skipped."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt

HAS_GPU = vt.cuda.is_available()
HAS_OPS = HAS_GPU and vt.cuda._tensors.has_ops()
pytestmark = pytest.mark.skipif(not (HAS_GPU and HAS_OPS),
                                reason="needs a CUDA GPU and a build with the CUDA kernels "
                                       f"(is_available()={HAS_GPU}, has_ops()={HAS_OPS})")
TORCH_CUDA = torch.cuda.is_available()

F = vt.nn.functional
TF = torch.nn.functional
DT = {"float32": (vt.float32, torch.float32), "float64": (vt.float64, torch.float64),
      "float16": (vt.float16, torch.float16), "bfloat16": (vt.bfloat16, torch.bfloat16)}
DTYPES = list(DT)
# relative tolerance per dtype (a few roundings of the output dtype; float32: accumulation order, float rstd)
TOL = {"float32": 2e-5, "float64": 1e-10, "float16": 4e-3, "bfloat16": 3e-2}
# mean / rstd are float for float16 / bfloat16 (double for float64)
STAT_TOL = {"float32": 2e-5, "float64": 1e-10, "float16": 2e-5, "bfloat16": 2e-5}


def shape_id(s):
    return "x".join(map(str, s))


COLS = [1, 3, 31, 32, 33, 48, 128, 256, 384, 512, 1000, 1024, 4096, 5000, 70000]
SHAPES = [(r, c) for c in COLS for r in (1, 7)] + [
    (8192, 1), (8192, 33), (8192, 32), (8192, 256), (8192, 384), (8192, 1024), (1024, 4096), (512, 5000),
    (20000, 32), (64, 70000)]
# misaligned views (storage offset 1) of shapes the vector kernels would take when aligned: they fall back
MISALIGNED = [(7, 32), (7, 256), (8192, 256), (7, 384), (7, 1024), (7, 4096)]
CASES = [pytest.param(s, False, id=shape_id(s)) for s in SHAPES] + \
    [pytest.param(s, True, id=shape_id(s) + "-offset1") for s in MISALIGNED]
# the fused backward's shapes (cols <= 512, whole vectors for float32 and 16-bit types) and a few fallbacks
FUSED = [(7, 32), (8192, 32), (20000, 32), (7, 48), (8192, 128), (8192, 256), (8192, 384), (1, 512), (8192, 512),
         (7, 1000), (8192, 1024)]


def rounded(a, dt):
    """a (float64 numpy) rounded to dt, as a float64 torch tensor (the exact values both sides see)."""
    return torch.tensor(a).to(DT[dt][1]).double()


def to_vt(t64, dt, grad=False, misaligned=False):
    """t64 on CUDA in dt; misaligned: a dense view one element into a larger buffer (not 16-byte aligned)."""
    if misaligned:
        flat = torch.cat([torch.zeros(1, dtype=torch.float64), t64.reshape(-1)])
        v = vt.tensor(flat.numpy()).to("cuda").to(DT[dt][0])
        v = v[1:].reshape(tuple(t64.shape)).detach()
        assert v.storage_offset() == 1 and v.data_ptr() % 16 != 0 and v.is_contiguous()
    else:
        v = vt.tensor(t64.numpy()).to("cuda").to(DT[dt][0])
    return v.requires_grad_() if grad else v


def host(v):
    return torch.from_numpy(np.array(v.detach().cpu().to(vt.float64).numpy()))


def close(v, ref, dt, scale=1.0, tol=None, floor=0.0):
    """|v - ref| <= tol * (|ref| + scale * max|ref|) (or + floor, when larger): elementwise relative plus a floor
    relative to the largest."""
    assert v.device.type == "cuda"
    h = host(v)
    ref = ref.detach().double()
    assert tuple(h.shape) == tuple(ref.shape), (h.shape, ref.shape)
    tol = TOL[dt] if tol is None else tol
    big = float(ref[torch.isfinite(ref)].abs().max()) if torch.isfinite(ref).any() else 0.0
    torch.testing.assert_close(h, ref, rtol=tol, atol=max(tol * scale * max(big, 1e-30), floor), equal_nan=True)


def inputs(shape, dt, seed):
    rng = np.random.default_rng(seed)
    rows, cols = shape
    x = rounded(rng.standard_normal(shape) * 2 + 0.5, dt)
    w = rounded(rng.standard_normal(cols), dt)
    b = rounded(rng.standard_normal(cols), dt)
    g = rounded(rng.standard_normal(shape), dt)
    return x, w, b, g


def _call(name, *args):
    from vibetensor.torch._ops import call
    return call(name, *args)


# ---- layer_norm forward (no grad: _fused_layer_norm) and the forward saving mean / rstd (_fused_layer_norm_fwd)


@pytest.mark.parametrize("shape,misaligned", CASES)
@pytest.mark.parametrize("dt", DTYPES)
def test_layer_norm_forward_and_stats(dt, shape, misaligned):
    x, w, b, _ = inputs(shape, dt, shape[0] * 31 + shape[1])
    n = shape[1]
    X = to_vt(x, dt, misaligned=misaligned)
    W, B = to_vt(w, dt, misaligned=misaligned), to_vt(b, dt, misaligned=misaligned)
    ref = TF.layer_norm(x, (n,), w, b, 1e-5)
    y = F.layer_norm(X, (n,), W, B, 1e-5)
    assert y.dtype == DT[dt][0]
    close(y, ref, dt)
    close(F.layer_norm(X, (n,), None, None, 1e-5), TF.layer_norm(x, (n,), None, None, 1e-5), dt)
    out, mean, rstd = _call("_fused_layer_norm_fwd", X, [n], W, B, 1e-5)
    close(out, ref, dt)
    rm = x.mean(-1)
    rr = 1.0 / torch.sqrt(x.var(-1, correction=0) + 1e-5)
    st = STAT_TOL[dt]
    torch.testing.assert_close(host(mean).reshape(-1), rm, rtol=st, atol=st * float(x.abs().max()))
    torch.testing.assert_close(host(rstd).reshape(-1), rr, rtol=st, atol=0.0)


def test_layer_norm_forward_nan_row_and_constant_rows():
    for cols in (256, 1024, 33):  # row group, block per row, fallback
        x = torch.randn(4, cols, dtype=torch.float64)
        x[1, 7] = float("nan")
        x[2] = 3.0  # variance 0: y = 0 * rstd(eps)
        y = host(F.layer_norm(to_vt(x, "float32"), (cols,)))
        assert torch.isnan(y[1]).all().item() and not torch.isnan(y[[0, 2, 3]]).any().item()
        assert float(y[2].abs().max()) == 0.0


# ---- layer_norm with grad: forward with stats, then the fused (or per-row) backward


def ln_case(x, dt, w, b, g, misaligned=False, eps=1e-5):
    ns = (x.shape[-1],)
    X = to_vt(x, dt, True, misaligned)
    W = to_vt(w, dt, True, misaligned) if w is not None else None
    B = to_vt(b, dt, True, misaligned) if b is not None else None
    y = F.layer_norm(X, ns, W, B, eps)
    y.backward(to_vt(g, dt, misaligned=misaligned))
    Xt = x.clone().requires_grad_()
    Wt = w.clone().requires_grad_() if w is not None else None
    Bt = b.clone().requires_grad_() if b is not None else None
    yt = TF.layer_norm(Xt, ns, Wt, Bt, eps)
    yt.backward(g)
    return (y, X.grad, W.grad if W is not None else None, B.grad if B is not None else None), \
        (yt, Xt.grad, Wt.grad if Wt is not None else None, Bt.grad if Bt is not None else None)


def check_grads(ours, ref, dt, g, x=None, w=None, eps=1e-5):
    """dx = rstd * (w*g - mean(w*g) - xhat * mean(w*g*xhat)) cancels: on a short row its values can be far below
    the terms it is made of (an H200 run: [1, 3] float32, |dx| ~ 5e-5 from terms ~ 1), so its floor is relative
    to the terms' size rstd * max|w*g|, not to max|dx|."""
    close(ours[0], ref[0], dt, scale=1.0)
    dx_floor = 0.0
    if x is not None:
        rstd = float((x.double().var(-1, unbiased=False) + eps).rsqrt().max())
        wmax = float(w.double().abs().max()) if w is not None and w.numel() else 1.0
        dx_floor = TOL[dt] * rstd * wmax * float(g.double().abs().max())
    n = ref[0].shape[-1]
    for i, (o, r) in enumerate(zip(ours[1:], ref[1:]), start=1):
        assert (o is None) == (r is None), i
        if o is None:
            continue
        if n == 1 and i in (1, 2):
            # n == 1: x - mean is 0 up to rounding, and so are dx and dweight (torch gets exact zeros, and a
            # floor relative to the largest reference value would then be 0): bound them by the gradient's size
            assert float(host(o).abs().max()) <= TOL[dt] * float(g.abs().sum()), (i, host(o))
        else:
            close(o, r, dt, scale=1.0 if i == 1 else 2.0, floor=dx_floor if i == 1 else 0.0)


@pytest.mark.parametrize("affine", ["wb", "none"])
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("dt", DTYPES)
def test_layer_norm_grad(dt, shape, affine):
    x, w, b, g = inputs(shape, dt, shape[0] * 17 + shape[1])
    ours, ref = ln_case(x, dt, w if "w" in affine else None, b if "b" in affine else None, g)
    check_grads(ours, ref, dt, g, x, w)


@pytest.mark.parametrize("affine", ["w", "b"])  # dweight without dbias and the reverse (one workspace half unused)
@pytest.mark.parametrize("shape", FUSED, ids=shape_id)
@pytest.mark.parametrize("dt", DTYPES)
def test_layer_norm_grad_weight_or_bias_only(dt, shape, affine):
    x, w, b, g = inputs(shape, dt, shape[1] * 3 + len(affine))
    ours, ref = ln_case(x, dt, w if affine == "w" else None, b if affine == "b" else None, g)
    check_grads(ours, ref, dt, g, x, w)


@pytest.mark.parametrize("shape", [(64, 32), (64, 256), (64, 384), (9, 512), (64, 1024)], ids=shape_id)
@pytest.mark.parametrize("dt", DTYPES)
def test_layer_norm_grad_misaligned(dt, shape):
    x, w, b, g = inputs(shape, dt, shape[1] + 5)
    ours, ref = ln_case(x, dt, w, b, g, misaligned=True)
    check_grads(ours, ref, dt, g, x, w)


@pytest.mark.parametrize("shape", [(8192, 256), (20000, 32), (8192, 512), (3000, 1000)], ids=shape_id)
@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16"])
def test_layer_norm_backward_deterministic(dt, shape):
    x, w, b, g = inputs(shape, dt, 11)
    n = shape[1]
    X, W, B, G = to_vt(x, dt), to_vt(w, dt), to_vt(b, dt), to_vt(g, dt)
    _, mean, rstd = _call("_fused_layer_norm_fwd", X, [n], W, B, 1e-5)
    runs = [_call("_fused_layer_norm_backward", G, X, mean, rstd, W, [n], True) for _ in range(2)]
    for a, c in zip(*runs):
        assert torch.equal(host(a), host(c))
    _, ref = ln_case(x, dt, w, b, g)
    for o, r, s in zip(runs[0], ref[1:], (1.0, 2.0, 2.0)):
        close(o, r, dt, scale=s)


@pytest.mark.skipif(not TORCH_CUDA, reason="torch without CUDA")
@pytest.mark.parametrize("shape", [(8192, 256), (512, 768), (8192, 1024), (7, 33)], ids=shape_id)
@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16"])
def test_layer_norm_vs_torch_cuda_same_dtype(dt, shape):
    x, w, b, g = inputs(shape, dt, 6)
    ours, _ = ln_case(x, dt, w, b, g)
    tdt = DT[dt][1]
    Xt, Wt, Bt = (t.to(tdt).cuda().requires_grad_() for t in (x, w, b))
    yt = TF.layer_norm(Xt, (shape[1],), Wt, Bt)
    yt.backward(g.to(tdt).cuda())
    for i, (o, r) in enumerate(zip(ours, (yt, Xt.grad, Wt.grad, Bt.grad))):
        close(o, r.cpu(), dt, scale=1.0 if i < 2 else 2.0)


# ---- softmax / log_softmax over the last dim


@pytest.mark.parametrize("shape,misaligned", CASES)
@pytest.mark.parametrize("dt", DTYPES)
def test_softmax_log_softmax(dt, shape, misaligned):
    rng = np.random.default_rng(shape[1] * 7 + shape[0])
    x = rounded(rng.standard_normal(shape) * 4, dt)
    v = to_vt(x, dt, misaligned=misaligned)
    tdt = DT[dt][1]
    close(vt.softmax(v, -1), torch.softmax(x, -1).to(tdt).double(), dt, scale=0.0 if dt == "float64" else 1e-3)
    close(vt.log_softmax(v, -1), torch.log_softmax(x, -1).to(tdt).double(), dt, scale=1.0)


@pytest.mark.parametrize("cols", [256, 4096, 33])  # row groups, softmax_blk, fallback
def test_softmax_special_values(cols):
    x = torch.randn(4, cols, dtype=torch.float64)
    x[1, 5] = float("nan")
    x[2, :] = float("-inf")
    x[3, 17] = float("inf")
    v = to_vt(x, "float32")
    for vf, tf in ((vt.softmax, torch.softmax), (vt.log_softmax, torch.log_softmax)):
        ours = host(vf(v, -1))
        ref = tf(x.float(), -1).double()
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6, equal_nan=True)


@pytest.mark.skipif(not TORCH_CUDA, reason="torch without CUDA")
@pytest.mark.parametrize("shape", [(8192, 4096), (64, 1000), (7, 33)], ids=shape_id)
@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16"])
def test_softmax_vs_torch_cuda_same_dtype(dt, shape):
    x = rounded(np.random.default_rng(3).standard_normal(shape) * 4, dt)
    tdt = DT[dt][1]
    xt = x.to(tdt).cuda()
    v = to_vt(x, dt)
    close(vt.softmax(v, -1), torch.softmax(xt, -1).cpu().double(), dt, scale=1e-3)
    close(vt.log_softmax(v, -1), torch.log_softmax(xt, -1).cpu().double(), dt, scale=1.0)


# ---- softmax / log_softmax backward (_softmax_backward_data / _log_softmax_backward_data): one row kernel per call
# (lane groups, a block per row, or the fallback, by the same shapes as the forward)

BW_OPS = [("_softmax_backward_data", torch.softmax, torch.ops.aten._softmax_backward_data),
          ("_log_softmax_backward_data", torch.log_softmax, torch.ops.aten._log_softmax_backward_data)]


@pytest.mark.parametrize("name,fwd,ref_op", BW_OPS, ids=[o[0] for o in BW_OPS])
@pytest.mark.parametrize("shape,misaligned", CASES)
@pytest.mark.parametrize("dt", DTYPES)
def test_softmax_backward(dt, shape, misaligned, name, fwd, ref_op):
    rng = np.random.default_rng(shape[1] * 5 + shape[0])
    x = rounded(rng.standard_normal(shape) * 4, dt)
    g = rounded(rng.standard_normal(shape), dt)
    y = rounded(fwd(x, -1).numpy(), dt)  # the forward's output in dt: the exact values both sides see
    ours = _call(name, to_vt(g, dt, misaligned=misaligned), to_vt(y, dt, misaligned=misaligned), -1, DT[dt][0])
    assert ours.dtype == DT[dt][0]
    close(ours, ref_op(g, y, -1, torch.float64), dt, scale=1.0)


@pytest.mark.parametrize("name,fwd,ref_op", BW_OPS, ids=[o[0] for o in BW_OPS])
def test_softmax_backward_dims_scalar_and_input_dtype(name, fwd, ref_op):
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(3, 5, 7, generator=gen, dtype=torch.float64)
    g = torch.randn(3, 5, 7, generator=gen, dtype=torch.float64)
    for dim in (0, 1, -1):  # dims other than the last are moved last (and back)
        y = fwd(x, dim)
        ours = _call(name, to_vt(g, "float64"), to_vt(y, "float64"), dim, vt.float64)
        close(ours, ref_op(g, y, dim, torch.float64), "float64")
    # softmax of a float16 input computed in float32: the gradient comes back in float16
    y = fwd(x.float(), -1).double()
    ours = _call(name, to_vt(g, "float32"), to_vt(y, "float32"), -1, vt.float16)
    assert ours.dtype == vt.float16
    close(ours, ref_op(g, y, -1, torch.float64), "float16")
    g0, y0 = torch.tensor(0.7, dtype=torch.float64), fwd(torch.tensor(0.3, dtype=torch.float64), 0)
    ours = _call(name, to_vt(g0, "float32"), to_vt(y0, "float32"), 0, vt.float32)
    assert tuple(ours.shape) == ()
    close(ours, ref_op(g0, y0, 0, torch.float64), "float32")


@pytest.mark.skipif(not TORCH_CUDA, reason="torch without CUDA")
@pytest.mark.parametrize("name,fwd,ref_op", BW_OPS, ids=[o[0] for o in BW_OPS])
@pytest.mark.parametrize("shape", [(65536, 128), (8192, 4096), (7, 33)], ids=shape_id)
@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16"])
def test_softmax_backward_vs_torch_cuda_same_dtype(dt, shape, name, fwd, ref_op):
    rng = np.random.default_rng(4)
    tdt = DT[dt][1]
    y = fwd(rounded(rng.standard_normal(shape) * 4, dt).to(tdt).cuda(), -1)
    g = rounded(rng.standard_normal(shape), dt).to(tdt).cuda()
    ours = _call(name, to_vt(g.cpu().double(), dt), to_vt(y.cpu().double(), dt), -1, DT[dt][0])
    close(ours, ref_op(g, y, -1, tdt).cpu().double(), dt, scale=1.0)
