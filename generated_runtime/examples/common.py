"""Shared helpers for the training workloads (reversal.py, vit.py, minigpt.py).

Policy: every workload is written against the API subset that ``torch`` and ``vibetensor.torch`` share, and takes
that framework module as a parameter ``T``. Everything that must be identical between the two frameworks is made
here with numpy, never with the framework's own random generator:
- initial weights: ``init_parameters`` draws each parameter from its own numpy generator seeded by
  (seed, crc32(parameter name)) and loads the arrays through ``load_state_dict``;
- batches: each workload draws batch ``step`` from ``numpy_rng(seed, step)``, so batch k does not depend on how
  many batches were drawn before it.
Models have no buffers and no dropout, so two runs that start from the same weights and see the same batches
differ only in the framework's arithmetic.

Data parallelism (Note [Data-parallel workloads]): started by a launcher that sets torchrun's variables (``python -m
vibetensor.torch.distributed.run --nproc-per-node N`` or ``torchrun``), a workload trains on N ranks: every rank
builds the same weights (and rank 0's are broadcast anyway, as DistributedDataParallel does), takes its 1/N of each
global batch (``shard_rows``), and averages the gradients over the ranks after backward (``average_gradients``: one
flat all-reduce). Because every loss is a mean over equal shards, N ranks compute the gradient of the same global
batch as one process does, so their loss curves agree with a one-process run up to summation order. The printed
loss is the mean over the ranks and the throughput counts the whole global batch.

Units: step times in seconds (wall clock, measured around forward + backward + optimizer step and the ``.item()``
that waits for the device); throughput in items per second (tokens or images).
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import os
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

FRAMEWORK_MODULES = {"torch": "torch", "vibetensor": "vibetensor.torch"}
CHECKPOINT_FORMAT = "vt-example-checkpoint/1"


def load_framework(name: str) -> Any:
    """``torch`` or ``vibetensor`` (short names), or any importable module path that mirrors torch's API."""
    module_name = FRAMEWORK_MODULES.get(name, name)
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"cannot import framework {name!r} (module {module_name!r}): {exc}") from exc


def numpy_rng(seed: int, *stream: int) -> np.random.Generator:
    """A generator that depends only on (seed, *stream): independent of draw order and of the framework."""
    return np.random.default_rng([seed, *stream])


def init_parameters(T: Any, model: Any, seed: int, std: float = 0.02) -> None:
    """Overwrite every parameter with numpy-made values. Rule by name and rank: ``*bias`` -> 0, other rank-1
    parameters (norm scales) -> 1, everything else (linear and embedding weights, positional tables) ->
    normal(0, std). The result depends only on the seed and the parameter names and shapes."""
    state = {}
    for name, param in model.named_parameters():
        shape = tuple(param.shape)
        if name.endswith("bias"):
            values = np.zeros(shape, dtype=np.float32)
        elif len(shape) == 1:
            values = np.ones(shape, dtype=np.float32)
        else:
            rng = numpy_rng(seed, zlib.crc32(name.encode()))
            values = (rng.standard_normal(shape) * std).astype(np.float32)
        state[name] = T.tensor(values)
    model.load_state_dict(state)


def to_device(T: Any, array: np.ndarray, device: str) -> Any:
    """A framework tensor holding a copy of ``array`` on ``device``."""
    tensor = T.tensor(array)
    return tensor if device == "cpu" else tensor.to(device)


def to_numpy(tensor: Any) -> np.ndarray:
    return np.asarray(tensor.detach().cpu().numpy())


def count_parameters(model: Any) -> int:
    return sum(math.prod(tuple(p.shape)) for p in model.parameters())


@dataclass
class TrainingJob:
    """Everything a training loop needs; built by each workload's ``prepare``.

    ``batch(step)`` returns the framework tensors of batch ``step``; ``loss(batch)`` returns a scalar loss tensor.
    """

    model: Any
    optimizer: Any
    batch: Callable[[int], tuple]
    loss: Callable[[tuple], Any]
    items_per_step: int
    item_unit: str  # "tok" or "img"
    clip_grad_norm: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # workload-specific extras (config, vocabulary, ...)
    workload: str = ""  # name in checkpoints (reversal, vit, minigpt)
    config: Any = None  # the profile's dataclass, stored in checkpoints
    device: str = "cpu"
    checkpoint_extra: dict[str, str] = field(default_factory=dict)  # more checkpoint metadata (miniGPT: vocabulary)


@dataclass
class StepRecord:
    step: int
    loss: float
    step_time_s: float
    items_per_s: float


