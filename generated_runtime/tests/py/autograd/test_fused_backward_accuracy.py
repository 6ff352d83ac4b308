"""The fused float32 backward loops (autograd/formulas.cpp fused_unary_bw, with the runtime's float math from
cpu/vec_math.h) against a float64 reference over wide ranges, tails and special values included: gelu (exact),
silu, relu, tanh, sigmoid. The parity gate checks the same formulas on small random inputs; this covers the
ranges where a float evaluation loses accuracy (gelu's erfc tail, exp overflow)."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt

GRID = np.concatenate([np.linspace(-30, 30, 120001), np.random.default_rng(0).standard_normal(50000) * 4,
                       [0.0, -0.0, 1e-30, -1e-30, 1e-40, 88.0, -88.0, 104.0, -104.0]]).astype(np.float32)
SPECIAL = np.array([np.inf, -np.inf, np.nan], np.float32)


def _fn(T, name):
    return {"gelu": T.nn.functional.gelu, "silu": T.nn.functional.silu, "relu": T.relu, "tanh": T.tanh,
            "sigmoid": T.sigmoid}[name]


def _grad(T, name, x, g):
    X = T.tensor(x).requires_grad_()
    _fn(T, name)(X).backward(T.tensor(g))
    return np.asarray(X.grad.detach().numpy(), dtype=np.float64)


def _grads(name, x, g):
    """(vibetensor float32, torch float32, torch float64) gradients of name at x for upstream gradient g."""
    return _grad(vt, name, x, g), _grad(torch, name, x, g), _grad(torch, name, x.astype(np.float64),
                                                                   g.astype(np.float64))


@pytest.mark.parametrize("name", ["gelu", "silu", "relu", "tanh", "sigmoid"])
def test_float32_backward_close_to_float64(name):
    g = np.random.default_rng(1).standard_normal(GRID.size).astype(np.float32)
    ours, theirs, ref = _grads(name, GRID, g)
    # as close to float64 as torch's own float32 backward, or within float32 rounding of the derivative factor:
    # 1e-6 relative, or 2e-7 * |g| absolute (the factor is O(1); where its terms cancel, as gelu' near x = -1 or
    # 1 - tanh^2 near |y| = 1, a float evaluation is only good to an ulp of the terms, not of the small result)
    err = np.abs(ours - ref)
    bound = np.maximum.reduce([1.5 * np.abs(theirs - ref), 1e-6 * np.abs(ref), 2e-7 * np.abs(g.astype(np.float64))])
    bad = np.nonzero(err > bound)[0]
    assert bad.size == 0, [(float(GRID[i]), ours[i], theirs[i], ref[i]) for i in bad[:5]]


@pytest.mark.parametrize("name", ["gelu", "silu", "relu", "tanh", "sigmoid"])
def test_special_values_like_torch(name):
    x = np.repeat(SPECIAL, 2)
    g = np.tile(np.array([1.0, np.nan], np.float32), SPECIAL.size)
    ours, theirs, _ = _grads(name, x, g)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_array_equal(ours[~np.isnan(ours)], theirs[~np.isnan(theirs)])
