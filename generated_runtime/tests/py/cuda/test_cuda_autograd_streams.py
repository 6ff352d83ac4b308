"""Autograd on CUDA ordered across streams (Note [Autograd streams] in src/vbt/autograd/engine.cpp), on a GPU.

Each backward node runs on the stream its forward op ran on; gradients that cross streams are ordered with events;
the backward call is ordered with the stream that was current when it was called. Every test queues a long kernel
(a loop of 4096^3 float32 matmuls, tens of milliseconds) on a side stream before the work under test, so a missing
wait shows up as wrong gradients: backward reading activations that are not computed yet, or a .grad read before
it is written. Gradients are compared with torch (float64 on the CPU) and with the one-stream result.
The ordering logic itself is checked on the CPU by tests/cpp/autograd/engine_streams_test.cpp (fake streams).
Without a GPU every test here skips."""
import gc
import os

import numpy as np
import pytest

import vibetensor.torch as vt

torch = pytest.importorskip("torch")

HAS_GPU = vt.cuda.is_available() and vt.cuda._tensors.has_ops()
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU and a build with the CUDA kernels")

N = 256


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((N, N)).astype(np.float32) * 0.1, rng.standard_normal((N, N)).astype(np.float32) * 0.1)


def _expected(x_np, w_np):
    """torch on the CPU in float64: loss = sum(tanh(x @ w) ** 2), gradients of x and w."""
    x = torch.tensor(x_np, dtype=torch.float64, requires_grad=True)
    w = torch.tensor(w_np, dtype=torch.float64, requires_grad=True)
    y = torch.tanh(x @ w)
    (y * y).sum().backward()
    return x.grad.numpy(), w.grad.numpy()


def _leaves(x_np, w_np):
    x = vt.tensor(x_np).cuda().requires_grad_(True)
    w = vt.tensor(w_np).cuda().requires_grad_(True)
    return x, w


def _loss(x, w):
    y = vt.tanh(x @ w)
    return (y * y).sum()


# Under compute-sanitizer the busy loop alone takes minutes (every access of cuBLAS's kernels is instrumented), and
# racecheck checks each kernel's shared memory, not the order of streams: gpu_session.sh's sanitize step sets
# VBT_TEST_BUSY_N=256 and VBT_TEST_BUSY_ITERS=1 so the file fits. The plain pytest step keeps the long loop.
BUSY_N = int(os.environ.get("VBT_TEST_BUSY_N", "4096"))
BUSY_ITERS = int(os.environ.get("VBT_TEST_BUSY_ITERS", "30"))


def _busy(stream, iters=None):
    """Queues tens of milliseconds of matmuls on `stream` (its inputs are made on, and ordered after, the current
    stream)."""
    iters = BUSY_ITERS if iters is None else iters
    a = vt.ones(BUSY_N, BUSY_N).cuda() * (1.0 / BUSY_N)
    stream.wait_stream(vt.cuda.current_stream())
    with vt.cuda.stream(stream):
        for _ in range(iters):
            a = a @ a
    return a


