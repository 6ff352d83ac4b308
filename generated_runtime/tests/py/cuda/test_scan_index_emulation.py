"""The scan_index CUDA kernels (arg-reductions, row reductions, scans, scatter lines and their sorted variant,
compaction, nonzero) compiled by the host compiler and run without a GPU: tests/cpp/cuda/scan_index_emulation.cpp
checks them against direct host computations, and the sorted scatter against the line scatter bit for bit."""
import os
import shutil
import subprocess

import pytest

CUDA_INC = os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "include")
EMULATION = os.path.join(os.path.dirname(__file__), "..", "..", "cpp", "cuda", "scan_index_emulation.sh")


@pytest.mark.skipif(not (shutil.which(os.environ.get("CXX", "g++")) and os.path.exists(os.path.join(CUDA_INC, "cuda_fp16.h"))),
                    reason="needs a C++20 compiler and the CUDA headers")
def test_scan_index_kernels_on_the_host():
    out = subprocess.run(["bash", EMULATION], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "ok (0 failures)" in out.stdout, out.stdout[-3000:]
