"""DistributedDataParallel with torch's constructor and behaviour for the common case.

Note [DDP through gradient hooks]: at construction rank 0's parameters and buffers are broadcast to every rank. Each
parameter that requires grad gets a tensor hook; the autograd engine calls it once per backward with the
parameter's whole gradient (all uses summed), before accumulation into ``.grad``. The hook all-reduces a contiguous
copy of that gradient and returns it divided by the world size, so ``.grad`` accumulates the mean over the ranks.
The hooks fire in backward order, and with NCCL the all-reduce is enqueued on the current stream, so communication
overlaps the rest of the backward pass as torch's buckets do (one call per parameter instead of per bucket).
Parameters unused in a backward get no hook call on any rank, which stays consistent as long as every rank uses the
same parameters (torch's find_unused_parameters=False contract).

Note [DDP no_sync]: as in torch, whether a backward synchronizes is decided by the forward that built its graph: a
forward run inside ``no_sync()`` (with grad enabled) marks the next backward local, one outside marks it synchronized
(``require_backward_grad_sync``; the forward inside no_sync also skips the buffer broadcast, so nothing is sent).
In a local backward the hook returns None: the engine accumulates the rank's own gradient into ``.grad`` and the
parameter is remembered as holding unsynchronized gradient. In the next synchronized backward the hook of such a
parameter all-reduces ``.grad + grad`` (what ``.grad`` would become), divides by the world size, clears ``.grad`` and
returns the mean, so AccumulateGrad (which reads ``.grad`` after the hooks ran) stores exactly the mean: torch's
result, the same bits on every rank, and still one all-reduce per parameter from inside backward, overlapping the
rest of the backward pass as before. A parameter with no local gradient keeps the plain path (all-reduce the
incoming gradient only).
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
        self.require_backward_grad_sync = True  # torch's name; no_sync() clears it (Note [DDP no_sync])
        self._sync_backward = True  # decided by the last forward with grad enabled
        self._unsynced: set[int] = set()  # indices of parameters whose .grad holds local, unreduced gradient
        self._hooks = []
        params = [p for p in module.parameters() if p.requires_grad]
        from ... import no_grad
        with no_grad():
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor.detach(), 0)
        if self.world_size > 1:
            for index, param in enumerate(params):
                self._hooks.append(param.register_hook(self._make_hook(index, param)))

    def _make_hook(self, index, param):
        return lambda grad: self._average(index, param, grad)

    def _average(self, index, param, grad):
        if not self._sync_backward:
            self._unsynced.add(index)
            return None  # accumulate locally (Note [DDP no_sync])
        dist = _dist()
        local = param.grad if index in self._unsynced else None
        self._unsynced.discard(index)
        if local is not None:
            reduced = (local + grad).contiguous()
            param.grad = None  # AccumulateGrad stores the returned mean as the whole gradient
        else:
            reduced = grad.contiguous() if not grad.is_contiguous() else grad.clone()
        dist.all_reduce(reduced)
        return reduced.mul_(1.0 / self.world_size)

    def forward(self, *args, **kwargs):
        from ... import is_grad_enabled
        if is_grad_enabled():
            self._sync_backward = self.require_backward_grad_sync
        if self.broadcast_buffers and self.world_size > 1 and self.training and self.require_backward_grad_sync:
            buffers = list(self.module.buffers())
            if buffers:
                from ... import no_grad
                with no_grad():
                    for buffer in buffers:
                        _dist().broadcast(buffer.detach(), 0)
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Inside, forward/backward accumulate gradients locally without communication; the first backward of a
        forward outside averages the accumulated gradients over the ranks (Note [DDP no_sync])."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous
