"""Which GEMM the CUDA matrix products use (vibetensor-specific, no torch.cuda counterpart).

Float mm / bmm / matmul / addmm / baddbmm / linear / dot on CUDA run on cuBLAS when the library can be loaded at
run time, else on vibetensor's built-in tiled kernel (Note [cuBLAS at run time] in
src/vbt/cuda/ops/cublas_gemm.cpp). The build never links cuBLAS. The library is looked for in this order:
``$VBT_CUBLAS_LIBRARY``; the pip wheels in site-packages (``nvidia/cu13/lib``, ``nvidia/cublas/lib``,
``nvidia/cu12/lib``: the ones torch installs; ``torch/lib``), which this module passes to the extension at import; then
``libcublas.so.13`` / ``.so.12`` / ``.so`` through the dynamic loader's path. ``VBT_CUBLAS=0`` in the environment
(read at the first matmul) or ``set_matmul_backend("kernel")`` forces the built-in kernel, e.g. to compare the two.

    vt.cuda.matmul_backend()             # "cublas" or "kernel" ("none" in a build without CUDA kernels)
    vt.cuda.set_matmul_backend("kernel")  # or "cublas" (RuntimeError when cuBLAS cannot be loaded)
    vt.cuda.cublas_info()                 # {"enabled", "library", "version", "error"}
"""
import glob
import os
import re
import sys

from vibetensor import _C

_PATTERNS = ("nvidia/cu13/lib/libcublas.so.*", "nvidia/cublas/lib/libcublas.so.*", "nvidia/cu12/lib/libcublas.so.*",
             "torch/lib/libcublas.so.*")


def _major(path):
    m = re.search(r"libcublas\.so\.(\d+)", os.path.basename(path))
    return int(m.group(1)) if m else 0


def _wheel_candidates(paths=None):
    """libcublas files of the pip wheels under the import path, newest major first, the shortest name (the
    soname link) first within a major."""
    found = []
    for base in (sys.path if paths is None else paths):
        if not base or not (os.path.isdir(os.path.join(base, "nvidia")) or os.path.isdir(os.path.join(base, "torch"))):
            continue
        for pat in _PATTERNS:
            for f in glob.glob(os.path.join(base, pat)):
                if f not in found:
                    found.append(f)
    return sorted(found, key=lambda f: (-_major(f), len(os.path.basename(f)), f))


def _has_ops():
    return hasattr(_C, "_cuda_matmul_backend")


def matmul_backend():
    """Where the next float CUDA matmul runs: "cublas" or "kernel"; "none" without CUDA kernels."""
    return _C._cuda_matmul_backend() if _has_ops() else "none"


def set_matmul_backend(name):
    """Route CUDA matmuls to "cublas" or to the built-in "kernel" (for this process)."""
    if name not in ("cublas", "kernel"):
        raise ValueError(f"set_matmul_backend: expected 'cublas' or 'kernel', got {name!r}")
    if not _has_ops():
        raise RuntimeError("set_matmul_backend: this build has no CUDA kernels")
    _C._cuda_set_cublas_enabled(name == "cublas")
    if name == "cublas" and _C._cuda_matmul_backend() != "cublas":
        raise RuntimeError("set_matmul_backend: cuBLAS could not be loaded: " + (_C._cuda_cublas_load_error() or "?"))


def cublas_info():
    """{"enabled": bool, "library": path or None, "version": "major.minor.patch" or None, "error": str or None}"""
    if not _has_ops():
        return {"enabled": False, "library": None, "version": None, "error": "this build has no CUDA kernels"}
    return {"enabled": bool(_C._cuda_cublas_enabled()), "library": _C._cuda_cublas_library() or None,
            "version": _C._cuda_cublas_version() or None, "error": _C._cuda_cublas_load_error() or None}


if _has_ops():
    _C._cuda_set_cublas_search_paths(_wheel_candidates())
