"""multinomial (with/without replacement, 1-D/2-D, Generator) and Generator.get_state/set_state,
vt.get_rng_state/set_rng_state. Random streams differ from PyTorch's, so values are checked statistically with
fixed seeds; shapes, dtypes and errors are compared with torch."""
import re

import numpy as np
import pytest
import torch

import vibetensor.torch as vt


def freqs(samples, ncat):
    return np.bincount(np.asarray(samples).reshape(-1), minlength=ncat) / np.asarray(samples).size


def test_multinomial_with_replacement_frequencies():
    p = [0.1, 0.2, 0.0, 0.3, 0.4]
    g = vt.Generator().manual_seed(1)
    s = vt.multinomial(vt.tensor(p), 40000, True, generator=g)
    assert s.dtype is vt.int64 and tuple(s.shape) == (40000,)
    f = freqs(s.numpy(), 5)
    assert f[2] == 0.0  # a zero weight is never drawn
    np.testing.assert_allclose(f, p, atol=0.012)  # ~5 sigma at n=40000
    # unnormalised weights, 2-D: every row its own distribution
    w = vt.tensor([[1.0, 3.0], [5.0, 0.0], [0.0, 2.0]])
    s = vt.multinomial(w, 20000, replacement=True, generator=g).numpy()
    assert s.shape == (3, 20000)
    assert abs(freqs(s[0], 2)[1] - 0.75) < 0.02
    assert (s[1] == 0).all() and (s[2] == 1).all()


def test_multinomial_without_replacement():
    g = vt.Generator().manual_seed(2)
    rows = 20000
    p = np.array([0.5, 0.3, 0.2])
    s = vt.multinomial(vt.tensor(np.tile(p, (rows, 1))), 2, generator=g).numpy()
    assert s.shape == (rows, 2)
    assert (s[:, 0] != s[:, 1]).all()  # distinct within a row
    # the first draw follows p; the ordered pair (i, j) has probability p_i * p_j / (1 - p_i)
    np.testing.assert_allclose(freqs(s[:, 0], 3), p, atol=0.015)
    for i, j in [(0, 1), (1, 0), (2, 0), (0, 2)]:
        expect = p[i] * p[j] / (1 - p[i])
        assert abs(np.mean((s[:, 0] == i) & (s[:, 1] == j)) - expect) < 0.015, (i, j)
    # all categories: a permutation
    perm = vt.multinomial(vt.rand(50, 7, generator=g) + 0.1, 7, generator=g).numpy()
    assert (np.sort(perm, axis=1) == np.arange(7)).all()
    # zero weights are taken only once the positive ones run out (torch returns them too)
    z = vt.multinomial(vt.tensor([0.0, 1.0, 0.0, 2.0]), 2, generator=g).numpy()
    assert sorted(z.tolist()) == [1, 3]
    z = vt.multinomial(vt.tensor([0.0, 0.0, 1.0]), 2, generator=g).numpy()
    assert z[0] == 2 and z[1] in (0, 1)
    t = torch.multinomial(torch.tensor([0.0, 0.0, 1.0]), 2)
    assert t[0].item() == 2


@pytest.mark.parametrize("name", ["float32", "float64", "float16", "bfloat16"])
def test_multinomial_shapes_dtypes_layouts(name):
    a = np.random.default_rng(0).uniform(0.1, 1.0, (6, 4))
    v, t = vt.tensor(a).to(getattr(vt, name)), torch.tensor(a).to(getattr(torch, name))
    for args in [(v.t(), t.t(), 3, False), (v[:, ::2], t[:, ::2], 5, True), (v[2], t[2], 4, False),
                 (v[:0], t[:0], 2, False)]:
        r, e = vt.multinomial(args[0], args[2], args[3]), torch.multinomial(args[1], args[2], args[3])
        assert tuple(r.shape) == tuple(e.shape) and r.dtype is vt.int64
        if r.numel():
            assert r.numpy().min() >= 0 and r.numpy().max() < args[0].shape[-1]
    # the Tensor method and keyword form
    m = v.multinomial(2, replacement=True, generator=vt.Generator().manual_seed(0))
    assert tuple(m.shape) == (6, 2)
    # input is left unchanged
    np.testing.assert_array_equal(vt.tensor(a).numpy(), a)


def test_multinomial_requires_grad_input():
    p = vt.tensor([0.2, 0.8], requires_grad=True)
    s = vt.multinomial(p, 3, True)
    assert s.dtype is vt.int64 and not s.requires_grad


