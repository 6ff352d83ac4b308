"""vt.cuda against torch.cuda: the same names; on a machine without a GPU the same answers where torch answers
(is_available False, device_count 0, zero memory, empty stats) and a clear RuntimeError where torch refuses.
The allocator statistics API is exercised through the host-backend testing hook (test_cuda_memory_host.py)."""
import pytest
import torch

import vibetensor.torch as vt

NAMES = ["is_available", "device_count", "synchronize", "Stream", "Event", "current_stream", "stream",
         "memory_allocated", "memory_reserved", "max_memory_allocated", "max_memory_reserved",
         "reset_peak_memory_stats", "memory_stats", "memory_snapshot", "empty_cache",
         "set_per_process_memory_fraction", "CUDAGraph", "graph", "OutOfMemoryError", "current_device",
         "set_device", "get_device_name", "default_stream", "set_stream", "is_initialized", "mem_get_info",
         "graph_pool_handle"]

no_gpu = pytest.mark.skipif(torch.cuda.is_available() or vt.cuda.is_available(),
                            reason="compares against torch.cuda's answers on a machine without a GPU")


def test_torch_cuda_names_exist():
    for name in NAMES:
        assert hasattr(torch.cuda, name), name  # the reference really has it
        assert hasattr(vt.cuda, name), f"vt.cuda.{name} is missing"


def test_out_of_memory_error_is_a_runtime_error_like_torch():
    assert issubclass(torch.cuda.OutOfMemoryError, RuntimeError)
    assert issubclass(vt.cuda.OutOfMemoryError, RuntimeError)


CALLS = {
    "is_available": lambda m: m.is_available(),
    "device_count": lambda m: m.device_count(),
    "is_initialized": lambda m: m.is_initialized(),
    "memory_allocated": lambda m: m.memory_allocated(),
    "memory_reserved": lambda m: m.memory_reserved(),
    "max_memory_allocated": lambda m: m.max_memory_allocated(),
    "max_memory_reserved": lambda m: m.max_memory_reserved(),
    "memory_stats": lambda m: dict(m.memory_stats()),
    "empty_cache": lambda m: m.empty_cache(),
    "stream(None)": lambda m: m.stream(None).__enter__(),
    "synchronize": lambda m: m.synchronize(),
    "Stream": lambda m: m.Stream(),
    "Event": lambda m: m.Event(),
    "current_stream": lambda m: m.current_stream(),
    "set_per_process_memory_fraction": lambda m: m.set_per_process_memory_fraction(0.5),
    "CUDAGraph": lambda m: m.CUDAGraph(),
    "graph_pool_handle": lambda m: m.graph_pool_handle(),
    "current_device": lambda m: m.current_device(),
    "get_device_name": lambda m: m.get_device_name(),
    "memory_snapshot": lambda m: m.memory_snapshot(),
    "reset_peak_memory_stats": lambda m: m.reset_peak_memory_stats(),
}


@no_gpu
@pytest.mark.parametrize("call", sorted(CALLS))
def test_without_a_gpu_answers_like_torch(call):
    fn = CALLS[call]
    try:
        expected = fn(torch.cuda)
    except Exception:  # torch refuses (AssertionError, RuntimeError, or a missing binding): so must we, clearly
        with pytest.raises(RuntimeError, match="CUDA"):
            fn(vt.cuda)
        return
    assert fn(vt.cuda) == expected


@no_gpu
def test_stream_context_with_a_stream_needs_a_device():
    with pytest.raises(RuntimeError, match="no CUDA device|built without CUDA"):
        with vt.cuda.stream(vt.cuda.Stream()):
            pass


def test_bad_fraction_is_rejected_before_touching_a_device():
    with pytest.raises(ValueError):
        vt.cuda.set_per_process_memory_fraction(1.5)
    with pytest.raises(TypeError):
        vt.cuda.set_per_process_memory_fraction("half")
