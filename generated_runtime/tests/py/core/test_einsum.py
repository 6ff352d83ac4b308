"""einsum checked against PyTorch CPU: explicit and implicit output, ellipsis (broadcast), repeated subscripts
(diagonals), sums, size-1 broadcasting, any number of operands, the sublist form, gradients (einsum is a
composition of differentiable ops) and torch's errors for bad equations."""
import re

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vt_core_helpers import TOL

CASES = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(5, 2, 3), (5, 3, 4)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("ij,kj->ik", [(2, 3), (4, 3)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("iij->j", [(3, 3, 2)]),
    ("iji,jk->ik", [(3, 2, 3), (2, 4)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,j", [(3,), (4,)]),
    ("ij->ji", [(2, 3)]),
    ("ba", [(2, 3)]),
    ("ij->", [(2, 3)]),
    ("ij,ij->", [(2, 3), (2, 3)]),
    ("ij,ij->ij", [(2, 3), (2, 3)]),
    ("ij,kl->", [(2, 3), (4, 5)]),
    ("ij,j->i", [(2, 3), (3,)]),
    ("ij,j->i", [(2, 3), (1,)]),  # a size-1 dim broadcasts
    ("ij,ij->i", [(2, 1), (2, 3)]),
    ("abc,cd,de->abe", [(2, 3, 4), (4, 5), (5, 6)]),
    ("i,i,i->i", [(4,), (4,), (4,)]),
    ("ab,bc,cd,de->ae", [(2, 3), (3, 4), (4, 5), (5, 2)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("...i,...i->...", [(2, 1, 3), (5, 3)]),
    ("...ij->...ji", [(2, 3, 4)]),
    ("i...->...", [(2, 3, 4)]),
    ("...", [(2, 3)]),
    ("...ij->", [(4, 2, 3)]),
    ("...ij->ij", [(4, 2, 3)]),
    ("i...j,j...->...i", [(2, 3, 4), (4, 3)]),
    ("Ab,bA", [(2, 3), (3, 2)]),
    (" i j , j ", [(2, 3), (3,)]),
    ("i,j", [(0,), (3,)]),
    ("ij,jk", [(2, 0), (0, 3)]),
    ("ij,jk->ik", [(0, 3), (3, 4)]),
    ("i,i->", [(5,), (5,)]),
    (",->", [(), ()]),
    ("i,->i", [(3,), ()]),
]


def _close(r, t, name="float64"):
    assert tuple(r.shape) == tuple(t.shape)
    assert r.dtype.name == str(t.dtype).replace("torch.", "")
    rtol, atol = TOL.get(name, (0, 0))
    np.testing.assert_allclose(r.double().numpy(), t.double().numpy(), rtol=rtol * 10, atol=atol * 10)


@pytest.mark.parametrize("eq,shapes", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("name", ["float32", "float64"])
def test_einsum_forward(eq, shapes, name):
    rng = np.random.default_rng(len(eq))
    arrs = [rng.uniform(-2, 2, s) for s in shapes]
    t = torch.einsum(eq, *[torch.tensor(a).to(getattr(torch, name)) for a in arrs])
    r = vt.einsum(eq, *[vt.tensor(a).to(getattr(vt, name)) for a in arrs])
    _close(r, t, name)


@pytest.mark.parametrize("eq,shapes", [c for c in CASES if "..." not in c[0] and all(0 not in s for s in c[1])],
                         ids=[c[0] for c in CASES if "..." not in c[0] and all(0 not in s for s in c[1])])
def test_einsum_grad(eq, shapes):
    rng = np.random.default_rng(7)
    arrs = [rng.uniform(-2, 2, s) for s in shapes]
    tx = [torch.tensor(a, requires_grad=True) for a in arrs]
    vx = [vt.tensor(a, requires_grad=True) for a in arrs]
    t = torch.einsum(eq, *tx)
    r = vt.einsum(eq, *vx)
    w = rng.uniform(-1, 1, tuple(t.shape))
    (t * torch.tensor(w)).sum().backward()
    (r * vt.tensor(w)).sum().backward()
    for a, b in zip(vx, tx):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-10)


def test_einsum_ellipsis_grad():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 1, 3, 4)), rng.standard_normal((5, 4, 2))
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    va, vb = vt.tensor(a, requires_grad=True), vt.tensor(b, requires_grad=True)
    torch.einsum("...ij,...jk->...ik", ta, tb).square().sum().backward()
    vt.einsum("...ij,...jk->...ik", va, vb).square().sum().backward()
    np.testing.assert_allclose(va.grad.numpy(), ta.grad.numpy(), rtol=1e-9)
    np.testing.assert_allclose(vb.grad.numpy(), tb.grad.numpy(), rtol=1e-9)


@pytest.mark.parametrize("name", ["int32", "int64", "float16", "bfloat16"])
@pytest.mark.parametrize("eq,shapes", [("ij,jk->ik", [(2, 3), (3, 4)]), ("ij->", [(2, 3)]), ("ij,jk->", [(2, 3), (3, 4)]),
                                       ("ii->i", [(3, 3)]), ("ij,j->i", [(2, 3), (3,)])])
def test_einsum_dtypes(eq, shapes, name):
    rng = np.random.default_rng(1)
    arrs = [rng.integers(-3, 4, s).astype(np.float64) for s in shapes]
    t = torch.einsum(eq, *[torch.tensor(a).to(getattr(torch, name)) for a in arrs])
    r = vt.einsum(eq, *[vt.tensor(a).to(getattr(vt, name)) for a in arrs])
    _close(r, t, name)


def test_einsum_noncontiguous_and_forms():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((4, 6)), rng.standard_normal((6, 5))
    ta, tb, va, vb = torch.tensor(a), torch.tensor(b), vt.tensor(a), vt.tensor(b)
    _close(vt.einsum("ji,kj->ik", va.t(), vb.t()), torch.einsum("ji,kj->ik", ta.t(), tb.t()))
    _close(vt.einsum("ij,jk->ik", va[:, ::2], vb[::2]), torch.einsum("ij,jk->ik", ta[:, ::2], tb[::2]))
    _close(vt.einsum("ij,jk", [va, vb]), torch.einsum("ij,jk", [ta, tb]))  # operands as one list
    _close(vt.einsum(va, [0, 1], vb, [1, 2], [0, 2]), torch.einsum(ta, [0, 1], tb, [1, 2], [0, 2]))
    _close(vt.einsum(va, [0, 1], vb, [1, 2]), torch.einsum(ta, [0, 1], tb, [1, 2]))
    _close(vt.einsum(va, [Ellipsis, 1]), torch.einsum(ta, [Ellipsis, 1]))
    # inputs are left unchanged
    np.testing.assert_array_equal(va.numpy(), a)


ERRORS = [
    ("ij,jk", [(2, 3), (4, 5)], "subscript j has size 4 for operand 1 which does not broadcast with previously seen "
                                "size 3"),
    ("ij", [(2, 3), (3,)], "more operands were provided than specified in the equation"),
    ("ij,jk,kl", [(2, 3), (3, 4)], "fewer operands were provided than specified in the equation"),
    ("i1", [(2, 3)], "invalid subscript given at index 1 in the equation string, subscripts must be in [a-zA-Z]"),
    ("ij->i->j", [(2, 3)], "invalid subscript given at index 5"),
    ("i.j", [(2, 3)], "found '.' for operand 0 that is not part of any ellipsis"),
    ("...i...", [(2, 3)], "found '.' for operand 0 for which an ellipsis was already found"),
    ("ijk", [(2, 3)], "the number of subscripts in the equation (3) does not match the number of dimensions (2) for "
                      "operand 0 and no ellipsis was given"),
    ("ijk...", [(2, 3)], "the number of subscripts in the equation (3) is more than the number of dimensions (2)"),
    ("ij->ii", [(2, 3)], "output subscript i appears more than once in the output"),
    ("ij->k", [(2, 3)], "output subscript k does not appear in the equation for any input operand"),
    ("ii", [(2, 3)], "subscript i is repeated for operand 0 but the sizes don't match, 3 != 2"),
]


@pytest.mark.parametrize("eq,shapes,msg", ERRORS, ids=[e[0] for e in ERRORS])
def test_einsum_errors(eq, shapes, msg):
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        torch.einsum(eq, *[torch.zeros(s) for s in shapes])
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        vt.einsum(eq, *[vt.zeros(s) for s in shapes])


def test_einsum_bad_calls():
    with pytest.raises(ValueError, match="at least one operand"):
        vt.einsum("ij")
    with pytest.raises(RuntimeError, match="scalar type"):
        vt.einsum("i,i->", vt.zeros(3), vt.zeros(3, dtype=vt.float64))
    with pytest.raises(TypeError):
        vt.einsum("i,i->", vt.zeros(3), [1.0, 2.0, 3.0])
