"""CUDA matrix products on both GEMM backends (cuBLAS loaded at run time, and the built-in tiled kernel; see
vibetensor/torch/cuda/_blas.py) vs PyTorch on the CPU: mm, bmm, matmul with broadcast batches and vectors,
addmm, baddbmm, linear, dot, out=; operands contiguous, transposed (column-major: cuBLAS's op T), row-sliced
(a leading dimension past the row), column-sliced and expanded (both copied for cuBLAS); float32 without TF32.

Every test needs a GPU and a build with the CUDA kernels; without them the module is skipped. To check the tests
themselves without a GPU, run them against vibetensor's CPU kernels (one "backend", the CPU's):
    VBT_CUDA_TEST_DEVICE=cpu pytest tests/py/cuda/test_cuda_matmul.py"""
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor import _C

DEV = os.environ.get("VBT_CUDA_TEST_DEVICE", "cuda")
HAS_GPU = vt.cuda.is_available()
HAS_OPS = vt.cuda._tensors.has_ops()
pytestmark = pytest.mark.skipif(DEV == "cuda" and not (HAS_GPU and HAS_OPS),
                                reason="needs a CUDA GPU and a build with the CUDA kernels "
                                       f"(is_available()={HAS_GPU}, has_ops()={HAS_OPS}); "
                                       "VBT_CUDA_TEST_DEVICE=cpu runs the checks on the CPU kernels")

