"""The C plugin ABI from Python: vt.ops.load_library, example plugins against PyTorch, and plugins that
break one rule each (rejected with a message, everything they registered rolled back)."""
import pytest
import torch

import vibetensor.torch as vt
from vbt_plugin_paths import plugin_path


def _vt(t):
    return vt.from_dlpack(t.clone())


def _torch(t):
    return torch.from_dlpack(t).clone()


@pytest.fixture(scope="module")
def ops():
    assert vt.ops.load_library(plugin_path("vbt_example_axpby")) == ["vbt_example_axpby"]
    assert sorted(vt.ops.load_library(plugin_path("vbt_example_hypot"))) == ["vbt_example_hypot", "vbt_example_lerp"]
    return vt.ops


def test_elementwise_plugin_matches_torch(ops):
    g = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        x, y = torch.randn(4, 5, generator=g, dtype=dtype), torch.randn(5, 4, generator=g, dtype=dtype).t()
        got = ops.vbt_example_axpby(_vt(x), vt.from_dlpack(y), alpha=2.0, beta=-0.5)  # y non-contiguous
        torch.testing.assert_close(_torch(got), 2.0 * x - 0.5 * y)
        torch.testing.assert_close(_torch(ops.vbt_example_axpby(_vt(x), _vt(x))), x + x)
    assert "vbt_example_axpby(Tensor x, Tensor y" in ops.vbt_example_axpby.schema


def test_elementwise_plugin_errors(ops):
    with pytest.raises(ValueError, match="same shape"):
        ops.vbt_example_axpby(vt.zeros(2), vt.zeros(3))
    with pytest.raises(NotImplementedError, match="float32 and float64"):
        ops.vbt_example_axpby(vt.zeros(2, dtype=vt.int64), vt.zeros(2, dtype=vt.int64))
    with pytest.raises(TypeError, match="must be Tensor"):
        ops.vbt_example_axpby(1.0, vt.zeros(2))
    with pytest.raises(TypeError, match="unexpected keyword"):
        ops.vbt_example_axpby(vt.zeros(2), vt.zeros(2), gamma=1.0)


def test_iterator_plugin_broadcasts_promotes_and_strides_like_torch(ops):
    g = torch.Generator().manual_seed(1)
    a = torch.randn(3, 1, 4, generator=g)
    b = torch.randn(6, 5, generator=g, dtype=torch.float64)[::2, :4]  # non-contiguous, float64
    got = ops.vbt_example_hypot(_vt(a), vt.from_dlpack(b))
    ref = torch.hypot(a.double(), b)
    assert list(got.shape) == list(ref.shape)
    assert str(got.dtype).endswith("float64")
    torch.testing.assert_close(_torch(got), ref)
    x, y = torch.randn(8, generator=g), torch.randn(8, generator=g)
    torch.testing.assert_close(_torch(ops.vbt_example_lerp(_vt(x), _vt(y), 0.25)), torch.lerp(x, y, 0.25))
    with pytest.raises(RuntimeError, match="broadcast|shape"):
        ops.vbt_example_hypot(vt.zeros(2), vt.zeros(3))
    with pytest.raises(NotImplementedError, match="float32 and float64"):
        ops.vbt_example_hypot(vt.zeros(2, dtype=vt.int32), vt.zeros(2, dtype=vt.int32))


def test_loading_twice_is_a_no_op(ops):
    assert vt.ops.load_library(plugin_path("vbt_example_axpby")) == ["vbt_example_axpby"]
    assert plugin_path("vbt_example_axpby") in vt.ops.loaded_libraries


BROKEN = {
    "vbt_broken_missing_init": ("missing entry point 'vbt_plugin_init'", []),
    "vbt_broken_wrong_major": ("ABI major version 2.0 is incompatible", []),
    "vbt_broken_newer_minor": ("newer than this runtime", []),
    "vbt_broken_init_fails": ("simulated failure after a partial registration.*rolled back 2",
                              ["vbt_broken_partial"]),
    "vbt_broken_duplicate_op": ("duplicate op name 'vbt_broken_dup'", ["vbt_broken_dup"]),
    "vbt_broken_duplicate_builtin": ("duplicate op name 'add'.*built-in", ["vbt_broken_before_builtin"]),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_plugin_rejected_and_rolled_back(ops, name):
    pattern, staged_ops = BROKEN[name]
    with pytest.raises(RuntimeError, match=pattern):
        vt.ops.load_library(plugin_path(name))
    for op in staged_ops:
        assert not hasattr(vt.ops, op), f"{op} survived the rollback"
    assert plugin_path(name) not in vt.ops.loaded_libraries
    # rejected again the same way (nothing half-loaded is cached), and the process stays healthy
    with pytest.raises(RuntimeError, match=pattern):
        vt.ops.load_library(plugin_path(name))
    x = torch.arange(4, dtype=torch.float32)
    torch.testing.assert_close(_torch(ops.vbt_example_axpby(_vt(x), _vt(x), alpha=3.0)), 4 * x)
    torch.testing.assert_close(_torch(vt.add(_vt(x), _vt(x))), 2 * x)


def test_missing_library_is_a_clear_error():
    with pytest.raises(RuntimeError, match="cannot load"):
        vt.ops.load_library("/nonexistent/libnothing.so")
    with pytest.raises(AttributeError):
        vt.ops.no_such_plugin_op
