"""Pinned host memory and non-blocking copies (torch's API): Tensor.pin_memory / is_pinned, vt.empty(...,
pin_memory=True), .to(device, non_blocking=True), .cuda(non_blocking=True), copy_(src, non_blocking=True).

The GPU tests check: values round-trip; is_pinned; that a non-blocking copy to/from pinned memory really is
asynchronous (the host returns while a long queue of matmuls is still running on the stream, the values are right
after synchronizing); that non_blocking from/to pageable memory is a correct blocking copy; and that a pinned block
is not handed out again while an asynchronous copy may still read it. Without a GPU, the tests at the top check
the behaviour of a build without CUDA devices (clear RuntimeError, is_pinned False).

Under compute-sanitizer the matmul queue alone takes minutes (every access of cuBLAS's kernels is instrumented), and
the sanitizer checks memory accesses, not timing: tests/gpu's sanitize runs set VBT_TEST_BUSY_N / VBT_TEST_BUSY_ITERS
(as for test_cuda_autograd_streams.py). A short queue may be done before a copy call returns, so then the asynchrony
assertions are not made (the values still are), and the pinned-block reuse test, which needs a queue still running,
skips. The plain pytest step keeps the long queue and every assertion."""
import os
import time

import numpy as np
import pytest

import vibetensor.torch as vt

torch = pytest.importorskip("torch")

HAS_GPU = vt.cuda.is_available() and vt.cuda._tensors.has_ops()
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU and a build with the CUDA kernels")
no_gpu = pytest.mark.skipif(HAS_GPU, reason="checks the behaviour without a usable GPU")


# ---- everywhere ------------------------------------------------------------------------------------------

@no_gpu
def test_without_a_gpu_pinning_raises_a_clear_error_and_nothing_is_pinned():
    t = vt.arange(6, dtype=vt.float32)
    assert t.is_pinned() is False
    with pytest.raises(RuntimeError, match=r"pin_memory\(\) needs CUDA"):
        t.pin_memory()
    with pytest.raises(RuntimeError, match="pin_memory=True needs CUDA"):
        vt.empty(4, pin_memory=True)
    with pytest.raises(RuntimeError, match="needs CUDA"):
        vt.zeros(2, 3, pin_memory=True)


def test_non_blocking_keyword_and_positional_forms_are_accepted_on_cpu():
    t = vt.arange(6, dtype=vt.float32)
    assert t.to("cpu", non_blocking=True) is t
    assert t.to(vt.float64, True).dtype == vt.float64       # to(dtype, non_blocking)
    c = t.to(vt.float32, True, True)                          # to(dtype, non_blocking, copy): a copy
    assert c is not t and np.array_equal(c.numpy(), t.numpy())
    assert t.to("cpu", vt.float32, False, False) is t
    d = vt.zeros(6)
    assert d.copy_(t, non_blocking=True) is d
    assert np.array_equal(d.numpy(), t.numpy())
    assert vt.empty(3, pin_memory=False).shape == (3,)
    with pytest.raises(RuntimeError, match="only CPU tensors can be pinned"):
        vt.empty(3, device="cuda", pin_memory=True)


# ---- on a GPU ----------------------------------------------------------------------------------------------

@needs_gpu
def test_pin_memory_round_trip_and_is_pinned():
    src = torch.randn(5, 7, dtype=torch.float32)
    t = vt.tensor(src.numpy())
    assert not t.is_pinned()
    p = t.pin_memory()
    assert p.is_pinned() and p.device.type == "cpu" and p is not t
    assert p.pin_memory() is p                                 # already pinned: itself, like torch
    assert np.array_equal(p.numpy(), src.numpy())
    assert p[1:3].is_pinned()                                  # a view of pinned memory is pinned
    d = p.to("cuda", non_blocking=True)
    assert d.device.type == "cuda" and not d.is_pinned()
    back = d.to("cpu", non_blocking=True)                      # torch: the non-blocking D2H result is pinned
    assert back.is_pinned()
    vt.cuda.current_stream().synchronize()
    assert np.array_equal(back.numpy(), src.numpy())
    d2 = p.cuda(non_blocking=True)
    vt.cuda.synchronize()
    assert np.array_equal(d2.cpu().numpy(), src.numpy())
    # dtypes and a non-contiguous pinned source (staged through pageable memory: a blocking copy)
    for dt in (vt.float64, vt.int64, vt.bool, vt.float16, vt.bfloat16):
        x = vt.tensor(src.numpy()).to(dt).pin_memory()
        y = x.t().to("cuda", non_blocking=True)
        vt.cuda.synchronize()
        assert np.array_equal(y.cpu().to(vt.float32).numpy(), x.t().to(vt.float32).numpy()), dt


@needs_gpu
def test_pinned_factories():
    e = vt.empty(3, 4, pin_memory=True)
    assert e.is_pinned() and e.shape == (3, 4) and e.dtype == vt.float32
    z = vt.zeros(2, 3, dtype=vt.int64, pin_memory=True)
    assert z.is_pinned() and z.dtype == vt.int64 and z.numpy().tolist() == [[0, 0, 0], [0, 0, 0]]
    f = vt.full((2,), 7.5, pin_memory=True)
    assert f.is_pinned() and f.numpy().tolist() == [7.5, 7.5]
    t = vt.tensor([1.0, 2.0], pin_memory=True)
    assert t.is_pinned() and t.numpy().tolist() == [1.0, 2.0]
    assert torch.empty(2, pin_memory=True).is_pinned()  # the same spelling works in torch


