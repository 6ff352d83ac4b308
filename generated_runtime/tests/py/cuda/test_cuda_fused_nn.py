"""The fused CUDA cross_entropy (forward and backward) and layer_norm with grad (forward saving mean/rstd, backward
dx/dweight/dbias) (FusedNnNote in src/vbt/cuda/ops/reduce_gemm.cu) against torch: float32/float16/bfloat16 (and
float64), odd sizes (C = 1, C not a multiple of 32 or 4, C = 50257 beyond the register path), ignore_index rows,
all-ignored batches, label smoothing, every reduction. The reference is torch in float64 on the CPU from the same
(rounded) inputs, and torch on CUDA in the same dtype when this torch has CUDA. Every test needs a GPU and a build
with the CUDA kernels; otherwise it is skipped."""
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
# relative tolerance per dtype (a few roundings of the output dtype; float32: accumulation order)
TOL = {"float32": 2e-5, "float64": 1e-10, "float16": 4e-3, "bfloat16": 3e-2}


def rounded(a, dt):
    """a (float64 numpy) rounded to dt, as a float64 torch tensor (the exact values both sides see)."""
    return torch.tensor(a).to(DT[dt][1]).double()


def to_vt(t64, dt, grad=False):
    v = vt.tensor(t64.numpy()).to("cuda").to(DT[dt][0])
    return v.requires_grad_() if grad else v


def host(v):
    return torch.from_numpy(np.array(v.detach().cpu().to(vt.float64).numpy()))


def close(v, ref, dt, scale=1.0):
    """|v - ref| <= tol * (|ref| + scale * max|ref|): elementwise relative plus a floor relative to the largest."""
    assert v.device.type == "cuda"
    h = host(v)
    ref = ref.detach().double()
    assert tuple(h.shape) == tuple(ref.shape), (h.shape, ref.shape)
    tol = TOL[dt]
    big = float(ref[torch.isfinite(ref)].abs().max()) if torch.isfinite(ref).any() else 0.0
    torch.testing.assert_close(h, ref, rtol=tol, atol=tol * scale * max(big, 1e-30), equal_nan=True)


def targets(rng, n, C, ignore=-100, frac=0.25):
    t = rng.integers(0, C, size=n)
    t[rng.random(n) < frac] = ignore
    return t


def ce_case(x64, t, dt, reduction="mean", gout=None, **kw):
    """(vt loss, vt grad) on CUDA and (torch loss, torch grad) in float64 from the rounded inputs."""
    X = to_vt(x64, dt, True)
    loss = F.cross_entropy(X, vt.tensor(t).to("cuda"), reduction=reduction, **kw)
    assert loss.dtype == DT[dt][0] and loss.device.type == "cuda"
    Xt = x64.clone().requires_grad_()
    ref = TF.cross_entropy(Xt, torch.tensor(t), reduction=reduction, **kw)
    if gout is None:
        loss.backward()
        ref.backward()
    else:
        loss.backward(to_vt(gout, dt))
        ref.backward(gout)
    return loss, X.grad, ref, Xt.grad


