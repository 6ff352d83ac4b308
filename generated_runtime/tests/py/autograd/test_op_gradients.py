"""Gradients of every differentiable op vibetensor covers, against torch.autograd on identical inputs."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from ag_helpers import check_grads, leaves, assert_close

R = np.random.default_rng(1234)


def rn(*shape, dtype=np.float32):
    return R.standard_normal(shape).astype(dtype)


def pos(*shape):
    return (R.random(shape) + 0.5).astype(np.float32)


def unit(*shape):
    return (R.random(shape) * 1.6 - 0.8).astype(np.float32)


def idx(high, *shape):
    return R.integers(0, high, size=shape).astype(np.int64)


def mask(*shape):
    return R.random(shape) > 0.5


def _zero_view(a):
    y = a * 3
    y[:, 1].zero_()
    return y * a


# (id, fn(T, *inputs), input arrays)
CASES = [
    ("add_broadcast", lambda T, a, b: T.add(a, b, alpha=2.0), [rn(3, 4), rn(4)]),
    ("sub_broadcast", lambda T, a, b: a - b, [rn(2, 1, 4), rn(3, 1)]),
    ("mul", lambda T, a, b: a * b, [rn(3, 4), rn(3, 4)]),
    ("mul_scalar", lambda T, a: a * 3.0 + 1.0, [rn(5)]),
    ("div", lambda T, a, b: a / b, [rn(3, 4), pos(4)]),
    ("rdiv_scalar", lambda T, a: 2.0 / a, [pos(5)]),
    ("pow_tensor", lambda T, a, b: T.pow(a, b), [pos(6), rn(6)]),
    ("pow_scalar", lambda T, a: a ** 3, [rn(6)]),
    ("maximum", lambda T, a, b: T.maximum(a, b), [rn(8), rn(8)]),
    ("minimum", lambda T, a, b: T.minimum(a, b), [rn(8), rn(8)]),
    ("atan2", lambda T, a, b: T.atan2(a, b), [rn(6), rn(6)]),
    ("remainder", lambda T, a, b: T.remainder(a, b), [rn(6), pos(6)]),
    ("where", lambda T, c, a, b: T.where(c, a, b), [mask(3, 4), rn(3, 4), rn(4)]),
    ("clamp", lambda T, a: T.clamp(a, -0.5, 0.5), [rn(10)]),
    ("clamp_min", lambda T, a: T.clamp(a, min=0.1), [rn(10)]),
    ("lerp", lambda T, a, b, w: T.lerp(a, b, w), [rn(5), rn(5), rn(5)]),
    ("addcmul", lambda T, a, b, c: T.addcmul(a, b, c, value=0.5), [rn(4), rn(4), rn(4)]),
    ("addcdiv", lambda T, a, b, c: T.addcdiv(a, b, c, value=0.5), [rn(4), rn(4), pos(4)]),
    ("exp", lambda T, a: T.exp(a), [rn(5)]),
    ("exp2", lambda T, a: T.exp2(a), [rn(5)]),
    ("log", lambda T, a: T.log(a), [pos(5)]),
    ("log2", lambda T, a: T.log2(a), [pos(5)]),
    ("log10", lambda T, a: T.log10(a), [pos(5)]),
    ("log1p", lambda T, a: T.log1p(a), [pos(5)]),
    ("expm1", lambda T, a: T.expm1(a), [rn(5)]),
    ("sqrt", lambda T, a: T.sqrt(a), [pos(5)]),
    ("rsqrt", lambda T, a: T.rsqrt(a), [pos(5)]),
    ("reciprocal", lambda T, a: T.reciprocal(a), [pos(5)]),
    ("sin", lambda T, a: T.sin(a), [rn(5)]),
    ("cos", lambda T, a: T.cos(a), [rn(5)]),
    ("tan", lambda T, a: T.tan(a), [unit(5)]),
    ("asin", lambda T, a: T.asin(a), [unit(5)]),
    ("acos", lambda T, a: T.acos(a), [unit(5)]),
    ("atan", lambda T, a: T.atan(a), [rn(5)]),
    ("sinh", lambda T, a: T.sinh(a), [rn(5)]),
    ("cosh", lambda T, a: T.cosh(a), [rn(5)]),
    ("tanh", lambda T, a: T.tanh(a), [rn(5)]),
    ("sigmoid", lambda T, a: T.sigmoid(a), [rn(5)]),
    ("silu", lambda T, a: T.nn.functional.silu(a), [rn(5)]),
    ("erf", lambda T, a: T.erf(a), [rn(5)]),
    ("erfc", lambda T, a: T.erfc(a), [rn(5)]),
    ("neg", lambda T, a: -a, [rn(5)]),
    ("abs", lambda T, a: T.abs(a), [rn(5)]),
    ("relu", lambda T, a: T.relu(a), [rn(10)]),
    ("square", lambda T, a: T.square(a), [rn(5)]),
    ("gelu", lambda T, a: T.nn.functional.gelu(a), [rn(10)]),
    ("gelu_tanh", lambda T, a: T.nn.functional.gelu(a, approximate="tanh"), [rn(10)]),
    ("softplus", lambda T, a: T.nn.functional.softplus(a, beta=2.0, threshold=1.0), [rn(10)]),
    ("floor", lambda T, a: T.floor(a) + a, [rn(5)]),
    ("fmod", lambda T, a, b: T.fmod(a, b), [rn(6), pos(6)]),
    ("sign_ceil_trunc_round", lambda T, a: T.sign(a) + T.ceil(a) + T.trunc(a) + T.round(a) + a, [rn(6)]),
    ("prod_all", lambda T, a: a.prod(), [pos(2, 3)]),
    ("fill_on_non_leaf", lambda T, a: (a * 2).fill_(3.0) * a, [rn(4)]),
    ("zero_on_non_leaf_view", lambda T, a: _zero_view(a), [rn(2, 3)]),
    ("frac", lambda T, a: T.frac(a), [rn(5)]),
    ("sum_all", lambda T, a: a.sum(), [rn(3, 4)]),
    ("sum_dim", lambda T, a: a.sum(dim=1), [rn(3, 4, 2)]),
    ("sum_dims_keep", lambda T, a: a.sum(dim=(0, 2), keepdim=True), [rn(3, 4, 2)]),
    ("mean_dim", lambda T, a: a.mean(dim=-1), [rn(3, 4)]),
    ("mean_all", lambda T, a: a.mean(), [rn(3, 4)]),
    ("prod_dim", lambda T, a: a.prod(dim=1), [pos(3, 4)]),
    ("amax", lambda T, a: T.amax(a, dim=1), [rn(3, 4)]),
    ("amin_keep", lambda T, a: T.amin(a, dim=0, keepdim=True), [rn(3, 4)]),
    ("max_dim", lambda T, a: T.max(a, dim=1)[0], [rn(3, 4)]),
    ("min_dim_keep", lambda T, a: T.min(a, dim=0, keepdim=True)[0], [rn(3, 4)]),
    ("var", lambda T, a: a.var(dim=1), [rn(3, 5)]),
    ("var_unbiased0", lambda T, a: T.var(a, dim=1, unbiased=False, keepdim=True), [rn(3, 5)]),
    ("std", lambda T, a: a.std(dim=0), [rn(4, 3)]),
    ("norm2", lambda T, a: a.norm(), [rn(3, 4)]),
    ("norm_dim", lambda T, a: T.norm(a, p=2, dim=1), [rn(3, 4)]),
    ("norm1", lambda T, a: T.norm(a, p=1), [rn(6)]),
    ("norm3", lambda T, a: T.norm(a, p=3, dim=0), [rn(4, 2)]),
    ("logsumexp", lambda T, a: T.logsumexp(a, dim=1), [rn(3, 4)]),
    ("cumsum", lambda T, a: T.cumsum(a, dim=1), [rn(3, 4)]),
    ("cumprod", lambda T, a: T.cumprod(a, dim=0), [pos(4, 2)]),
    ("softmax", lambda T, a: T.softmax(a, dim=-1), [rn(3, 5)]),
    ("log_softmax", lambda T, a: T.log_softmax(a, dim=1), [rn(3, 5)]),
    ("mm", lambda T, a, b: T.mm(a, b), [rn(3, 4), rn(4, 5)]),
    ("bmm", lambda T, a, b: T.bmm(a, b), [rn(2, 3, 4), rn(2, 4, 5)]),
    ("matmul_nd_broadcast", lambda T, a, b: a @ b, [rn(2, 3, 4), rn(4, 5)]),
    ("matmul_4d", lambda T, a, b: a @ b, [rn(2, 2, 3, 4), rn(2, 1, 4, 3)]),
    ("matmul_mv", lambda T, a, b: a @ b, [rn(3, 4), rn(4)]),
    ("matmul_vm", lambda T, a, b: a @ b, [rn(4), rn(4, 3)]),
    ("matmul_dot", lambda T, a, b: a @ b, [rn(4), rn(4)]),
    ("addmm", lambda T, c, a, b: T.addmm(c, a, b, beta=0.5, alpha=2.0), [rn(5), rn(3, 4), rn(4, 5)]),
    ("baddbmm", lambda T, c, a, b: T.baddbmm(c, a, b, beta=0.5, alpha=2.0), [rn(2, 3, 5), rn(2, 3, 4), rn(2, 4, 5)]),
    ("linear", lambda T, x, w, b: T.nn.functional.linear(x, w, b), [rn(2, 3, 4), rn(5, 4), rn(5)]),
    ("linear_nobias", lambda T, x, w: T.nn.functional.linear(x, w), [rn(3, 4), rn(5, 4)]),
    ("outer", lambda T, a, b: T.outer(a, b), [rn(3), rn(4)]),
    ("dot", lambda T, a, b: T.dot(a, b), [rn(4), rn(4)]),
    ("index_select", lambda T, a, i: T.index_select(a, 0, i), [rn(5, 3), np.array([0, 2, 2, 4])]),
    ("gather", lambda T, a, i: T.gather(a, 1, i), [rn(3, 4), idx(4, 3, 6)]),
    ("scatter", lambda T, a, i, s: T.scatter(a, 1, i, s),
     [rn(3, 5), np.array([[0, 1], [2, 3], [4, 0]]), rn(3, 2)]),
    ("scatter_add", lambda T, a, i, s: T.scatter_add(a, 1, i, s), [rn(3, 5), idx(5, 3, 4), rn(3, 4)]),
    ("index_add", lambda T, a, i, s: T.index_add(a, 0, i, s, alpha=2.0), [rn(5, 3), np.array([0, 2, 2]), rn(3, 3)]),
    ("masked_fill", lambda T, a, m: a.masked_fill(m, -1.0), [rn(3, 4), mask(3, 4)]),
    ("masked_fill_bcast", lambda T, a, m: a.masked_fill(m, float("-inf")).softmax(-1), [rn(2, 4, 4), np.triu(np.ones((4, 4), bool), 1)]),
    ("adv_index", lambda T, a, i: a[i], [rn(5, 3), np.array([4, 0, 4])]),
    ("adv_index_2d", lambda T, a, i, j: a[i, j], [rn(5, 3), np.array([4, 0, 4]), np.array([1, 2, 1])]),
    ("bool_mask_index", lambda T, a, m: a[m], [rn(3, 4), mask(3, 4)]),
    ("embedding", lambda T, w, i: T.nn.functional.embedding(i, w), [rn(6, 3), idx(6, 2, 5)]),
    ("take_along_dim", lambda T, a, i: T.take_along_dim(a, i, dim=1), [rn(3, 4), idx(4, 3, 2)]),
    ("cat", lambda T, a, b: T.cat([a, b], dim=1), [rn(2, 3), rn(2, 4)]),
    ("stack", lambda T, a, b: T.stack([a, b], dim=1), [rn(2, 3), rn(2, 3)]),
    ("flip", lambda T, a: T.flip(a, [0, 1]), [rn(2, 3)]),
    ("roll", lambda T, a: T.roll(a, [1], [1]), [rn(2, 3)]),
    ("tril", lambda T, a: T.tril(a), [rn(4, 4)]),
    ("triu", lambda T, a: T.triu(a, 1), [rn(4, 4)]),
    ("repeat", lambda T, a: a.repeat(2, 1, 3), [rn(2, 3)]),
    ("view", lambda T, a: a.view(3, 4) * 2, [rn(2, 6)]),
    ("reshape_noncontig", lambda T, a: a.t().reshape(-1), [rn(2, 3)]),
    ("permute", lambda T, a: a.permute(2, 0, 1), [rn(2, 3, 4)]),
    ("transpose", lambda T, a: a.transpose(0, 2), [rn(2, 3, 4)]),
    ("t", lambda T, a: a.t(), [rn(2, 3)]),
    ("expand", lambda T, a: a.expand(3, 4, 2), [rn(4, 1)]),
    ("narrow", lambda T, a: a.narrow(1, 1, 2), [rn(3, 4)]),
    ("slice_step", lambda T, a: a[:, 1::2], [rn(3, 5)]),
    ("slice_neg", lambda T, a: a[-2:, :-1], [rn(3, 5)]),
    ("select", lambda T, a: a[:, 2], [rn(3, 4)]),
    ("select_neg", lambda T, a: a[-1], [rn(3, 4)]),
    ("squeeze", lambda T, a: a.squeeze(1), [rn(3, 1, 2)]),
    ("unsqueeze", lambda T, a: a.unsqueeze(0), [rn(3, 2)]),
    ("flatten", lambda T, a: a.flatten(1), [rn(2, 3, 4)]),
    ("unflatten", lambda T, a: a.unflatten(1, (2, 2)), [rn(3, 4)]),
    ("split", lambda T, a: T.split(a, 2, dim=1), [rn(3, 5)]),
    ("split_one_used", lambda T, a: T.split(a, [1, 4], dim=1)[1], [rn(3, 5)]),
    ("chunk", lambda T, a: a.chunk(3, dim=0), [rn(6, 2)]),
    ("unbind", lambda T, a: a.unbind(1), [rn(2, 3)]),
    ("diagonal", lambda T, a: T.diagonal(a, 1), [rn(4, 4)]),
    ("movedim", lambda T, a: T.movedim(a, 0, 2), [rn(2, 3, 4)]),
    ("masked_select", lambda T, a, m: T.masked_select(a, m), [rn(3, 4), mask(4)]),
    ("as_strided", lambda T, a: T.as_strided(a, (2, 2), (1, 2), 1), [rn(3, 3)]),
    ("ellipsis_identity", lambda T, a: a[...] * 2, [rn(2, 3)]),
    ("contiguous", lambda T, a: a.t().contiguous(), [rn(2, 3)]),
    ("clone", lambda T, a: a.clone(), [rn(2, 3)]),
    ("to_double", lambda T, a: a.to(T.float64) * 2, [rn(2, 3)]),
    ("sum_dtype", lambda T, a: a.sum(dtype=T.float64), [rn(2, 3)]),
    ("layer_norm", lambda T, x, w, b: T.nn.functional.layer_norm(x, (4,), w, b), [rn(2, 3, 4), rn(4), rn(4)]),
    ("rms_norm", lambda T, x, w: T.nn.functional.rms_norm(x, (4,), w, eps=1e-6), [rn(2, 3, 4), rn(4)]),
    ("cross_entropy", lambda T, x, y: T.nn.functional.cross_entropy(x, y), [rn(6, 5), idx(5, 6)]),
    ("cross_entropy_3d", lambda T, x, y: T.nn.functional.cross_entropy(x, y, ignore_index=0), [rn(2, 5, 3), idx(5, 2, 3)]),
    ("cross_entropy_smooth", lambda T, x, y: T.nn.functional.cross_entropy(x, y, label_smoothing=0.1), [rn(6, 5), idx(5, 6)]),
    ("nll_loss", lambda T, x, y: T.nn.functional.nll_loss(T.log_softmax(x, 1), y, reduction="sum"), [rn(6, 5), idx(5, 6)]),
    ("bce_logits", lambda T, x, y: T.nn.functional.binary_cross_entropy_with_logits(x, y), [rn(4, 3), (R.random((4, 3)) > 0.5).astype(np.float32)]),
    ("embedding_padding", lambda T, w, i: T.nn.functional.embedding(i, w, padding_idx=1), [rn(6, 3), idx(6, 2, 5)]),
    ("mse_loss", lambda T, x, y: T.nn.functional.mse_loss(x, y), [rn(3, 4), rn(3, 4)]),
    ("sdpa_causal", lambda T, q, k, v: T.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True),
     [rn(2, 2, 4, 8), rn(2, 2, 4, 8), rn(2, 2, 4, 8)]),
]


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_gradient_matches_torch(name, fn, arrays):
    n = check_grads(fn, arrays, rtol=1e-4, atol=1e-5)
    assert n >= 1


F64_CASES = [
    ("mul_div", lambda T, a, b: (a * b / (b * b + 1.0)).sum(), [(3, 4), (4,)]),
    ("softmax_matmul", lambda T, a, b: (T.softmax(a @ b, dim=-1) ** 2).sum(), [(3, 4), (4, 5)]),
    ("layer_norm_gelu", lambda T, x, w: T.nn.functional.gelu(T.nn.functional.layer_norm(x, (4,), w)).sum(),
     [(3, 4), (4,)]),
    ("log_softmax_gather", lambda T, x: T.log_softmax(x, 1).gather(1, T.tensor([[1], [0], [3]])).sum(), [(3, 4)]),
]


@pytest.mark.parametrize("name,fn,shapes", F64_CASES, ids=[c[0] for c in F64_CASES])
def test_finite_differences_float64(name, fn, shapes):
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(s) for s in shapes]
    vs, _ = leaves(arrays)
    out = fn(vt, *vs)
    out.backward()
    eps = 1e-6
    for i, a in enumerate(arrays):
        num = np.zeros_like(a)
        for j in range(a.size):
            plus = [x.copy() for x in arrays]
            minus = [x.copy() for x in arrays]
            plus[i].flat[j] += eps
            minus[i].flat[j] -= eps
            with vt.no_grad():
                fp = fn(vt, *[vt.from_numpy(x) for x in plus]).item()
                fm = fn(vt, *[vt.from_numpy(x) for x in minus]).item()
            num.flat[j] = (fp - fm) / (2 * eps)
        np.testing.assert_allclose(vs[i].grad.numpy(), num, rtol=1e-5, atol=1e-7)
    # and the same values as torch
    _, ts = leaves(arrays)
    fn(torch, *ts).backward()
    for v, t in zip(vs, ts):
        assert_close(v.grad, t.grad, 1e-10, 1e-12)
