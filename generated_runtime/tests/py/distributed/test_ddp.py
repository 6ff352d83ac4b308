"""DistributedDataParallel (Note [DDP through gradient hooks]): on 2 CPU ranks that start from different weights,
DDP makes rank 0's weights everyone's, and a few SGD steps on each rank's half of every batch give the weights of
one process training on the whole batches; a parameter used twice and a non-contiguous gradient are covered; errors
for what is not supported. no_sync() is in test_ddp_no_sync.py."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

import vibetensor.torch as vt
import vibetensor.torch.distributed as dist
from vibetensor.torch.nn.parallel import DistributedDataParallel

from ddp_runs import DEVICES, one_and_two_ranks

TRAIN = textwrap.dedent('''
    import json, os, sys
    import numpy as np
    import vibetensor.torch as vt
    from vibetensor.torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(6, 16)
            self.out = nn.Linear(16, 3)
            self.scale = nn.Parameter(vt.ones(16))

        def forward(self, x):
            h = nn.functional.gelu(self.inp(x)) * self.scale
            h = h + self.scale.unsqueeze(0).expand(x.shape[0], 16)  # `scale` used twice; an expanded use
            return self.out(h)

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = "cpu"
    if sys.argv[2] == "cuda":
        vt.cuda.set_device(rank)
        device = f"cuda:{rank}"
    vt.manual_seed(100 + rank)  # every rank starts from different weights: DDP must broadcast rank 0's
    model = Net().to(device)
    if world > 1:
        import vibetensor.torch.distributed as dist
        from vibetensor.torch.nn.parallel import DistributedDataParallel
        dist.init_process_group("nccl" if device != "cpu" else "gloo")
        model = DistributedDataParallel(model)
        inner = model.module
    else:
        vt.manual_seed(100)  # rank 0's weights
        model = Net().to(device)
        inner = model
    opt = vt.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    for step in range(4):
        x = rng.standard_normal((8, 6)).astype(np.float32)
        y = rng.integers(0, 3, size=8)
        rows = slice(rank * 8 // world, (rank + 1) * 8 // world)
        loss = nn.functional.cross_entropy(model(vt.tensor(x[rows]).to(device)), vt.tensor(y[rows]).to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
    state = {k: v.cpu().tolist() for k, v in inner.state_dict().items()}
    keys = sorted(model.state_dict())
    with open(sys.argv[1] + f".{rank}.json", "w") as f:
        json.dump({"state": state, "keys": keys}, f)
''')


@DEVICES
def test_two_ranks_train_like_one_process(tmp_path: Path, device: str):
    single, ranks = one_and_two_ranks(tmp_path, TRAIN, device)
    assert ranks[0]["keys"] == ["module." + k for k in single["keys"]]  # torch's DDP state_dict prefix
    for name, values in single["state"].items():
        for r in ranks:
            np.testing.assert_allclose(r["state"][name], values, rtol=1e-5, atol=1e-6, err_msg=name)
        assert ranks[0]["state"][name] == ranks[1]["state"][name], name  # identical bits on both ranks


def test_ddp_needs_a_process_group_and_refuses_unsupported_options():
    model = vt.nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match="process group is not initialized"):
        DistributedDataParallel(model)
    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:0", rank=0, world_size=1)
    try:
        with pytest.raises(NotImplementedError, match="find_unused_parameters"):
            DistributedDataParallel(model, find_unused_parameters=True)
        ddp = DistributedDataParallel(model)
        with ddp.no_sync():  # Note [DDP no_sync]; its training behaviour is in test_ddp_no_sync.py
            assert not ddp.require_backward_grad_sync
        assert ddp.require_backward_grad_sync
        x = vt.ones(3, 2)
        np.testing.assert_array_equal(ddp(x).detach().numpy(), model(x).detach().numpy())
    finally:
        dist.destroy_process_group()
