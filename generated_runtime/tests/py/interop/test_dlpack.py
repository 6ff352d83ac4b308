"""DLPack exchange with NumPy and PyTorch: zero-copy both ways, strides/offsets, dtypes, capsule forms."""
import ctypes
import gc

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor import _C
from vibetensor import interop

NP_DTYPES = [np.bool_, np.uint8, np.int8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64]
TORCH_DTYPES = [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16,
                torch.bfloat16, torch.float32, torch.float64]


def _np_sample(dtype, shape=(4, 6)):
    rng = np.random.default_rng(0)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    return (rng.standard_normal(shape) * 50).astype(dtype)


def _torch_sample(dtype, shape=(4, 6)):
    g = torch.Generator().manual_seed(0)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).bool()
    if dtype.is_floating_point:
        return (torch.randn(shape, generator=g) * 50).to(dtype)
    return torch.randint(-100 if dtype != torch.uint8 else 0, 100, shape, generator=g).to(dtype)


def _vt_to_torch_values(t):
    """Values of a vibetensor tensor through a torch copy (for comparisons)."""
    return torch.from_dlpack(t).clone()


def test_tensor_has_protocol_and_vt_from_dlpack():
    x = vt.zeros(3)
    assert hasattr(x, "__dlpack__") and hasattr(x, "__dlpack_device__")
    assert tuple(x.__dlpack_device__()) == (1, 0)
    assert vt.from_dlpack is interop.from_dlpack


@pytest.mark.parametrize("dtype", NP_DTYPES)
def test_numpy_to_vt_is_zero_copy(dtype):
    a = _np_sample(dtype)
    t = vt.from_dlpack(a)
    assert t.data_ptr() == a.ctypes.data
    assert list(t.shape) == list(a.shape)
    np.testing.assert_array_equal(np.from_dlpack(t), a)
    # a write through NumPy is seen by the vibetensor tensor (same memory)
    a[1, 2] = a[0, 0] if dtype == np.bool_ else 7
    np.testing.assert_array_equal(np.from_dlpack(t), a)


