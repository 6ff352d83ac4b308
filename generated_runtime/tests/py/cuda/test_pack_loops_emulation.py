"""The pack copy of same-dtype strided copies (PackCopyNote, src/vbt/cuda/ops/pack_loops.cuh) compiled by the host
compiler and run without a GPU: tests/cpp/cuda/pack_loops_emulation.cpp checks that its plan takes and refuses the
cases the note names, and that on thousands of permuted, sliced and broadcast views it writes exactly the bytes of
the element loop."""
import os
import shutil
import subprocess

import pytest

CUDA_INC = os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "include")
EMULATION = os.path.join(os.path.dirname(__file__), "..", "..", "cpp", "cuda", "pack_loops_emulation.sh")


@pytest.mark.skipif(not (shutil.which(os.environ.get("CXX", "g++")) and os.path.exists(os.path.join(CUDA_INC, "vector_types.h"))),
                    reason="needs a C++20 compiler and the CUDA headers")
def test_pack_copy_on_the_host():
    out = subprocess.run(["bash", EMULATION], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "ok (0 failures)" in out.stdout, out.stdout[-3000:]
