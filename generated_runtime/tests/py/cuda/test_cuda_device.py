"""vt.cuda on a real GPU (skipped where there is none: CI runs the host-backend tests instead): devices, streams,
events with timing, the stream context, graph capture and replay, and the device allocator's stats API, each
checked against torch.cuda on the same device where torch answers the same question."""
import time

import pytest

import vibetensor.torch as vt

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not vt.cuda.is_available(), reason="needs a CUDA device")


def test_devices_match_torch():
    assert vt.cuda.device_count() == torch.cuda.device_count()
    assert vt.cuda.get_device_name(0) == torch.cuda.get_device_name(0)
    free, total = vt.cuda.mem_get_info()
    assert total == torch.cuda.mem_get_info()[1] and 0 < free <= total


def test_streams_events_and_the_stream_context():
    default = vt.cuda.current_stream()
    assert default == vt.cuda.default_stream() and default.cuda_stream == 0
    s = vt.cuda.Stream()
    assert s != default and s.cuda_stream != 0
    with vt.cuda.stream(s):
        assert vt.cuda.current_stream() == s
    assert vt.cuda.current_stream() == default
    start, end = vt.cuda.Event(enable_timing=True), vt.cuda.Event(enable_timing=True)
    start.record(s)
    end.record(s)
    end.synchronize()
    assert end.query() and s.query()
    assert 0.0 <= start.elapsed_time(end) < 1000.0
    s.wait_stream(default)
    vt.cuda.synchronize()


# It asserts that nothing is allocated when it starts: under compute-sanitizer the tensors of earlier tests stay alive
# (spec 04, python_lifetime), so the sanitize step deselects it.
@pytest.mark.python_lifetime
def test_allocator_stats_api_on_the_device():
    vt.cuda.empty_cache()
    assert vt.cuda.memory_allocated() == 0
    stats = vt.cuda.memory_stats()
    assert stats["reserved_bytes.all.current"] == vt.cuda.memory_reserved() == 0
    assert vt.cuda.memory_snapshot() == []
    vt.cuda.set_per_process_memory_fraction(0.5)
    vt.cuda.reset_peak_memory_stats()
    vt.cuda.set_per_process_memory_fraction(1.0)


def test_graph_capture_and_replay_of_an_empty_graph():
    g = vt.cuda.CUDAGraph()
    with vt.cuda.graph(g):
        pass
    g.replay()
    vt.cuda.synchronize()
    g.reset()
    with pytest.raises(RuntimeError, match="nothing was captured"):
        g.replay()
