"""DLPack exchange for vibetensor tensors (zero-copy both ways).

* ``to_dlpack(t, versioned=True)``: a ``dltensor_versioned`` (DLPack >= 1.0) or legacy ``dltensor``
  capsule viewing ``t``'s memory; the capsule keeps the storage alive until its consumer releases it.
* ``from_dlpack(obj)``: imports any object implementing ``__dlpack__``/``__dlpack_device__`` (NumPy,
  PyTorch, vibetensor itself) or a raw capsule. Writable, element-aligned CPU memory is shared, never
  copied; read-only memory (e.g. a NumPy array with ``writeable=False``) is copied because vibetensor
  tensors are always writable.
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
    elif dev[0] == DLDeviceType.kDLCUDA and stream is not None and stream != -1:
        # Stream handshake: make the producer's work visible to the consumer's stream. Without a
        # finer-grained event API, synchronising the device is the conservative, correct choice.
        try:
            import vibetensor.torch as vt
            cuda = getattr(vt, "cuda", None)
            if cuda is not None and hasattr(cuda, "synchronize"):
                cuda.synchronize()
        except ImportError:
            pass
    versioned = max_version is not None and int(max_version[0]) >= 1
    return _C._to_dlpack(t, versioned, bool(copy))


def _tensor_dlpack_device(self):
    dev_type, dev_id = _C._dlpack_device(_native(self))
    return (DLDeviceType(dev_type), dev_id)


def from_dlpack(ext_tensor, *, device=None, copy=None):
    """A vibetensor tensor sharing ``ext_tensor``'s memory (an object with ``__dlpack__`` or a capsule)."""
    if device is not None and str(device) != "cpu":
        raise ValueError(f"from_dlpack: only device='cpu' is supported by this build, got {device!r}")
    if hasattr(ext_tensor, "__dlpack__"):
        kwargs = {}
        dev = ext_tensor.__dlpack_device__() if hasattr(ext_tensor, "__dlpack_device__") else (1, 0)
        if int(dev[0]) in (DLDeviceType.kDLCUDA, DLDeviceType.kDLROCM):
            kwargs["stream"] = 1 if int(dev[0]) == DLDeviceType.kDLCUDA else 0  # the legacy default stream
        if copy is not None:
            kwargs["copy"] = copy
        try:
            capsule = ext_tensor.__dlpack__(max_version=tuple(_C._dlpack_max_version()), **kwargs)
        except TypeError:
            # A producer that predates DLPack 1.0 (no max_version keyword): legacy capsule.
            kwargs.pop("copy", None)
            capsule = ext_tensor.__dlpack__(**kwargs)
    else:
        capsule = ext_tensor
    return _C._from_dlpack_capsule(capsule)


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
