"""Optimizer steps and LR schedules against torch.optim from identical parameters and gradients."""
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt


def make_params(seed=0, shapes=((4, 3), (3,), (2, 2, 2))):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    vps = [vt.nn.Parameter(vt.from_numpy(a.copy())) for a in arrays]
    tps = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in arrays]
    return vps, tps


def run_steps(make_v, make_t, steps=6, seed=0):
    vps, tps = make_params(seed)
    ov, ot = make_v(vps), make_t(tps)
    rng = np.random.default_rng(seed + 100)
    for _ in range(steps):
        ov.zero_grad()
        ot.zero_grad()
        for vp, tp in zip(vps, tps):
            g = rng.standard_normal(tuple(tp.shape)).astype(np.float32)
            vp.grad = vt.from_numpy(g.copy())
            tp.grad = torch.from_numpy(g.copy())
        ov.step()
        ot.step()
        for vp, tp in zip(vps, tps):
            np.testing.assert_allclose(vp.detach().numpy(), tp.detach().numpy(), rtol=1e-5, atol=1e-6)
    return ov, ot, vps, tps


OPTIMIZERS = [
    ("sgd", lambda m, p: m.optim.SGD(p, lr=0.1)),
    ("sgd_momentum", lambda m, p: m.optim.SGD(p, lr=0.1, momentum=0.9)),
    ("sgd_nesterov_wd", lambda m, p: m.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("sgd_dampening", lambda m, p: m.optim.SGD(p, lr=0.05, momentum=0.5, dampening=0.3, maximize=True)),
    ("adam", lambda m, p: m.optim.Adam(p, lr=1e-2)),
    ("adam_wd_amsgrad", lambda m, p: m.optim.Adam(p, lr=1e-2, weight_decay=0.1, amsgrad=True)),
    ("adamw", lambda m, p: m.optim.AdamW(p, lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1)),
    ("adamw_default", lambda m, p: m.optim.AdamW(p)),
]


@pytest.mark.parametrize("name,make", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_optimizer_matches_torch(name, make):
    run_steps(lambda p: make(vt, p), lambda p: make(torch, p))


def test_param_groups_and_state_dict_roundtrip():
    vps, tps = make_params(3)
    make = lambda m, p: m.optim.AdamW([{"params": p[:2]}, {"params": p[2:], "lr": 1e-3, "weight_decay": 0.0}],
                                      lr=1e-2)
    ov, ot, vps, tps = run_steps(lambda p: make(vt, p), lambda p: make(torch, p), steps=3, seed=3)
    sv, st = ov.state_dict(), ot.state_dict()
    assert sorted(sv["state"].keys()) == sorted(st["state"].keys())
    assert [g["params"] for g in sv["param_groups"]] == [g["params"] for g in st["param_groups"]]
    for k in st["state"]:
        for name in ("exp_avg", "exp_avg_sq"):
            np.testing.assert_allclose(sv["state"][k][name].numpy(), st["state"][k][name].numpy(), rtol=1e-5,
                                       atol=1e-7)
        assert float(sv["state"][k]["step"].item()) == float(st["state"][k]["step"].item())
    # a fresh optimizer loaded from the state dict continues identically
    ov2 = vt.optim.AdamW([{"params": vps[:2]}, {"params": vps[2:], "lr": 1e-3, "weight_decay": 0.0}], lr=1e-2)
    ov2.load_state_dict(sv)
    rng = np.random.default_rng(9)
    for vp, tp in zip(vps, tps):
        g = rng.standard_normal(tuple(tp.shape)).astype(np.float32)
        vp.grad = vt.from_numpy(g.copy())
        tp.grad = torch.from_numpy(g.copy())
    ov2.step()
    ot.step()
    for vp, tp in zip(vps, tps):
        np.testing.assert_allclose(vp.detach().numpy(), tp.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_zero_grad_set_to_none_and_zero():
    vps, _ = make_params()
    opt = vt.optim.SGD(vps, lr=0.1)
    for p in vps:
        p.grad = vt.ones(*p.shape)
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and float(p.grad.abs().sum().item()) == 0.0 for p in vps)
    opt.zero_grad()
    assert all(p.grad is None for p in vps)


def test_bad_arguments_raise():
    vps, _ = make_params()
    with pytest.raises(ValueError):
        vt.optim.SGD(vps, lr=-1.0)
    with pytest.raises(ValueError):
        vt.optim.Adam(vps, betas=(1.5, 0.9))
    with pytest.raises(ValueError):
        vt.optim.SGD([], lr=0.1)
    with pytest.raises(ValueError):
        vt.optim.SGD(vps, lr=0.1, nesterov=True)


SCHEDULES = [
    ("lambda_warmup_cosine", lambda m, o: m.optim.lr_scheduler.LambdaLR(
        o, lambda s: (s + 1) / 5 if s < 5 else 0.5 * (1 + math.cos(math.pi * min(1.0, (s - 5) / 15))))),
    ("cosine", lambda m, o: m.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7, eta_min=1e-4)),
    ("step", lambda m, o: m.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
    ("linear", lambda m, o: m.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=4)),
]


@pytest.mark.parametrize("name,make", SCHEDULES, ids=[s[0] for s in SCHEDULES])
def test_lr_schedule_matches_torch(name, make):
    vps, tps = make_params()
    ov, ot = vt.optim.SGD(vps, lr=0.1), torch.optim.SGD(tps, lr=0.1)
    sv, st = make(vt, ov), make(torch, ot)
    for _ in range(20):
        assert sv.get_last_lr() == pytest.approx(st.get_last_lr(), rel=1e-12, abs=1e-15)
        ov.step()
        ot.step()
        sv.step()
        st.step()


def test_sequential_warmup_then_cosine_matches_torch():
    vps, tps = make_params()
    res = []
    for m, ps in ((vt, vps), (torch, tps)):
        o = m.optim.AdamW(ps, lr=3e-3)
        warm = m.optim.lr_scheduler.LinearLR(o, start_factor=0.01, total_iters=5)
        cos = m.optim.lr_scheduler.CosineAnnealingLR(o, T_max=15)
        s = m.optim.lr_scheduler.SequentialLR(o, [warm, cos], milestones=[5])
        lrs = []
        for _ in range(20):
            lrs.append(s.get_last_lr()[0])
            o.step()
            s.step()
        res.append(lrs)
    assert res[0] == pytest.approx(res[1], rel=1e-12)


# ---- Note [Fused Adam step]: the default and fused=True run _fused_adam_ per group and step count on the CPU
FUSED_FLAVOURS = [
    ("adam_foreach_false", lambda m, p: m.optim.Adam(p, lr=1e-2, foreach=False)),
    ("adam_fused_maximize_l2", lambda m, p: m.optim.Adam(p, lr=1e-2, weight_decay=0.05, maximize=True, fused=True)),
    ("adamw_fused", lambda m, p: m.optim.AdamW(p, lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1, fused=True)),
]


@pytest.mark.parametrize("name,make", FUSED_FLAVOURS, ids=[o[0] for o in FUSED_FLAVOURS])
def test_fused_and_per_parameter_flavours_match_torch(name, make):
    run_steps(lambda p: make(vt, p), lambda p: make(torch, p))


def count_fused_calls(monkeypatch):
    import vibetensor.torch.optim.adam as adam_mod
    calls = []
    real = adam_mod.call

    def spy(name, *args):
        calls.append((name, len(args[0])))
        return real(name, *args)

    monkeypatch.setattr(adam_mod, "call", spy)
    return calls


@pytest.mark.parametrize("flags,expected", [({}, [("_fused_adam_", 3)] * 2), ({"fused": True}, [("_fused_adam_", 3)] * 2),
                                            ({"foreach": False}, []), ({"amsgrad": True}, [])])
def test_one_fused_call_per_group_and_step(monkeypatch, flags, expected):
    calls = count_fused_calls(monkeypatch)
    vps, _ = make_params()
    opt = vt.optim.Adam(vps, lr=1e-2, **flags)
    for _ in range(2):
        for p in vps:
            p.grad = vt.ones(*p.shape)
        opt.step()
    assert calls == expected


def test_params_with_different_step_counts_and_layouts_match_torch(monkeypatch):
    """A parameter that skips steps has its own step count (its own call); a non-contiguous one takes the
    per-parameter ops; both end where torch's AdamW does."""
    calls = count_fused_calls(monkeypatch)
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((5, 4), (6,), (3, 7))]
    vps = [vt.nn.Parameter(vt.from_numpy(a.copy())) for a in arrays[:2]]
    tps = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in arrays[:2]]
    vps.append(vt.nn.Parameter(vt.from_numpy(arrays[2].T.copy()).t()))  # (3, 7) viewed with transposed strides
    tps.append(torch.nn.Parameter(torch.from_numpy(arrays[2].copy())))
    assert not vps[2].is_contiguous()
    ov = vt.optim.AdamW(vps, lr=1e-2, weight_decay=0.1)
    ot = torch.optim.AdamW(tps, lr=1e-2, weight_decay=0.1)
    for step in range(4):
        for i, (vp, tp) in enumerate(zip(vps, tps)):
            if i == 1 and step % 2:
                vp.grad, tp.grad = None, None  # skipped: this parameter's step count falls behind
                continue
            g = rng.standard_normal(tuple(tp.shape)).astype(np.float32)
            vp.grad, tp.grad = vt.from_numpy(g.copy()), torch.from_numpy(g.copy())
        ov.step()
        ot.step()
    for vp, tp in zip(vps, tps):
        np.testing.assert_allclose(vp.detach().numpy(), tp.detach().numpy(), rtol=1e-5, atol=1e-6)
    # the strided one never fused; at the third step the two others have step counts 3 and 2: one call each
    assert [n for _, n in calls] == [2, 1, 1, 1, 1]
    assert float(ov.state[vps[1]]["step"].item()) == 2.0


