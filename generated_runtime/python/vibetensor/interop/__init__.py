"""DLPack exchange for vibetensor tensors (zero-copy both ways).

* ``to_dlpack(t, versioned=True)``: a ``dltensor_versioned`` (DLPack >= 1.0) or legacy ``dltensor``
  capsule viewing ``t``'s memory; the capsule keeps the storage alive until its consumer releases it.
* ``from_dlpack(obj)``: imports any object implementing ``__dlpack__``/``__dlpack_device__`` (NumPy,
  PyTorch, vibetensor itself) or a raw capsule. Writable, element-aligned CPU memory is shared, never
  copied; read-only memory (e.g. a NumPy array with ``writeable=False``) is copied because vibetensor
  tensors are always writable.
* CUDA (when vibetensor is built with the CUDA backend; otherwise importing a CUDA tensor raises
  RuntimeError saying so): a ``kDLCUDA`` tensor is imported zero-copy onto ``cuda:<device_id>``; the
  producer's deleter runs when the last vibetensor view dies. Stream handshake (DLPack ``__dlpack__(stream=)``):
  as consumer, vibetensor passes its current stream on that device (1 for the legacy default stream), and
  the producer orders its work before it; as producer, ``__dlpack__(stream=s)`` makes stream ``s`` wait for
  vibetensor's current stream (``None``: the legacy default stream, ``-1``: no synchronisation, ``0``: refused).
* ``install()`` attaches ``Tensor.__dlpack__`` / ``Tensor.__dlpack_device__`` to the native tensor type
  and ``from_dlpack`` to ``vibetensor.torch`` (done once, when ``vibetensor.torch.library`` or this
  module is imported).
"""
import enum

from .. import _C

__all__ = ["DLDeviceType", "to_dlpack", "from_dlpack", "install"]


class DLDeviceType(enum.IntEnum):
    kDLCPU = 1
    kDLCUDA = 2
    kDLCUDAHost = 3
    kDLOpenCL = 4
    kDLVulkan = 7
    kDLMetal = 8
    kDLVPI = 9
    kDLROCM = 10
    kDLROCMHost = 11
    kDLExtDev = 12
    kDLCUDAManaged = 13
    kDLOneAPI = 14


def _native(t):
    """The native _C.Tensor behind a vibetensor tensor."""
    if isinstance(t, _C.Tensor):
        return t
    for attr in ("_c", "_impl", "_tensor"):
        inner = getattr(t, attr, None)
        if isinstance(inner, _C.Tensor):
            return inner
    raise TypeError(f"expected a vibetensor Tensor, got {type(t).__name__}")


def to_dlpack(tensor, versioned=True, copy=False):
    """A DLPack capsule for ``tensor`` (zero-copy unless ``copy``)."""
    return _C._to_dlpack(_native(tensor), bool(versioned), bool(copy))


def _tensor_dlpack(self, *, stream=None, max_version=None, dl_device=None, copy=None):
    """Array API ``__dlpack__``: a versioned capsule when the consumer's ``max_version`` >= (1, 0),
    else a legacy one. ``copy=False`` never copies (CPU export is always zero-copy); ``copy=True``
    exports a fresh contiguous copy."""
    t = _native(self)
    dev = _C._dlpack_device(t)
    if dl_device is not None and tuple(int(x) for x in dl_device) != tuple(dev):
        raise BufferError(f"__dlpack__: cannot export a tensor on DLPack device {tuple(dev)} to {tuple(dl_device)}")
    if dev[0] == DLDeviceType.kDLCPU:
        if stream is not None and stream != -1:
            raise ValueError(f"__dlpack__: stream must be None for a CPU tensor, got {stream!r}")
    elif dev[0] == DLDeviceType.kDLCUDA:
        # Stream handshake (Note [DLPack CUDA streams] in interop_bindings.cpp): the consumer's stream waits
        # for vibetensor's current stream. None means the legacy default stream; -1: the consumer syncs itself.
        if stream is None:
            stream = 1
        if isinstance(stream, bool) or not isinstance(stream, int):
            raise TypeError(f"__dlpack__: stream must be an int or None, got {type(stream).__name__}")
        if stream != -1:
            _C._dlpack_producer_sync(int(dev[1]), int(stream))
    versioned = max_version is not None and int(max_version[0]) >= 1
    return _C._to_dlpack(t, versioned, bool(copy))


