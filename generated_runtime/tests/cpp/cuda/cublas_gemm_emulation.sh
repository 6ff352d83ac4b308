#!/usr/bin/env bash
# Runs the host check of the cuBLAS mapping (cublas_gemm_emulation.cpp) against the stand-in library
# cublas_gemm_stub.c; needs the CUDA headers and a C++20 host compiler, no GPU and no cuBLAS:
#   bash generated_runtime/tests/cpp/cuda/cublas_gemm_emulation.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cuda_inc="${CUDA_HOME:-/usr/local/cuda}/include"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"${CC:-cc}" -O1 -shared -fPIC "$here/cublas_gemm_stub.c" -o "$out/libcublas_stub.so"
"${CXX:-g++}" -std=c++20 -O1 -Wall -I"$root/include" -I"$root/src/vbt/cuda/ops" -I"$cuda_inc" \
  "$here/cublas_gemm_emulation.cpp" "$root/src/vbt/cuda/ops/cublas_gemm.cpp" "$root/src/vbt/core/error.cpp" \
  -o "$out/cublas_gemm_emulation" -ldl -lpthread
"$out/cublas_gemm_emulation" "$out/libcublas_stub.so"
