"""The CPU kernels' fast paths (contiguous inner-dim sums, outer-dim row-accumulated sums, the fused float32
softmax row, the vectorised float32 exp / gelu, the odometer gather, the vectorised amax/amin runs and
outer-dim blocks) against PyTorch CPU, with shapes chosen
to hit each path and its edges: lengths that are not a multiple of the 8-lane unroll, runs longer than the
512-output block, non-contiguous layouts that must fall back, and special values (inf, NaN, overflow and
underflow of exp, subnormal results)."""
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vt_core_helpers import assert_same, layout, pair


def _ref64(arr, fn):
    """fn evaluated by torch in float64 on the same values (an accuracy reference for float32 results)."""
    return fn(torch.tensor(arr, dtype=torch.float64))


SHAPES_DIMS = [
    ((3, 1100), [None, 0, 1]),        # outer-dim sum longer than one output block; 1100 % 8 != 0
    ((1, 13), [None, 0, 1]),          # size-1 dim (dropped by coalescing)
    ((7, 5, 9), [0, 1, 2, (0, 2), (0, 1), (1, 2), None]),
    ((4, 3, 2, 5), [(1, 3), (0, 2), 3, (0, 1, 2)]),
    ((0, 4), [0, 1, None]),
    ((6, 0), [0, 1, None]),
]


@pytest.mark.parametrize("kind", ["contig", "transposed", "strided"])
@pytest.mark.parametrize("name", ["float32", "float64", "int64", "float16"])
def test_sum_mean_layouts(name, kind):
    rng = np.random.default_rng(3)
    for shape, dims in SHAPES_DIMS:
        arr = rng.uniform(-4, 4, shape) if name != "int64" else rng.integers(-9, 10, shape).astype(np.float64)
        v, t = layout(*pair(arr, name), kind)
        for dim in dims:
            for keepdim in (False, True):
                args = () if dim is None else (dim, keepdim)
                rtol = 1e-2 if name == "float16" else None
                assert_same(v.sum(*args), t.sum(*args), rtol=rtol, atol=1e-5 if name == "float32" else None)
                if name != "int64":
                    assert_same(v.mean(*args), t.mean(*args), rtol=rtol)


