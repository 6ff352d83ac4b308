"""CUDA tensors: installs the core overlay's ``_tensor.device_copy_hook`` so that ``Tensor.to("cuda")``,
``.cuda()``, ``.cpu()`` and ``vt.tensor(..., device="cuda")`` copy between host and device memory (the
caching allocator's CUDA backend). The CUDA op kernels themselves are registered by the extension
(``include/vbt/cuda/ops.h``); ``has_ops()`` says whether this build has them."""
from vibetensor import _C
from vibetensor.torch import _tensor

from ._device import _require_cuda


def has_ops():
    """Whether this build carries the CUDA op kernels (built with nvcc)."""
    return bool(getattr(_C, "_cuda_has_ops", lambda: False)())


def _device_copy(t, dev):
    if dev.type == "cuda" or t.device.type == "cuda":
        if not has_ops():
            raise RuntimeError(f"vibetensor: cannot move a tensor to {dev}: this build has no CUDA kernels "
                               "(it was compiled without nvcc)")
        _require_cuda("Tensor.to")
    return _C._cuda_to_device(t, str(dev))


_tensor.device_copy_hook = _device_copy
