"""CUDA tensors and op kernels vs PyTorch on the CPU (results copied back to the host).

Every test needs a GPU and a build with the CUDA kernels; without them the module is skipped with the reason.
The device-policy test for a build without CUDA kernels runs everywhere (test_no_gpu_errors)."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt

HAS_GPU = vt.cuda.is_available()
HAS_OPS = vt.cuda._tensors.has_ops()
needs_gpu = pytest.mark.skipif(not (HAS_GPU and HAS_OPS),
                               reason="needs a CUDA GPU and a build with the CUDA kernels "
                                      f"(is_available()={HAS_GPU}, has_ops()={HAS_OPS})")

DT = {"float32": (vt.float32, torch.float32), "float64": (vt.float64, torch.float64),
      "float16": (vt.float16, torch.float16), "bfloat16": (vt.bfloat16, torch.bfloat16),
      "int64": (vt.int64, torch.int64), "int32": (vt.int32, torch.int32), "bool": (vt.bool, torch.bool)}
FLOATS = ["float32", "float64", "float16", "bfloat16"]
TOL = {"float32": (1e-5, 1e-5), "float64": (1e-10, 1e-10), "float16": (2e-3, 2e-3), "bfloat16": (1.6e-2, 1.6e-2)}


def make(shape, dt, seed=0, positive=False):
    g = torch.Generator().manual_seed(seed)
    tdt = DT[dt][1]
    if tdt == torch.bool:
        r = torch.rand(shape, generator=g) > 0.5
    elif tdt.is_floating_point:
        r = torch.randn(shape, generator=g, dtype=torch.float64)
        if positive:
            r = r.abs() + 0.1
        r = r.to(tdt)
    else:
        r = torch.randint(-20 if not positive else 1, 20, shape, generator=g, dtype=tdt)
    return r


def to_vt(t, device="cuda"):
    if t.dtype == torch.bfloat16:
        v = vt.tensor(t.float().numpy()).to(vt.bfloat16)
    else:
        v = vt.tensor(t.numpy())
    return v.to(device)


def to_torch(v):
    assert v.device.type == "cpu"
    if v.dtype == vt.bfloat16:
        return torch.from_numpy(np.asarray(v.float().numpy())).to(torch.bfloat16)
    return torch.from_numpy(np.array(v.numpy()))


def check(vres, tres, dt=None):
    assert vres.device.type == "cuda", vres.device
    host = to_torch(vres.cpu())
    assert tuple(host.shape) == tuple(tres.shape)
    assert str(host.dtype) == str(tres.dtype), (host.dtype, tres.dtype)
    if tres.dtype.is_floating_point:
        rtol, atol = TOL.get(str(tres.dtype).replace("torch.", ""), (1e-5, 1e-5))
        torch.testing.assert_close(host, tres, rtol=rtol, atol=atol, equal_nan=True)
    else:
        assert torch.equal(host, tres)


def test_no_gpu_errors():
    """Without a GPU (or without the kernels) moving to cuda fails with a clear RuntimeError, never a crash."""
    if HAS_GPU and HAS_OPS:
        pytest.skip("a GPU is present: the error path for machines without one is not reachable")
    with pytest.raises(RuntimeError, match="(?i)cuda"):
        vt.ones(2).to("cuda")


@needs_gpu
class TestStorageAndCopies:
    def test_factories(self):
        for name in ("zeros", "ones", "empty"):
            t = getattr(vt, name)(2, 3, device="cuda")
            assert t.device.type == "cuda" and t.is_cuda and t.dtype == vt.float32 and tuple(t.shape) == (2, 3)
        check(vt.zeros(2, 3, device="cuda", dtype=vt.int64), torch.zeros(2, 3, dtype=torch.int64))
        check(vt.ones(4, device="cuda", dtype=vt.float16), torch.ones(4, dtype=torch.float16))
        check(vt.full((2, 2), 7, device="cuda"), torch.full((2, 2), 7))
        check(vt.full((3,), 2.5, device="cuda"), torch.full((3,), 2.5))
        check(vt.full((3,), True, device="cuda"), torch.full((3,), True))
        assert vt.zeros(2, device="cuda:0").device == vt.device("cuda:0")

    @pytest.mark.parametrize("dt", list(DT))
    def test_roundtrip(self, dt):
        t = make((3, 5), dt)
        v = to_vt(t)
        assert v.device == vt.device("cuda:0")
        check(v, t)
        check(v.clone(), t)
        assert v.cpu().device.type == "cpu"
        check(to_vt(t, "cpu").cuda(), t)

    def test_noncontiguous_copies(self):
        t = make((4, 6), "float32")
        v = to_vt(t)
        check(v.t(), t.t())                          # D2H of a transposed view
        check(v.t().contiguous(), t.t().contiguous())
        check(v[:, 1::2], t[:, 1::2])
        host_view = to_vt(t, "cpu").t()               # H2D from a non-contiguous host view
        check(host_view.cuda(), t.t())
        dst = vt.zeros(6, 4, device="cuda")
        dst.copy_(v.t())                              # D2D strided copy
        check(dst, t.t())
        dst2 = vt.zeros(6, 4, device="cuda", dtype=vt.float64)
        dst2.copy_(to_vt(t, "cpu").t())               # H2D with a cast
        check(dst2, t.t().double())
        host = vt.zeros(4, 6, dtype=vt.float16)
        host.copy_(v)                                 # D2H with a cast
        torch.testing.assert_close(to_torch(host), t.half())
        row = vt.zeros(3, 6, device="cuda")
        row.copy_(v[0])                               # broadcasting copy
        check(row, t[0].expand(3, 6))

    def test_dtype_conversions(self):
        t = make((7,), "float32") * 10
        v = to_vt(t)
        for dt in DT:
            check(v.to(DT[dt][0]), t.to(DT[dt][1]))
        assert v[0].item() == pytest.approx(t[0].item())
        assert to_vt(torch.tensor([5], dtype=torch.int64)).item() == 5

    def test_poison_on_free(self):
        from vibetensor import _C
        _C._cuda_set_poison_on_free(True, 0)
        try:
            v = vt.ones(256, device="cuda")
            ptr = v.data_ptr()
            del v
            vt.cuda.synchronize()
            data = bytes(_C._cuda_read_bytes(ptr, 1024))
            assert data == b"\xdb" * 1024
        finally:
            _C._cuda_set_poison_on_free(False, 0)


UNARY = {"neg": torch.neg, "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt, "relu": torch.relu,
         "sigmoid": torch.sigmoid, "tanh": torch.tanh, "silu": torch.nn.functional.silu,
         "gelu": torch.nn.functional.gelu, "abs": torch.abs}


@needs_gpu
class TestElementwise:
    @pytest.mark.parametrize("dt", FLOATS + ["int64", "int32"])
    @pytest.mark.parametrize("op", list(UNARY))
    def test_unary(self, op, dt):
        t = make((5, 7), dt, positive=op in ("log", "sqrt"))
        v = to_vt(t)
        # torch has no integer silu/gelu kernel; vibetensor (CPU and CUDA alike) promotes integers to float32
        ref = UNARY[op](t.float() if op in ("silu", "gelu") and dt.startswith("int") else t)
        check(getattr(vt, op)(v) if op not in ("silu", "gelu") else getattr(vt.nn.functional, op)(v), ref)

    def test_unary_noncontiguous_and_gelu_tanh(self):
        t = make((6, 8), "float32")
        v = to_vt(t)
        check(vt.exp(v.t()), torch.exp(t.t()))
        check(vt.nn.functional.gelu(v[:, ::3], approximate="tanh"),
              torch.nn.functional.gelu(t[:, ::3], approximate="tanh"))

    @pytest.mark.parametrize("dt", FLOATS + ["int64", "int32"])
    @pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum"])
    def test_binary(self, op, dt):
        a, b = make((4, 5), dt, 1), make((4, 5), dt, 2, positive=(op == "div"))
        check(getattr(vt, op)(to_vt(a), to_vt(b)), getattr(torch, op)(a, b))

    def test_broadcast_promotion_scalars(self):
        a, b = make((3, 1, 5), "float32", 1), make((4, 1), "int64", 2)
        va, vb = to_vt(a), to_vt(b)
        check(va + vb, a + b)
        check(va * 2, a * 2)
        check(vb * 2.5, b * 2.5)                   # int tensor * python float -> float32
        check(vb + 3, b + 3)
        check(2 - va, 2 - a)
        check(vt.add(va, vb, alpha=3), torch.add(a, b, alpha=3))
        check(vb / 3, b / 3)
        check(vt.div(vb, 3, rounding_mode="floor"), torch.div(b, 3, rounding_mode="floor"))
        check(vt.div(vb, 3, rounding_mode="trunc"), torch.div(b, 3, rounding_mode="trunc"))
        h = make((3, 5), "float16", 3)
        check(to_vt(h) + to_vt(a[:, 0, :]), h + a[:, 0, :])     # half + float -> float
        check(to_vt(h) + 1.5, h + 1.5)                           # stays half
        check(va + torch_scalar_vt(2.0), a + torch.tensor(2.0))  # 0-dim CPU tensor joins CUDA

    def test_inplace_and_out(self):
        a, b = make((4, 5), "float32", 1), make((5,), "float32", 2)
        va = to_vt(a)
        va.add_(to_vt(b))
        a.add_(b)
        check(va, a)
        va.mul_(2)
        a.mul_(2)
        check(va, a)
        out = vt.empty(4, 5, device="cuda")
        vt.exp(va, out=out)
        check(out, torch.exp(a))

    @pytest.mark.parametrize("dt", FLOATS + ["int64", "int32", "bool"])
    @pytest.mark.parametrize("op", ["eq", "ne", "lt", "le", "gt", "ge"])
    def test_compare(self, op, dt):
        a, b = make((6, 4), dt, 1), make((6, 4), dt, 2)
        b[0] = a[0]
        check(getattr(vt, op)(to_vt(a), to_vt(b)), getattr(torch, op)(a, b))
        if dt != "bool":
            check(getattr(vt, op)(to_vt(a), 0), getattr(torch, op)(a, 0))

    def test_where_fill(self):
        c, a, b = make((3, 4), "bool", 1), make((3, 4), "float32", 2), make((4,), "float64", 3)
        check(vt.where(to_vt(c), to_vt(a), to_vt(b)), torch.where(c, a, b))
        v = to_vt(a)
        v.fill_(3.5)
        check(v, torch.full((3, 4), 3.5))
        v.zero_()
        check(v, torch.zeros(3, 4))
        w = to_vt(make((3, 4), "int32"))
        w.t().fill_(7)                               # non-contiguous fill
        check(w, torch.full((3, 4), 7, dtype=torch.int32))


def torch_scalar_vt(x):
    return vt.tensor(x)  # a 0-dim CPU tensor


@needs_gpu
class TestReductionsSoftmaxMatmul:
    @pytest.mark.parametrize("dt", ["float32", "float64", "float16", "int64", "int32", "bool"])
    def test_sum(self, dt):
        t = make((3, 4, 5), dt)
        v = to_vt(t)
        check(vt.sum(v), torch.sum(t))
        for dims, keep in (((1,), False), ((0, 2), True), ((-1,), False)):
            check(vt.sum(v, dim=dims, keepdim=keep), torch.sum(t, dim=dims, keepdim=keep))

    def test_mean_amax(self):
        t = make((3, 4, 5), "float32")
        v = to_vt(t)
        check(vt.mean(v), torch.mean(t))
        check(vt.mean(v, dim=(0, 2), keepdim=True), torch.mean(t, dim=(0, 2), keepdim=True))
        check(vt.amax(v, dim=1), torch.amax(t, dim=1))
        check(vt.amax(v, dim=(0, 1), keepdim=True), torch.amax(t, dim=(0, 1), keepdim=True))
        ti = make((3, 4), "int64")
        check(vt.amax(to_vt(ti), dim=0), torch.amax(ti, dim=0))
        check(vt.sum(v.t() if v.dim() == 2 else v.permute(2, 0, 1), dim=0), torch.sum(t.permute(2, 0, 1), dim=0))
        big = make((1000, 300), "float32")
        check(vt.sum(to_vt(big), dim=1), torch.sum(big, dim=1))
        with pytest.raises(RuntimeError, match="mean"):
            vt.mean(to_vt(ti))

    @pytest.mark.parametrize("dt", ["float32", "float64", "float16", "bfloat16"])
    def test_softmax(self, dt):
        t = make((4, 33), dt) * 3
        v = to_vt(t)
        check(vt.softmax(v, dim=-1), torch.softmax(t, dim=-1))
        check(vt.log_softmax(v, dim=-1), torch.log_softmax(t, dim=-1))
        check(vt.softmax(v, dim=0), torch.softmax(t, dim=0))

    @pytest.mark.parametrize("dt", ["float32", "float64", "float16", "bfloat16"])
    def test_mm_bmm(self, dt):
        rtol = {"float16": 5e-3, "bfloat16": 3e-2}.get(dt)
        a, b = make((37, 45), dt, 1), make((45, 19), dt, 2)
        ref = (a.double() @ b.double()).to(a.dtype)
        out = vt.mm(to_vt(a), to_vt(b)).cpu()
        torch.testing.assert_close(to_torch(out), ref, rtol=rtol or 1e-5, atol=rtol or 1e-4)
        x, y = make((3, 17, 8), dt, 3), make((3, 8, 21), dt, 4)
        out = vt.bmm(to_vt(x), to_vt(y)).cpu()
        torch.testing.assert_close(to_torch(out), (x.double() @ y.double()).to(x.dtype), rtol=rtol or 1e-5,
                                   atol=rtol or 1e-4)

    def test_matmul_shapes(self):
        cases = [((5,), (5,)), ((3, 5), (5,)), ((5,), (5, 4)), ((3, 5), (5, 4)), ((2, 3, 5), (5, 4)),
                 ((2, 1, 3, 5), (4, 5, 6)), ((5,), (2, 5, 3)), ((2, 3, 5), (5,))]
        for sa, sb in cases:
            a, b = make(sa, "float64", 1), make(sb, "float64", 2)
            check(vt.matmul(to_vt(a), to_vt(b)), torch.matmul(a, b))
        a, b = make((6, 5), "float32", 1), make((4, 6), "float32", 2)
        check(to_vt(a).t() @ to_vt(b).t(), a.t() @ b.t())      # transposed operands, no copy
        with pytest.raises(RuntimeError, match="cannot be multiplied"):
            vt.mm(to_vt(a), to_vt(a))


@needs_gpu
def test_device_policy():
    a = vt.ones(3, device="cuda")
    b = vt.ones(3)
    with pytest.raises(RuntimeError, match=r"add: Expected all tensors to be on the same device.*cuda:0.*cpu"):
        vt.add(a, b)
    with pytest.raises(RuntimeError, match=r"mm: Expected all tensors to be on the same device"):
        vt.mm(vt.ones(2, 2, device="cuda"), vt.ones(2, 2))
    with pytest.raises(NotImplementedError, match="no kernel for device cuda"):
        vt.cumsum(a, 0)  # an op without a CUDA kernel says so
