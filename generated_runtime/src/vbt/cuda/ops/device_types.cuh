// Internal (device code): the C++ type of each dtype code, widening to the compute ("accumulate") type,
// conversions between dtypes, and dtype switches for the launchers. Half and bfloat16 compute in float.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <type_traits>

namespace vbt::cuda::ops {

template <typename T> struct Tag { using type = T; };

template <typename T> struct AccOf { using type = T; };
template <> struct AccOf<__half> { using type = float; };
template <> struct AccOf<__nv_bfloat16> { using type = float; };
template <typename T> using acc_t = typename AccOf<T>::type;

template <typename T> __device__ __forceinline__ acc_t<T> up(T v) {
  if constexpr (std::is_same_v<T, __half>) return __half2float(v);
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return __bfloat162float(v);
  else return v;
}

template <typename To, typename From> __device__ __forceinline__ To cvt(From v) {
  auto x = up(v);
  using X = decltype(x);
  if constexpr (std::is_same_v<To, bool>) return x != X(0);
  else if constexpr (std::is_same_v<To, __half>) return __float2half(static_cast<float>(x));
  else if constexpr (std::is_same_v<To, __nv_bfloat16>) return __float2bfloat16(static_cast<float>(x));
  else return static_cast<To>(x);
}

template <typename A> __device__ __forceinline__ bool is_nan(A v) {
  if constexpr (std::is_floating_point_v<A>) return v != v;
  else return false;
}

// Dtype switches: call f(Tag<T>{}) for the dtype code (vbt::ScalarType's values).
template <typename F> cudaError_t dispatch_float(int dt, F&& f) {
  switch (dt) {
    case 6: return f(Tag<__half>{});
    case 7: return f(Tag<__nv_bfloat16>{});
    case 8: return f(Tag<float>{});
    case 9: return f(Tag<double>{});
  }
  return cudaErrorInvalidValue;
}
template <typename F> cudaError_t dispatch_numeric(int dt, F&& f) {
  switch (dt) {
    case 1: return f(Tag<uint8_t>{});
    case 2: return f(Tag<int8_t>{});
    case 3: return f(Tag<int16_t>{});
    case 4: return f(Tag<int32_t>{});
    case 5: return f(Tag<int64_t>{});
  }
  return dispatch_float(dt, f);
}
template <typename F> cudaError_t dispatch_all(int dt, F&& f) {
  if (dt == 0) return f(Tag<bool>{});
  return dispatch_numeric(dt, f);
}
template <typename F> cudaError_t dispatch_integral(int dt, F&& f) {  // bool and the integer dtypes
  switch (dt) {
    case 0: return f(Tag<bool>{});
    case 1: return f(Tag<uint8_t>{});
    case 2: return f(Tag<int8_t>{});
    case 3: return f(Tag<int16_t>{});
    case 4: return f(Tag<int32_t>{});
    case 5: return f(Tag<int64_t>{});
  }
  return cudaErrorInvalidValue;
}

}  // namespace vbt::cuda::ops
