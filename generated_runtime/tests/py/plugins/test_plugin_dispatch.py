"""Plugin ops and overrides in the dispatcher (ABI 1.1): plugin ops reachable through _C.call and listed by
_C.op_schemas(), a plugin overriding a built-in op's CPU kernel only with the explicit flag (vt.<op>, the
operator, out=), rolled back on a failed init and on unload; old (ABI 1.0) plugins still load. References
are PyTorch's results on the same inputs."""
import pytest
import torch

import vibetensor.torch as vt
from vibetensor import _C
from vbt_plugin_paths import plugin_path


def _vt(t):
    return vt.from_dlpack(t.clone())


def _torch(t):
    return torch.from_dlpack(t).clone()


def _schema_names():
    return {s.split("(", 1)[0].strip() for s in _C.op_schemas()}


def _assert_mul_is_builtin():
    g = torch.Generator().manual_seed(7)
    a, b = torch.randn(3, 4, generator=g), torch.randn(4, generator=g)
    torch.testing.assert_close(_torch(vt.mul(_vt(a), _vt(b))), a * b)
    torch.testing.assert_close(_torch(_vt(a) * _vt(b)), a * b)
    i = torch.arange(6)
    assert torch.equal(_torch(vt.mul(_vt(i), _vt(i))), i * i)
    assert "mul" not in vt.ops.overridden_ops


@pytest.fixture
def override_ok():
    path = plugin_path("vbt_override_ok")
    assert vt.ops.load_library(path) == ["vbt_override_probe"]
    try:
        yield path
    finally:
        vt.ops.unload_library(path)


def test_plugin_op_is_a_dispatcher_op():
    vt.ops.load_library(plugin_path("vbt_example_axpby"))  # a no-op when another test loaded it already
    schemas = [s for s in _C.op_schemas() if s.startswith("vbt_example_axpby(")]
    assert len(schemas) == 1 and "float alpha" in schemas[0]
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g, dtype=torch.float32)
    got = _C.call("vbt_example_axpby", _vt(x), _vt(y), alpha=1.5, beta=-2.0)
    torch.testing.assert_close(_torch(got), 1.5 * x - 2.0 * y)
    torch.testing.assert_close(_torch(_C.call("vbt_example_axpby", _vt(x), _vt(y))), x + y)  # defaults
    # vt.ops.<name> and _C.call run the same kernel through the dispatcher
    torch.testing.assert_close(_torch(vt.ops.vbt_example_axpby(_vt(x), _vt(y), beta=0.5)), x + 0.5 * y)
    with pytest.raises(NotImplementedError, match="float32 and float64"):
        _C.call("vbt_example_axpby", vt.zeros(2, dtype=vt.int64), vt.zeros(2, dtype=vt.int64))


def test_override_takes_effect_for_function_operator_and_out(override_ok):
    assert "mul" in vt.ops.overridden_ops
    g = torch.Generator().manual_seed(11)
    a, b = torch.randn(2, 3, generator=g), torch.randn(3, generator=g, dtype=torch.float64)
    torch.testing.assert_close(_torch(vt.mul(_vt(a), _vt(b))), a.double() * b + 1)     # vt.<op>, broadcast + promote
    torch.testing.assert_close(_torch(_vt(a) * _vt(a)), a * a + 1)                    # the operator
    torch.testing.assert_close(_torch(_vt(a) * 3.0), a * 3.0 + 1)                     # a wrapped number
    out = vt.empty(0)
    r = vt.mul(_vt(a), _vt(a), out=out)
    torch.testing.assert_close(_torch(out), a * a + 1)                                # out= receives the result
    assert list(r.shape) == [2, 3]
    torch.testing.assert_close(_torch(_C.call("mul", _vt(a), _vt(a))), a * a + 1)
    with pytest.raises(NotImplementedError, match="only float32 and float64"):
        vt.mul(_vt(torch.arange(3)), _vt(torch.arange(3)))
    # the library's own op is a dispatcher op too
    assert "vbt_override_probe" in _schema_names()
    torch.testing.assert_close(_torch(_C.call("vbt_override_probe", _vt(a))), a)


def test_unload_restores_the_builtin(override_ok):
    torch.testing.assert_close(_torch(vt.mul(vt.ones(2), vt.ones(2))), torch.full((2,), 2.0))
    assert vt.ops.unload_library(override_ok)
    _assert_mul_is_builtin()
    assert "vbt_override_probe" not in _schema_names()
    assert not hasattr(vt.ops, "vbt_override_probe")
    with pytest.raises(RuntimeError, match="unknown op"):
        _C.call("vbt_override_probe", vt.ones(2))
    assert not vt.ops.unload_library(override_ok)


def test_override_rolled_back_when_init_fails():
    path = plugin_path("vbt_override_init_fails")
    for _ in range(2):  # rejected the same way twice: nothing half-registered survives
        with pytest.raises(RuntimeError, match="simulated failure after overriding mul.*rolled back 3"):
            vt.ops.load_library(path)
        _assert_mul_is_builtin()
        assert "vbt_override_partial" not in _schema_names()
        assert path not in vt.ops.loaded_libraries
    # the built-in is free to be overridden by a good library afterwards
    ok = plugin_path("vbt_override_ok")
    vt.ops.load_library(ok)
    try:
        torch.testing.assert_close(_torch(vt.mul(vt.ones(2), vt.ones(2))), torch.full((2,), 2.0))
    finally:
        vt.ops.unload_library(ok)
    _assert_mul_is_builtin()


def test_override_needs_the_explicit_flag():
    with pytest.raises(RuntimeError, match="'mul' is a built-in op.*VBT_KERNEL_OVERRIDE_BUILTIN"):
        vt.ops.load_library(plugin_path("vbt_override_no_flag"))
    _assert_mul_is_builtin()


def test_second_override_of_the_same_op_is_rejected(override_ok):
    # one library at a time may override an op; a second overrider is refused and the first stays
    with pytest.raises(RuntimeError, match="already overridden by"):
        vt.ops.load_library(plugin_path("vbt_override_init_fails"))
    torch.testing.assert_close(_torch(vt.mul(vt.ones(2), vt.ones(2))), torch.full((2,), 2.0))


def test_abi_1_0_plugin_still_loads():
    path = plugin_path("vbt_override_abi10")
    assert vt.ops.load_library(path) == ["vbt_override_old_abi"]
    try:
        x = torch.randn(4, generator=torch.Generator().manual_seed(5))
        torch.testing.assert_close(_torch(_C.call("vbt_override_old_abi", _vt(x))), x)
        torch.testing.assert_close(_torch(vt.ops.vbt_override_old_abi(_vt(x))), x)
    finally:
        vt.ops.unload_library(path)
    assert "vbt_override_old_abi" not in _schema_names()


@pytest.mark.parametrize("name,staged", [("vbt_broken_init_fails", "vbt_broken_partial"),
                                         ("vbt_broken_duplicate_op", "vbt_broken_dup"),
                                         ("vbt_broken_duplicate_builtin", "vbt_broken_before_builtin")])
def test_rejected_plugin_leaves_nothing_in_the_dispatcher(name, staged):
    n = len(_C.op_schemas())
    with pytest.raises(RuntimeError, match="rolled back|duplicate"):
        vt.ops.load_library(plugin_path(name))
    assert staged not in _schema_names()
    assert len(_C.op_schemas()) == n
    x = torch.arange(4, dtype=torch.float32)
    torch.testing.assert_close(_torch(vt.add(_vt(x), _vt(x))), 2 * x)
