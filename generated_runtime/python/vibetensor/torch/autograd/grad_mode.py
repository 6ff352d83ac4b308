"""Grad-mode context managers (thread-local flag of the C++ engine), as in torch.autograd.grad_mode."""
import functools

from ... import _C


def is_grad_enabled():
    return _C._ag_is_grad_enabled()


class _GradModeBase:
    """Usable as a context manager and as a function decorator."""

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradModeBase):
    def __init__(self):
        self.prev = False

    def __enter__(self):
        self.prev = _C._ag_is_grad_enabled()
        _C._ag_set_grad_enabled(False)
        return self

    def __exit__(self, *exc):
        _C._ag_set_grad_enabled(self.prev)
        return False


class enable_grad(_GradModeBase):
    def __init__(self):
        self.prev = False

    def __enter__(self):
        self.prev = _C._ag_is_grad_enabled()
        _C._ag_set_grad_enabled(True)
        return self

    def __exit__(self, *exc):
        _C._ag_set_grad_enabled(self.prev)
        return False


class set_grad_enabled(_GradModeBase):
    """Sets grad mode immediately (like torch) and restores the previous mode on __exit__."""

    def __init__(self, mode):
        self.prev = _C._ag_is_grad_enabled()
        self.mode = bool(mode)
        _C._ag_set_grad_enabled(self.mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _C._ag_set_grad_enabled(self.prev)
        return False

    def __call__(self, fn):
        _C._ag_set_grad_enabled(self.prev)
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)
        return wrapper


class inference_mode(_GradModeBase):
    """Like no_grad (vibetensor has no separate inference tensors)."""

    def __init__(self, mode=True):
        self.mode = mode
        self.prev = False

    def __enter__(self):
        self.prev = _C._ag_is_grad_enabled()
        if self.mode:
            _C._ag_set_grad_enabled(False)
        return self

    def __exit__(self, *exc):
        _C._ag_set_grad_enabled(self.prev)
        return False


def is_inference_mode_enabled():
    return False
