"""Device queries of vt.cuda. A device is an int, a 'cuda:N' string, a vt.device, or None (the current one)."""
from vibetensor import _C


def is_built():
    """Whether this vibetensor was compiled with the CUDA backend (nvcc was found at build time)."""
    return bool(_C._cuda_is_built())


def device_count():
    return int(_C._cuda_device_count()) if is_built() else 0


def is_available():
    return device_count() > 0


def is_initialized():
    return is_available()


def _require_cuda(what):
    if not is_built():
        raise RuntimeError(f"vibetensor.cuda.{what}: vibetensor was built without CUDA (no nvcc at build time)")
    if device_count() == 0:
        raise RuntimeError(f"vibetensor.cuda.{what}: no CUDA device is available (device_count() == 0)")


def _index(device, what):
    """The device index of `device` (None: the current device); checks that a device exists."""
    _require_cuda(what)
    if device is None:
        return int(_C._cuda_current_device())
    if isinstance(device, int):
        index = device
    else:
        text = str(getattr(device, "type", device)) if not isinstance(device, str) else device
        idx = getattr(device, "index", None)
        if isinstance(device, str):
            kind, _, num = device.partition(":")
            idx = int(num) if num else None
            text = kind
        if text != "cuda":
            raise ValueError(f"vibetensor.cuda.{what}: expected a CUDA device, got {device!r}")
        index = int(_C._cuda_current_device()) if idx is None else int(idx)
    if not 0 <= index < device_count():
        raise ValueError(f"vibetensor.cuda.{what}: device {index} out of range ({device_count()} devices)")
    return index


def current_device():
    _require_cuda("current_device")
    return int(_C._cuda_current_device())


def set_device(device):
    index = _index(device, "set_device")
    _C._cuda_set_device(index)


def get_device_name(device=None):
    index = _index(device, "get_device_name")
    return str(_C._cuda_device_name(index))


def synchronize(device=None):
    """Waits for all work queued on every stream of the device."""
    index = _index(device, "synchronize")
    _C._cuda_synchronize(index)
