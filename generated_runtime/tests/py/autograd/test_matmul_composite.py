"""matmul of 3+-dim operands under autograd is recorded as torch's decomposition (Note [Batched matmul under
autograd] in src/vbt/autograd/formulas.cpp): same values and gradients as torch, bmm/mm nodes in the graph, the
kernel's own errors for bad shapes, and the plain kernel when no gradient is needed."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from ag_helpers import assert_close, check_grads, leaves

rng = np.random.default_rng(11)


def rn(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def attention(T, q, k, v):
    """miniGPT's pattern: heads split by reshape + transpose, q @ k^T, att @ v, transposed back."""
    B, L, H, D = 2, 5, 3, 4
    qh = q.reshape(B, L, H, D).transpose(1, 2)
    kh = k.reshape(B, L, H, D).transpose(1, 2)
    vh = v.reshape(B, L, H, D).transpose(1, 2)
    att = T.softmax(T.matmul(qh, kh.transpose(-2, -1)) * 0.5, dim=-1)
    return T.matmul(att, vh).transpose(1, 2).reshape(B, L, H * D)


CASES = [
    ("attention", attention, [rn(2, 5, 12), rn(2, 5, 12), rn(2, 5, 12)], None),
    ("3d_2d_contiguous_folds", lambda T, a, b: a @ b, [rn(2, 3, 4), rn(4, 5)], None),
    ("3d_strided_2d_with_grad", lambda T, a, b: a.transpose(0, 1) @ b, [rn(3, 2, 4), rn(4, 5)], None),
    ("3d_strided_2d_without_grad", lambda T, a, b: a.transpose(0, 1) @ b, [rn(3, 2, 4), rn(4, 5)], [True, False]),
    ("3d_1d", lambda T, a, b: a @ b, [rn(2, 3, 4), rn(4)], None),
    ("1d_3d", lambda T, a, b: a @ b, [rn(3), rn(2, 3, 4)], None),
    ("2d_4d", lambda T, a, b: a @ b, [rn(3, 4), rn(2, 2, 4, 5)], None),
    ("broadcast_batches", lambda T, a, b: a @ b, [rn(2, 1, 3, 4), rn(3, 4, 5)], None),
    ("4d_transposed_both", lambda T, a, b: a.transpose(-2, -1) @ b.transpose(1, 2),
     [rn(2, 3, 4, 5), rn(2, 4, 3, 6)], None),
    ("zero_inner_dim_folds", lambda T, a, b: a @ b, [rn(2, 3, 0), rn(0, 5)], None),
    ("zero_batch", lambda T, a, b: a @ b, [rn(0, 3, 4), rn(4, 5)], None),
    ("zero_inner_dim_batched", lambda T, a, b: a @ b, [rn(2, 3, 0), rn(2, 0, 5)], None),
    ("float64", lambda T, a, b: a.transpose(1, 2) @ b, [rn(2, 4, 3, dtype=np.float64), rn(2, 4, 5, dtype=np.float64)],
     None),
]


@pytest.mark.parametrize("name,fn,arrays,req", CASES, ids=[c[0] for c in CASES])
def test_gradients_match_torch(name, fn, arrays, req):
    tol = dict(rtol=1e-10, atol=1e-12) if arrays[0].dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)
    assert check_grads(fn, arrays, requires_grad=req, **tol) >= 1


def _graph_names(t):
    seen, todo, names = set(), [t.grad_fn], []
    while todo:
        fn = todo.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        names.append(fn.name())
        todo.extend(f for f, _ in fn.next_functions)
    return names


def test_batched_matmul_records_bmm_and_a_folded_matmul_records_mm():
    q = vt.from_numpy(rn(2, 3, 5, 4)).requires_grad_(True)
    k = vt.from_numpy(rn(2, 3, 5, 4)).requires_grad_(True)
    names = _graph_names(q @ k.transpose(-2, -1))
    assert "BmmBackward0" in names and "MmBackward0" not in names
    x = vt.from_numpy(rn(2, 3, 4)).requires_grad_(True)
    w = vt.from_numpy(rn(4, 5)).requires_grad_(True)
    names = _graph_names(x @ w)
    assert "MmBackward0" in names and "BmmBackward0" not in names
    # 1-D and 2-D operands keep matmul's own node
    a = vt.from_numpy(rn(3, 4)).requires_grad_(True)
    assert (a @ w).grad_fn.name() == "MmBackward0"


def test_without_grad_the_kernel_runs_and_values_agree():
    a, b = rn(2, 3, 4, 5), rn(2, 3, 5, 6)
    with vt.no_grad():
        plain = vt.from_numpy(a).transpose(0, 1) @ vt.from_numpy(b).transpose(0, 1)
    av = vt.from_numpy(a).requires_grad_(True)
    composed = av.transpose(0, 1) @ vt.from_numpy(b).transpose(0, 1)
    assert plain.grad_fn is None and composed.grad_fn is not None
    np.testing.assert_allclose(composed.detach().numpy(), plain.numpy(), rtol=1e-6, atol=1e-6)


def test_double_backward_matches_torch():
    (qv, kv), (qt, kt) = leaves([rn(2, 2, 3, 4, dtype=np.float64), rn(2, 2, 3, 4, dtype=np.float64)])
    outs = []
    for T, q, k in ((vt, qv, kv), (torch, qt, kt)):
        y = (T.matmul(q, k.transpose(-2, -1)) ** 2).sum()
        (gq,) = T.autograd.grad(y, [q], create_graph=True)
        (gk,) = T.autograd.grad((gq * gq).sum(), [k])
        outs.append((gq, gk))
    assert_close(outs[0][0], outs[1][0], 1e-10, 1e-10, "first-order grad")
    assert_close(outs[0][1], outs[1][1], 1e-10, 1e-10, "second-order grad")


@pytest.mark.parametrize("shapes", [((2, 3, 4), (5, 6)), ((2, 3, 4), (2, 5, 6)), ((2, 3, 4), (7,))])
def test_shape_errors_are_the_kernels_with_or_without_grad(shapes):
    a, b = rn(*shapes[0]), rn(*shapes[1])
    with pytest.raises(Exception) as plain:
        vt.from_numpy(a) @ vt.from_numpy(b)
    with pytest.raises(Exception) as tracked:
        vt.from_numpy(a).requires_grad_(True) @ vt.from_numpy(b)
    assert type(tracked.value) is type(plain.value) and str(tracked.value) == str(plain.value)


def test_mixed_dtypes_raise_the_kernels_error():
    a = vt.from_numpy(rn(2, 3, 4)).requires_grad_(True)
    b = vt.from_numpy(rn(4, 5, dtype=np.float64))
    with pytest.raises(Exception) as tracked:
        a @ b
    with pytest.raises(Exception) as plain:
        a.detach() @ b
    assert str(tracked.value) == str(plain.value)
