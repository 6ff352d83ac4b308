"""CUDA device code compiled by the host compiler and run without a GPU (tests/cpp/cuda/host_emulation.sh):
- scan_index_emulation: the scan_index kernels (arg-reductions, row reductions, scans, scatter lines and their
  sorted variant, compaction, nonzero) against direct host computations, the sorted scatter against the line
  scatter bit for bit;
- pack_loops_emulation: the pack loops of strided copies and where (PackCopyNote, PackWhereNote) against the
  element loop, and which shapes their plans take."""
import os
import shutil
import subprocess

import pytest

CUDA_INC = os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "include")
SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "cpp", "cuda", "host_emulation.sh")


@pytest.mark.skipif(not (shutil.which(os.environ.get("CXX", "g++")) and os.path.exists(os.path.join(CUDA_INC, "cuda_fp16.h"))),
                    reason="needs a C++20 compiler and the CUDA headers")
@pytest.mark.parametrize("name", ["scan_index_emulation", "pack_loops_emulation"])
def test_cuda_kernels_on_the_host(name):
    out = subprocess.run(["bash", SCRIPT, name], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "ok (0 failures)" in out.stdout, out.stdout[-3000:]
