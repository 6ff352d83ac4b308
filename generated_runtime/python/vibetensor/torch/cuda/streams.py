"""CUDA streams and events with torch.cuda's names. Each device has a current stream per thread (the default
stream until set); `with vt.cuda.stream(s):` makes s current for the block. Without a device, constructing a
Stream or Event raises RuntimeError; stream(None) is a no-op context, as in torch."""
from vibetensor import _C

from ._device import _index


class Stream:
    """A CUDA stream. Stream(device=None, priority=0) creates a new non-blocking stream."""

    def __init__(self, device=None, priority=0, _native=None):
        if _native is None:
            index = _index(device, "Stream")
            _native = _C._CudaStream.create(index, int(priority))
        self._native = _native

    @property
    def device_index(self):
        return self._native.device_index

    @property
    def device(self):
        return f"cuda:{self._native.device_index}"

    @property
    def cuda_stream(self):
        return self._native.id

    def query(self):
        return self._native.query()

    def synchronize(self):
        self._native.synchronize()

    def record_event(self, event=None):
        event = event if event is not None else Event()
        event.record(self)
        return event

    def wait_event(self, event):
        event.wait(self)

    def wait_stream(self, stream):
        self.wait_event(stream.record_event())

    def __eq__(self, other):
        return isinstance(other, Stream) and self._native == other._native

    def __hash__(self):
        return hash((self._native.id, self._native.device_index))

    def __repr__(self):
        return f"<vibetensor.cuda.Stream device=cuda:{self.device_index} cuda_stream={self.cuda_stream:#x}>"


class Event:
    """A CUDA event: record() on a stream, wait() from another stream, query/synchronize, elapsed_time(end) in ms."""

    def __init__(self, enable_timing=False, blocking=False, interprocess=False):
        _index(None, "Event")
        if interprocess:
            raise NotImplementedError("vibetensor.cuda.Event: interprocess events are not supported")
        self._native = _C._CudaEvent(bool(enable_timing))

    def record(self, stream=None):
        self._native.record((stream or current_stream())._native)

    def wait(self, stream=None):
        self._native.wait((stream or current_stream())._native)

    def query(self):
        return self._native.query()

    def synchronize(self):
        self._native.synchronize()

    def elapsed_time(self, end_event):
        return float(self._native.elapsed_time(end_event._native))


def current_stream(device=None):
    index = _index(device, "current_stream")
    return Stream(_native=_C._CudaStream.current(index))


def default_stream(device=None):
    index = _index(device, "default_stream")
    return Stream(_native=_C._CudaStream.default(index))


def set_stream(stream):
    if stream is not None:
        _C._CudaStream.set_current(stream._native)


class StreamContext:
    """Makes `stream` the current stream of its device inside the block (None: does nothing)."""

    def __init__(self, stream):
        self.stream = stream
        self._previous = None

    def __enter__(self):
        if self.stream is not None:
            self._previous = current_stream(self.stream.device_index)
            set_stream(self.stream)
        return self.stream

    def __exit__(self, *exc):
        if self._previous is not None:
            set_stream(self._previous)
        return False


def stream(stream):
    return StreamContext(stream)
