#!/usr/bin/env bash
# CUDA compile check (CI, no GPU needed): configures vibetensor with VBT_ENABLE_CUDA=ON (fails when nvcc is
# missing) for sm_90 and builds what has CUDA code: vbt_cuda (CUDA backend, streams, events, device guard, the
# .cu kernels), the allocator tests and scenario driver, and the Python extension _C with the CUDA binding.
# Then checks that the kernels really carry sm_90 code.
#   bash generated_runtime/tools/cuda_compile_check.sh BUILD_DIR [extra cmake -D options...]
# Incremental: reuses BUILD_DIR (Ninja) and ccache. VBT_JOBS sets the parallel jobs (default 2).
# VBT_CUDA_CHECK_TARGETS overrides the targets (e.g. "vbt_cuda" for the quickest check).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:?usage: cuda_compile_check.sh BUILD_DIR [cmake -D options]}"
shift
command -v nvcc >/dev/null || { echo "cuda_compile_check: nvcc not found on PATH" >&2; exit 1; }
py="${PYTHON:-$(command -v python3)}"
[ -x "$here/../.venv/bin/python" ] && py="${PYTHON:-$here/../.venv/bin/python}"
mkdir -p "$build"
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVBT_ENABLE_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES=90 -DVBT_BUILD_TESTS=ON -DVBT_BUILD_PYTHON=ON -DPython_EXECUTABLE="$py" "$@" \
        >"$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
fi
grep -q "vibetensor CUDA backend: ON" "$build/configure.log" || { echo "cuda_compile_check: CUDA backend not enabled" >&2; cat "$build/configure.log"; exit 1; }
targets=${VBT_CUDA_CHECK_TARGETS:-"vbt_cuda vbt_cuda_tests vbt_allocator_scenarios _C"}
# shellcheck disable=SC2086
cmake --build "$build" -j "${VBT_JOBS:-2}" --target $targets
lib="$(find "$build" -maxdepth 2 -name libvbt_cuda.a | head -1)"
[ -n "$lib" ] || { echo "cuda_compile_check: libvbt_cuda.a was not built" >&2; exit 1; }
if command -v cuobjdump >/dev/null; then
  cuobjdump --list-elf "$lib" | grep -q "sm_90" || { echo "cuda_compile_check: no sm_90 code in $lib" >&2; exit 1; }
else  # no cuobjdump: the embedded fatbinary records the ptxas options it was built with
  grep -aq -- "-arch sm_90" "$lib" || { echo "cuda_compile_check: no sm_90 code in $lib" >&2; exit 1; }
fi
echo "cuda_compile_check: OK (nvcc $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), sm_90, targets: $targets)"