def test_fused_and_foreach_together_raise_as_torch():
    vps, _ = make_params()
    with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together"):
        vt.optim.AdamW(vps, fused=True, foreach=True)


def test_moments_in_another_layout_fall_back_to_per_parameter_ops():
    """A state_dict can bring moments that _fused_adam_ refuses (here a transposed exp_avg): it writes nothing and
    that group's parameters take the per-parameter ops, ending where torch does."""
    vps, tps = make_params(shapes=((4, 3),))
    ov, ot = vt.optim.Adam(vps, lr=1e-2), torch.optim.Adam(tps, lr=1e-2)
    rng = np.random.default_rng(9)
    for step in range(3):
        g = rng.standard_normal((4, 3)).astype(np.float32)
        vps[0].grad, tps[0].grad = vt.from_numpy(g.copy()), torch.from_numpy(g.copy())
        ov.step()
        ot.step()
        if step == 0:
            m = ov.state[vps[0]]["exp_avg"].numpy()
            ov.state[vps[0]]["exp_avg"] = vt.from_numpy(m.T.copy()).t()
            assert not ov.state[vps[0]]["exp_avg"].is_contiguous()
    np.testing.assert_allclose(vps[0].detach().numpy(), tps[0].detach().numpy(), rtol=1e-5, atol=1e-6)
