"""Gradients at NaN and infinity follow torch's formulas (found by the parity gate's nan_inf case)."""
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt

SPECIALS = np.array([[1.5, -2.0, math.nan, 0.0], [math.inf, -math.inf, 0.5, math.nan],
                     [2.0, 2.0, -1.0, 3.0]], dtype=np.float64)
OTHER = np.array([[0.5, math.nan, 1.0, 0.0], [1.0, -math.inf, math.nan, 2.0],
                  [2.0, 1.0, -1.0, 4.0]], dtype=np.float64)


def grads(fn_vt, fn_t, *arrays):
    xs_v = [vt.tensor(a.tolist(), dtype=vt.float64).requires_grad_() for a in arrays]
    xs_t = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    g = np.arange(1, 13, dtype=np.float64).reshape(3, 4)
    out_v, out_t = fn_vt(*xs_v), fn_t(*xs_t)
    gv = vt.tensor(g.tolist(), dtype=vt.float64) if out_v.dim() else None
    gt = torch.tensor(g) if out_t.dim() else None
    out_v.backward(gv)
    out_t.backward(gt)
    return [x.grad.numpy() for x in xs_v], [x.grad.numpy() for x in xs_t]


@pytest.mark.parametrize("name", ["relu"])
def test_unary_at_specials(name):
    got, want = grads(getattr(vt, name), getattr(torch, name), SPECIALS)
    np.testing.assert_array_equal(got[0], want[0])


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_binary_at_specials(name):
    got, want = grads(getattr(vt, name), getattr(torch, name), SPECIALS, OTHER)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("name", ["max", "min"])
def test_full_reduction_with_nan_spreads_over_nans(name):
    got, want = grads(getattr(vt, name), getattr(torch, name), SPECIALS)
    np.testing.assert_array_equal(got[0], want[0])


@pytest.mark.parametrize("name", ["max", "min"])
def test_full_reduction_ties_share_the_gradient(name):
    x = np.array([[2.0, 2.0, -3.0, -3.0], [1.0, 0.0, -3.0, 2.0], [0.5, 2.0, 1.0, -1.0]])
    got, want = grads(getattr(vt, name), getattr(torch, name), x)
    np.testing.assert_allclose(got[0], want[0])
