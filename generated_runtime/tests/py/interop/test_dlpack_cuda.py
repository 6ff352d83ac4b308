"""DLPack with CUDA tensors: zero-copy import of kDLCUDA tensors onto cuda:<device_id> (the producer's deleter
runs when the last vibetensor view dies), the __dlpack__(stream=...) handshake in both directions, and the
clear errors of a build without CUDA or a device id the process does not have. The device tests are skipped
without a CUDA device; the rest run everywhere. Self-contained: run on a GPU machine with
    PYTHONPATH=<site> python -m pytest generated_runtime/tests/py/interop/test_dlpack_cuda.py -q -p no:cacheprovider
"""
import ctypes
import gc

import pytest
import torch

import vibetensor.torch as vt
from vibetensor import _C
from vibetensor import interop

CUDA_BUILT = bool(getattr(_C, "_dlpack_cuda", lambda: False)())
HAS_DEVICE = CUDA_BUILT and int(_C._cuda_device_count()) > 0 and bool(getattr(_C, "_cuda_has_ops", lambda: False)())
needs_device = pytest.mark.skipif(not HAS_DEVICE, reason="no CUDA device (or vibetensor built without CUDA)")
TORCH_CUDA = HAS_DEVICE and torch.cuda.is_available()


from dlpack_structs import _Deleter, _DLDataType, _DLDevice, _DLManagedTensor, _DLTensor  # noqa: F401

_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype, _capsule_new.argtypes = ctypes.py_object, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]


class ForeignCudaProducer:
    """A foreign DLPack producer of a float32 tensor at `address` on (kDLCUDA, device_id), made by hand (legacy
    capsule) so that vibetensor treats it as someone else's memory. Records the `stream` it was asked for and
    every deleter call."""

    def __init__(self, address, shape, device_id=0, strides=None, byte_offset=0):
        self.calls, self.streams = [], []
        self._shape = (ctypes.c_int64 * len(shape))(*shape)
        self._strides = (ctypes.c_int64 * len(shape))(*strides) if strides else None
        m = self._m = _DLManagedTensor()
        m.dl_tensor.data = address
        m.dl_tensor.device = _DLDevice(2, device_id)
        m.dl_tensor.ndim = len(shape)
        m.dl_tensor.dtype = _DLDataType(2, 32, 1)
        m.dl_tensor.shape = self._shape
        if self._strides is not None:
            m.dl_tensor.strides = self._strides
        m.dl_tensor.byte_offset = byte_offset
        self._deleter = _Deleter(lambda p: self.calls.append(1))
        m.deleter = self._deleter
        self._device_id = device_id

    def __dlpack_device__(self):
        return (2, self._device_id)

    def __dlpack__(self, stream=None, **kwargs):
        if "max_version" in kwargs:
            raise TypeError("a pre-1.0 producer")  # vibetensor falls back to the legacy call
        self.streams.append(stream)
        return _capsule_new(ctypes.addressof(self._m), b"dltensor", None)


def test_cuda_import_of_a_device_the_process_lacks_is_refused_without_taking_ownership():
    p = ForeignCudaProducer(0x1000, (4,), device_id=4096)
    with pytest.raises(RuntimeError, match="CUDA"):
        vt.from_dlpack(p)
    assert p.calls == []
    if CUDA_BUILT:
        assert p.streams == [1]  # the consumer stream: vibetensor's current stream, the legacy default here
    else:
        assert p.streams == []  # refused before asking the producer for anything


@pytest.mark.skipif(CUDA_BUILT, reason="this build has the CUDA backend")
def test_cuda_import_without_a_cuda_backend_says_so():
    with pytest.raises(RuntimeError, match="no CUDA backend"):
        vt.from_dlpack(ForeignCudaProducer(0x1000, (4,)))


def test_device_argument_must_match_the_producer():
    with pytest.raises(ValueError, match="differs from the producer"):
        vt.from_dlpack(torch.ones(2), device="cuda")
    assert vt.from_dlpack(torch.ones(2), device="cpu").device.type == "cpu"


