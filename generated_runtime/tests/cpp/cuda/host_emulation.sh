#!/usr/bin/env bash
# Builds and runs one host emulation of CUDA device code, tests/cpp/cuda/NAME.cpp (the kernel bodies of
# src/vbt/cuda/ops compiled by the host compiler; no GPU): scan_index_emulation (scan_index_kernels.cuh) or
# pack_loops_emulation (pack_loops.cuh). Needs the CUDA headers and a C++20 host compiler:
#   bash generated_runtime/tests/cpp/cuda/host_emulation.sh NAME
# (cublas_gemm_emulation.sh builds the cuBLAS mapping's check, which also needs a stand-in library.)
set -euo pipefail
name="${1:?usage: host_emulation.sh NAME (scan_index_emulation | pack_loops_emulation)}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
[ -f "$here/$name.cpp" ] || { echo "host_emulation.sh: no $here/$name.cpp" >&2; exit 2; }
cuda_inc="${CUDA_HOME:-/usr/local/cuda}/include"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"${CXX:-g++}" -std=c++20 -O1 -Wall -Wno-attributes -I"$root/src/vbt/cuda/ops" -I"$cuda_inc" "$here/$name.cpp" \
  -o "$out/$name" -lpthread
"$out/$name"
