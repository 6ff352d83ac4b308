"""vibetensor.torch.distributed (spec 06): collectives over several processes against numpy references, the
launcher's handling of failing ranks, and the clear errors of a rendezvous that goes wrong. The CPU (`gloo`) backend
runs everywhere; the `nccl` backend runs where two or more GPUs and NCCL exist (the lent GPU machines), and the
tests that need it say so when they skip."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import vibetensor.torch as vt
import vibetensor.torch.distributed as dist
from vibetensor.torch.distributed import _nccl

RUN = [sys.executable, "-m", "vibetensor.torch.distributed.run"]

# Every rank fills its tensors from (rank, case) so the test can compute each expected result with numpy.
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
    out = {"rank": rank, "world": world, "backend": dist.get_backend()}

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

    cases = json.loads(sys.argv[4])
    for i, (op, dtype, shape, transpose) in enumerate(cases):
        t = on_device(values(i, shape, dtype), dtype)
        if transpose:
            t = t.t()  # a non-contiguous view: the result must land in the viewed elements
        dist.all_reduce(t, op=getattr(dist.ReduceOp, op))
        out[f"all_reduce_{i}"] = t.cpu().to(vt.float64).tolist() if dtype != "bool" else t.cpu().tolist()
    for src in range(world):
        t = on_device(values(100 + src, (2, 3), "int64"), "int64")
        dist.broadcast(t, src=src)
        out[f"broadcast_{src}"] = t.cpu().tolist()
    dist.barrier()
    Path = __import__("pathlib").Path
    Path(sys.argv[1], f"rank{rank}.json").write_text(json.dumps(out))
    dist.destroy_process_group()
''')

CASES = [("SUM", "float32", [3, 4], False), ("SUM", "float64", [5], False), ("SUM", "int64", [2, 3], True),
         ("MAX", "int32", [7], False), ("MIN", "float32", [2, 2], False), ("PRODUCT", "int64", [4], False),
         ("AVG", "float32", [3, 2], True), ("SUM", "bool", [6], False), ("MAX", "float16", [4], False),
         ("SUM", "bfloat16", [4], False), ("SUM", "float32", [0], False), ("SUM", "float32", [], False)]

NUMPY = {"SUM": np.add, "PRODUCT": np.multiply, "MIN": np.minimum, "MAX": np.maximum}


def _expected(case_index: int, op: str, dtype: str, shape, transpose: bool, world: int):
    arrays = []
    for rank in range(world):
        rng = np.random.default_rng([rank, case_index])
        if dtype == "bool":
            arrays.append(rng.integers(0, 2, size=shape).astype(bool))
        elif dtype.startswith("int"):
            arrays.append(rng.integers(-50, 50, size=shape).astype(dtype))
        else:
            arrays.append(rng.integers(-8, 8, size=shape).astype(np.float64) / 4)
    if transpose:
        arrays = [a.T for a in arrays]
    if dtype == "bool":
        return np.logical_or.reduce(arrays)
    if op == "AVG":
        return sum(arrays) / world
    result = arrays[0]
    for a in arrays[1:]:
        result = NUMPY[op](result, a)
    return result


def _launch(tmp_path: Path, nproc: int, device: str, backend: str, cases=CASES, timeout=240):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    proc = subprocess.run(RUN + ["--nproc-per-node", str(nproc), str(script), str(tmp_path), device, backend,
                                 json.dumps(cases)], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(nproc)]


def _check_results(results, cases, world):
    for out in results:
        assert out["world"] == world
        for i, (op, dtype, shape, transpose) in enumerate(cases):
            expect = _expected(i, op, dtype, shape, transpose, world)
            got = np.array(out[f"all_reduce_{i}"], dtype=expect.dtype).reshape(expect.shape)
            message = f"rank {out['rank']} case {i} {op} {dtype}"
            if op == "AVG":  # one rounding of sum / world in the tensor's dtype (NCCL may multiply by 1/world)
                np.testing.assert_allclose(got, expect, rtol=1e-6, atol=0, err_msg=message)
            else:  # sums of quarters and integers are exact in every dtype used
                np.testing.assert_array_equal(got, expect, err_msg=message)
        for src in range(world):
            expect = np.random.default_rng([src, 100 + src]).integers(-50, 50, size=(2, 3))
            assert out[f"broadcast_{src}"] == expect.tolist(), (out["rank"], src)
    # every rank holds the same bits
    first = {k: v for k, v in results[0].items() if k != "rank"}
    assert all({k: v for k, v in r.items() if k != "rank"} == first for r in results[1:])


def test_collectives_on_three_cpu_ranks_match_numpy(tmp_path: Path):
    results = _launch(tmp_path, 3, "cpu", "gloo")
    assert [r["rank"] for r in results] == [0, 1, 2] and results[0]["backend"] == "gloo"
    _check_results(results, CASES, 3)


def test_single_rank_group_is_the_identity(tmp_path: Path):
    results = _launch(tmp_path, 1, "cpu", "tcp", cases=CASES[:3])
    assert results[0]["backend"] == "gloo"  # tcp is an alias
    _check_results(results, CASES[:3], 1)


def _gpus() -> int:
    return vt.cuda.device_count() if vt.cuda.is_built() else 0


@pytest.mark.skipif(_gpus() < 2 or not dist.is_nccl_available(),
                    reason="the nccl backend needs two GPUs and NCCL (runs on the lent multi-GPU machine)")
def test_nccl_collectives_on_two_gpus_match_numpy(tmp_path: Path):
    cases = [c for c in CASES if c[1] != "bool"]  # NCCL has no bool
    results = _launch(tmp_path, 2, "cuda", "nccl", cases=cases)
    assert results[0]["backend"] == "nccl"
    _check_results(results, cases, 2)


@pytest.mark.skipif(_gpus() < 1 or not dist.is_nccl_available(),
                    reason="the nccl backend needs a GPU and NCCL (runs on the lent GPU machine)")
def test_nccl_single_rank_and_refused_tensors(tmp_path: Path):
    cases = CASES[:2]
    _check_results(_launch(tmp_path, 1, "cuda", "nccl", cases=cases), cases, 1)
    code = textwrap.dedent('''
        import vibetensor.torch as vt, vibetensor.torch.distributed as dist
        dist.init_process_group("nccl")
        try:
            dist.all_reduce(vt.ones(3, dtype=vt.bool).cuda())
        except TypeError as exc:
            print("refused:", exc)
        if vt.cuda.device_count() > 1:
            try:
                dist.all_reduce(vt.ones(3, device="cuda:1"))
            except RuntimeError as exc:
                print("refused:", exc)
    ''')
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, RANK="0", WORLD_SIZE="1", MASTER_PORT=str(_free_port())))
    assert proc.returncode == 0, proc.stderr
    assert "NCCL has no bool" in proc.stdout
    if _gpus() > 1:
        assert "the tensor is on cuda:1 but this rank's NCCL communicator is on cuda:0" in proc.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _python(code: str, timeout=60, **env):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, **env))


def test_launcher_stops_every_rank_when_one_fails(tmp_path: Path):
    script = tmp_path / "fail.py"
    script.write_text(textwrap.dedent('''
        import os, sys, time
        if os.environ["RANK"] == "1":
            sys.exit(7)
        time.sleep(120)
    '''))
    start = time.monotonic()
    proc = subprocess.run(RUN + ["--nproc-per-node", "3", "--grace-s", "5", str(script)], capture_output=True,
                          text=True, timeout=100)
    assert proc.returncode == 7
    assert "rank 1 exited with code 7" in proc.stderr
    assert time.monotonic() - start < 30  # the sleeping ranks were stopped, not waited for


def test_launcher_sets_torchrun_variables(tmp_path: Path):
    script = tmp_path / "env.py"
    script.write_text("import os, sys\nopen(sys.argv[1] + os.environ['RANK'], 'w').write(' '.join(os.environ[k] for k in "
                      "('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'LOCAL_WORLD_SIZE', 'MASTER_ADDR')))\n")
    proc = subprocess.run(RUN + ["--nproc-per-node", "2", str(script), str(tmp_path / "r")], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "r0").read_text() == "0 0 2 2 127.0.0.1"
    assert (tmp_path / "r1").read_text() == "1 1 2 2 127.0.0.1"


def test_missing_rank_times_out_naming_it():
    proc = _python('''
        import vibetensor.torch.distributed as dist
        dist.init_process_group("gloo", timeout=1.5)
    ''', RANK="0", WORLD_SIZE="3", MASTER_PORT=str(_free_port()))
    assert proc.returncode != 0
    assert "for ranks [1, 2] to join (world_size=3)" in proc.stderr, proc.stderr


def test_rank_without_rank_zero_times_out():
    proc = _python('''
        import vibetensor.torch.distributed as dist
        dist.init_process_group("gloo", timeout=1.0)
    ''', RANK="1", WORLD_SIZE="2", MASTER_PORT=str(_free_port()))
    assert proc.returncode != 0 and "rank 1 could not reach rank 0" in proc.stderr, proc.stderr


def test_world_size_mismatch_is_refused_on_both_sides():
    port = str(_free_port())
    code = '''
        import vibetensor.torch.distributed as dist
        dist.init_process_group("gloo", timeout=20)
    '''
    p0 = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stderr=subprocess.PIPE, text=True,
                          env=dict(os.environ, RANK="0", WORLD_SIZE="2", MASTER_PORT=port))
    p1 = _python(code, RANK="1", WORLD_SIZE="3", MASTER_PORT=port)
    _, err0 = p0.communicate(timeout=60)
    assert p0.returncode != 0 and p1.returncode != 0
    assert "rank 1 has world_size=3, rank 0 has world_size=2" in err0
    assert "rank 0 refused rank 1" in p1.stderr


def test_peer_dying_mid_collective_is_an_error_not_a_hang(tmp_path: Path):
    script = tmp_path / "die.py"
    script.write_text(textwrap.dedent('''
        import os, sys
        import vibetensor.torch as vt, vibetensor.torch.distributed as dist
        dist.init_process_group("gloo", timeout=30)
        if dist.get_rank() == 1:
            os._exit(3)
        try:
            dist.all_reduce(vt.ones(4))
        except dist.DistError as exc:
            print("rank0:", exc, flush=True)
            sys.exit(0)
        sys.exit(9)
    '''))
    start = time.monotonic()
    proc = subprocess.run(RUN + ["--nproc-per-node", "2", "--grace-s", "20", str(script)], capture_output=True,
                          text=True, timeout=100)
    assert "rank0: vibetensor.distributed: a peer closed its connection" in proc.stdout, proc.stdout + proc.stderr
    assert time.monotonic() - start < 25


def test_shape_mismatch_between_ranks_is_named(tmp_path: Path):
    script = tmp_path / "shape.py"
    script.write_text(textwrap.dedent('''
        import vibetensor.torch as vt, vibetensor.torch.distributed as dist
        dist.init_process_group("gloo", timeout=10)
        try:
            dist.all_reduce(vt.ones(3 + dist.get_rank()))
        except dist.DistError as exc:
            print("refused:", exc, flush=True)
    '''))
    proc = subprocess.run(RUN + ["--nproc-per-node", "2", str(script)], capture_output=True, text=True, timeout=100)
    assert "expected a message of 12 bytes from a peer, got 16" in proc.stdout, proc.stdout + proc.stderr


def test_argument_errors():
    with pytest.raises(RuntimeError, match="not initialized"):
        dist.get_rank()
    with pytest.raises(ValueError, match="unknown backend 'mpi'"):
        dist.init_process_group("mpi", rank=0, world_size=1)
    with pytest.raises(ValueError, match="rank 2 is out of range for world_size 2"):
        dist.init_process_group("gloo", rank=2, world_size=2)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    proc = subprocess.run([sys.executable, "-c", "import vibetensor.torch.distributed as d; d.init_process_group('gloo')"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode != 0 and "WORLD_SIZE is not set" in proc.stderr
    assert "vibetensor.torch.distributed.run" in proc.stderr
    with pytest.raises(ValueError, match="init_method 'file:///x' is not supported"):
        dist.init_process_group("gloo", init_method="file:///x", rank=0, world_size=1)
    assert not dist.is_initialized()


def test_single_process_group_in_process():
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    try:
        assert dist.is_initialized() and dist.get_world_size() == 1
        t = vt.arange(3, dtype=vt.float32)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        assert t.tolist() == [0.0, 1.0, 2.0]
        with pytest.raises(RuntimeError, match="already initialized"):
            dist.init_process_group("gloo", rank=0, world_size=1)
        with pytest.raises(ValueError, match="src 1 is out of range"):
            dist.broadcast(t, src=1)
    finally:
        dist.destroy_process_group()
    assert not dist.is_initialized()


def test_nccl_backend_errors_without_gpu_or_library(tmp_path: Path):
    proc = _python('''
        import vibetensor.torch.distributed as dist
        from vibetensor.torch.distributed import _nccl
        assert not dist.is_nccl_available()
        try:
            _nccl.NcclLibrary()
        except RuntimeError as exc:
            print(exc)
    ''', VBT_NCCL_LIBRARY=str(tmp_path / "libnccl.so.2"))
    assert proc.returncode == 0, proc.stderr
    assert "VBT_NCCL_LIBRARY is set" in proc.stdout and str(tmp_path / "libnccl.so.2") in proc.stdout
    if _gpus() == 0:
        with pytest.raises(RuntimeError, match="backend 'nccl' needs a CUDA device"):
            dist.init_process_group("nccl", rank=0, world_size=1)


def test_nccl_enum_values_are_ncclh():
    # the values of NCCL 2.x's nccl.h (ncclDataType_t, ncclRedOp_t); a wrong one would reduce the wrong type
    assert _nccl.DTYPES == {"int8": 0, "uint8": 1, "int32": 2, "int64": 4, "float16": 6, "float32": 7,
                            "float64": 8, "bfloat16": 9}
    assert _nccl.OPS == {"sum": 0, "product": 1, "max": 2, "min": 3, "avg": 4}