def test_numpy_strided_view_with_offset_keeps_geometry():
    base = np.arange(60, dtype=np.float32).reshape(6, 10)
    view = base[1:5, 2::3]  # offset, non-unit strides
    t = vt.from_dlpack(view)
    assert t.data_ptr() == view.ctypes.data
    assert list(t.shape) == list(view.shape)
    assert list(t.stride()) == [s // 4 for s in view.strides]
    np.testing.assert_array_equal(np.from_dlpack(t), view)
    base[2, 5] = -1.0
    np.testing.assert_array_equal(np.from_dlpack(t), view)
    tr = vt.from_dlpack(base.T)
    assert list(tr.stride()) == [1, 10]
    np.testing.assert_array_equal(np.from_dlpack(tr), base.T)


def test_vt_to_numpy_is_zero_copy_and_keeps_strides():
    t = vt.arange(24, dtype=vt.float64).reshape(4, 6)
    tt = t.t()
    a = np.from_dlpack(tt)
    assert a.ctypes.data == tt.data_ptr()
    assert a.strides == (8, 48)
    np.testing.assert_array_equal(a, np.arange(24, dtype=np.float64).reshape(4, 6).T)
    t.fill_(3.0)
    assert (a == 3.0).all()


def test_numpy_source_outlives_python_reference():
    a = np.arange(1000, dtype=np.int64)
    t = vt.from_dlpack(a)
    del a
    gc.collect()
    np.testing.assert_array_equal(np.from_dlpack(t), np.arange(1000, dtype=np.int64))


def test_readonly_numpy_is_copied():
    a = np.arange(10, dtype=np.float32)
    a.flags.writeable = False
    t = vt.from_dlpack(a)
    assert t.data_ptr() != a.ctypes.data
    np.testing.assert_array_equal(np.from_dlpack(t), a)


@pytest.mark.parametrize("dtype", TORCH_DTYPES)
def test_torch_to_vt_zero_copy_all_dtypes(dtype):
    src = _torch_sample(dtype)
    t = vt.from_dlpack(src)
    assert t.data_ptr() == src.data_ptr()
    assert str(t.dtype).split(".")[-1] == str(dtype).split(".")[-1]
    back = torch.from_dlpack(t)
    assert back.data_ptr() == src.data_ptr()
    assert back.dtype == dtype
    assert torch.equal(back, src)


@pytest.mark.parametrize("dtype", TORCH_DTYPES)
def test_vt_to_torch_zero_copy_noncontiguous(dtype):
    src = _torch_sample(dtype, (5, 8))
    t = vt.from_dlpack(src.clone())
    view = t[1:, ::2].t()
    out = torch.from_dlpack(view)
    assert out.data_ptr() == view.data_ptr()
    assert list(out.stride()) == list(view.stride())
    assert out.storage_offset() == 0  # DLPack data points at the first element
    assert torch.equal(out, src[1:, ::2].t())


def test_torch_view_with_storage_offset_roundtrip():
    base = torch.arange(100, dtype=torch.float32).reshape(10, 10)
    view = base[3:7, 2:9:2]
    t = vt.from_dlpack(view)
    assert t.data_ptr() == view.data_ptr()
    assert list(t.stride()) == list(view.stride())
    base.add_(1)
    assert torch.equal(_vt_to_torch_values(t), view)


def test_legacy_and_versioned_capsules():
    t = vt.arange(6, dtype=vt.float32)
    legacy = t.__dlpack__()
    versioned = t.__dlpack__(max_version=(1, 0))
    name = ctypes.pythonapi.PyCapsule_GetName
    name.restype, name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    assert name(legacy) == b"dltensor"
    assert name(versioned) == b"dltensor_versioned"
    assert torch.equal(torch.utils.dlpack.from_dlpack(legacy), torch.arange(6, dtype=torch.float32))
    # torch's legacy exporter and its versioned one both import
    x = torch.arange(4, dtype=torch.int32)
    a = vt.from_dlpack(torch.utils.dlpack.to_dlpack(x))
    b = vt.from_dlpack(x.__dlpack__(max_version=(1, 0)))
    assert a.data_ptr() == b.data_ptr() == x.data_ptr()


def test_capsule_consumed_once_and_bad_inputs():
    t = vt.ones(3)
    cap = interop.to_dlpack(t)
    vt.from_dlpack(cap)
    with pytest.raises(ValueError, match="already consumed"):
        vt.from_dlpack(cap)
    with pytest.raises(TypeError):
        vt.from_dlpack(42)
    with pytest.raises(ValueError, match="stream"):
        t.__dlpack__(stream=5)
    with pytest.raises(BufferError):
        t.__dlpack__(dl_device=(2, 0))


def test_own_export_comes_back_as_view_of_same_storage():
    t = vt.arange(12, dtype=vt.float32).reshape(3, 4)[1:]
    r = vt.from_dlpack(t)
    assert r.data_ptr() == t.data_ptr()
    assert r._storage_id() == t._storage_id()


def test_copy_true_exports_a_copy():
    t = vt.arange(5, dtype=vt.float32)
    out = torch.from_dlpack(vt.from_dlpack(torch.utils.dlpack.from_dlpack(t.__dlpack__(copy=True))))
    assert out.data_ptr() != t.data_ptr()
    assert torch.equal(out, torch.arange(5, dtype=torch.float32))


def test_exported_memory_outlives_vt_tensor():
    t = vt.arange(1 << 16, dtype=vt.int64)
    out = torch.from_dlpack(t)
    del t
    gc.collect()
    assert torch.equal(out, torch.arange(1 << 16))


# ---- a hand-made CUDA managed tensor: the device type is read from the metadata -----------------------

from dlpack_structs import _Deleter, _DLDataType, _DLDevice, _DLManagedTensor, _DLTensor  # noqa: F401


def test_cuda_device_metadata_is_rejected_cleanly_without_taking_ownership():
    calls = []
    shape = (ctypes.c_int64 * 1)(4)
    m = _DLManagedTensor()
    m.dl_tensor.data = 0x1000
    # kDLCUDA on a device no process has: refused by a CPU-only build (no CUDA backend) and by a CUDA build alike
    m.dl_tensor.device = _DLDevice(2, 4096)
    m.dl_tensor.ndim = 1
    m.dl_tensor.dtype = _DLDataType(2, 32, 1)
    m.dl_tensor.shape = shape
    deleter = _Deleter(lambda p: calls.append(1))
    m.deleter = deleter
    new = ctypes.pythonapi.PyCapsule_New
    new.restype, new.argtypes = ctypes.py_object, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    cap = new(ctypes.addressof(m), b"dltensor", None)
    with pytest.raises(RuntimeError, match="CUDA"):
        vt.from_dlpack(cap)
    assert calls == []  # the producer still owns it: a rejected import never runs the deleter
    # a CPU tensor through the same hand-made struct is imported zero-copy and released exactly once
    buf = (ctypes.c_float * 4)(1, 2, 3, 4)
    m.dl_tensor.data = ctypes.addressof(buf)
    m.dl_tensor.device = _DLDevice(1, 0)
    cap2 = new(ctypes.addressof(m), b"dltensor", None)
    t = vt.from_dlpack(cap2)
    assert t.data_ptr() == ctypes.addressof(buf)
    np.testing.assert_array_equal(np.from_dlpack(t).copy(), np.array([1, 2, 3, 4], dtype=np.float32))
    assert calls == []
    del t
    gc.collect()
    assert calls == [1]
