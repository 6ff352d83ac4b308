// The row reductions' accumulators (RowRed in loops.h): init, one element, the combination of two partial results
// and the final transform, in double for floating types and int64 for integers. Shared by the row-reduce kernels
// (scan_index_kernels.cuh) and the multi-tensor norms (optim.cu), so both compute a norm the same way.
#pragma once
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "loops.h"

namespace vbt::cuda::ops::scan_detail {

// ---- row reductions with a wide accumulator: init, one element, the combination of two partial results,
// and the final transform. Floating types: all ops; integers: Prod only.
template <typename W> __device__ __forceinline__ W rr_init(RowRed op) {
  if constexpr (std::is_floating_point_v<W>) {
    if (op == RowRed::NormNegInf) return HUGE_VAL;
  }
  return op == RowRed::Prod ? W(1) : W(0);
}
template <typename W> __device__ __forceinline__ W rr_combine(RowRed op, W a, W b) {
  if constexpr (std::is_floating_point_v<W>) {
    switch (op) {
      case RowRed::Prod: return a * b;
      case RowRed::NormInf:
      case RowRed::NormNegInf:
        if (isnan(a) || isnan(b)) return nan("");
        return op == RowRed::NormInf ? fmax(a, b) : fmin(a, b);
      default: return a + b;  // the norms with a sum
    }
  } else {
    return static_cast<W>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));  // Prod; wraps like the CPU
  }
}
template <typename W> __device__ __forceinline__ W rr_step(RowRed op, W acc, W x, double p) {
  if constexpr (std::is_floating_point_v<W>) {
    switch (op) {
      case RowRed::Prod: return acc * x;
      case RowRed::NormInf:
      case RowRed::NormNegInf: return rr_combine(op, acc, W(fabs(x)));
      case RowRed::Norm0: return acc + (x != 0.0 ? 1.0 : 0.0);
      case RowRed::Norm1: return acc + fabs(x);
      case RowRed::Norm2: return acc + x * x;
      case RowRed::NormP: return acc + pow(fabs(x), p);
    }
    return acc;
  } else {
    return rr_combine(op, acc, x);
  }
}
template <typename W> __device__ __forceinline__ W rr_finish(RowRed op, W acc, double p) {
  if constexpr (std::is_floating_point_v<W>) {
    if (op == RowRed::Norm2) return sqrt(acc);
    if (op == RowRed::NormP) return pow(acc, 1.0 / p);
  }
  return acc;
}

}  // namespace vbt::cuda::ops::scan_detail
