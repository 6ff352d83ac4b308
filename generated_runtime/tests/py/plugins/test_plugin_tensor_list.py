"""Plugin ABI 1.2: Tensor[] arguments, ops returning (), `ns::name` op names, the version rules around 1.2, and
the ring all-reduce plugin's CPU kernel (plugins/fabric_ring_allreduce: the same ring plan as its CUDA kernel,
over host buffers) against numpy. CPU only; the CUDA kernel is tested by test_ring_plugin_cuda.py."""
import numpy as np
import pytest

import vibetensor.torch as vt
from vibetensor import _C
from vbt_plugin_paths import plugin_path


def _vt(a):
    return vt.from_dlpack(np.ascontiguousarray(a).copy())


def _np(t):
    return np.from_dlpack(t).copy()


@pytest.fixture(scope="module")
def ops():
    assert sorted(vt.ops.load_library(plugin_path("vbt_list_ok"))) == ["vbt_list::scale_", "vbt_list_sum"]
    return vt.ops


def test_tensor_list_argument_matches_numpy(ops):
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        xs = [rng.standard_normal((3, 5)).astype(dtype) for _ in range(4)]
        got = ops.vbt_list_sum([_vt(x) for x in xs], scale=0.5)
        np.testing.assert_allclose(_np(got), 0.5 * sum(x.astype(np.float64) for x in xs), rtol=1e-5, atol=1e-6)
        assert _np(got).dtype == dtype
    # a tuple, one element, non-contiguous members, positional scale
    a = rng.standard_normal((4, 6))
    ta = _vt(a)
    tat = ta.t()  # a strided view
    got = ops.vbt_list_sum((tat, _vt(a.T.copy())), 2.0)
    np.testing.assert_allclose(_np(got), 2.0 * (a.T + a.T))
    np.testing.assert_allclose(_np(ops.vbt_list_sum([ta])), a)
    assert "vbt_list_sum(Tensor[] xs, float scale=1.0) -> Tensor" in ops.vbt_list_sum.schema
    # the same op through the dispatcher's generic entry point
    np.testing.assert_allclose(_np(_C.call("vbt_list_sum", [ta, ta], 1.0)), 2 * a)


def test_tensor_list_errors(ops):
    with pytest.raises(TypeError, match="must be a list or tuple of Tensors"):
        ops.vbt_list_sum(vt.zeros(2))
    with pytest.raises(TypeError, match="element 1 is int"):
        ops.vbt_list_sum([vt.zeros(2), 3])
    with pytest.raises(ValueError, match=r"xs\[1\] differs from xs\[0\]"):
        ops.vbt_list_sum([vt.zeros(2), vt.zeros(3)])
    with pytest.raises(ValueError, match="xs is empty"):
        ops.vbt_list_sum([])
    with pytest.raises(TypeError, match="missing required argument 'xs'"):
        ops.vbt_list_sum()


def test_namespaced_op_returning_none_mutates_in_place(ops):
    a, b = np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(4)
    ta, tb = _vt(a), _vt(b)
    assert ops.vbt_list.scale_([ta, tb], 3.0) is None
    np.testing.assert_allclose(_np(ta), 3 * a)
    np.testing.assert_allclose(_np(tb), 3 * b)
    assert ops.vbt_list.scale_.schema == "vbt_list::scale_(Tensor[] xs, float alpha) -> ()"
    assert _C.call("vbt_list::scale_", [ta], 2.0) is None
    np.testing.assert_allclose(_np(ta), 6 * a)
    with pytest.raises(AttributeError, match="no op 'nothing'"):
        ops.vbt_list.nothing


REJECTED = {
    "vbt_list_minor3": r"plugin needs ABI 1\.3, newer than this runtime's 1\.2",
    "vbt_list_bad_int_list": r"unsupported argument type 'int\[\]' \(Tensor, int, float, bool, Tensor\[\]\)",
    "vbt_list_bad_optional_list": r"optional tensor list 'Tensor\[\]\?' is not supported",
    "vbt_list_multi_device_cpu": r"VBT_KERNEL_MULTI_DEVICE needs a kDLCUDA kernel",
}


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_rejected_plugins(ops, name):
    with pytest.raises(RuntimeError, match=REJECTED[name]):
        vt.ops.load_library(plugin_path(name))
    assert plugin_path(name) not in vt.ops.loaded_libraries
    assert not hasattr(vt.ops, "vbt_list_bad") and not hasattr(vt.ops, "vbt_list_abi11_neg")


def test_abi_1_1_plugin_still_loads():
    assert vt.ops.load_library(plugin_path("vbt_list_abi11")) in (["vbt_list_abi11_neg"], [])
    x = np.linspace(-1, 1, 5, dtype=np.float32)
    np.testing.assert_array_equal(_np(vt.ops.vbt_list_abi11_neg(_vt(x))), -x)


# ---- the ring all-reduce plugin, CPU kernel ---------------------------------------------------------------

@pytest.fixture(scope="module")
def ring():
    assert vt.ops.load_library(plugin_path("vbt_fabric_ring_allreduce")) in (["fabric::ring_all_reduce"], [])
    return vt.ops.fabric.ring_all_reduce


# counts around the chunk alignment (4 elements) and the ring sizes: short and empty trailing chunks
@pytest.mark.parametrize("ranks", [1, 2, 3, 4, 5, 8])
@pytest.mark.parametrize("count", [0, 1, 3, 4, 7, 17, 64, 1001])
def test_ring_cpu_kernel_matches_numpy(ring, ranks, count):
    rng = np.random.default_rng(ranks * 1000 + count)
    xs = [rng.standard_normal(count).astype(np.float32) for _ in range(ranks)]
    ts = [_vt(x) for x in xs]
    assert ring(ts) is None
    ref = np.sum(np.stack(xs).astype(np.float64), axis=0) if count else np.zeros(0)
    for r, t in enumerate(ts):
        np.testing.assert_allclose(_np(t), ref, rtol=1e-5, atol=1e-5, err_msg=f"rank {r}")
    # every rank holds exactly the same bits (the all-gather copies one reduced chunk everywhere)
    for t in ts[1:]:
        np.testing.assert_array_equal(_np(t), _np(ts[0]))


def test_ring_cpu_kernel_multi_dim_and_exact_integers(ring):
    xs = [np.full((3, 4, 5), float(r + 1), dtype=np.float32) for r in range(3)]
    ts = [_vt(x) for x in xs]
    ring(tensors=ts)
    for t in ts:
        assert list(t.shape) == [3, 4, 5]
        np.testing.assert_array_equal(_np(t), np.full((3, 4, 5), 6.0, dtype=np.float32))


def test_ring_cpu_kernel_errors(ring):
    with pytest.raises(ValueError, match="tensors is empty"):
        ring([])
    with pytest.raises(ValueError, match=r"tensors\[1\] has shape \[3\] but tensors\[0\] has shape \[2\]"):
        ring([vt.zeros(2), vt.zeros(3)])
    with pytest.raises(NotImplementedError, match=r"tensors\[1\] is not float32"):
        ring([vt.zeros(2), vt.zeros(2, dtype=vt.float64)])
    with pytest.raises(ValueError, match=r"tensors\[0\] is not contiguous"):
        ring([vt.zeros(3, 4).t(), vt.zeros(4, 3)])
    t = vt.zeros(4)
    with pytest.raises(ValueError, match=r"tensors\[0\] and tensors\[1\] overlap"):
        ring([t, t])
    with pytest.raises(TypeError, match="must be a list or tuple of Tensors"):
        ring(vt.zeros(4))