@pytest.mark.parametrize("kind", ["contig", "transposed", "strided"])
@pytest.mark.parametrize("name", ["float32", "float64", "int32", "int64", "float16", "uint8"])
def test_amax_amin_layouts_with_nan(name, kind):
    # Note [Extreme fast paths]: vector runs (length not a multiple of the 16/8-wide unroll), outer-dim blocks
    # longer than 512 outputs, fallbacks; a NaN anywhere in a reduced run wins, in every lane position
    rng = np.random.default_rng(5)
    shapes = SHAPES_DIMS + [((2, 1037), [None, 0, 1]), ((1037, 3), [0, 1])]
    for shape, dims in shapes:
        arr = rng.uniform(-50, 50, shape)
        if name.startswith("float") and arr.size > 4:
            arr.flat[rng.choice(arr.size, size=max(1, arr.size // 97), replace=False)] = np.nan
        if name == "uint8":
            arr = np.abs(arr)
        v, t = layout(*pair(arr, name), kind)
        for dim in dims:
            if v.numel() == 0 and (dim is None or v.shape[dim] == 0):
                continue  # an empty reduction is an error for amax/amin (tested in test_reductions)
            args = () if dim is None else (dim,)
            assert_same(v.amax(*args), t.amax(*args))
            assert_same(v.amin(*args), t.amin(*args))


@pytest.mark.parametrize("kind", ["contig", "transposed"])
def test_sum_float32_accuracy(kind):
    # Accumulation is in double: the float32 result is the correctly rounded float64 sum (within 1 ulp).
    rng = np.random.default_rng(4)
    arr = rng.standard_normal((64, 3000)) * 100
    v, _ = layout(*pair(arr, "float32"), kind)
    a32 = arr.astype(np.float32).astype(np.float64)
    t64 = torch.tensor(a32).transpose(0, 1) if kind == "transposed" else torch.tensor(a32)
    for dim in (0, 1):
        ref = t64.sum(dim)
        np.testing.assert_allclose(v.sum(dim).numpy().astype(np.float64), ref.numpy(), rtol=2e-7, atol=1e-4)
    np.testing.assert_allclose(float(v.sum()), a32.sum(), rtol=2e-7)


@pytest.mark.parametrize("kind", ["contig", "transposed"])
@pytest.mark.parametrize("p", [1, 2])
def test_norm_layouts(kind, p):
    rng = np.random.default_rng(5)
    v, t = layout(*pair(rng.uniform(-2, 2, (5, 37, 11)), "float32"), kind)
    for dim in (0, 1, 2, (0, 2), None):
        assert_same(vt.norm(v, p, dim), torch.norm(t, p, dim))


@pytest.mark.parametrize("kind", ["contig", "transposed", "strided"])
@pytest.mark.parametrize("name", ["float32", "float64"])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_rows(op, name, kind):
    rng = np.random.default_rng(6)
    for shape in [(5, 1), (3, 7), (4, 1029), (2, 3, 17)]:
        arr = rng.uniform(-30, 30, shape)
        v, t = layout(*pair(arr, name), kind)
        for dim in range(len(shape)):
            assert_same(getattr(v, op)(dim), getattr(t, op)(dim), atol=1e-5 if name == "float32" else None)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_special_values(op):
    arr = np.array([[1.0, 2.0, np.nan, 0.5], [-np.inf] * 4, [np.inf, 1.0, 2.0, 3.0], [1e30, -1e30, 0.0, 5.0],
                    [-np.inf, 0.0, -np.inf, 1.0], [88.0, 89.0, -104.0, 0.0]])
    v, t = pair(arr, "float32")
    assert_same(getattr(v, op)(1), getattr(t, op)(1))


SPECIAL = [np.inf, -np.inf, np.nan, 0.0, -0.0, 88.72, 88.73, 89.0, -87.3, -87.4, -100.0, -103.9, -104.0, -110.0,
           1e-30, -1e-30, 20.0, -20.0, 5.5, -5.5, 10.0, -10.0]


def _unary_cases():
    rng = np.random.default_rng(7)
    dense = np.concatenate([rng.uniform(-12, 12, 4001), rng.uniform(-110, 95, 1001), SPECIAL])
    return dense


@pytest.mark.parametrize("kind", ["contig", "strided"])
@pytest.mark.parametrize("op", ["exp", "sigmoid", "gelu", "gelu_tanh", "silu"])
def test_vectorised_unary_float32(op, kind):
    arr = _unary_cases().reshape(1, -1)
    v, t = layout(*pair(arr, "float32"), kind)
    fns = {
        "exp": (vt.exp, torch.exp),
        "sigmoid": (vt.sigmoid, torch.sigmoid),
        # torch's float64 formula rounded to float32: its float32 vector loop returns NaN for +inf on some CPUs
        # (torch 2.13 on an AVX-512 EPYC) and inf on others
        "gelu": (vt.nn.functional.gelu, lambda x: torch.nn.functional.gelu(x.double()).float()),
        "gelu_tanh": (lambda x: vt.nn.functional.gelu(x, approximate="tanh"),
                      lambda x: torch.nn.functional.gelu(x, approximate="tanh")),
        "silu": (vt.nn.functional.silu, torch.nn.functional.silu),
    }
    fv, ft = fns[op]
    got = fv(v)
    assert_same(got, ft(t), rtol=1e-5, atol=1e-6)
    # accuracy against float64 on the float32 inputs: a few ulp in relative terms (absolute near underflow,
    # where float32 intermediates such as exp(90) = inf legitimately give 0 and torch's float64 erf form gives 0)
    x64 = t.double().numpy()
    if op == "gelu":  # x/2 * erfc(-x/sqrt2): torch's float64 x/2 * (1 + erf) cancels to 0 for x < -8
        with np.errstate(invalid="ignore"):  # -inf * 0 = nan, as in torch
            ref = np.array([0.5 * x * math.erfc(-x / math.sqrt(2.0)) for x in x64.ravel()]).reshape(x64.shape)
    elif op == "gelu_tanh":  # x/2 * (1 + tanh(u)) == x / (1 + exp(-2u)), no cancellation for x < 0
        with np.errstate(over="ignore", invalid="ignore"):
            ref = x64 / (1.0 + np.exp(-2.0 * math.sqrt(2.0 / math.pi) * (x64 + 0.044715 * x64 ** 3)))
    else:
        ref = ft(t.double()).numpy()
    g = got.numpy().astype(np.float64)
    finite = np.isfinite(ref) & (np.abs(ref) < 3e38)
    # (gelu tanh: the float32 argument u carries ~1e-7 relative rounding, amplified by |2u| in the tail)
    rtol = 5e-5 if op == "gelu_tanh" else 1e-6
    np.testing.assert_allclose(g[finite], ref[finite], rtol=rtol, atol=1e-30)
    assert np.array_equal(np.isnan(g), np.isnan(ref))


def test_exp_out_and_inplace():
    arr = _unary_cases()
    v, t = pair(arr, "float32")
    out = vt.empty_like(v)
    vt.exp(v, out=out)
    assert_same(out, torch.exp(t))
    v2 = v.clone()
    v2.exp_()
    assert_same(v2, torch.exp(t))


@pytest.mark.parametrize("name", ["float32", "float64", "int16", "uint8", "bool"])
def test_gather_layouts(name):
    rng = np.random.default_rng(8)
    for shape, dim, ishape in [((5, 7), 0, (3, 7)), ((5, 7), 1, (5, 4)), ((4, 5, 6), 1, (2, 9, 3)),
                               ((4, 5, 6), 2, (4, 5, 10)), ((4, 5, 6), 0, (7, 2, 2)), ((6,), 0, (9,)),
                               ((3, 4), 1, (0, 2))]:
        arr = rng.uniform(-5, 5, shape) if name != "bool" else rng.random(shape) > 0.5
        idx = rng.integers(0, shape[dim], ishape)
        v, t = pair(arr, name)
        iv, it = vt.tensor(idx), torch.tensor(idx)
        assert_same(vt.gather(v, dim, iv), torch.gather(t, dim, it))
        if len(shape) > 1:  # non-contiguous self: same values, transposed storage
            vtr = vt.tensor(np.ascontiguousarray(np.swapaxes(arr, 0, -1))).to(v.dtype).transpose(0, -1)
            ttr = torch.tensor(np.ascontiguousarray(np.swapaxes(arr, 0, -1))).to(t.dtype).transpose(0, -1)
            assert_same(vt.gather(vtr, dim, iv), torch.gather(ttr, dim, it))
        big = np.concatenate([idx, idx], axis=-1)  # non-contiguous index: every other column
        if big.shape[-1] and len(shape) == len(ishape):
            ivs, its = vt.tensor(big)[..., ::2], torch.tensor(big)[..., ::2]
            if all(ivs.shape[d] <= shape[d] for d in range(len(shape)) if d != dim):
                assert_same(vt.gather(v, dim, ivs), torch.gather(t, dim, its))
