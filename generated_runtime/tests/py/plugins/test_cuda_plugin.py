"""The CUDA example plugin (plugins/example_cuda_bias_gelu, built only with the CUDA backend):
vbt_example_bias_gelu(x, bias) = gelu(x + bias) with bias along the last dimension. The CPU kernel is
compared with PyTorch everywhere the plugin is built; the CUDA kernel with the CPU kernel and PyTorch on a
machine with a device (skipped otherwise). Self-contained: run on a GPU machine with
    PYTHONPATH=<site> python -m pytest generated_runtime/tests/py/plugins/test_cuda_plugin.py -q -p no:cacheprovider
"""
import os

import pytest
import torch

import vibetensor.torch as vt
from vibetensor import _C
from vbt_plugin_paths import plugin_dir

NAME = "vbt_example_cuda_bias_gelu"


def _path():
    try:
        p = os.path.join(plugin_dir(), f"lib{NAME}.so")
    except FileNotFoundError:
        return None
    return p if os.path.exists(p) else None


pytestmark = pytest.mark.skipif(_path() is None,
                                reason=f"lib{NAME}.so not built (the runtime was configured without CUDA)")


def _has_device():
    return bool(getattr(_C, "_cuda_is_built", lambda: False)()) and int(_C._cuda_device_count()) > 0 and bool(
        getattr(_C, "_cuda_has_ops", lambda: False)())


needs_device = pytest.mark.skipif(not _has_device(), reason="no CUDA device (or vibetensor built without CUDA)")


def _vt(t):
    return vt.from_dlpack(t.contiguous().clone())


def _torch(t):
    return torch.from_dlpack(t).clone()


def _ref(x, bias):
    return torch.nn.functional.gelu(x + bias)


@pytest.fixture(scope="module")
def op():
    assert vt.ops.load_library(_path()) in (["vbt_example_bias_gelu"], [])
    return vt.ops.vbt_example_bias_gelu


def test_cpu_kernel_matches_torch(op):
    g = torch.Generator().manual_seed(11)
    for dtype in (torch.float32, torch.float64):
        x, b = torch.randn(4, 5, 6, generator=g, dtype=dtype) * 3, torch.randn(6, generator=g, dtype=dtype)
        got = op(_vt(x), _vt(b))
        assert tuple(got.shape) == (4, 5, 6) and got.dtype == (vt.float32 if dtype == torch.float32 else vt.float64)
        torch.testing.assert_close(_torch(got), _ref(x, b))
    # strided inputs: a transposed x, a bias taken with a step
    x, b = torch.randn(6, 3, generator=g), torch.randn(12, generator=g)
    vx, vb = _vt(x).t(), _vt(b)[::2]
    torch.testing.assert_close(_torch(op(vx, vb)), _ref(x.t(), b[::2]))


def test_errors(op):
    with pytest.raises(ValueError, match="bias must be 1-d with 5 elements"):
        op(vt.zeros(3, 5), vt.zeros(4))
    with pytest.raises(NotImplementedError, match="float32 and float64"):
        op(vt.zeros(3, dtype=vt.int64), vt.zeros(3, dtype=vt.int64))
    with pytest.raises(ValueError, match="same dtype"):
        op(vt.zeros(3), vt.zeros(3, dtype=vt.float64))


@needs_device
def test_cuda_kernel_matches_cpu_kernel_and_torch(op):
    g = torch.Generator().manual_seed(12)
    for dtype, shape in ((torch.float32, (257, 33)), (torch.float64, (3, 4, 70000)), (torch.float32, (8,))):
        x, b = torch.randn(*shape, generator=g, dtype=dtype) * 2, torch.randn(shape[-1], generator=g, dtype=dtype)
        vx, vb = _vt(x), _vt(b)
        cpu = op(vx, vb)
        out = op(vx.cuda(), vb.cuda())
        assert out.device.type == "cuda"
        back = out.cpu()
        torch.testing.assert_close(_torch(back), _torch(cpu))
        torch.testing.assert_close(_torch(back), _ref(x, b))
    # a strided CUDA input (transposed view) and an empty one
    x, b = torch.randn(40, 9, generator=g), torch.randn(40, generator=g)
    out = op(_vt(x).cuda().t(), _vt(b).cuda())
    torch.testing.assert_close(_torch(out.cpu()), _ref(x.t(), b))
    empty = op(vt.zeros(0, 4).cuda(), vt.zeros(4).cuda())
    assert tuple(empty.shape) == (0, 4) and empty.device.type == "cuda"


@needs_device
def test_cuda_device_policy(op):
    with pytest.raises(RuntimeError, match="same device"):
        op(vt.zeros(2, 3).cuda(), vt.zeros(3))