def _check(x, w, x_np, w_np):
    ex, ew = _expected(x_np, w_np)
    np.testing.assert_allclose(x.grad.cpu().numpy(), ex, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(w.grad.cpu().numpy(), ew, rtol=1e-4, atol=1e-5)


@needs_gpu
def test_one_stream_reference():
    x_np, w_np = _inputs()
    x, w = _leaves(x_np, w_np)
    _loss(x, w).backward()
    _check(x, w, x_np, w_np)


@needs_gpu
def test_forward_on_side_stream_backward_called_on_default_stream():
    # Forward (after a long kernel) on s; backward() called on the default stream and .grad read there at once.
    x_np, w_np = _inputs(1)
    x, w = _leaves(x_np, w_np)
    s = vt.cuda.Stream()
    _busy(s)
    with vt.cuda.stream(s):
        loss = _loss(x, w)
        assert loss.grad_fn is not None
    loss.backward()
    _check(x, w, x_np, w_np)  # .cpu() runs on the default stream: ordered after the backward work on s


@needs_gpu
def test_backward_called_on_side_stream_and_grad_used_there():
    # Forward on the default stream; backward() inside `with stream(s)` after a long kernel on s: the root gradient
    # is made on s, the graph runs on the default stream after it, and s is ordered after the graph.
    x_np, w_np = _inputs(2)
    x, w = _leaves(x_np, w_np)
    loss = _loss(x, w)
    s = vt.cuda.Stream()
    _busy(s)
    with vt.cuda.stream(s):
        loss.backward(vt.ones_like(loss))   # the initial gradient made on s too
        gx = x.grad * 1.0                   # used on s, the backward call's stream
        gw = w.grad * 1.0
    s.synchronize()
    ex, ew = _expected(x_np, w_np)
    np.testing.assert_allclose(gx.cpu().numpy(), ex, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gw.cpu().numpy(), ew, rtol=1e-4, atol=1e-5)


@needs_gpu
def test_branches_on_two_streams_meet_on_the_default_stream():
    # Two branches of x on streams s1 (behind a long kernel) and s2; their sum on the default stream. x's gradient
    # gets one part from each stream: the second must wait for the first's producer.
    x_np, w_np = _inputs(3)
    x, w = _leaves(x_np, w_np)
    s1, s2 = vt.cuda.Stream(), vt.cuda.Stream()
    _busy(s1)
    s2.wait_stream(vt.cuda.current_stream())
    with vt.cuda.stream(s1):
        a = vt.tanh(x @ w)
    with vt.cuda.stream(s2):
        b = x * 3.0
    vt.cuda.current_stream().wait_stream(s1)
    vt.cuda.current_stream().wait_stream(s2)
    loss = (a * a).sum() + (b * x).sum()
    loss.backward()
    tx = torch.tensor(x_np, dtype=torch.float64, requires_grad=True)
    tw = torch.tensor(w_np, dtype=torch.float64, requires_grad=True)
    ta = torch.tanh(tx @ tw)
    ((ta * ta).sum() + (tx * 3.0 * tx).sum()).backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(w.grad.cpu().numpy(), tw.grad.numpy(), rtol=1e-4, atol=1e-5)


@needs_gpu
def test_autograd_grad_results_are_ordered_with_the_caller():
    x_np, w_np = _inputs(4)
    x, w = _leaves(x_np, w_np)
    s = vt.cuda.Stream()
    _busy(s)
    with vt.cuda.stream(s):
        loss = _loss(x, w)
    gx, gw = vt.autograd.grad(loss, [x, w])
    ex, ew = _expected(x_np, w_np)
    np.testing.assert_allclose(gx.cpu().numpy(), ex, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gw.cpu().numpy(), ew, rtol=1e-4, atol=1e-5)
    assert x.grad is None


@needs_gpu
def test_recorded_stream_outlives_the_users_handle():
    # The node keeps its stream alive: dropping every Python handle on s before backward is fine.
    x_np, w_np = _inputs(5)
    x, w = _leaves(x_np, w_np)

    def forward():
        s = vt.cuda.Stream()
        _busy(s, iters=10)
        with vt.cuda.stream(s):
            return _loss(x, w)

    loss = forward()
    gc.collect()
    loss.backward()
    _check(x, w, x_np, w_np)


@needs_gpu
def test_gradients_match_the_one_stream_run_over_repeated_steps():
    # A few "training steps" with the forward alternating between two side streams; .grad accumulates across the
    # backward calls and must equal the one-stream run's.
    x_np, w_np = _inputs(6)
    ref_x, ref_w = _leaves(x_np, w_np)
    for _ in range(3):
        _loss(ref_x, ref_w).backward()
    x, w = _leaves(x_np, w_np)
    streams = [vt.cuda.Stream(), vt.cuda.Stream()]
    for step in range(3):
        s = streams[step % 2]
        _busy(s, iters=10)
        with vt.cuda.stream(s):
            loss = _loss(x, w)
        loss.backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), ref_x.grad.cpu().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w.grad.cpu().numpy(), ref_w.grad.cpu().numpy(), rtol=1e-5, atol=1e-6)
    vt.cuda.synchronize()
