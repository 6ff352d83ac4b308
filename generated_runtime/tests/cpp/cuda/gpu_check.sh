#!/usr/bin/env bash
# GPU check of the CUDA op kernels (run on the GPU machine from the repository root):
#   bash generated_runtime/tests/cpp/cuda/gpu_check.sh OUTDIR
# Builds vibetensor._C with CUDA (cmake + ninja, no GoogleTest: VBT_BUILD_TESTS=OFF; no OpenBLAS there: the
# naive CBLAS shim next to this script stands in for the CPU GEMM), assembles a site dir, and runs
# tests/py/cuda with pytest. CXX=/usr/bin/g++ (the /opt/gcc toolchain links libstdc++ statically, which
# breaks _C once torch is imported). Logs go to OUTDIR.
set -uo pipefail
OUT=${1:?usage: gpu_check.sh OUTDIR [pytest args]}
shift
mkdir -p "$OUT"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
B=${VBT_GPU_BUILD:-/tmp/vbt-gpu-build}
SHIM=$B/cblas_shim
mkdir -p "$SHIM"
cp "$ROOT/tests/cpp/cuda/cblas_shim/cblas.h" "$SHIM/"
/usr/bin/gcc -O2 -fPIC -c "$ROOT/tests/cpp/cuda/cblas_shim/cblas_shim.c" -I"$SHIM" -o "$SHIM/shim.o" && ar rcs "$SHIM/libopenblas.a" "$SHIM/shim.o"
nvidia-smi -L | tee "$OUT/gpu.txt"
export CXX=/usr/bin/g++ CC=/usr/bin/gcc CUDAHOSTCXX=/usr/bin/g++
T0=$(date +%s)
cmake -S "$ROOT" -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVBT_ENABLE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DVBT_BUILD_TESTS=OFF -DVBT_BUILD_PYTHON=ON -DPython_EXECUTABLE="$(command -v python3)" \
  -DVBT_SKIP_SUBSYSTEMS=fabric -DCBLAS_INCLUDE_DIR="$SHIM" -DOPENBLAS_LIBRARY="$SHIM/libopenblas.a" >"$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; exit 1; }
ninja -C "$B" -j"$(nproc)" _C >"$OUT/build.log" 2>&1 || { grep -n "error" "$OUT/build.log" | head -30; exit 1; }
echo "build ok in $(( $(date +%s) - T0 ))s"
SITE=$B/site
rm -rf "$SITE" && mkdir -p "$SITE" && cp -r "$ROOT/python/vibetensor" "$SITE/" && cp "$B"/_C*.so "$SITE/vibetensor/"
PYP=$SITE
python3 -c "import pytest" 2>/dev/null || PYP=$SITE:$ROOT/tests/py/cuda/build/pylib  # carried pytest (pure Python)
cd /tmp && PYTHONPATH=$PYP python3 -m pytest -q --noconftest -p no:cacheprovider -rs "$ROOT/tests/py/cuda" "$@" \
  2>&1 | tee "$OUT/pytest.log" | tail -60
exit "${PIPESTATUS[0]}"
