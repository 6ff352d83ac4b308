"""DistributedDataParallel.no_sync() (Note [DDP no_sync]): on 2 CPU ranks, gradient accumulation over K micro-batches,
the first K-1 backwards inside no_sync() and the last outside, gives the weights of one process training on the
whole batches; inside no_sync() nothing is communicated (the collectives are counted) and each rank's gradient is
its own; the synchronized backward makes one all-reduce per parameter; a forward outside no_sync() whose backward
runs inside still synchronizes (torch: the forward decides). The same runs over NCCL where two GPUs exist."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from ddp_runs import DEVICES, one_and_two_ranks

TRAIN = textwrap.dedent('''
    import contextlib, json, os, sys
    import numpy as np
    import vibetensor.torch as vt
    from vibetensor.torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(5, 12)
            self.out = nn.Linear(12, 3)
            self.scale = nn.Parameter(vt.ones(12))
            self.register_buffer("offset", vt.zeros(12))  # broadcast by DDP's forward, but not inside no_sync

        def forward(self, x):
            h = nn.functional.gelu(self.inp(x)) * self.scale + self.offset
            h = h + self.scale.unsqueeze(0).expand(x.shape[0], 12)  # `scale` used twice; an expanded use
            return self.out(h)

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    K, ROWS = 3, 12  # micro-batches per step, rows per global batch
    device = "cpu"
    if sys.argv[2] == "cuda":
        vt.cuda.set_device(rank)
        device = f"cuda:{rank}"
    calls = {"all_reduce": 0, "broadcast": 0}
    vt.manual_seed(100 + rank)  # every rank starts from different weights: DDP must broadcast rank 0's
    model = Net().to(device)
    if world > 1:
        import vibetensor.torch.distributed as dist
        from vibetensor.torch.nn.parallel import DistributedDataParallel
        dist.init_process_group("nccl" if device != "cpu" else "gloo")

        def counted(name):
            original = getattr(dist, name)

            def call(*args, **kwargs):
                calls[name] += 1
                return original(*args, **kwargs)
            return call
        dist.all_reduce, dist.broadcast = counted("all_reduce"), counted("broadcast")
        model = DistributedDataParallel(model)
        inner = model.module
    else:
        vt.manual_seed(100)  # rank 0's weights
        model = Net().to(device)
        inner = model
    n_params = len(list(inner.parameters()))
    opt = vt.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    log = {"inside": [], "sync": [], "local_grads": []}
    for step in range(3):
        x = rng.standard_normal((ROWS, 5)).astype(np.float32)
        y = rng.integers(0, 3, size=ROWS)
        opt.zero_grad()
        if world == 1:  # the reference: one backward over the whole batch
            nn.functional.cross_entropy(model(vt.tensor(x).to(device)), vt.tensor(y).to(device)).backward()
        else:
            mine = np.arange(rank * ROWS // world, (rank + 1) * ROWS // world)
            for m, rows in enumerate(np.array_split(mine, K)):
                last = m == K - 1
                before = dict(calls)
                with (contextlib.nullcontext() if last else model.no_sync()):
                    logits = model(vt.tensor(x[rows]).to(device))
                    loss = nn.functional.cross_entropy(logits, vt.tensor(y[rows]).to(device)) / K
                    loss.backward()
                done = {k: calls[k] - before[k] for k in calls}
                (log["sync"] if last else log["inside"]).append(done)
                if m == K - 2 and step == 0:
                    log["local_grads"] = inner.out.weight.grad.cpu().tolist()
        opt.step()
    if world > 1:
        # torch's rule: the forward decides; a forward outside no_sync whose backward runs inside still synchronizes
        opt.zero_grad()
        before = calls["all_reduce"]
        loss = model(vt.tensor(x[:2]).to(device)).sum()
        with model.no_sync():
            loss.backward()
        log["forward_outside"] = calls["all_reduce"] - before
        log["forward_outside_grad"] = inner.out.weight.grad.cpu().tolist()
    state = {k: v.cpu().tolist() for k, v in inner.state_dict().items()}
    with open(sys.argv[1] + f".{rank}.json", "w") as f:
        json.dump({"state": state, "log": log, "n_params": n_params}, f)
''')


@DEVICES
def test_no_sync_accumulation_trains_like_one_process(tmp_path: Path, device: str):
    single, ranks = one_and_two_ranks(tmp_path, TRAIN, device)
    n_params = ranks[0]["n_params"]
    for r in ranks:
        log = r["log"]
        assert len(log["inside"]) == 3 * 2 and len(log["sync"]) == 3
        # nothing communicated inside no_sync: no all-reduce from the gradient hooks, no buffer broadcast
        assert all(done == {"all_reduce": 0, "broadcast": 0} for done in log["inside"]), log["inside"]
        # the synchronized backward: one all-reduce per parameter (and the forward's buffer broadcast)
        assert all(done == {"all_reduce": n_params, "broadcast": 1} for done in log["sync"]), log["sync"]
        assert log["forward_outside"] == n_params
    # inside no_sync each rank's gradient is its own (the ranks see different rows) ...
    assert not np.allclose(ranks[0]["log"]["local_grads"], ranks[1]["log"]["local_grads"])
    # ... a synchronized backward leaves the same bits on both ranks
    assert ranks[0]["log"]["forward_outside_grad"] == ranks[1]["log"]["forward_outside_grad"]
    for name, values in single["state"].items():
        for r in ranks:
            np.testing.assert_allclose(r["state"][name], values, rtol=1e-5, atol=1e-6, err_msg=name)
        assert ranks[0]["state"][name] == ranks[1]["state"][name], name  # identical bits on both ranks
