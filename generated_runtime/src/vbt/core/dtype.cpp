// dtype metadata and the promotion lattice.
//
// Note [Type promotion]
// promote_types(a, b) follows PyTorch's table: bool < integers < floating; within integers the
// smallest signed type holding both (uint8 + int8 -> int16); float16 + bfloat16 -> float32; an
// integer with a float gives the float. The *result type* of an op over several operands
// (result_type in tensor_iterator.cpp) additionally ranks operands in three priority groups:
// tensors with dim > 0, then 0-dim tensors, then wrapped Python scalars. A lower group only
// changes the result if it is of a higher category (bool < int < float); then its default type
// (int64 for Python ints, the default float dtype for Python floats) is promoted in. So
// int32_tensor + 5 -> int32, int32_tensor + 2.5 -> float32, float16_tensor + 2.5 -> float16.
#include "vbt/core/dtype.h"

#include <map>

namespace vbt {

int64_t itemsize(ScalarType t) {
  switch (t) {
    case ScalarType::Bool: case ScalarType::UInt8: case ScalarType::Int8: return 1;
    case ScalarType::Int16: case ScalarType::Float16: case ScalarType::BFloat16: return 2;
    case ScalarType::Int32: case ScalarType::Float32: return 4;
    case ScalarType::Int64: case ScalarType::Float64: return 8;
  }
  VBT_INTERNAL_ASSERT(false, "bad ScalarType");
}

const char* dtype_name(ScalarType t) {
  switch (t) {
    case ScalarType::Bool: return "bool";
    case ScalarType::UInt8: return "uint8";
    case ScalarType::Int8: return "int8";
    case ScalarType::Int16: return "int16";
    case ScalarType::Int32: return "int32";
    case ScalarType::Int64: return "int64";
    case ScalarType::Float16: return "float16";
    case ScalarType::BFloat16: return "bfloat16";
    case ScalarType::Float32: return "float32";
    case ScalarType::Float64: return "float64";
  }
  VBT_INTERNAL_ASSERT(false, "bad ScalarType");
}

ScalarType promote_types(ScalarType a, ScalarType b) {
  if (a == b) return a;
  if (a == ScalarType::Bool) return b;
  if (b == ScalarType::Bool) return a;
  bool fa = is_floating(a), fb = is_floating(b);
  if (fa && fb) {
    if ((a == ScalarType::Float16 && b == ScalarType::BFloat16) ||
        (a == ScalarType::BFloat16 && b == ScalarType::Float16))
      return ScalarType::Float32;
    return a > b ? a : b;  // Float16/BFloat16 < Float32 < Float64
  }
  if (fa) return a;
  if (fb) return b;
  // both integers
  if (a == ScalarType::UInt8 || b == ScalarType::UInt8) {
    ScalarType other = a == ScalarType::UInt8 ? b : a;
    return other == ScalarType::Int8 ? ScalarType::Int16 : other;
  }
  return a > b ? a : b;
}

ScalarType dtype_from_name(const std::string& name) {
  static const std::map<std::string, ScalarType> names = {
      {"bool", ScalarType::Bool},       {"uint8", ScalarType::UInt8},       {"int8", ScalarType::Int8},
      {"int16", ScalarType::Int16},     {"short", ScalarType::Int16},       {"int32", ScalarType::Int32},
      {"int", ScalarType::Int32},       {"int64", ScalarType::Int64},       {"long", ScalarType::Int64},
      {"float16", ScalarType::Float16}, {"half", ScalarType::Float16},      {"bfloat16", ScalarType::BFloat16},
      {"float32", ScalarType::Float32}, {"float", ScalarType::Float32},     {"float64", ScalarType::Float64},
      {"double", ScalarType::Float64},
  };
  auto it = names.find(name);
  if (it == names.end()) throw_error(ErrorKind::Type, "unknown dtype '", name, "'");
  return it->second;
}

}  // namespace vbt