@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16", "float64"])
@pytest.mark.parametrize("shape", [(7, 1), (5, 3), (33, 37), (64, 1000), (9, 4097), (4, 16385), (3, 50257)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy(dt, shape, reduction):
    rng = np.random.default_rng(shape[0] * 7 + shape[1])
    x = rounded(rng.standard_normal(shape) * 3, dt)
    t = targets(rng, shape[0], shape[1])
    t[0] = shape[1] - 1  # at least one valid row, the last class
    g = rounded(rng.standard_normal(shape[0]), dt) if reduction == "none" else None
    loss, grad, ref, rgrad = ce_case(x, t, dt, reduction, g)
    close(loss, ref, dt)
    close(grad, rgrad, dt, scale=0.5)
    assert loss.grad_fn is not None


@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("eps", [0.1, 1.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_label_smoothing_ignore_index(dt, eps, reduction):
    rng = np.random.default_rng(1)
    x = rounded(rng.standard_normal((50, 129)) * 2, dt)
    t = rng.integers(0, 129, 50)
    t[::3] = 7  # ignore_index 7 is also a class: rows with target 7 are ignored
    g = rounded(rng.standard_normal(50), dt) if reduction == "none" else None
    loss, grad, ref, rgrad = ce_case(x, t, dt, reduction, g, ignore_index=7, label_smoothing=eps)
    close(loss, ref, dt)
    close(grad, rgrad, dt, scale=0.5)


@pytest.mark.parametrize("dt", ["float32", "bfloat16"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_all_ignored(dt, reduction):
    x = rounded(np.random.default_rng(2).standard_normal((6, 40)), dt)
    t = np.full(6, -100)
    g = rounded(np.ones(6), dt) if reduction == "none" else None
    loss, grad, ref, rgrad = ce_case(x, t, dt, reduction, g)
    close(loss, ref, dt)  # mean: NaN, as torch
    assert float(host(grad).abs().max()) == 0.0


def test_cross_entropy_3d_input_and_large_batch():
    rng = np.random.default_rng(3)
    x = rounded(rng.standard_normal((4, 11, 5, 3)), "float32")
    t = rng.integers(0, 11, (4, 5, 3))
    t[1, 2, 0] = -100
    loss, grad, ref, rgrad = ce_case(x, t, "float32", "none", rounded(rng.standard_normal((4, 5, 3)), "float32"))
    close(loss, ref, "float32")
    close(grad, rgrad, "float32")
    x = rounded(rng.standard_normal((4096, 96)), "float32")  # many rows: the one-block total kernel loops
    t = targets(rng, 4096, 96)
    loss, grad, ref, rgrad = ce_case(x, t, "float32", "mean")
    close(loss, ref, "float32")
    close(grad, rgrad, "float32")


def test_cross_entropy_out_of_range_target_gives_nan_on_cuda():
    # no host sync to raise (documented): the row's loss and gradient are NaN, other rows are unaffected
    x = to_vt(torch.zeros(3, 4, dtype=torch.float64), "float32", True)
    loss = F.cross_entropy(x, vt.tensor(np.array([0, 9, 1])).to("cuda"), reduction="none")
    h = host(loss)
    assert np.isnan(h[1].item()) and np.isfinite(h[0].item()) and np.isfinite(h[2].item())
    loss.sum().backward()
    gh = host(x.grad)
    assert torch.isnan(gh[1]).all() and torch.isfinite(gh[0]).all()


@pytest.mark.skipif(not TORCH_CUDA, reason="torch without CUDA")
@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16"])
def test_cross_entropy_vs_torch_cuda_same_dtype(dt):
    rng = np.random.default_rng(4)
    x = rounded(rng.standard_normal((256, 1003)) * 4, dt)
    t = targets(rng, 256, 1003)
    X = to_vt(x, dt, True)
    loss = F.cross_entropy(X, vt.tensor(t).to("cuda"), label_smoothing=0.05)
    loss.backward()
    Xt = x.to(DT[dt][1]).cuda().requires_grad_()
    ref = TF.cross_entropy(Xt, torch.tensor(t).cuda(), label_smoothing=0.05)
    ref.backward()
    if dt == "float16" and not torch.isfinite(ref):
        # torch sums the label-smoothing term over 256 rows x 1003 classes in float16 and overflows to inf (seen
        # with torch 2.11 on an H200); we accumulate in float32. The loss is then checked against torch in float32
        # on the same rounded inputs, the gradient (finite in torch) against torch's float16 one as before.
        ref = TF.cross_entropy(x.float().cuda(), torch.tensor(t).cuda(), label_smoothing=0.05)
    close(loss, ref.cpu(), dt)
    close(X.grad, Xt.grad.cpu(), dt, scale=0.5)


# ---- layer_norm with grad


def ln_case(x, ns, dt, w, b, g, eps=1e-5):
    X = to_vt(x, dt, True)
    W = to_vt(w, dt, True) if w is not None else None
    B = to_vt(b, dt, True) if b is not None else None
    y = F.layer_norm(X, ns, W, B, eps)
    y.backward(to_vt(g, dt))
    Xt = x.clone().requires_grad_()
    Wt = w.clone().requires_grad_() if w is not None else None
    Bt = b.clone().requires_grad_() if b is not None else None
    yt = TF.layer_norm(Xt, ns, Wt, Bt, eps)
    yt.backward(g)
    return (y, X.grad, W.grad if W is not None else None, B.grad if B is not None else None), \
        (yt, Xt.grad, Wt.grad if Wt is not None else None, Bt.grad if Bt is not None else None)


@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16", "float64"])
@pytest.mark.parametrize("shape,ns", [((4, 1), (1,)), ((5, 7), (7,)), ((3, 6, 33), (33,)), ((64, 1024), (1024,)),
                                      ((3, 4097), (4097,)), ((2, 3, 5, 7), (5, 7)), ((3000, 40), (40,)),
                                      ((20000, 8), (8,))])
@pytest.mark.parametrize("affine", ["wb", "w", "none"])
def test_layer_norm_with_grad(dt, shape, ns, affine):
    rng = np.random.default_rng(shape[-1] + len(shape))
    x = rounded(rng.standard_normal(shape) * 2 + 0.5, dt)
    w = rounded(rng.standard_normal(ns), dt) if "w" in affine else None
    b = rounded(rng.standard_normal(ns), dt) if "b" in affine else None
    g = rounded(rng.standard_normal(shape), dt)
    ours, ref = ln_case(x, ns, dt, w, b, g)
    close(ours[0], ref[0], dt, scale=1.0)
    for i, (o, r) in enumerate(zip(ours[1:], ref[1:]), start=1):
        assert (o is None) == (r is None)
        if o is None:
            continue
        if ns == (1,) and i in (1, 2):
            # n == 1: x - mean is 0 up to rounding, and so are dx and dweight (torch gets exact zeros, and a
            # floor relative to the largest reference value would then be 0): bound them by the gradient's size
            assert float(host(o).abs().max()) <= TOL[dt] * float(g.abs().sum()), (i, host(o))
        else:
            close(o, r, dt, scale=1.0 if i == 1 else 2.0)
    assert ours[0].grad_fn.name() == "NativeLayerNormBackward0"


def test_layer_norm_module_training_step():
    rng = np.random.default_rng(5)
    x = rounded(rng.standard_normal((16, 24, 64)), "float32")
    m = vt.nn.LayerNorm(64).to("cuda")
    tm = torch.nn.LayerNorm(64).double()
    y = m(to_vt(x, "float32"))
    ty = tm(x)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    close(y, ty, "float32")
    close(m.weight.grad, tm.weight.grad, "float32", scale=1.0)
    close(m.bias.grad, tm.bias.grad, "float32", scale=1.0)


@pytest.mark.skipif(not TORCH_CUDA, reason="torch without CUDA")
@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
def test_layer_norm_vs_torch_cuda_same_dtype(dt):
    rng = np.random.default_rng(6)
    x = rounded(rng.standard_normal((512, 768)), dt)
    w, b, g = rounded(rng.standard_normal(768), dt), rounded(rng.standard_normal(768), dt), \
        rounded(rng.standard_normal((512, 768)), dt)
    ours, _ = ln_case(x, (768,), dt, w, b, g)
    tdt = DT[dt][1]
    Xt, Wt, Bt = (t.to(tdt).cuda().requires_grad_() for t in (x, w, b))
    yt = TF.layer_norm(Xt, (768,), Wt, Bt)
    yt.backward(g.to(tdt).cuda())
    for o, r in zip(ours, (yt, Xt.grad, Wt.grad, Bt.grad)):
        close(o, r.cpu(), dt, scale=1.0)


# ---- the broadcast fast path of binary elementwise ops (VecNote in elementwise.cu): a dense 2-D output with an
# input repeated over rows (bias [C]) or along rows ([N, 1]); C multiple of the pack or not, misaligned views


@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16", "float64"])
@pytest.mark.parametrize("C", [1, 3, 7, 8, 64, 1000, 1027])
@pytest.mark.parametrize("op", ["add", "mul", "sub", "div"])
def test_broadcast_row_and_column_vectors(dt, C, op):
    rng = np.random.default_rng(C)
    N = 37
    x = rounded(rng.standard_normal((N, C)), dt)
    b = rounded(rng.standard_normal(C) + 3.0, dt)
    s = rounded(rng.standard_normal((N, 1)) + 3.0, dt)
    fn = {"add": lambda a, c: a + c, "mul": lambda a, c: a * c, "sub": lambda a, c: a - c,
          "div": lambda a, c: a / c}[op]
    tdt = DT[dt][1]
    for lhs, rhs in ((x, b), (b, x), (x, s), (s, x), (s, b)):
        ours = fn(to_vt(lhs, dt), to_vt(rhs, dt))
        ref = fn(lhs.to(tdt), rhs.to(tdt)).double()
        close(ours, ref, dt, scale=0.0)


@pytest.mark.parametrize("dt", ["float32", "float16"])
def test_broadcast_misaligned_views(dt):
    rng = np.random.default_rng(9)
    x = rounded(rng.standard_normal((9, 65)), dt)
    b = rounded(rng.standard_normal(65), dt)
    xv = to_vt(x, dt)[:, 1:]  # rows of 64 starting one element in: not dense (generic loop)
    bv = to_vt(b, dt)[1:]     # a misaligned bias
    close(xv.contiguous() + bv, (x[:, 1:].to(DT[dt][1]) + b[1:].to(DT[dt][1])).double(), dt, scale=0.0)
    xc = to_vt(x, dt).reshape(-1)[1:1 + 8 * 64].reshape(8, 64)  # dense but misaligned
    ref = x.reshape(-1)[1:1 + 8 * 64].reshape(8, 64).to(DT[dt][1])
    close(xc * bv, (ref * b[1:].to(DT[dt][1])).double(), dt, scale=0.0)
    out = vt.empty((8, 64), dtype=DT[dt][0], device="cuda")
    vt.add(xc, bv, out=out)
    close(out, (ref + b[1:].to(DT[dt][1])).double(), dt, scale=0.0)
