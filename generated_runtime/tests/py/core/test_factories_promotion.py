"""Factories, random ops, dtype objects, type promotion (Python scalars included), conversions and repr,
compared with PyTorch."""
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vt_core_helpers import DTYPE_NAMES, assert_same, make_np, pair, tdt, vdt


def test_tensor_from_python_values():
    for data in [1, 2.5, True, [1, 2, 3], [1.0, 2, 3], [[1, 2], [3, 4]], [True, False], [[1.5], [2.5]], [], [[], []],
                 (1, 2), [1, 2.5, True]]:
        assert_same(vt.tensor(data), torch.tensor(data))
    for name in DTYPE_NAMES:
        assert_same(vt.tensor([[1, 0], [3, 4]], dtype=vdt(name)), torch.tensor([[1, 0], [3, 4]], dtype=tdt(name)))
    assert_same(vt.tensor([vt.tensor(1.5), vt.tensor(2.0)]), torch.tensor([torch.tensor(1.5), torch.tensor(2.0)]))
    with pytest.raises(ValueError):
        vt.tensor([[1, 2], [3]])
    with pytest.raises(TypeError):
        vt.tensor(["a"])


def test_tensor_from_numpy():
    rng = np.random.default_rng(0)
    for npd in [np.float32, np.float64, np.float16, np.int64, np.int32, np.int16, np.int8, np.uint8, np.bool_]:
        arr = (rng.standard_normal((3, 4)) * 5).astype(npd)
        assert_same(vt.tensor(arr), torch.tensor(arr))
        assert_same(vt.as_tensor(arr), torch.as_tensor(arr))
        assert_same(vt.from_numpy(arr), torch.from_numpy(arr))
        assert_same(vt.tensor(arr[:, ::2]), torch.tensor(arr[:, ::2]))
        assert_same(vt.tensor(arr[::-1]), torch.tensor(arr[::-1].copy()))
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    shared = vt.from_numpy(arr)
    arr[0, 0] = 42
    assert shared[0, 0].item() == 42  # from_numpy shares memory
    copied = vt.tensor(arr)
    arr[0, 1] = -1
    assert copied[0, 1].item() == 1  # tensor() copies
    n = shared.numpy()
    n[1, 1] = 7
    assert shared[1, 1].item() == 7  # numpy() shares memory
    assert vt.tensor(np.float64(2.5)).dtype is vt.float64
    with pytest.raises(TypeError):
        vt.from_numpy(np.zeros(3, dtype=np.complex64))
    with pytest.raises(TypeError):
        vt.tensor([1.0], dtype=vt.bfloat16).numpy()


def test_basic_factories():
    for name in ["float32", "int64", "bool", "float16", "bfloat16"]:
        assert_same(vt.zeros(2, 3, dtype=vdt(name)), torch.zeros(2, 3, dtype=tdt(name)))
        assert_same(vt.ones((2, 3), dtype=vdt(name)), torch.ones((2, 3), dtype=tdt(name)))
        assert_same(vt.full((2,), 1, dtype=vdt(name)), torch.full((2,), 1, dtype=tdt(name)))
    assert_same(vt.zeros(0, 3), torch.zeros(0, 3))
    assert_same(vt.ones([]), torch.ones([]))
    assert_same(vt.full((2, 2), 3.5), torch.full((2, 2), 3.5))
    assert_same(vt.full((2, 2), 3), torch.full((2, 2), 3))
    assert_same(vt.full((2, 2), True), torch.full((2, 2), True))
    assert tuple(vt.empty(3, 4).shape) == (3, 4)
    for args in [(5,), (2, 9), (1, 2, 0.25), (0.5, 3.0), (-3, 7, 2), (10, 0, -3), (0, 1, 0.1)]:
        assert_same(vt.arange(*args), torch.arange(*args))
    assert_same(vt.arange(5, dtype=vt.float64), torch.arange(5, dtype=torch.float64))
    for args in [(0, 1, 5), (-2, 3, 7), (1, 1, 1), (0, 10, 0)]:
        assert_same(vt.linspace(*args), torch.linspace(*args))
    assert_same(vt.eye(3), torch.eye(3))
    assert_same(vt.eye(2, 4, dtype=vt.int64), torch.eye(2, 4, dtype=torch.int64))
    x, tx = pair(np.ones((2, 3)), "int32")
    for fn in ["zeros_like", "ones_like"]:
        assert_same(getattr(vt, fn)(x), getattr(torch, fn)(tx))
        assert_same(getattr(vt, fn)(x, dtype=vt.float64), getattr(torch, fn)(tx, dtype=torch.float64))
    assert_same(vt.full_like(x, 7), torch.full_like(tx, 7))
    assert_same(x.new_zeros(4), tx.new_zeros(4))
    assert_same(x.new_ones((1, 2)), tx.new_ones((1, 2)))
    assert_same(x.new_full((2,), 5), tx.new_full((2,), 5))
    assert_same(x.new_tensor([1, 2]), tx.new_tensor([1, 2]))


def _stats_ok(samples, mean, std, n):
    return abs(samples.mean() - mean) < 5 * std / math.sqrt(n) and abs(samples.std() - std) < 0.1 * std