def train(T: Any, job: TrainingJob, steps: int, on_step: Callable[[StepRecord], bool | None]) -> None:
    """Run ``steps`` optimizer steps. ``on_step`` sees every step; returning True stops the loop early."""
    job.model.train()
    _, world = data_parallel_rank(T)
    if world > 1:
        broadcast_parameters(T, job.model)
    for step in range(steps):
        batch = job.batch(step)  # made before the timer: data preparation is not the framework's work
        start = time.perf_counter()
        loss = job.loss(batch)
        job.optimizer.zero_grad()
        loss.backward()
        if world > 1:
            average_gradients(T, job.model, world)
            loss = mean_over_ranks(T, loss.detach(), world)
        if job.clip_grad_norm is not None:
            T.nn.utils.clip_grad_norm_(job.model.parameters(), job.clip_grad_norm)
        job.optimizer.step()
        loss_value = float(loss.item())  # waits for the device, so the time covers the whole step
        elapsed = time.perf_counter() - start
        record = StepRecord(step, loss_value, elapsed, job.items_per_step / max(elapsed, 1e-9))
        if on_step(record):
            return


def format_step(record: StepRecord, unit: str) -> str:
    return (f"step {record.step:5d} | loss {record.loss:.4f} | {record.step_time_s * 1e3:8.1f} ms"
            f" | {record.items_per_s:,.0f} {unit}/s")


def base_arg_parser(description: str, profiles: dict[str, Any]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--framework", default="torch",
                        help="torch, vibetensor, or an importable module path that mirrors torch (default torch)")
    parser.add_argument("--profile", default="ci", choices=sorted(profiles), help="size profile (default ci)")
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and batches (default 0)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--log-every", type=int, default=1, help="print every k-th step (default 1)")
    parser.add_argument("--batch", type=int, default=None,
                        help="global batch size (default: the profile's); split over the ranks when data parallel")
    parser.add_argument("--save", default=None, help="write a SafeTensors checkpoint of the weights after training")
    parser.add_argument("--load", default=None,
                        help="start from the weights of a SafeTensors checkpoint of the same workload and profile")
    return parser


def run_from_args(T: Any, job: TrainingJob, args: argparse.Namespace) -> list[StepRecord]:
    """Train with printing; the shared body of every workload's ``main``."""
    if args.steps < 1:
        raise SystemExit("--steps must be at least 1")
    records: list[StepRecord] = []

    rank, world = data_parallel_rank(T)

    def log(record: StepRecord) -> None:
        records.append(record)
        if rank == 0 and (record.step % max(args.log_every, 1) == 0 or record.step == args.steps - 1):
            print(format_step(record, job.item_unit), flush=True)

    if getattr(args, "load", None):
        weights, config, _ = read_checkpoint(args.load, job.workload)
        if config != config_json(job.config):
            raise ValueError(f"{args.load}: checkpoint config {config} differs from profile {args.profile!r}'s")
        load_weights(T, job.model, weights, job.device)
        if rank == 0:
            print(f"loaded weights from {args.load}", flush=True)
    if rank == 0:
        ranks = f" | {world} ranks (data parallel)" if world > 1 else ""
        print(f"{T.__name__} | {count_parameters(job.model):,} parameters | profile {args.profile}{ranks}", flush=True)
    train(T, job, args.steps, log)
    timed = [r.step_time_s for r in records[1:]] or [records[0].step_time_s]  # step 0 includes warm-up
    median = float(np.median(timed))
    if rank == 0:
        print(f"median step {median * 1e3:.1f} ms | {job.items_per_step / median:,.0f} {job.item_unit}/s", flush=True)
    if getattr(args, "save", None) and rank == 0:
        save_checkpoint(args.save, job.model, job.workload, job.config, **job.checkpoint_extra)
        print(f"saved {args.save}", flush=True)
    return records


# ---------------------------------------------------------------------------------------------------------------
# Data parallelism (see Note [Data-parallel workloads] at the top)


def setup_distributed(T: Any, device: str) -> str:
    """Join the process group when a launcher started this process (WORLD_SIZE > 1); returns the device to use.

    On CUDA each rank takes device LOCAL_RANK and the ``nccl`` backend; on the CPU the ``gloo`` backend.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return device
    dist = T.distributed
    if device.startswith("cuda"):
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        T.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return device


def with_batch(cfg: Any, batch: int | None) -> Any:
    """The profile's config with another global batch size (None: unchanged)."""
    if batch is None:
        return cfg
    if batch < 1:
        raise ValueError(f"--batch must be at least 1, got {batch}")
    return dataclasses.replace(cfg, batch=batch)


