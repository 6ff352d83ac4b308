#!/usr/bin/env bash
# Runs the host emulation of the pack copy (pack_loops_emulation.cpp, PackCopyNote in src/vbt/cuda/ops/pack_loops.cuh);
# needs the CUDA headers (vector_types.h) and a C++20 host compiler, no GPU:
#   bash generated_runtime/tests/cpp/cuda/pack_loops_emulation.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cuda_inc="${CUDA_HOME:-/usr/local/cuda}/include"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"${CXX:-g++}" -std=c++20 -O1 -Wall -Wno-attributes -I"$root/src/vbt/cuda/ops" -I"$cuda_inc" "$here/pack_loops_emulation.cpp" \
  -o "$out/pack_loops_emulation"
"$out/pack_loops_emulation"