def test_random_ops_distribution_and_seeding():
    vt.manual_seed(123)
    a = vt.rand(20000)
    vt.manual_seed(123)
    b = vt.rand(20000)
    assert a.tolist() == b.tolist()
    c = vt.rand(20000)
    assert a.tolist() != c.tolist()
    an = a.numpy()
    assert an.min() >= 0 and an.max() < 1 and _stats_ok(an, 0.5, math.sqrt(1 / 12), an.size)
    n = vt.randn(20000, dtype=vt.float64).numpy()
    assert _stats_ok(n, 0.0, 1.0, n.size)
    x = vt.empty(20000)
    assert x.normal_(2.0, 3.0) is x
    assert _stats_ok(x.numpy(), 2.0, 3.0, 20000)
    x.uniform_(-1, 3)
    assert x.numpy().min() >= -1 and x.numpy().max() < 3
    r = vt.randint(3, 9, (5000,))
    assert r.dtype is vt.int64 and set(r.tolist()) == set(range(3, 9))
    p = vt.randperm(50)
    assert sorted(p.tolist()) == list(range(50)) and p.dtype is vt.int64
    g = vt.Generator().manual_seed(7)
    g2 = vt.Generator().manual_seed(7)
    assert vt.rand(5, generator=g).tolist() == vt.rand(5, generator=g2).tolist()
    bern = vt.bernoulli(vt.full((20000,), 0.3))
    assert set(bern.tolist()) <= {0.0, 1.0} and abs(bern.mean().item() - 0.3) < 0.02
    assert vt.rand(2, 3, dtype=vt.float64).dtype is vt.float64
    assert vt.randn(2, 2).shape == (2, 2)
    with pytest.raises(TypeError):
        vt.rand(2, dtype=vt.int64)


PROMO_DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]


def test_promote_types_table():
    for a in PROMO_DTYPES:
        for b in PROMO_DTYPES:
            assert vt.promote_types(vdt(a), vdt(b)).name == str(torch.promote_types(tdt(a), tdt(b))).split(".")[1]


@pytest.mark.parametrize("a", PROMO_DTYPES)
def test_result_type_with_scalars_and_zero_dim(a):
    va, ta = pair(np.ones((2,)), a)
    for s in [1, 2.5, True]:
        assert (va * s).dtype.name == str((ta * s).dtype).split(".")[1] if a != "bool" or s is not True else True
        assert vt.result_type(va, s).name == str(torch.result_type(ta, s)).split(".")[1]
    for b in PROMO_DTYPES:
        vb, tb = pair(np.array(1.0), b)  # 0-dim tensors take part in promotion only by category
        assert vt.result_type(va, vb).name == str(torch.result_type(ta, tb)).split(".")[1], (a, b)
        assert (va + vb).dtype.name == str((ta + tb).dtype).split(".")[1] if not (a == b == "bool") else True


def test_dtype_objects_and_conversions():
    assert vt.float32 is vt.float and vt.int64 is vt.long and vt.float16 is vt.half and vt.float64 is vt.double
    assert vt.float32.is_floating_point and not vt.int32.is_floating_point
    assert vt.float32.itemsize == 4 and vt.bfloat16.itemsize == 2
    assert repr(vt.float32) == repr(torch.float32)
    x, t = pair(np.array([[1.7, -2.2], [3.5, 0.0]]), "float32")
    for m in ["float", "double", "half", "bfloat16", "int", "long", "short", "char", "byte", "bool"]:
        assert_same(getattr(x, m)(), getattr(t, m)())
    assert_same(x.to(vt.int32), t.to(torch.int32))
    assert_same(x.to("cpu", vt.float64), t.to("cpu", torch.float64))
    assert_same(x.to(dtype=vt.float16), t.to(dtype=torch.float16))
    assert_same(x.type(vt.int64), t.type(torch.int64))
    assert x.type() == t.type()
    assert_same(x.type_as(vt.tensor([1])), t.type_as(torch.tensor([1])))
    assert x.to(vt.float32) is x
    assert x.to(vt.float32, copy=True) is not x
    assert str(x.device) == "cpu" and x.device == vt.device("cpu")
    assert x.is_floating_point() and x.dim() == 2 and x.numel() == 4 and x.ndim == 2
    assert x.size() == (2, 2) and x.size(1) == 2 and x.stride() == (2, 1) and x.element_size() == 4
    assert x.is_contiguous() and not x.t().is_contiguous()
    assert isinstance(x.data_ptr(), int)
    assert x.tolist() == t.tolist()
    assert x[0, 0].item() == t[0, 0].item()
    assert vt.tensor(3).item() == 3 and isinstance(vt.tensor(3).item(), int)
    assert isinstance(vt.tensor(True).item(), bool)
    assert float(vt.tensor(2.5)) == 2.5 and int(vt.tensor(7)) == 7 and bool(vt.tensor([1]))
    assert len(x) == 2 and [r.tolist() for r in x] == t.tolist()
    with pytest.raises(RuntimeError):
        bool(x)
    with pytest.raises(TypeError):
        len(vt.tensor(1.0))
    np.testing.assert_array_equal(np.asarray(x), t.numpy())
    assert isinstance(x, vt.Tensor) and vt.is_tensor(x)


REPR_CASES = [
    lambda T: T.tensor([1.0, 2.0, 3.0]), lambda T: T.tensor([[1.5, -2.25], [3.0, 4.0]]),
    lambda T: T.tensor([1, 2, 3]), lambda T: T.tensor([True, False]), lambda T: T.tensor(3.5),
    lambda T: T.tensor([1, 2], dtype=T.int32), lambda T: T.tensor([0.5], dtype=T.float64),
    lambda T: T.zeros(0), lambda T: T.zeros(2, 0), lambda T: T.arange(6).reshape(1, 2, 3),
    lambda T: T.tensor([1e-5, 1.0]), lambda T: T.tensor([float("nan"), float("inf"), 1.0]),
    lambda T: T.tensor([1.0, 2.0], dtype=T.float16), lambda T: T.arange(2000),
]


@pytest.mark.parametrize("i", range(len(REPR_CASES)))
def test_repr_like_torch(i):
    assert repr(REPR_CASES[i](vt)) == repr(REPR_CASES[i](torch))
