#!/usr/bin/env bash
# Runs the host emulation of the scan_index CUDA kernels (scan_index_emulation.cpp); needs the CUDA headers
# (cuda_fp16.h) and a C++20 host compiler, no GPU:  bash generated_runtime/tests/cpp/cuda/scan_index_emulation.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cuda_inc="${CUDA_HOME:-/usr/local/cuda}/include"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"${CXX:-g++}" -std=c++20 -O1 -Wno-attributes -I"$root/src/vbt/cuda/ops" -I"$cuda_inc" "$here/scan_index_emulation.cpp" \
  -o "$out/scan_index_emulation" -lpthread
"$out/scan_index_emulation"
