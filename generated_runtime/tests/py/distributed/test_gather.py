"""vibetensor.torch.distributed's gathers (spec 06): all_gather, all_gather_into_tensor (both output forms),
broadcast_object_list and all_gather_object over 3 CPU ranks (`gloo`) against numpy references, and the clear errors
of a rank that passes another shape or dtype, a wrong list length, a wrong output shape or dtype, objects that
cannot be pickled. The `nccl` backend (ncclAllGather) runs where two or more GPUs and NCCL exist (the lent GPU
machines); the test that needs it says so when it skips."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import vibetensor.torch as vt
import vibetensor.torch.distributed as dist

RUN = [sys.executable, "-m", "vibetensor.torch.distributed.run"]

# (dtype, shape, transpose): every rank fills its input from (rank, case), so numpy gives every expected result.
CASES = [("float32", [2, 3], False), ("int64", [3, 2], True), ("bool", [5], False), ("bfloat16", [3], False),
         ("float16", [2, 2], False), ("int32", [], False), ("float32", [0], False), ("float64", [4, 1], True)]

WORKER = textwrap.dedent('''
    import json, os, sys
    import numpy as np
    import vibetensor.torch as vt
    import vibetensor.torch.distributed as dist

    device = sys.argv[2]
    if device == "cuda":
        vt.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        device = f"cuda:{os.environ['LOCAL_RANK']}"
    dist.init_process_group(sys.argv[3])
    rank, world = dist.get_rank(), dist.get_world_size()
    out = {"rank": rank}

    def values(case, shape, dtype):
        rng = np.random.default_rng([rank, case])
        if dtype == "bool":
            return rng.integers(0, 2, size=shape).astype(bool)
        if dtype.startswith("int"):
            return rng.integers(-50, 50, size=shape).astype(dtype)
        return rng.integers(-8, 8, size=shape).astype(np.float32) / 4  # exact in every float dtype

    def on_device(array, dtype):
        t = vt.tensor(array.astype(np.float32) if dtype in ("float16", "bfloat16") else array)
        return t.to(getattr(vt, dtype)).to(device)

    def listed(t):
        return t.cpu().to(vt.float64).tolist() if t.dtype != vt.bool else t.cpu().tolist()

    for i, (dtype, shape, transpose) in enumerate(json.loads(sys.argv[4])):
        t = on_device(values(i, shape, dtype), dtype)
        if transpose:
            t = t.t()  # a non-contiguous input
        dt = getattr(vt, dtype)
        outs = [vt.zeros(list(reversed(t.shape)), dtype=dt, device=device).t() if transpose else
                vt.zeros(list(t.shape), dtype=dt, device=device) for _ in range(world)]  # strided outputs too
        dist.all_gather(outs, t)
        out[f"all_gather_{i}"] = [listed(o) for o in outs]
        stacked = vt.zeros([world] + list(t.shape), dtype=dt, device=device)
        dist.all_gather_into_tensor(stacked, t)
        out[f"stacked_{i}"] = listed(stacked)
        if t.dim() > 0:
            shape0 = [world * t.shape[0]] + list(t.shape[1:])
            cat = vt.zeros(list(reversed(shape0)), dtype=dt, device=device).t() if transpose else \\
                vt.zeros(shape0, dtype=dt, device=device)
            dist.all_gather_into_tensor(cat, t)
            out[f"concatenated_{i}"] = listed(cat)
    for src in range(world):
        objects = [{"src": rank, "array": np.arange(rank + 2)}, "from rank %d" % rank, None] if rank == src else \\
            [None, None, None]
        dist.broadcast_object_list(objects, src=src)
        out[f"objects_{src}"] = [{"src": objects[0]["src"], "array": objects[0]["array"].tolist()}, objects[1],
                                 objects[2]]
    gathered = [None] * world
    dist.all_gather_object(gathered, {"rank": rank, "payload": "x" * (1000 * rank), "tuple": (rank, 2.5)})
    out["all_gather_object"] = [[g["rank"], len(g["payload"]), list(g["tuple"])] for g in gathered]
    dist.barrier()
    Path = __import__("pathlib").Path
    Path(sys.argv[1], f"rank{rank}.json").write_text(json.dumps(out))
    dist.destroy_process_group()
''')


def _inputs(case_index: int, dtype: str, shape, transpose: bool, world: int):
    arrays = []
    for rank in range(world):
        rng = np.random.default_rng([rank, case_index])
        if dtype == "bool":
            arrays.append(rng.integers(0, 2, size=shape).astype(bool))
        elif dtype.startswith("int"):
            arrays.append(rng.integers(-50, 50, size=shape).astype(dtype))
        else:
            arrays.append(rng.integers(-8, 8, size=shape).astype(np.float64) / 4)
    return [a.T for a in arrays] if transpose else arrays


def _launch(tmp_path: Path, nproc: int, device: str, backend: str, cases, timeout=240):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    proc = subprocess.run(RUN + ["--nproc-per-node", str(nproc), str(script), str(tmp_path), device, backend,
                                 json.dumps(cases)], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(nproc)]


def _check(results, cases, world):
    for out in results:
        for i, (dtype, shape, transpose) in enumerate(cases):
            inputs = _inputs(i, dtype, shape, transpose, world)
            message = f"rank {out['rank']} case {i} {dtype}"
            got = out[f"all_gather_{i}"]
            assert len(got) == world, message
            for r in range(world):
                np.testing.assert_array_equal(np.array(got[r], dtype=inputs[r].dtype).reshape(inputs[r].shape),
                                              inputs[r], err_msg=f"{message} all_gather[{r}]")
            stacked = np.stack(inputs)
            np.testing.assert_array_equal(np.array(out[f"stacked_{i}"], dtype=stacked.dtype).reshape(stacked.shape),
                                          stacked, err_msg=f"{message} stacked")
            if shape:
                cat = np.concatenate(inputs)
                np.testing.assert_array_equal(np.array(out[f"concatenated_{i}"], dtype=cat.dtype).reshape(cat.shape),
                                              cat, err_msg=f"{message} concatenated")
        for src in range(world):
            assert out[f"objects_{src}"] == [{"src": src, "array": list(range(src + 2))}, f"from rank {src}", None]
        assert out["all_gather_object"] == [[r, 1000 * r, [r, 2.5]] for r in range(world)]


def test_gathers_on_three_cpu_ranks_match_numpy(tmp_path: Path):
    _check(_launch(tmp_path, 3, "cpu", "gloo", CASES), CASES, 3)


def test_gathers_on_one_rank(tmp_path: Path):
    _check(_launch(tmp_path, 1, "cpu", "gloo", CASES[:3]), CASES[:3], 1)


def _gpus() -> int:
    return vt.cuda.device_count() if vt.cuda.is_built() else 0


@pytest.mark.skipif(_gpus() < 2 or not dist.is_nccl_available(),
                    reason="the nccl backend needs two GPUs and NCCL (runs on the lent multi-GPU machine)")
def test_nccl_gathers_on_two_gpus_match_numpy(tmp_path: Path):
    cases = [c for c in CASES if c[0] != "bool"]  # NCCL has no bool
    _check(_launch(tmp_path, 2, "cuda", "nccl", cases), cases, 2)


ERRORS = textwrap.dedent('''
    import sys
    import vibetensor.torch as vt, vibetensor.torch.distributed as dist
    dist.init_process_group("gloo", timeout=30)
    rank, world = dist.get_rank(), dist.get_world_size()
    said = []

    def attempt(label, fn):
        try:
            fn()
        except Exception as exc:
            said.append(f"{label} {type(exc).__name__}: {exc}")
        else:
            said.append(f"{label} no error")

    outs = lambda shape, dtype=vt.float32: [vt.zeros(shape, dtype=dtype) for _ in range(world)]
    # another shape on rank 1 (the same number of bytes: only the header tells), another dtype on rank 2
    attempt("shape", lambda: dist.all_gather(outs([3, 2] if rank == 1 else [2, 3]),
                                             vt.ones([3, 2] if rank == 1 else [2, 3])))
    attempt("dtype", lambda: dist.all_gather_into_tensor(
        vt.zeros([world * 4], dtype=vt.int32 if rank == 2 else vt.float32),
        vt.ones(4, dtype=vt.int32 if rank == 2 else vt.float32)))
    attempt("length", lambda: dist.all_gather(outs([2])[:-1], vt.ones(2)))
    attempt("out_shape", lambda: dist.all_gather([vt.zeros(2)] * (world - 1) + [vt.zeros(3)], vt.ones(2)))
    attempt("out_dtype", lambda: dist.all_gather(outs([2], vt.int64), vt.ones(2)))
    attempt("into_shape", lambda: dist.all_gather_into_tensor(vt.zeros(2 * world + 1), vt.ones(2)))
    attempt("into_scalar", lambda: dist.all_gather_into_tensor(vt.zeros(world, 1), vt.ones([])))
    attempt("object_length", lambda: dist.all_gather_object([None], rank))
    attempt("pickle", lambda: dist.all_gather_object([None] * world, lambda: 0))
    attempt("src", lambda: dist.broadcast_object_list([1], src=world))
    attempt("bcast_length", lambda: dist.broadcast_object_list([1, 2, 3] if rank == 0 else [None] * (rank + 1)))
    # after all of the above the connections are still in step: a good gather works
    got = outs([2])
    dist.all_gather(got, vt.full([2], float(rank)))
    said.append(f"after {[o.tolist() for o in got]}")
    open(f"{sys.argv[1]}.{rank}", "w").write("\\n".join(said))
    dist.destroy_process_group()
''')


def test_gather_errors_are_clear_and_leave_the_group_usable(tmp_path: Path):
    script = tmp_path / "errors.py"
    script.write_text(ERRORS)
    proc = subprocess.run(RUN + ["--nproc-per-node", "3", str(script), str(tmp_path / "said")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for r in range(3) for line in (tmp_path / f"said.{r}").read_text().splitlines()]

    def said(label):
        found = [line for line in lines if line.startswith(label + " ")]
        assert len(found) == 3, (label, lines)  # every rank reports it
        return found

    for line in said("shape"):  # every rank raises the same DistError naming the rank that differs
        assert "DistError: vibetensor.distributed.all_gather: rank 0 passed a float32 tensor of shape [2, 3] but " \
               "rank 1 passed a float32 tensor of shape [3, 2]; every rank must pass the same shape and dtype" in line
    for line in said("dtype"):
        assert "rank 2 passed a int32 tensor of shape [4]" in line and "DistError" in line
    for line in said("length"):
        assert "ValueError: vibetensor.distributed.all_gather: tensor_list has 2 tensors but the group has " \
               "world_size 3" in line
    for line in said("out_shape"):
        assert "tensor_list[2] has shape [3] but the input has shape [2]" in line
    for line in said("out_dtype"):
        assert "TypeError: vibetensor.distributed.all_gather: tensor_list[0] has dtype int64 but the input has " \
               "float32" in line
    for line in said("into_shape"):
        assert "output_tensor has shape [7]; for an input of shape [2] and world_size 3 it must be [6] " \
               "(concatenated) or [3, 2] (stacked)" in line
    for line in said("into_scalar"):
        assert "output_tensor has shape [3, 1]; for an input of shape [] and world_size 3 it must be [3]" in line
    for line in said("object_length"):
        assert "ValueError: vibetensor.distributed.all_gather_object: object_list has 1 items but the group has " \
               "world_size 3" in line
    for line in said("pickle"):
        assert "TypeError: vibetensor.distributed.all_gather_object: cannot pickle function" in line
    for line in said("src"):
        assert "src 3 is out of range for world_size 3" in line
    bcast = sorted(said("bcast_length"))
    assert any(line == "bcast_length no error" for line in bcast)  # rank 0 (src) and rank 2 (3 slots) are fine
    assert sum("rank 1 passed a list of 2 objects but src 0 broadcast 3" in line for line in bcast) == 1
    assert said("after") == ["after [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]"] * 3


def test_gathers_need_a_process_group():
    with pytest.raises(RuntimeError, match="not initialized"):
        dist.all_gather([vt.zeros(1)], vt.ones(1))
    with pytest.raises(RuntimeError, match="not initialized"):
        dist.all_gather_object([None], 1)