def data_parallel_rank(T: Any) -> tuple[int, int]:
    """(rank, world size) of the default process group, or (0, 1) without one."""
    dist = getattr(T, "distributed", None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard_rows(T: Any, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """This rank's equal share of the leading (batch) dimension of each array."""
    rank, world = data_parallel_rank(T)
    if world == 1:
        return arrays
    out = []
    for array in arrays:
        if array.shape[0] % world:
            raise ValueError(f"the global batch of {array.shape[0]} does not split evenly over {world} ranks")
        rows = array.shape[0] // world
        out.append(np.ascontiguousarray(array[rank * rows:(rank + 1) * rows]))
    return tuple(out)


def broadcast_parameters(T: Any, model: Any) -> None:
    """Rank 0's weights on every rank (they are equal already when every rank built them from the same seed)."""
    with T.no_grad():
        for param in model.parameters():
            T.distributed.broadcast(param.detach(), 0)


def average_gradients(T: Any, model: Any, world: int) -> None:
    """Replace every gradient by its mean over the ranks: one all-reduce of all gradients flattened together."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return
    with T.no_grad():
        flat = T.cat([g.reshape(-1) for g in grads])
        T.distributed.all_reduce(flat)
        flat.mul_(1.0 / world)
        offset = 0
        for g in grads:
            n = g.numel()
            g.copy_(flat[offset:offset + n].reshape(g.shape))
            offset += n


def mean_over_ranks(T: Any, value: Any, world: int) -> Any:
    """The mean of a tensor over the ranks (a fresh tensor; ``value`` is unchanged)."""
    total = value.clone()
    T.distributed.all_reduce(total)
    return total / world


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints
#
# Note [SafeTensors checkpoints]: a checkpoint is a SafeTensors file holding ``model.state_dict()`` under its own
# names (float32, CPU) and string metadata: ``format`` (CHECKPOINT_FORMAT), ``workload``, ``config`` (the profile's
# dataclass as JSON) and workload extras (miniGPT's vocabulary). It is written and read through vibetensor's
# SafeTensors implementation whichever framework trained the model, and it is byte-compatible with the
# ``safetensors`` package, so a model trained with torch samples with vibetensor and vice versa, and
# ``safetensors.torch.load_file`` opens it. Optimizer state is not saved: a checkpoint is for evaluation and
# sampling, and ``--load`` restarts training from its weights with a fresh optimizer.


def _vt_safetensors() -> Any:
    try:
        import vibetensor.torch  # noqa: F401  (the overlay: Tensor.numpy and friends)
        from vibetensor import safetensors
    except ImportError as exc:
        raise OSError(f"checkpoints are written with vibetensor.safetensors, which cannot be imported: {exc}") from exc
    return safetensors


def save_checkpoint(path: str | os.PathLike, model: Any, workload: str, config: Any, **extra: str) -> None:
    """Write ``model``'s weights and ``config`` (a dataclass) to the SafeTensors file ``path`` (atomically)."""
    import vibetensor.torch as vt

    tensors = {name: vt.tensor(np.ascontiguousarray(to_numpy(t), dtype=np.float32))
               for name, t in model.state_dict().items()}
    metadata = {"format": CHECKPOINT_FORMAT, "workload": workload,
                "config": json.dumps(dataclasses.asdict(config)), **extra}
    _vt_safetensors().save_file(tensors, path, metadata)


def read_checkpoint(path: str | os.PathLike, workload: str) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, str]]:
    """(weights as numpy arrays, config as a dict, all metadata) of a checkpoint of ``workload``; ValueError names
    the file and what is wrong (not SafeTensors, corrupt, another format or workload)."""
    st = _vt_safetensors()
    try:
        tensors = st.load_file(path)
        metadata = st.load_metadata(path) or {}
    except ValueError as exc:
        raise ValueError(f"{path}: not a readable SafeTensors checkpoint ({exc})") from exc
    if metadata.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: checkpoint format {metadata.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
    if metadata.get("workload") != workload:
        raise ValueError(f"{path}: a checkpoint of {metadata.get('workload')!r}, not of {workload!r}")
    try:
        config = json.loads(metadata["config"])
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path}: checkpoint metadata has no valid 'config' ({exc})") from exc
    weights = {name: np.array(t.numpy()) for name, t in tensors.items()}  # copies: the file mapping can go
    return weights, config, metadata


def load_weights(T: Any, model: Any, weights: dict[str, np.ndarray], device: str = "cpu") -> None:
    """Load numpy weights into ``model`` on ``device`` (strict: missing or extra names raise the framework's
    error)."""
    model.load_state_dict({name: to_device(T, values, device) for name, values in weights.items()})


def config_json(config: Any) -> dict[str, Any]:
    """A config dataclass as the plain dict its checkpoint stores (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))
