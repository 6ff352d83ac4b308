"""nn modules, functional, init, clip_grad_norm_ and a 20-step MLP training run against torch."""
import collections
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt


def copy_weights(vmod, tmod):
    """Loads torch's weights into the vibetensor module through load_state_dict (same names)."""
    sd = collections.OrderedDict((k, vt.from_numpy(v.detach().numpy().copy())) for k, v in tmod.state_dict().items())
    vmod.load_state_dict(sd)


def test_module_registration_and_traversal():
    class Block(vt.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = vt.nn.Linear(4, 4)
            self.norm = vt.nn.LayerNorm(4)
            self.register_buffer("scale", vt.ones(4))
            self.register_buffer("tmp", vt.zeros(1), persistent=False)

        def forward(self, x):
            return self.norm(self.fc(x)) * self.scale

    m = vt.nn.Sequential(Block(), vt.nn.GELU(), vt.nn.ModuleList([vt.nn.Linear(4, 2)]),
                         )
    names = [n for n, _ in m.named_parameters()]
    assert names == ["0.fc.weight", "0.fc.bias", "0.norm.weight", "0.norm.bias", "2.0.weight", "2.0.bias"]
    assert [n for n, _ in m.named_buffers()] == ["0.scale", "0.tmp"]
    # torch's order: a module's own parameters and buffers, then its children's
    assert list(m.state_dict().keys()) == ["0.scale"] + names
    assert [n for n, _ in m.named_modules()] == ["", "0", "0.fc", "0.norm", "1", "2", "2.0"]
    assert len(list(m.children())) == 3
    m.eval()
    assert all(not mod.training for mod in m.modules())
    m.train()
    assert all(mod.training for mod in m.modules())
    assert all(isinstance(p, vt.nn.Parameter) and p.requires_grad and p.is_leaf for p in m.parameters())
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen[-1] == "Sequential" and "Block" in seen
    d = vt.nn.ModuleDict({"a": vt.nn.ReLU(), "b": vt.nn.SiLU()})
    assert list(d.keys()) == ["a", "b"] and len(d) == 2


def test_default_linear_init_matches_torch_distribution_bounds():
    torch.manual_seed(0)
    m = vt.nn.Linear(64, 32)
    bound = 1 / math.sqrt(64)  # kaiming_uniform(a=sqrt(5)) and the bias both give U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    w, b = m.weight.detach().numpy(), m.bias.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.9 * bound  # actually spread over the range
    assert abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound
    e = vt.nn.Embedding(100, 16)
    assert abs(float(e.weight.detach().numpy().std()) - 1.0) < 0.1
    ln = vt.nn.LayerNorm(8)
    assert np.all(ln.weight.detach().numpy() == 1) and np.all(ln.bias.detach().numpy() == 0)


def test_init_functions():
    t = vt.empty(50, 40)
    vt.nn.init.xavier_uniform_(t)
    a = math.sqrt(6 / 90)
    assert np.abs(t.numpy()).max() <= a
    vt.nn.init.kaiming_uniform_(t, nonlinearity="relu")
    assert np.abs(t.numpy()).max() <= math.sqrt(2) * math.sqrt(3 / 40) + 1e-6
    vt.nn.init.zeros_(t)
    assert np.all(t.numpy() == 0)
    vt.nn.init.ones_(t)
    assert np.all(t.numpy() == 1)
    vt.nn.init.normal_(t, 0.0, 0.02)
    assert abs(t.numpy().std() - 0.02) < 0.003
    assert vt.nn.init.calculate_gain("tanh") == torch.nn.init.calculate_gain("tanh")


LAYERS = [
    ("linear", lambda m: m.nn.Linear(5, 3), (4, 5)),
    ("linear_nobias", lambda m: m.nn.Linear(5, 3, bias=False), (2, 4, 5)),
    ("layernorm", lambda m: m.nn.LayerNorm(5), (3, 5)),
    ("rmsnorm", lambda m: m.nn.RMSNorm(5, eps=1e-6), (3, 5)),
    ("gelu", lambda m: m.nn.GELU(), (3, 5)),
    ("gelu_tanh", lambda m: m.nn.GELU(approximate="tanh"), (3, 5)),
    ("relu", lambda m: m.nn.ReLU(), (3, 5)),
    ("silu", lambda m: m.nn.SiLU(), (3, 5)),
    ("mlp", lambda m: m.nn.Sequential(m.nn.Linear(5, 8), m.nn.Tanh(), m.nn.Linear(8, 2)), (4, 5)),
]


@pytest.mark.parametrize("name,make,shape", LAYERS, ids=[l[0] for l in LAYERS])
def test_layer_forward_backward_matches_torch(name, make, shape):
    torch.manual_seed(1)
    tm = make(torch)
    vm = make(vt)
    copy_weights(vm, tm)
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    xv, xt = vt.from_numpy(x.copy()).requires_grad_(), torch.from_numpy(x.copy()).requires_grad_()
    yv, yt = vm(xv), tm(xt)
    np.testing.assert_allclose(yv.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    (yv * yv).sum().backward()
    (yt * yt).sum().backward()
    np.testing.assert_allclose(xv.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    for (n, pv), (_, pt) in zip(vm.named_parameters(), tm.named_parameters()):
        np.testing.assert_allclose(pv.grad.numpy(), pt.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=n)


def test_embedding_with_padding_idx_matches_torch():
    torch.manual_seed(3)
    tm = torch.nn.Embedding(10, 4, padding_idx=0)
    vm = vt.nn.Embedding(10, 4, padding_idx=0)
    assert np.all(vm.weight.detach().numpy()[0] == 0)
    copy_weights(vm, tm)
    idx = np.array([[0, 3, 3, 9], [1, 0, 2, 3]])
    yv, yt = vm(vt.from_numpy(idx)), tm(torch.from_numpy(idx))
    np.testing.assert_allclose(yv.detach().numpy(), yt.detach().numpy())
    g = np.random.default_rng(0).standard_normal((2, 4, 4)).astype(np.float32)
    yv.backward(vt.from_numpy(g.copy()))
    yt.backward(torch.from_numpy(g.copy()))
    np.testing.assert_allclose(vm.weight.grad.numpy(), tm.weight.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_dropout_train_and_eval():
    d = vt.nn.Dropout(0.5)
    x = vt.ones(1000, requires_grad=True)
    y = d(x)
    vals = set(np.unique(y.detach().numpy()).tolist())
    assert vals <= {0.0, 2.0} and len(vals) == 2
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.detach().numpy())  # gradient is the scaled mask
    d.eval()
    np.testing.assert_array_equal(d(x).detach().numpy(), x.detach().numpy())


def test_load_state_dict_errors():
    m = vt.nn.Linear(3, 2)
    sd = m.state_dict()
    bad = dict(sd)
    del bad["bias"]
    bad["extra"] = vt.zeros(1)
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "bias"'):
        m.load_state_dict(bad)
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "extra"'):
        m.load_state_dict(bad)
    res = m.load_state_dict(bad, strict=False)
    assert res.missing_keys == ["bias"] and res.unexpected_keys == ["extra"]
    with pytest.raises(RuntimeError, match="size mismatch for weight"):
        m.load_state_dict({"weight": vt.zeros(2, 4), "bias": vt.zeros(2)})


def test_state_dict_roundtrip_and_zero_grad():
    a, b = vt.nn.Linear(3, 2), vt.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.weight.detach().numpy(), b.weight.detach().numpy())
    a(vt.ones(1, 3)).sum().backward()
    assert a.weight.grad is not None
    a.zero_grad()
    assert a.weight.grad is None


def test_module_to_dtype():
    m = vt.nn.Linear(3, 2).to(vt.float64)
    assert m.weight.dtype == vt.float64 and isinstance(m.weight, vt.nn.Parameter)
    y = m(vt.ones(1, 3, dtype=vt.float64))
    assert y.dtype == vt.float64


def test_clip_grad_norm_matches_torch():
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal(s).astype(np.float32) * 3 for s in ((4, 3), (5,))]
    vps = [vt.nn.Parameter(vt.zeros(*a.shape)) for a in arrays]
    tps = [torch.nn.Parameter(torch.zeros(*a.shape)) for a in arrays]
    for a, vp, tp in zip(arrays, vps, tps):
        vp.grad = vt.from_numpy(a.copy())
        tp.grad = torch.from_numpy(a.copy())
    nv = vt.nn.utils.clip_grad_norm_(vps, 1.0)
    nt = torch.nn.utils.clip_grad_norm_(tps, 1.0)
    assert float(nv.item()) == pytest.approx(float(nt.item()), rel=1e-6)
    for vp, tp in zip(vps, tps):
        np.testing.assert_allclose(vp.grad.numpy(), tp.grad.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf"), 3.0])
@pytest.mark.parametrize("foreach", [None, False])
def test_clip_grad_norm_list_ops_and_per_tensor_ops_match_torch(norm_type, foreach, monkeypatch):
    """foreach None takes _stacked_norms / _foreach_mul_ (Note [Clip lists]), foreach=False the per-tensor ops; both
    end where torch does, for float32 and float64 lists."""
    from vibetensor.torch.nn.utils import clip_grad
    rng = np.random.default_rng(6)
    for np_dt in (np.float32, np.float64):
        arrays = [np.asarray(rng.standard_normal(s) * 3, dtype=np_dt) for s in ((4, 3), (5,), (), (2, 2, 2))]
        vps = [vt.nn.Parameter(vt.from_numpy(np.zeros_like(a))) for a in arrays]
        tps = [torch.nn.Parameter(torch.from_numpy(np.zeros_like(a))) for a in arrays]
        for a, vp, tp in zip(arrays, vps, tps):
            vp.grad = vt.from_numpy(a.copy())
            tp.grad = torch.from_numpy(a.copy())
        seen = []
        real = clip_grad.call
        monkeypatch.setattr(clip_grad, "call", lambda name, *a: seen.append(name) or real(name, *a))
        nv = vt.nn.utils.clip_grad_norm_(vps, 1.0, norm_type=norm_type, foreach=foreach)
        monkeypatch.undo()
        assert seen == ([] if foreach is False else ["_stacked_norms", "_foreach_mul_"])
        nt = torch.nn.utils.clip_grad_norm_(tps, 1.0, norm_type=norm_type)
        rtol = 1e-6 if np_dt == np.float32 else 1e-12
        assert float(nv.item()) == pytest.approx(float(nt.item()), rel=rtol)
        for vp, tp in zip(vps, tps):
            np.testing.assert_allclose(vp.grad.numpy(), tp.grad.numpy(), rtol=rtol, atol=1e-7)


def test_clip_grad_norm_mixed_dtypes_take_the_per_tensor_ops():
    grads = [vt.ones(3), vt.ones(2, dtype=vt.float64)]
    ps = [vt.nn.Parameter(vt.zeros_like(g)) for g in grads]
    for p, g in zip(ps, grads):
        p.grad = g
    total = vt.nn.utils.clip_grad_norm_(ps, 1.0)
    assert float(total.item()) == pytest.approx(math.sqrt(5), rel=1e-6)
    assert float(ps[1].grad.sum().item()) == pytest.approx(2 / math.sqrt(5), rel=1e-5)


def _mlp(m):
    return m.nn.Sequential(m.nn.Linear(10, 32), m.nn.GELU(), m.nn.LayerNorm(32), m.nn.Linear(32, 32), m.nn.SiLU(),
                           m.nn.Linear(32, 4))


@pytest.mark.parametrize("opt", ["sgd", "adamw"])
def test_tiny_mlp_trains_like_torch(opt):
    torch.manual_seed(0)
    tm = _mlp(torch)
    vm = _mlp(vt)
    copy_weights(vm, tm)
    if opt == "sgd":
        ot = torch.optim.SGD(tm.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
        ov = vt.optim.SGD(vm.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
    else:
        ot = torch.optim.AdamW(tm.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
        ov = vt.optim.AdamW(vm.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 10)).astype(np.float32)
    y = (x[:, :4].argmax(1)).astype(np.int64)
    xv, xt, yv, yt = vt.from_numpy(x), torch.from_numpy(x), vt.from_numpy(y), torch.from_numpy(y)
    losses_v, losses_t = [], []
    for _ in range(20):
        ov.zero_grad()
        ot.zero_grad()
        lv = vt.nn.functional.cross_entropy(vm(xv), yv)
        lt = torch.nn.functional.cross_entropy(tm(xt), yt)
        lv.backward()
        lt.backward()
        vt.nn.utils.clip_grad_norm_(vm.parameters(), 1.0)
        torch.nn.utils.clip_grad_norm_(tm.parameters(), 1.0)
        ov.step()
        ot.step()
        losses_v.append(float(lv.item()))
        losses_t.append(float(lt.item()))
    np.testing.assert_allclose(losses_v, losses_t, rtol=0, atol=1e-5)
    assert losses_t[-1] < losses_t[0]


def test_deepcopy_keeps_parameters_as_leaves():
    import copy
    m = vt.nn.Linear(3, 2)
    m(vt.ones(1, 3)).sum().backward()
    c = copy.deepcopy(m)
    assert isinstance(c.weight, vt.nn.Parameter) and c.weight.is_leaf and c.weight.requires_grad
    assert c.weight.grad is not None
    np.testing.assert_array_equal(c.weight.detach().numpy(), m.weight.detach().numpy())
    with vt.no_grad():
        c.weight.add_(1)
    assert not np.array_equal(c.weight.detach().numpy(), m.weight.detach().numpy())
