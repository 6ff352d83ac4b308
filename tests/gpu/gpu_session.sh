#!/usr/bin/env bash
# One call on the lent GPU machine (device tool), from the repository root:  bash tests/gpu/gpu_session.sh OUTDIR
# Builds vibetensor._C with CUDA plus the example plugins (the CUDA one included), then, each step with its own
# time limit so one slow step cannot take the others' results with it:
#   1. pytest: tests/py/cuda (CUDA kernels vs torch.cuda), the CUDA plugin, DLPack import/export of CUDA tensors,
#      plugin autograd, gradients through views on cuda  -> OUTDIR/pytest.log
#   2. the training gate with device cuda (tests/gpu/gate_on_gpu.py): vibetensor on the GPU against torch on the
#      GPU, same weights and batches -> OUTDIR/training/
#   3. the parity gate with device cuda -> OUTDIR/parity/
#   4. dp (only when named in STEPS): data-parallel training on DP_GPUS GPUs (tests/gpu/dp_check.py) -> OUTDIR/dp/
#   4b. ring (only when named in STEPS): the ring all-reduce plugin timed against NCCL (tests/gpu/ring_plugin_bench.py,
#      RING_MIB sizes per rank, default "1 16 256 1024") -> OUTDIR/ring_bench.json; its correctness tests are in pytest
#   4c. bench (only when named in STEPS): tests/benchmarks/bench_cuda.py and tests/gpu/matmul_bench.py against torch
#      -> OUTDIR/bench_cuda.{txt,json}, OUTDIR/matmul.{txt,json}; micro: tests/gpu/microbench/run.sh -> OUTDIR/micro/
#   4d. profile (only when named in STEPS): tests/gpu/profile_step.py for torch and vibetensor on PROFILE_WORKLOADS
#      (default "minigpt,vit", TRAIN_PROFILE sizes): wall vs GPU busy time per step, top kernels -> OUTDIR/profile/;
#      PROFILE_ATTRIBUTE=K (default 0) adds K steps profiled with Python stacks: the call sites of the top kernels
#   4e. spread (only when named in STEPS): tests/gpu/curve_spread.py, how far correct implementations' loss curves
#      drift apart: SPREAD_WORKLOAD (default vit), TRAIN_PROFILE (default here: paper), SPREAD_STEPS (default 240),
#      SPREAD_RUNS (default "torch:cuda torch:cuda torch:cpu vibetensor.torch:cuda"; the first is the reference),
#      SPREAD_SEEDS (default 0) -> OUTDIR/spread/ (spread.txt, spread.json)
#   4f. scalars (only when named in STEPS): tests/gpu/scalar_ops_cuda.py, float ops with a CPU scalar operand bit for
#      bit against torch.cuda, and which arithmetic torch's kernels do -> OUTDIR/scalars.{txt,json}
#   5. sanitize (only when named in STEPS): compute-sanitizer (SANITIZE_TOOLS, default memcheck) over pytest of
#      SANITIZE_TESTS (absolute paths; default tests/py/cuda/test_cuda_ops.py) -> OUTDIR/sanitize-TOOL.log; tests
#      marked python_lifetime are deselected (the sanitizer keeps Python frames, so their tensors, alive)
# Build: cmake + ninja with CXX=/usr/bin/g++ (the image's /opt gcc links libstdc++ statically, which breaks _C
# once torch is imported) and the naive CBLAS shim of tests/cpp/cuda/cblas_shim (no OpenBLAS there).
# Env: STEP_LIMIT_S (default 150) per test step; PARITY_OPS (default "core"), PARITY_DTYPES (default
# "all": 17 s on an H200), PARITY_BACKWARD (default true: gradients, in float64); TRAIN_WORKLOADS (default "reversal,minigpt"),
# TRAIN_STEPS (default 60), TRAIN_PROFILE (default ci); DP_WORKLOADS (default "reversal,minigpt"), DP_PROFILE
# (default paper), DP_STEPS (default 30), DP_GPUS (default 2); STEPS (default "pytest training parity": which to run);
# PACK (a .tar.gz path: OUTDIR packed into it at the end, see below).
set -u
OUT=${1:?usage: gpu_session.sh OUTDIR}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
ROOT=$(pwd)
RT=$ROOT/generated_runtime
B=${VBT_GPU_BUILD:-/tmp/vbt-gpu-session}
LIMIT=${STEP_LIMIT_S:-150}
summary=$OUT/summary.txt
{ nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; } >"$OUT/devices.txt" 2>&1
SHIM=$B/cblas_shim
mkdir -p "$SHIM"
cp "$RT/tests/cpp/cuda/cblas_shim/cblas.h" "$SHIM/"
/usr/bin/gcc -O2 -fPIC -c "$RT/tests/cpp/cuda/cblas_shim/cblas_shim.c" -I"$SHIM" -o "$SHIM/shim.o" && ar rcs "$SHIM/libopenblas.a" "$SHIM/shim.o"
export CXX=/usr/bin/g++ CC=/usr/bin/gcc CUDAHOSTCXX=/usr/bin/g++
T0=$(date +%s)
cmake -S "$RT" -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVBT_ENABLE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DVBT_BUILD_TESTS=OFF -DVBT_BUILD_PYTHON=ON -DPython_EXECUTABLE="$(command -v python3)" \
  -DVBT_SKIP_SUBSYSTEMS=fabric -DCBLAS_INCLUDE_DIR="$SHIM" -DOPENBLAS_LIBRARY="$SHIM/libopenblas.a" >"$OUT/configure.log" 2>&1 \
  || { tail -30 "$OUT/configure.log"; echo "configure failed" >>"$summary"; exit 1; }