BUSY_N = int(os.environ.get("VBT_TEST_BUSY_N", "4096"))
BUSY_ITERS = int(os.environ.get("VBT_TEST_BUSY_ITERS", "12"))
TIMING = "VBT_TEST_BUSY_N" not in os.environ and "VBT_TEST_BUSY_ITERS" not in os.environ  # the long queue


def _long_queue(n=BUSY_N, reps=BUSY_ITERS):
    """Queues `reps` n x n float32 matmuls on the current stream (tens of ms on an H200, far longer than a
    cudaMemcpyAsync call takes to return) and returns the last result, all elements == n."""
    a = vt.ones(n, n, device="cuda")
    c = None
    for _ in range(reps):
        c = a @ a
    return c


@needs_gpu
def test_non_blocking_d2h_into_pinned_memory_is_asynchronous():
    n = BUSY_N
    _long_queue(256, 1)
    vt.cuda.synchronize()                                      # warm-up (cuBLAS handle, kernels loaded)
    stream = vt.cuda.current_stream()
    host = vt.empty(n, n, pin_memory=True)
    host.fill_(-1.0)
    t0 = time.perf_counter()
    c = _long_queue(n)
    host.copy_(c, non_blocking=True)
    returned_after = time.perf_counter() - t0
    still_running = not stream.query()
    done = vt.cuda.Event()
    done.record(stream)
    done.synchronize()
    total = time.perf_counter() - t0
    assert still_running or not TIMING, (
        "copy_(non_blocking=True) into pinned memory waited for the stream: the queued matmuls "
        f"had finished when it returned ({returned_after * 1e3:.1f} ms, total {total * 1e3:.1f} ms)")
    assert np.all(host.numpy() == float(n)), "the asynchronous D2H copy did not deliver the kernel's result"
    # .to("cpu", non_blocking=True): same, the result is pinned
    c = _long_queue(n)
    out = c.to("cpu", non_blocking=True)
    still_running = not stream.query()
    stream.synchronize()
    assert (still_running or not TIMING) and out.is_pinned()
    assert np.all(out.numpy() == float(n))


@needs_gpu
def test_non_blocking_h2d_from_pinned_memory_is_asynchronous_and_ordered():
    n = BUSY_N
    _long_queue(256, 1)
    vt.cuda.synchronize()
    stream = vt.cuda.current_stream()
    src = vt.full((n, n), 3.0, pin_memory=True)
    dst = vt.zeros(n, n, device="cuda")
    c = _long_queue(n)
    dst.copy_(src, non_blocking=True)
    still_running = not stream.query()
    r = dst + c                                                # ordered after the copy on the same stream
    stream.synchronize()
    assert still_running or not TIMING, "copy_(non_blocking=True) from pinned memory waited for the stream"
    assert np.all(r.cpu().numpy() == float(n) + 3.0)


@needs_gpu
def test_non_blocking_with_pageable_memory_is_a_correct_blocking_copy():
    n = BUSY_N
    _long_queue(256, 1)
    vt.cuda.synchronize()
    stream = vt.cuda.current_stream()
    host = vt.zeros(n, n)                                      # pageable
    assert not host.is_pinned()
    c = _long_queue(n)
    host.copy_(c, non_blocking=True)
    assert stream.query(), "a copy into pageable memory must wait for the stream (torch does)"
    assert np.all(host.numpy() == float(n))
    src = vt.full((64,), 2.0)
    d = src.to("cuda", non_blocking=True)
    assert np.all(d.cpu().numpy() == 2.0)
    c = _long_queue(n)
    out = c.to("cpu", non_blocking=False)
    assert stream.query() and not out.is_pinned()
    assert np.all(out.numpy() == float(n))


@needs_gpu
def test_a_pinned_block_is_not_reused_while_an_async_copy_from_it_may_run():
    if not TIMING:
        pytest.skip("needs the long matmul queue still running when the copy is queued (VBT_TEST_BUSY_* shorten it)")
    n = BUSY_N
    _long_queue(256, 1)
    vt.cuda.synchronize()
    vt.cuda._tensors._C._cuda_pinned_empty_cache()
    stream = vt.cuda.current_stream()
    p1 = vt.full((n, n), 1.0, pin_memory=True)
    addr = p1.data_ptr()
    dst = vt.zeros(n, n, device="cuda")
    c = _long_queue(n)
    dst.copy_(p1, non_blocking=True)                           # reads p1 once the matmuls are done
    assert not stream.query(), "the queued work finished too early for this test to mean anything"
    del p1                                                      # its block is now pending, not free
    stats = vt.cuda._tensors._C._cuda_pinned_stats()
    assert stats["pending_blocks"] >= 1, stats
    p2 = vt.empty(n, n, pin_memory=True)
    assert p2.data_ptr() != addr, "the pinned block was handed out again while a copy from it was pending"
    p2.fill_(2.0)                                               # would corrupt dst if p2 shared p1's memory
    stream.synchronize()
    assert np.all(dst.cpu().numpy() == 1.0)
    del c
    p3 = vt.empty(n, n, pin_memory=True)                        # the copy is done: the block is reused
    assert p3.data_ptr() == addr
    assert vt.cuda._tensors._C._cuda_pinned_stats()["pending_blocks"] == 0


@needs_gpu
def test_non_blocking_copies_on_a_side_stream_then_wait_event():
    s = vt.cuda.Stream()
    src = vt.arange(1000, dtype=vt.float32).pin_memory()
    with vt.cuda.stream(s):
        d = src.to("cuda", non_blocking=True)
        r = d * 2
        out = vt.empty(1000, pin_memory=True)
        out.copy_(r, non_blocking=True)
        ev = s.record_event()
    ev.synchronize()
    assert np.array_equal(out.numpy(), np.arange(1000, dtype=np.float32) * 2)
