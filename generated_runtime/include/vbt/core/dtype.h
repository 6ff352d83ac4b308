// ScalarType: the element types of a tensor. Values are explicit and only grow at the end
// (they may cross a C ABI later). Type promotion lives in dtype.cpp (Note [Type promotion]).
// VBT_DISPATCH_* turn a runtime ScalarType into a C++ type for a templated lambda
// `[&]<typename T>() {...}`; keep the set small per call site to bound compile time.
#pragma once
#include <cstdint>
#include <string>

#include "vbt/core/error.h"
#include "vbt/core/half.h"

namespace vbt {

enum class ScalarType : int8_t {
  Bool = 0,
  UInt8 = 1,
  Int8 = 2,
  Int16 = 3,
  Int32 = 4,
  Int64 = 5,
  Float16 = 6,
  BFloat16 = 7,
  Float32 = 8,
  Float64 = 9,
};
constexpr int kNumScalarTypes = 10;

int64_t itemsize(ScalarType t);
const char* dtype_name(ScalarType t);  // "float32", "int64", ... (PyTorch's torch.<name>)
inline bool is_floating(ScalarType t) {
  return t == ScalarType::Float16 || t == ScalarType::BFloat16 || t == ScalarType::Float32 ||
         t == ScalarType::Float64;
}
inline bool is_integral(ScalarType t, bool include_bool) {
  return (t >= ScalarType::UInt8 && t <= ScalarType::Int64) || (include_bool && t == ScalarType::Bool);
}
// The smallest type both a and b convert to without losing their category (PyTorch's table).
ScalarType promote_types(ScalarType a, ScalarType b);
// The default floating dtype (float32), used for Python floats and integer true division.
inline ScalarType default_float_dtype() { return ScalarType::Float32; }
// Parses "float32"/"float"/"int64"/"long"/... ; throws TypeError on unknown names.
ScalarType dtype_from_name(const std::string& name);

template <ScalarType S> struct CppTypeOf;
template <> struct CppTypeOf<ScalarType::Bool> { using type = bool; };
template <> struct CppTypeOf<ScalarType::UInt8> { using type = uint8_t; };
template <> struct CppTypeOf<ScalarType::Int8> { using type = int8_t; };
template <> struct CppTypeOf<ScalarType::Int16> { using type = int16_t; };
template <> struct CppTypeOf<ScalarType::Int32> { using type = int32_t; };
template <> struct CppTypeOf<ScalarType::Int64> { using type = int64_t; };
template <> struct CppTypeOf<ScalarType::Float16> { using type = Half; };
template <> struct CppTypeOf<ScalarType::BFloat16> { using type = BFloat16; };
template <> struct CppTypeOf<ScalarType::Float32> { using type = float; };
template <> struct CppTypeOf<ScalarType::Float64> { using type = double; };

// Accumulation/compute type: 16-bit floats compute in float.
template <typename T> struct OpMath { using type = T; };
template <> struct OpMath<Half> { using type = float; };
template <> struct OpMath<BFloat16> { using type = float; };
template <typename T> using opmath_t = typename OpMath<T>::type;

}  // namespace vbt

#define VBT_DTYPE_CASE(S, ...) \
  case ::vbt::ScalarType::S: return fn.template operator()<typename ::vbt::CppTypeOf<::vbt::ScalarType::S>::type>();

namespace vbt::detail {
template <typename F> decltype(auto) dispatch_all(ScalarType t, const char* op, F&& fn) {
  switch (t) {
    VBT_DTYPE_CASE(Bool) VBT_DTYPE_CASE(UInt8) VBT_DTYPE_CASE(Int8) VBT_DTYPE_CASE(Int16)
    VBT_DTYPE_CASE(Int32) VBT_DTYPE_CASE(Int64) VBT_DTYPE_CASE(Float16) VBT_DTYPE_CASE(BFloat16)
    VBT_DTYPE_CASE(Float32) VBT_DTYPE_CASE(Float64)
  }
  throw_error(ErrorKind::Type, op, ": unsupported dtype");
}
template <typename F> decltype(auto) dispatch_numeric(ScalarType t, const char* op, F&& fn) {
  switch (t) {
    VBT_DTYPE_CASE(UInt8) VBT_DTYPE_CASE(Int8) VBT_DTYPE_CASE(Int16) VBT_DTYPE_CASE(Int32)
    VBT_DTYPE_CASE(Int64) VBT_DTYPE_CASE(Float16) VBT_DTYPE_CASE(BFloat16) VBT_DTYPE_CASE(Float32)
    VBT_DTYPE_CASE(Float64)
    default: break;
  }
  throw_error(ErrorKind::Runtime, op, ": not implemented for '", dtype_name(t), "'");
}
template <typename F> decltype(auto) dispatch_floating(ScalarType t, const char* op, F&& fn) {
  switch (t) {
    VBT_DTYPE_CASE(Float16) VBT_DTYPE_CASE(BFloat16) VBT_DTYPE_CASE(Float32) VBT_DTYPE_CASE(Float64)
    default: break;
  }
  throw_error(ErrorKind::Runtime, op, ": not implemented for '", dtype_name(t), "'");
}
template <typename F> decltype(auto) dispatch_integral(ScalarType t, const char* op, F&& fn) {
  switch (t) {
    VBT_DTYPE_CASE(Bool) VBT_DTYPE_CASE(UInt8) VBT_DTYPE_CASE(Int8) VBT_DTYPE_CASE(Int16)
    VBT_DTYPE_CASE(Int32) VBT_DTYPE_CASE(Int64)
    default: break;
  }
  throw_error(ErrorKind::Runtime, op, ": not implemented for '", dtype_name(t), "'");
}
}  // namespace vbt::detail

#define VBT_DISPATCH_ALL(dtype, op, ...) ::vbt::detail::dispatch_all(dtype, op, __VA_ARGS__)
#define VBT_DISPATCH_NUMERIC(dtype, op, ...) ::vbt::detail::dispatch_numeric(dtype, op, __VA_ARGS__)
#define VBT_DISPATCH_FLOATING(dtype, op, ...) ::vbt::detail::dispatch_floating(dtype, op, __VA_ARGS__)
#define VBT_DISPATCH_INTEGRAL(dtype, op, ...) ::vbt::detail::dispatch_integral(dtype, op, __VA_ARGS__)
