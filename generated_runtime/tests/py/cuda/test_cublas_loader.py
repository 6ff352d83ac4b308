"""How cuBLAS is found at run time (Note [cuBLAS at run time] in src/vbt/cuda/ops/cublas_gemm.cpp), without a GPU:
a stub library with cuBLAS's entry points stands in for it (no GEMM runs: only the loading, the order of the
candidates, the switches and what vt.cuda reports are checked). Each case runs in a fresh interpreter, since a
process loads the library once. Needs a build with the CUDA kernels (nvcc) and a C compiler."""
import json
import os
import shutil
import subprocess
import sys

import pytest

import vibetensor.torch as vt
from vibetensor.torch.cuda import _blas

HAS_OPS = vt.cuda._tensors.has_ops()
needs_ops = pytest.mark.skipif(not HAS_OPS, reason="build without the CUDA kernels: no cuBLAS loader")
CC = shutil.which("cc") or shutil.which("gcc")

STUB = r"""
int cublasCreate_v2(void** h) { *h = (void*)1; return 0; }
int cublasSetStream_v2(void* h, void* s) { (void)h; (void)s; return 0; }
int cublasGemmStridedBatchedEx(void) { return 15; }
int cublasGetProperty(int type, int* v) { static const int ver[3] = {42, 7, 3}; *v = ver[type]; return 0; }
"""
REPORT = "import json, vibetensor.torch as vt; print(json.dumps([vt.cuda.matmul_backend(), vt.cuda.cublas_info()]))"


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    if CC is None:
        pytest.skip("no C compiler")
    d = tmp_path_factory.mktemp("cublas_stub")
    (d / "stub.c").write_text(STUB)
    lib = d / "libcublas_stub.so"
    subprocess.run([CC, "-shared", "-fPIC", "-o", str(lib), str(d / "stub.c")], check=True)
    return lib


def report(env_extra, pythonpath_first=None):
    env = {k: v for k, v in os.environ.items() if k not in ("VBT_CUBLAS", "VBT_CUBLAS_LIBRARY")}
    env.update(env_extra)
    if pythonpath_first:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath_first)] + [p for p in sys.path if p])
    out = subprocess.run([sys.executable, "-c", REPORT], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@needs_ops
def test_env_library_is_loaded_first(stub):
    backend, info = report({"VBT_CUBLAS_LIBRARY": str(stub)})
    assert backend == "cublas", info
    assert info["library"].endswith("libcublas_stub.so") and info["version"] == "42.7.3" and info["error"] is None
    assert info["enabled"] is True


@needs_ops
def test_vbt_cublas_0_forces_the_kernel(stub):
    backend, info = report({"VBT_CUBLAS_LIBRARY": str(stub), "VBT_CUBLAS": "0"})
    assert backend == "kernel" and info["enabled"] is False


@needs_ops
def test_missing_library_is_reported(tmp_path):
    missing = tmp_path / "libcublas.so.404"
    backend, info = report({"VBT_CUBLAS_LIBRARY": str(missing)})
    if backend == "kernel":  # nothing else on this machine either
        assert str(missing) in info["error"], info
        assert info["library"] is None
    else:  # a real cuBLAS was found after the missing one
        assert info["library"] != str(missing)


@needs_ops
def test_wheel_in_site_packages_is_found(stub, tmp_path):
    lib = tmp_path / "nvidia" / "cu13" / "lib"
    lib.mkdir(parents=True)
    shutil.copy(stub, lib / "libcublas.so.99")  # a major above any real one: tried first
    backend, info = report({}, pythonpath_first=tmp_path)
    assert backend == "cublas" and info["library"] == str(lib / "libcublas.so.99"), info


def test_wheel_candidates_order(tmp_path):
    for rel in ("nvidia/cublas/lib/libcublas.so.12.4.5.8", "nvidia/cublas/lib/libcublas.so.12",
                "nvidia/cu13/lib/libcublas.so.13", "nvidia/cublas/lib/libcublasLt.so.12"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    got = [os.path.relpath(p, tmp_path) for p in _blas._wheel_candidates([str(tmp_path), "", str(tmp_path / "none")])]
    assert got == ["nvidia/cu13/lib/libcublas.so.13", "nvidia/cublas/lib/libcublas.so.12",
                   "nvidia/cublas/lib/libcublas.so.12.4.5.8"]


CUDA_INC = os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "include")
EMULATION = os.path.join(os.path.dirname(__file__), "..", "..", "cpp", "cuda", "cublas_gemm_emulation.sh")


@pytest.mark.skipif(not (CC and shutil.which(os.environ.get("CXX", "g++"))
                         and os.path.exists(os.path.join(CUDA_INC, "cuda_runtime_api.h"))),
                    reason="needs a C/C++ compiler and the CUDA headers")
def test_row_major_mapping_emulation():
    """The GEMM mapping of cublas_gemm.cpp against a host library with cuBLAS's column-major semantics (shapes,
    transposed / padded / broadcast / size-1 operands, the folded batch, declined dtypes): see
    tests/cpp/cuda/cublas_gemm_emulation.cpp."""
    out = subprocess.run(["bash", EMULATION], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "0 failures" in out.stdout, out.stdout[-3000:]