plugins=$(ninja -C "$B" -t targets all 2>/dev/null | grep -o '^vbt_\(example\|fabric_ring\)_[a-z_]*' | sort -u | tr '\n' ' ')
ninja -C "$B" -j"$(nproc)" _C $plugins >"$OUT/build.log" 2>&1 || { grep -n "error" "$OUT/build.log" | head -30; echo "build failed" >>"$summary"; exit 1; }
# The plugin-ABI 1.2 test plugins (built by CMake only with VBT_BUILD_TESTS): one gcc call each.
if [ -f "$RT/plugins/tensor_list_test/list_plugin.c" ]; then
  for m in ok abi11 minor3 bad_int_list bad_optional_list multi_device_cpu; do
    /usr/bin/gcc -O2 -fPIC -shared -fvisibility=hidden -I"$RT/include" -DVBT_LIST_$m=1 \
      "$RT/plugins/tensor_list_test/list_plugin.c" -o "$B/vbt_plugins/libvbt_list_$m.so" || echo "gcc list plugin $m failed" >>"$summary"
  done
fi
echo "build ok in $(( $(date +%s) - T0 ))s (targets: _C $plugins)" | tee -a "$summary"
SITE=$B/site
rm -rf "$SITE" && mkdir -p "$SITE" && cp -r "$RT/python/vibetensor" "$SITE/" && cp "$B"/_C*.so "$SITE/vibetensor/"
export VBT_PLUGIN_DIR=$B/vbt_plugins
PYP=$SITE
python3 -c "import pytest" 2>/dev/null || PYP=$SITE:$RT/tests/py/cuda/build/pylib
tests="$RT/tests/py/cuda"
for t in plugins/test_cuda_plugin.py interop/test_dlpack_cuda.py plugins/test_plugin_autograd.py distributed/test_distributed.py \
         plugins/test_plugin_tensor_list.py plugins/test_ring_plugin_cuda.py autograd/test_view_grads_device.py; do
  [ -f "$RT/tests/py/$t" ] && tests="$tests $RT/tests/py/$t"
