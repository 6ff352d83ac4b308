"""create_graph=True: gradients of gradients against torch for the ops the workloads use."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from ag_helpers import leaves, assert_close

R = np.random.default_rng(11)


def rn(*s):
    return R.standard_normal(s)


CASES = [
    ("mul_exp", lambda T, a, b: (a * b).exp(), [rn(3), rn(3)]),
    ("div_log", lambda T, a, b: T.log(a * a + 1) / (b * b + 1), [rn(4), rn(4)]),
    ("matmul_tanh", lambda T, a, b: T.tanh(a @ b), [rn(2, 3), rn(3, 4)]),
    ("softmax", lambda T, a: T.softmax(a, -1) * a, [rn(2, 5)]),
    ("log_softmax", lambda T, a: T.log_softmax(a, -1) * a, [rn(2, 5)]),
    ("gelu", lambda T, a: T.nn.functional.gelu(a), [rn(6)]),
    ("gelu_tanh", lambda T, a: T.nn.functional.gelu(a, approximate="tanh"), [rn(6)]),
    ("silu", lambda T, a: T.nn.functional.silu(a), [rn(6)]),
    ("layer_norm", lambda T, x, w: T.nn.functional.layer_norm(x, (4,), w), [rn(3, 4), rn(4)]),
    ("linear", lambda T, x, w, b: T.nn.functional.linear(x, w, b).sigmoid(), [rn(2, 3), rn(4, 3), rn(4)]),
    ("views", lambda T, a: (a.t().reshape(-1)[1:5] ** 2).unsqueeze(0).expand(3, 4), [rn(2, 3)]),
    ("sum_mean_var", lambda T, a: a.var(0) * a.mean(1).sum(), [rn(3, 4)]),
    ("select_index", lambda T, a: a[1] * a[:, 0].sum() + a[T.tensor([0, 2])].sum(), [rn(3, 3)]),
    ("cat_split", lambda T, a, b: T.cat([a * b, b], 0).split(2)[1] ** 2, [rn(3), rn(3)]),
]


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_second_order_gradients_match_torch(name, fn, arrays):
    vs, ts = leaves(arrays)
    res = []
    for T, xs in ((vt, vs), (torch, ts)):
        out = fn(T, *xs)
        gs = T.autograd.grad(out.sum(), xs, create_graph=True)
        total = sum((g * g).sum() for g in gs)
        gg = T.autograd.grad(total, xs, allow_unused=True)
        res.append((gs, gg))
    for a, b in zip(res[0][0], res[1][0]):
        assert_close(a, b, 1e-9, 1e-10)
    for a, b in zip(res[0][1], res[1][1]):
        if b is None:
            assert a is None or np.all(a.detach().numpy() == 0)
        else:
            assert_close(a, b, 1e-8, 1e-10)
