"""DistributedDataParallel with torch's constructor and behaviour for the common case.

Note [DDP through gradient hooks]: at construction rank 0's parameters and buffers are broadcast to every rank. Each
parameter that requires grad gets a tensor hook; the autograd engine calls it once per backward with the
parameter's whole gradient (all uses summed), before accumulation into ``.grad``. The hook all-reduces a contiguous
copy of that gradient and returns it divided by the world size, so ``.grad`` accumulates the mean over the ranks.
The hooks fire in backward order, and with NCCL the all-reduce is enqueued on the current stream, so communication
overlaps the rest of the backward pass as torch's buckets do (one call per parameter instead of per bucket).
Parameters unused in a backward get no hook call on any rank, which stays consistent as long as every rank uses the
same parameters (torch's find_unused_parameters=False contract). ``no_sync()`` is not supported: gradients
accumulated locally would not be reduced later by per-gradient hooks, so it raises instead of training wrongly.
"""
from __future__ import annotations

import contextlib

from .. import Module


def _dist():
    from ... import distributed
    return distributed


class DistributedDataParallel(Module):
    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=None, find_unused_parameters=False, gradient_as_bucket_view=False,
                 static_graph=False):
        super().__init__()
        dist = _dist()
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel: the default process group is not initialized; call "
                               "vibetensor.torch.distributed.init_process_group() first")
        if process_group is not None:
            raise NotImplementedError("DistributedDataParallel: only the default process group is supported")
        if find_unused_parameters:
            raise NotImplementedError("DistributedDataParallel: find_unused_parameters=True is not supported; every "
                                      "rank must use the same parameters in each backward")
        self.module = module
        self.world_size = dist.get_world_size()
        self.broadcast_buffers = broadcast_buffers
        self._hooks = []
        params = [p for p in module.parameters() if p.requires_grad]
        from ... import no_grad
        with no_grad():
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor.detach(), 0)
        if self.world_size > 1:
            for param in params:
                self._hooks.append(param.register_hook(self._average))

    def _average(self, grad):
        dist = _dist()
        reduced = grad.contiguous() if not grad.is_contiguous() else grad.clone()
        dist.all_reduce(reduced)
        return reduced.mul_(1.0 / self.world_size)

    def forward(self, *args, **kwargs):
        if self.broadcast_buffers and self.world_size > 1 and self.training:
            buffers = list(self.module.buffers())
            if buffers:
                from ... import no_grad
                with no_grad():
                    for buffer in buffers:
                        _dist().broadcast(buffer.detach(), 0)
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        raise NotImplementedError("DistributedDataParallel.no_sync() is not supported (Note [DDP through gradient "
                                  "hooks]); accumulate over a larger batch per step instead")
        yield  # pragma: no cover