done
STEPS=${STEPS:-pytest training parity}
want() { [[ " $STEPS " == *" $1 "* ]]; }
if want pytest; then
  T1=$(date +%s)
  (cd /tmp && PYTHONPATH=$PYP timeout "$LIMIT" python3 -m pytest -q --noconftest -p no:cacheprovider -rs $tests >"$OUT/pytest.log" 2>&1)
  echo "pytest rc=$? in $(( $(date +%s) - T1 ))s: $(tail -1 "$OUT/pytest.log")" | tee -a "$summary"
fi
if want training; then
  T2=$(date +%s)
  timeout "$LIMIT" python3 tests/gpu/gate_on_gpu.py training "$SITE" "$OUT/training" \
    --opt "workloads=${TRAIN_WORKLOADS:-reversal,minigpt}" --opt "steps=${TRAIN_STEPS:-60}" --opt window=10 \
    --opt "profile=${TRAIN_PROFILE:-ci}" >"$OUT/training.txt" 2>&1
  echo "training rc=$? in $(( $(date +%s) - T2 ))s: $(head -1 "$OUT/training/summary.txt" 2>/dev/null)" | tee -a "$summary"
fi
if want parity; then
  T3=$(date +%s)
  timeout "$LIMIT" python3 tests/gpu/gate_on_gpu.py parity "$SITE" "$OUT/parity" --opt "ops=${PARITY_OPS:-core}" \
    --opt "dtypes=${PARITY_DTYPES:-all}" --opt op_timeout_s=20 --opt "backward=${PARITY_BACKWARD:-true}" \
    >"$OUT/parity.txt" 2>&1
  echo "parity rc=$? in $(( $(date +%s) - T3 ))s: $(head -2 "$OUT/parity/summary.txt" 2>/dev/null | tail -1 | cut -c1-300)" | tee -a "$summary"
fi
if want sanitize; then
  T5=$(date +%s)
  SAN=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  for tool in ${SANITIZE_TOOLS:-memcheck}; do
    # a short busy loop in the stream tests (test_cuda_autograd_streams.py): the sanitizer checks kernels, not timing
    (cd /tmp && PYTHONPATH=$PYP VBT_TEST_BUSY_N=256 VBT_TEST_BUSY_ITERS=1 timeout "$LIMIT" "$SAN" --tool "$tool" --error-exitcode 9 python3 -m pytest -q \
      --noconftest -p no:cacheprovider -x -m "not python_lifetime" ${SANITIZE_TESTS:-$RT/tests/py/cuda/test_cuda_ops.py} \
      >"$OUT/sanitize-$tool.log" 2>&1)
    echo "compute-sanitizer $tool rc=$? in $(( $(date +%s) - T5 ))s: $(grep -E 'ERROR SUMMARY|passed|failed' "$OUT/sanitize-$tool.log" | tail -2 | tr '\n' ' ')" | tee -a "$summary"
  done
fi
if want ring; then
  T6=$(date +%s)
  PYTHONPATH=$SITE timeout "$LIMIT" python3 tests/gpu/ring_plugin_bench.py "$SITE" "$VBT_PLUGIN_DIR" "$OUT/ring_bench.json" \
    ${RING_MIB:-1 16 256 1024} >"$OUT/ring_bench.txt" 2>&1
  echo "ring bench rc=$? in $(( $(date +%s) - T6 ))s" | tee -a "$summary"
  tail -12 "$OUT/ring_bench.txt" | tee -a "$summary"
fi
if want bench; then  # side-by-side benchmarks against torch (tests/benchmarks/bench_cuda.py, tests/gpu/matmul_bench.py)
  T7=$(date +%s)
  PYTHONPATH=$SITE timeout "$LIMIT" python3 tests/benchmarks/bench_cuda.py --out "$OUT/bench_cuda.json" >"$OUT/bench_cuda.txt" 2>&1
  echo "bench_cuda rc=$? in $(( $(date +%s) - T7 ))s" | tee -a "$summary"
  T8=$(date +%s)
  timeout "$LIMIT" python3 tests/gpu/matmul_bench.py "$SITE" "$OUT/matmul.json" >"$OUT/matmul.txt" 2>&1
  echo "matmul_bench rc=$? in $(( $(date +%s) - T8 ))s" | tee -a "$summary"