TDT = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}
VDT = {"float32": vt.float32, "float64": vt.float64, "float16": vt.float16, "bfloat16": vt.bfloat16}
DTYPES = list(TDT)
# relative tolerance per dtype; the absolute one scales with sqrt(K) (sums of K products of N(0, 1) values)
RTOL = {torch.float32: 1e-4, torch.float64: 1e-10, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
BACKENDS = ["cublas", "kernel"] if DEV == "cuda" else ["cpu"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Routes CUDA matmuls to the backend under test, and back to the default afterwards."""
    if request.param == "cpu":
        yield "cpu"
        return
    before = vt.cuda.cublas_info()["enabled"]
    try:
        vt.cuda.set_matmul_backend(request.param)
    except RuntimeError as e:
        pytest.skip(f"cuBLAS not loadable here: {e}")
    assert vt.cuda.matmul_backend() == request.param
    yield request.param
    _C._cuda_set_cublas_enabled(before)


def make(shape, dt, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(TDT[dt])


def to_vt(t):
    t = t.contiguous()
    v = vt.tensor(t.float().numpy()).to(vt.bfloat16) if t.dtype == torch.bfloat16 else vt.tensor(t.numpy())
    return v.to(DEV)


def to_torch(v):
    v = v.cpu()
    if v.dtype == vt.bfloat16:
        return torch.from_numpy(np.asarray(v.float().numpy())).to(torch.bfloat16)
    return torch.from_numpy(np.array(v.numpy()))


def check(vres, want, k):
    """vres (a vibetensor result on DEV) against want (computed in float64 from the same rounded inputs)."""
    assert vres.device.type == DEV, vres.device
    host = to_torch(vres)
    assert tuple(host.shape) == tuple(want.shape), (tuple(host.shape), tuple(want.shape))
    assert host.dtype == want.dtype, (host.dtype, want.dtype)
    rtol = RTOL[want.dtype]
    torch.testing.assert_close(host, want, rtol=rtol, atol=rtol * max(1.0, math.sqrt(k)))


def ref(fn, dt, *ts):
    """fn over the float64 copies of torch tensors ts, rounded to dt (the exact result of the rounded inputs)."""
    return fn(*[t.double() for t in ts]).to(TDT[dt])


# Operand layouts: (base shape from the logical [r, c], the view taking the base to [r, c]) for both frameworks.
LAYOUTS = {
    "contiguous": (lambda r, c: (r, c), lambda x, r, c: x),
    "transposed": (lambda r, c: (c, r), lambda x, r, c: x.t()),           # column-major: op T for cuBLAS
    "rowslice": (lambda r, c: (2 * r, c), lambda x, r, c: x[::2]),        # leading dimension 2c
    "colslice": (lambda r, c: (r, 2 * c), lambda x, r, c: x[:, ::2]),     # neither layout: copied
    "expanded": (lambda r, c: (1, c), lambda x, r, c: x.expand(r, c)),    # row stride 0: copied
}


def operand(layout, r, c, dt, seed):
    shape_of, view = LAYOUTS[layout]
    base = make(shape_of(r, c), dt, seed)
    return view(base, r, c), view(to_vt(base), r, c)


MM_SHAPES = [(1, 1, 1), (3, 5, 4), (17, 33, 9), (64, 128, 96), (130, 257, 65), (1, 300, 1), (300, 1, 7), (5, 1, 300)]


@pytest.mark.parametrize("dt", DTYPES)
def test_mm_shapes(backend, dt):
    for i, (m, k, n) in enumerate(MM_SHAPES):
        a, b = make((m, k), dt, 2 * i), make((k, n), dt, 2 * i + 1)
        check(vt.mm(to_vt(a), to_vt(b)), ref(torch.mm, dt, a, b), k)
        check(to_vt(a) @ to_vt(b), ref(torch.mm, dt, a, b), k)


@pytest.mark.parametrize("dt", ["float32", "float16"])
@pytest.mark.parametrize("la", list(LAYOUTS))
@pytest.mark.parametrize("lb", list(LAYOUTS))
def test_mm_operand_layouts(backend, dt, la, lb):
    m, k, n = 19, 37, 23
    ta, va = operand(la, m, k, dt, 1)
    tb, vb = operand(lb, k, n, dt, 2)
    check(vt.mm(va, vb), ref(torch.mm, dt, ta, tb), k)
    check(vt.matmul(va, vb), ref(torch.matmul, dt, ta, tb), k)


@pytest.mark.parametrize("dt", DTYPES)
def test_bmm_layouts(backend, dt):
    B, m, k, n = 4, 9, 21, 13
    x, y = make((B, m, k), dt, 1), make((B, k, n), dt, 2)
    check(vt.bmm(to_vt(x), to_vt(y)), ref(torch.bmm, dt, x, y), k)
    xt, yt = make((B, k, m), dt, 3), make((B, n, k), dt, 4)  # transposed matrices
    check(vt.bmm(to_vt(xt).transpose(1, 2), to_vt(yt).transpose(1, 2)),
          ref(torch.bmm, dt, xt.transpose(1, 2), yt.transpose(1, 2)), k)
    xp = make((m, B, k), dt, 5)  # batch dim not outermost in memory
    check(vt.bmm(to_vt(xp).permute(1, 0, 2), to_vt(y)), ref(torch.bmm, dt, xp.permute(1, 0, 2), y), k)
    xs = make((B, m, 2 * k), dt, 6)  # column slice: copied for cuBLAS
    check(vt.bmm(to_vt(xs)[:, :, ::2], to_vt(y)), ref(torch.bmm, dt, xs[:, :, ::2], y), k)
    z = make((0, m, k), dt)
    check(vt.bmm(to_vt(z), to_vt(make((0, k, n), dt))), torch.empty(0, m, n, dtype=TDT[dt]), k)


@pytest.mark.parametrize("dt", DTYPES)
def test_matmul_3d_same_batch_layouts(backend, dt):
    """Two 3-D operands with one batch size: matmul is one GEMM with no view ops around it (MatmulHostNote in
    cuda_ops.cpp), for every operand layout, an expanded (stride-0) batch, K = 0 and a size mismatch."""
    B, m, k, n = 3, 9, 21, 13
    x, y = make((B, m, k), dt, 1), make((B, k, n), dt, 2)
    check(vt.matmul(to_vt(x), to_vt(y)), ref(torch.matmul, dt, x, y), k)
    xt, yt = make((B, k, m), dt, 3), make((B, n, k), dt, 4)  # column-major matrices
    check(vt.matmul(to_vt(xt).transpose(1, 2), to_vt(yt).transpose(1, 2)),
          ref(torch.matmul, dt, xt.transpose(1, 2), yt.transpose(1, 2)), k)
    x1 = make((1, m, k), dt, 5)  # one matrix expanded over the batch: batch stride 0
    check(vt.matmul(to_vt(x1).expand(B, m, k), to_vt(y)), ref(torch.matmul, dt, x1.expand(B, m, k), y), k)
    xs = make((B, m, 2 * k), dt, 6)  # column slice: copied for cuBLAS
    check(vt.matmul(to_vt(xs)[:, :, ::2], to_vt(y)), ref(torch.matmul, dt, xs[:, :, ::2], y), k)
    zx, zy = make((B, m, 0), dt), make((B, 0, n), dt)
    check(vt.matmul(to_vt(zx), to_vt(zy)), torch.zeros(B, m, n, dtype=TDT[dt]), 1)
    with pytest.raises(RuntimeError, match=r"Expected size .* to be: \[\*, 21\] but got: \[\*, 22\]"):
        vt.matmul(to_vt(x), to_vt(make((B, k + 1, n), dt)))


MATMUL_CASES = [  # (shape of a, shape of b)
    ((4, 7, 16), (16, 5)),          # a shared weight: folds into one GEMM of 28 rows
    ((16,), (3, 16, 5)),            # vector @ batch
    ((3, 7, 16), (16,)),            # batch @ vector
    ((2, 1, 7, 16), (3, 16, 5)),    # broadcast batch dims
    ((7, 16), (3, 16, 5)),          # a shared over the batch (stride 0)
    ((16,), (16,)),                 # dot
    ((16,), (16, 5)), ((7, 16), (16,)),
    ((2, 3, 1, 16), (16, 1)),       # M = 1 rows stacked: folds
]


@pytest.mark.parametrize("dt", DTYPES)
def test_matmul_broadcast(backend, dt):
    for i, (sa, sb) in enumerate(MATMUL_CASES):
        a, b = make(sa, dt, 2 * i), make(sb, dt, 2 * i + 1)
        check(vt.matmul(to_vt(a), to_vt(b)), ref(torch.matmul, dt, a, b), sa[-1])
    x, w = make((2, 6, 16), dt, 40), make((5, 16), dt, 41)  # x @ w.t(): the weight column-major
    check(vt.matmul(to_vt(x), to_vt(w).t()), ref(torch.matmul, dt, x, w.t()), 16)
    xt = make((2, 16, 6), dt, 42)  # transposed batch operand with a broadcast weight
    check(vt.matmul(to_vt(xt).transpose(1, 2), to_vt(w).t()), ref(torch.matmul, dt, xt.transpose(1, 2), w.t()), 16)


@pytest.mark.parametrize("dt", DTYPES)
def test_addmm_baddbmm_linear_dot_out(backend, dt):
    c, m1, m2 = make((6, 5), dt, 1), make((6, 12), dt, 2), make((12, 5), dt, 3)
    for beta, alpha in ((1, 1), (0.5, 2), (0, -1)):
        want = ref(lambda c_, a_, b_: torch.addmm(c_, a_, b_, beta=beta, alpha=alpha), dt, c, m1, m2)
        check(vt.addmm(to_vt(c), to_vt(m1), to_vt(m2), beta=beta, alpha=alpha), want, 12)
    bias = make((5,), dt, 4)
    m1t = make((12, 6), dt, 5)
    check(vt.addmm(to_vt(bias), to_vt(m1t).t(), to_vt(m2)), ref(torch.addmm, dt, bias, m1t.t(), m2), 12)
    b, x, y = make((3, 4, 5), dt, 6), make((3, 4, 8), dt, 7), make((3, 8, 5), dt, 8)
    want = ref(lambda b_, x_, y_: torch.baddbmm(b_, x_, y_, beta=0.5, alpha=-1), dt, b, x, y)
    check(vt.baddbmm(to_vt(b), to_vt(x), to_vt(y), beta=0.5, alpha=-1), want, 8)
    inp, w, bb = make((2, 3, 10), dt, 9), make((7, 10), dt, 10), make((7,), dt, 11)
    F, TF = vt.nn.functional, torch.nn.functional
    check(F.linear(to_vt(inp), to_vt(w), to_vt(bb)), ref(TF.linear, dt, inp, w, bb), 10)
    check(F.linear(to_vt(inp), to_vt(w)), ref(TF.linear, dt, inp, w), 10)
    u, v = make((33,), dt, 12), make((33,), dt, 13)
    check(vt.dot(to_vt(u), to_vt(v)), ref(torch.dot, dt, u, v), 33)
    out = vt.empty(6, 5, dtype=VDT[dt], device=DEV)
    vt.mm(to_vt(m1), to_vt(m2), out=out)
    check(out, ref(torch.mm, dt, m1, m2), 12)
    z1, z2 = make((4, 0), dt), make((0, 3), dt)  # K = 0: zeros
    check(vt.mm(to_vt(z1), to_vt(z2)), torch.zeros(4, 3, dtype=TDT[dt]), 1)


def test_float32_is_not_tf32(backend):
    """Full float32 products (torch's default allow_tf32=False): TF32's 10-bit inputs would err ~1e-4 relative
    here, float32 accumulation ~1e-6."""
    a, b = make((256, 1024), "float32", 1), make((1024, 256), "float32", 2)
    got = to_torch(vt.mm(to_vt(a), to_vt(b))).double()
    want = a.double() @ b.double()
    rel = ((got - want).abs().max() / want.abs().max()).item()
    assert rel < 2e-5, rel


@pytest.mark.skipif(DEV != "cuda", reason="the backend switches exist for CUDA only")
def test_backend_switches():
    info = vt.cuda.cublas_info()
    assert set(info) == {"enabled", "library", "version", "error"}
    before = info["enabled"]
    try:
        vt.cuda.set_matmul_backend("kernel")
        assert vt.cuda.matmul_backend() == "kernel" and not vt.cuda.cublas_info()["enabled"]
        with pytest.raises(ValueError):
            vt.cuda.set_matmul_backend("cutlass")
    finally:
        _C._cuda_set_cublas_enabled(before)
    code = "import vibetensor.torch as vt; print(vt.cuda.matmul_backend())"
    env = dict(os.environ, VBT_CUBLAS="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "kernel"


@pytest.mark.skipif(DEV != "cuda", reason="the backend switches exist for CUDA only")
@pytest.mark.skipif(torch.version.cuda is None, reason="torch here is a CPU build: no cuBLAS wheel expected beside it")
def test_cublas_found_next_to_torch():
    """On a machine whose torch is a CUDA build, the cuBLAS it uses (pip wheel or system) is found and used."""
    info = vt.cuda.cublas_info()
    if "VBT_CUBLAS" in os.environ:
        pytest.skip("VBT_CUBLAS is set in the environment")
    assert vt.cuda.matmul_backend() == "cublas", info
    assert info["library"] and info["version"], info
