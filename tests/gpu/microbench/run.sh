#!/usr/bin/env bash
# Standalone CUDA micro-benchmarks (no runtime build): each NAME.cu here is compiled with nvcc for sm_90 and run;
# its table goes to OUTDIR/NAME.txt. They compare kernel variants (ours as built today, candidates, torch-like
# configurations, cuBLAS settings) before a change enters the runtime through the harness.
#   bash tests/gpu/microbench/run.sh OUTDIR [NAME ...]
# cuBLAS is dlopen'ed by the benchmarks that need it, from $VBT_CUBLAS_LIBRARY (set here from the pip wheel when
# unset).
set -uo pipefail
OUT=${1:?usage: run.sh OUTDIR [NAME ...]}; shift
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT/bin"
if [ -z "${VBT_CUBLAS_LIBRARY:-}" ]; then
  VBT_CUBLAS_LIBRARY=$(python3 - <<'PY' 2>/dev/null
import glob, site, sys
for d in site.getsitepackages() + sys.path:
    for p in sorted(glob.glob(f"{d}/nvidia/cu*/lib/libcublas.so.*") + glob.glob(f"{d}/nvidia/cublas/lib/libcublas.so.*")):
        print(p); raise SystemExit
PY
)
  export VBT_CUBLAS_LIBRARY
fi
echo "cuBLAS: ${VBT_CUBLAS_LIBRARY:-not found}"
names=("$@")
[ ${#names[@]} -eq 0 ] && names=($(cd "$HERE" && ls *.cu | sed 's/\.cu$//'))
status=0
for n in "${names[@]}"; do
  if ! nvcc -O3 -std=c++17 -arch=sm_90 -lineinfo "$HERE/$n.cu" -o "$OUT/bin/$n" -ldl > "$OUT/$n.build.log" 2>&1; then
    echo "$n: build failed"; tail -20 "$OUT/$n.build.log"; status=1; continue
  fi
  echo "== $n"; "$OUT/bin/$n" 2>&1 | tee "$OUT/$n.txt" || status=1
done
exit $status
