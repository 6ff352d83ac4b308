#!/usr/bin/env bash
# Run on the lent GPU machine (device tool), from the repository root:  bash tests/gpu/device_check.sh OUTDIR
# 1. Fabric (multi-GPU): generated_runtime/tools/fabric_gpu_check.sh -> fabric_report.json
# 2. The allocator's scenario driver on the CUDA backend, checked by the allocator gate's own validator
# 3. compute-sanitizer memcheck and racecheck over that driver
# 4. The CUDA op tests (generated_runtime/tests/cpp/cuda/gpu_check.sh builds _C again; gpu_session.sh does it better)
# DEVICE_CHECK_PARTS picks among "fabric alloc ops" (default: all three).
# Everything lands in OUTDIR (a tarball of all logs + the JSON reports). NVLink multicast stays off.
set -u
PARTS=" ${DEVICE_CHECK_PARTS:-fabric alloc ops} "
OUT=${1:?usage: device_check.sh OUTDIR}
mkdir -p "$OUT/all"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
ROOT=$(pwd)
summary="$OUT/all/summary.txt"; : >"$summary"
{ nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; } >"$OUT/all/devices.txt" 2>&1

if [[ $PARTS == *" fabric "* ]]; then
  bash generated_runtime/tools/fabric_gpu_check.sh "$OUT/all/fabric" >"$OUT/all/fabric_stdout.txt" 2>&1
  echo "fabric_gpu_check rc=$?" | tee -a "$summary"
  cp "$OUT/all/fabric/fabric_report.json" "$OUT/" 2>/dev/null
fi

# The allocator subsystem alone (no OpenBLAS / GoogleTest needed there).
proj=/tmp/vbt-alloc-proj; build=/tmp/vbt-alloc-build
if [[ $PARTS == *" alloc "* ]]; then
mkdir -p "$proj"
cat >"$proj/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.25)
project(vbt_alloc LANGUAGES CXX)
set(CMAKE_CXX_STANDARD 20)
include($ROOT/generated_runtime/cmake/cuda_subsystem.cmake)
CM
if cmake -S "$proj" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVBT_ENABLE_CUDA=ON \
     -DVBT_BUILD_ALLOCATOR_DRIVER=ON -DCMAKE_CUDA_ARCHITECTURES=90 >"$OUT/all/alloc_build.txt" 2>&1 &&
   cmake --build "$build" -j16 >>"$OUT/all/alloc_build.txt" 2>&1; then
  drv="$build/vbt_allocator_scenarios"
  "$drv" --help >"$OUT/all/driver_help.txt" 2>&1
  "$drv" --backend cuda --out "$OUT/allocator_cuda_report.json" >"$OUT/all/driver_cuda.txt" 2>&1
  echo "driver cuda rc=$?" | tee -a "$summary"
  python3 -m validators.allocator_gate "$OUT/allocator_cuda_report.json" --backend cuda >"$OUT/all/gate_cuda.txt" 2>&1
  echo "allocator gate validator (cuda) rc=$?" | tee -a "$summary"
  for tool in memcheck racecheck; do
    compute-sanitizer --tool $tool --error-exitcode 9 "$drv" --backend cuda --out /tmp/cs_$tool.json \
      >"$OUT/all/sanitizer_$tool.txt" 2>&1
    echo "compute-sanitizer $tool rc=$?" | tee -a "$summary"
    tail -3 "$OUT/all/sanitizer_$tool.txt" >>"$summary"
  done
else
  echo "allocator CUDA build FAILED" | tee -a "$summary"
fi
fi
tar -czf "$OUT/device_logs.tar.gz" -C "$OUT" all
cp "$summary" "$OUT/summary.txt"
cat "$OUT/summary.txt"
[[ $PARTS == *" ops "* ]] || exit 0

# 4. CUDA op kernels: build _C with CUDA there and run generated_runtime/tests/py/cuda against torch
bash generated_runtime/tests/cpp/cuda/gpu_check.sh "$OUT/all/cuda_ops" >"$OUT/all/cuda_ops_stdout.txt" 2>&1
echo "cuda ops pytest rc=$?" | tee -a "$summary"
tail -3 "$OUT/all/cuda_ops_stdout.txt" >>"$summary"
cp "$OUT/all/cuda_ops/pytest.log" "$OUT/cuda_ops_pytest.log" 2>/dev/null
tar -czf "$OUT/device_logs.tar.gz" -C "$OUT" all
cp "$summary" "$OUT/summary.txt"
cat "$OUT/summary.txt"