@needs_device
def test_foreign_cuda_memory_is_imported_zero_copy_and_released_by_the_last_view():
    src = vt.from_dlpack(torch.arange(24, dtype=torch.float32)).cuda()
    p = ForeignCudaProducer(src.data_ptr(), (2, 3), strides=(6, 2), byte_offset=4)  # elements 1,3,5 / 7,9,11
    t = vt.from_dlpack(p)
    assert t.device.type == "cuda" and t.device.index == 0
    assert t.data_ptr() == src.data_ptr() + 4  # zero-copy
    assert tuple(t.shape) == (2, 3) and tuple(t.stride()) == (6, 2)
    torch.testing.assert_close(torch.from_dlpack(t.cpu()).clone(), torch.tensor([[1., 3., 5.], [7., 9., 11.]]))
    view = t[1]
    del t
    gc.collect()
    assert p.calls == []  # a view still uses the memory
    view.fill_(-1.0)  # writes land in the producer's memory
    torch.testing.assert_close(torch.from_dlpack(src.cpu()).clone()[6:12],
                               torch.tensor([6., -1., 8., -1., 10., -1.]))
    del view
    gc.collect()
    assert p.calls == [1]
    assert p.streams == [int(_C._dlpack_consumer_stream(0))]


@needs_device
def test_export_stream_handshake():
    t = vt.from_dlpack(torch.arange(6, dtype=torch.float32)).cuda()
    assert interop.from_dlpack(t).data_ptr() == t.data_ptr()  # own export comes back as a view
    assert tuple(t.__dlpack_device__()) == (2, 0)
    for stream in (None, 1, 2, -1):
        back = vt.from_dlpack(t.__dlpack__(stream=stream))
        assert back.data_ptr() == t.data_ptr()
    side = vt.cuda.Stream()
    back = vt.from_dlpack(t.__dlpack__(stream=side.cuda_stream))  # the side stream waits for ours
    side.synchronize()
    torch.testing.assert_close(torch.from_dlpack(back.cpu()).clone(), torch.arange(6, dtype=torch.float32))
    with pytest.raises(ValueError, match="stream=0"):
        t.__dlpack__(stream=0)
    with pytest.raises(TypeError, match="stream must be an int"):
        t.__dlpack__(stream="default")
    copied = vt.from_dlpack(t.__dlpack__(copy=True))
    assert copied.data_ptr() != t.data_ptr()
    torch.testing.assert_close(torch.from_dlpack(copied.cpu()).clone(), torch.arange(6, dtype=torch.float32))


@needs_device
def test_import_passes_the_current_stream_as_consumer_stream():
    s = vt.cuda.Stream()
    src = vt.from_dlpack(torch.ones(4)).cuda()
    p = ForeignCudaProducer(src.data_ptr(), (4,))
    with vt.cuda.stream(s):
        t = vt.from_dlpack(p)
    assert p.streams == [s.cuda_stream]
    del t
    gc.collect()
    assert p.calls == [1]


@pytest.mark.skipif(not TORCH_CUDA, reason="needs a CUDA device and a CUDA build of PyTorch")
def test_torch_cuda_round_trip_is_zero_copy():
    x = torch.randn(5, 7, device="cuda")
    v = vt.from_dlpack(x)
    assert v.device.type == "cuda" and v.data_ptr() == x.data_ptr()
    torch.testing.assert_close(torch.from_dlpack(v.cpu()).clone(), x.cpu())
    y = torch.from_dlpack(v)
    assert y.data_ptr() == x.data_ptr() and y.device == x.device
    v.fill_(2.0)
    torch.cuda.synchronize()
    assert bool((x == 2.0).all())
    del v, y
    gc.collect()
    torch.testing.assert_close(x, torch.full((5, 7), 2.0, device="cuda"))