ERRORS = [
    (lambda T: T.tensor(1.0), 1, False, "prob_dist must be 1 or 2 dim"),
    (lambda T: T.ones(2, 2, 2), 1, False, "prob_dist must be 1 or 2 dim"),
    (lambda T: T.ones(3, dtype=T.int64), 1, False, "multinomial only supports floating-point dtypes for input"),
    (lambda T: T.tensor([0.1, 0.9]), 0, True, "cannot sample n_sample <= 0 samples"),
    (lambda T: T.tensor([0.1, 0.9]), -1, True, "cannot sample n_sample <= 0 samples"),
    (lambda T: T.tensor([0.1, 0.2, 0.7]), 4, False,
     "cannot sample n_sample > prob_dist.size(-1) samples without replacement"),
    (lambda T: T.zeros(2, 0), 2, False, "cannot sample n_sample > prob_dist.size(-1) samples without replacement"),
    (lambda T: T.tensor([0.0, 0.0, 0.0]), 1, True, "invalid multinomial distribution (sum of probabilities <= 0)"),
    (lambda T: T.tensor([0.0, 0.0, 0.0]), 1, False, "invalid multinomial distribution (sum of probabilities <= 0)"),
    (lambda T: T.tensor([[1.0, 2.0], [0.0, 0.0]]), 1, False,
     "invalid multinomial distribution (sum of probabilities <= 0)"),
    (lambda T: T.tensor([-1.0, 0.0, 2.0]), 1, True, "probability tensor contains either `inf`, `nan` or element < 0"),
    (lambda T: T.tensor([1.0, float("inf"), 2.0]), 1, True,
     "probability tensor contains either `inf`, `nan` or element < 0"),
    (lambda T: T.tensor([1.0, float("nan"), 2.0]), 1, False,
     "probability tensor contains either `inf`, `nan` or element < 0"),
]


@pytest.mark.parametrize("make,n,repl,msg", ERRORS, ids=[e[3][:30] + str(i) for i, e in enumerate(ERRORS)])
def test_multinomial_errors(make, n, repl, msg):
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        torch.multinomial(make(torch), n, repl)
    with pytest.raises(RuntimeError, match=re.escape(msg)):
        vt.multinomial(make(vt), n, repl)


def test_multinomial_reproducible():
    p = vt.tensor([[0.1, 0.5, 0.4, 0.0, 1.0]] * 3)
    a = vt.multinomial(p, 4, generator=vt.Generator().manual_seed(7)).numpy()
    b = vt.multinomial(p, 4, generator=vt.Generator().manual_seed(7)).numpy()
    c = vt.multinomial(p, 40, True, generator=vt.Generator().manual_seed(8)).numpy()
    d = vt.multinomial(p, 40, True, generator=vt.Generator().manual_seed(9)).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(c, d)
    vt.manual_seed(3)
    e = vt.multinomial(p, 40, True).numpy()
    vt.manual_seed(3)
    np.testing.assert_array_equal(vt.multinomial(p, 40, True).numpy(), e)


def _draws(g=None):
    kw = {} if g is None else {"generator": g}
    p = vt.tensor([0.3, 0.3, 0.4])
    return [vt.rand(5, **kw).numpy(), vt.randn(4, **kw).numpy(), vt.randint(0, 100, (6,), **kw).numpy(),
            vt.randperm(9, **kw).numpy(), vt.multinomial(p, 8, True, **kw).numpy()]


def _same(xs, ys):
    return all(np.array_equal(x, y) for x, y in zip(xs, ys))


def test_generator_state_roundtrip():
    g = vt.Generator().manual_seed(11)
    vt.rand(3, generator=g)  # mid-stream
    st = g.get_state()
    assert st.dtype is vt.uint8 and st.ndim == 1 and st.numel() > 0
    first = _draws(g)
    assert not _same(_draws(g), first)  # the stream moves on
    assert g.set_state(st) is g
    assert _same(_draws(g), first)
    # the returned state is a copy: changing it changes nothing
    st2 = g.get_state()
    st2.zero_()
    assert not _same(_draws(g), first)
    # a state moves between generators (the seed travels with it)
    h = vt.Generator().manual_seed(999)
    h.set_state(st)
    assert h.initial_seed() == 11
    assert _same(_draws(h), first)
    # torch: get_state is a uint8 CPU tensor too
    assert torch.Generator().get_state().dtype == torch.uint8


def test_default_rng_state_roundtrip():
    vt.manual_seed(5)
    vt.randn(7)
    st = vt.get_rng_state()
    first = _draws()
    vt.set_rng_state(st)
    assert _same(_draws(), first)
    vt.set_rng_state(st.clone())
    assert _same(_draws(), first)
    np.testing.assert_array_equal(vt.get_rng_state().numpy(), vt.default_generator.get_state().numpy())


def test_generator_state_errors():
    g = vt.Generator().manual_seed(4)
    st = g.get_state()
    expect = _draws(vt.Generator().manual_seed(4))
    with pytest.raises(TypeError):
        g.set_state([1, 2, 3])
    with pytest.raises(TypeError):
        torch.Generator().set_state([1, 2, 3])
    with pytest.raises(TypeError):
        g.set_state(st.to(vt.float32))
    with pytest.raises(TypeError):
        torch.set_rng_state(torch.zeros(3))
    with pytest.raises(RuntimeError):
        g.set_state(vt.zeros(3, dtype=vt.uint8))
    with pytest.raises(RuntimeError):
        torch.set_rng_state(torch.zeros(3, dtype=torch.uint8))
    with pytest.raises(RuntimeError):
        g.set_state(st[: st.numel() // 2].clone())  # truncated
    with pytest.raises(RuntimeError):
        vt.set_rng_state(vt.zeros(5, dtype=vt.uint8))
    assert _same(_draws(g), expect)  # failed set_state calls left the generator alone