def _tensor_dlpack_device(self):
    dev_type, dev_id = _C._dlpack_device(_native(self))
    return (DLDeviceType(dev_type), dev_id)


def _cuda_built():
    return bool(getattr(_C, "_dlpack_cuda", lambda: False)())


def _check_device_arg(device, dev):
    """``device=`` of from_dlpack must name the producer's device (no cross-device import)."""
    if device is None:
        return
    text = str(device)
    if int(dev[0]) == DLDeviceType.kDLCPU and text == "cpu":
        return
    if int(dev[0]) == DLDeviceType.kDLCUDA and text in ("cuda", f"cuda:{int(dev[1])}"):
        return
    raise ValueError(f"from_dlpack: device={device!r} differs from the producer's DLPack device {tuple(dev)}; "
                     "import it on its own device and move it with .to()")


def from_dlpack(ext_tensor, *, device=None, copy=None):
    """A vibetensor tensor sharing ``ext_tensor``'s memory (an object with ``__dlpack__`` or a capsule)."""
    if hasattr(ext_tensor, "__dlpack__"):
        kwargs = {}
        dev = ext_tensor.__dlpack_device__() if hasattr(ext_tensor, "__dlpack_device__") else (1, 0)
        _check_device_arg(device, dev)
        if int(dev[0]) == DLDeviceType.kDLCUDA:
            if not _cuda_built():
                raise RuntimeError(f"from_dlpack: the tensor is on a CUDA device (DLPack device {tuple(dev)}), but "
                                   "this vibetensor build has no CUDA backend; copy it to the CPU first")
            # Our current stream on that device: the producer orders its pending work before it.
            kwargs["stream"] = int(_C._dlpack_consumer_stream(int(dev[1])))
        elif int(dev[0]) == DLDeviceType.kDLROCM:
            kwargs["stream"] = 0
        if copy is not None:
            kwargs["copy"] = copy
        try:
            capsule = ext_tensor.__dlpack__(max_version=tuple(_C._dlpack_max_version()), **kwargs)
        except TypeError:
            # A producer that predates DLPack 1.0 (no max_version keyword): legacy capsule.
            kwargs.pop("copy", None)
            capsule = ext_tensor.__dlpack__(**kwargs)
    else:
        if device is not None and str(device) not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
            raise ValueError(f"from_dlpack: unsupported device {device!r}")
        capsule = ext_tensor
    out = _C._from_dlpack_capsule(capsule)
    if device is not None and not hasattr(ext_tensor, "__dlpack__"):
        _check_device_arg(device, _C._dlpack_device(out))
    return out


_installed = False


def install():
    """Attaches the DLPack protocol to the native Tensor type and ``from_dlpack`` to vibetensor.torch."""
    global _installed
    if not _installed:
        _C.Tensor.__dlpack__ = _tensor_dlpack
        _C.Tensor.__dlpack_device__ = _tensor_dlpack_device
        _installed = True
    import sys
    vt = sys.modules.get("vibetensor.torch")
    if vt is not None:
        if not hasattr(vt, "from_dlpack"):
            vt.from_dlpack = from_dlpack
        cls = getattr(vt, "Tensor", None)
        if isinstance(cls, type) and cls is not _C.Tensor and "__dlpack__" not in cls.__dict__:
            cls.__dlpack__ = _tensor_dlpack
            cls.__dlpack_device__ = _tensor_dlpack_device


install()