fi
if want micro; then  # standalone kernel micro-benchmarks (tests/gpu/microbench/run.sh; MICRO names a subset)
  T9=$(date +%s)
  timeout "$LIMIT" bash tests/gpu/microbench/run.sh "$OUT/micro" ${MICRO:-} >"$OUT/micro.txt" 2>&1
  echo "micro rc=$? in $(( $(date +%s) - T9 ))s" | tee -a "$summary"
  rm -rf "$OUT/micro/bin"
fi
if want profile; then  # where a training step's time goes, torch and vibetensor (tests/gpu/profile_step.py)
  mkdir -p "$OUT/profile"
  for w in $(echo "${PROFILE_WORKLOADS:-minigpt,vit}" | tr ',' ' '); do
    for fw in torch vibetensor; do
      T10=$(date +%s)
      PYTHONPATH=$SITE timeout "$LIMIT" python3 tests/gpu/profile_step.py --workload "$w" --framework "$fw" \
        --profile "${TRAIN_PROFILE:-paper}" --device cuda --attribute "${PROFILE_ATTRIBUTE:-0}" \
        --out "$OUT/profile/$w-$fw.json" >"$OUT/profile/$w-$fw.txt" 2>&1
      echo "profile $w $fw rc=$? in $(( $(date +%s) - T10 ))s: $(grep -m1 ' on cuda: wall' "$OUT/profile/$w-$fw.txt")" | tee -a "$summary"
    done
  done
fi
if want spread; then  # the training gate's noise floor (tests/gpu/curve_spread.py)
  T11=$(date +%s)
  mkdir -p "$OUT/spread"
  runs=""
  for r in ${SPREAD_RUNS:-torch:cuda torch:cuda torch:cpu vibetensor.torch:cuda}; do runs="$runs --run $r"; done
  timeout "$LIMIT" python3 tests/gpu/curve_spread.py --site "$SITE" --workload "${SPREAD_WORKLOAD:-vit}" \
    --profile "${TRAIN_PROFILE:-paper}" --steps "${SPREAD_STEPS:-240}" $runs --seeds ${SPREAD_SEEDS:-0} \
    --out "$OUT/spread" >"$OUT/spread/spread.txt" 2>&1
  echo "spread rc=$? in $(( $(date +%s) - T11 ))s" | tee -a "$summary"
  cat "$OUT/spread/spread.txt" | tee -a "$summary"
fi
if want scalars; then  # float ops with a CPU scalar, bit for bit against torch.cuda (tests/gpu/scalar_ops_cuda.py)
  T12=$(date +%s)
  PYTHONPATH=$SITE timeout "$LIMIT" python3 tests/gpu/scalar_ops_cuda.py "$OUT/scalars.json" >"$OUT/scalars.txt" 2>&1
  echo "scalars rc=$? in $(( $(date +%s) - T12 ))s: $(tail -1 "$OUT/scalars.txt")" | tee -a "$summary"
fi
if want dp; then
  T4=$(date +%s)
  timeout "$LIMIT" python3 tests/gpu/dp_check.py "$SITE" "$OUT/dp" --workloads "${DP_WORKLOADS:-reversal,minigpt}" \
    --profile "${DP_PROFILE:-paper}" --steps "${DP_STEPS:-30}" --gpus "${DP_GPUS:-2}" >"$OUT/dp.txt" 2>&1
  echo "dp rc=$? in $(( $(date +%s) - T4 ))s" | tee -a "$summary"
  cat "$OUT/dp.txt" | tee -a "$summary"
fi
cat "$summary"
# The device tool brings back a limited number of files: PACK=FILE.tar.gz packs OUTDIR into one archive (and
# leaves only summary.txt beside it), so every log and report comes back.
if [ -n "${PACK:-}" ]; then
  tar czf "$PACK" -C "$(dirname "$OUT")" "$(basename "$OUT")" && find "$OUT" -type f ! -name summary.txt -delete
fi
