// Scalar: a Python number crossing into C++ (bool, int64 or double), remembering which, so
// that type promotion can treat it as a "wrapped number" (Note [Type promotion]).
#pragma once
#include <cstdint>
#include <type_traits>

#include "vbt/core/dtype.h"

namespace vbt {

class Scalar {
 public:
  enum class Kind : int8_t { Bool, Int, Float };
  Scalar() : kind_(Kind::Int), i_(0) {}
  Scalar(bool b) : kind_(Kind::Bool), i_(b) {}                // NOLINT
  Scalar(int v) : kind_(Kind::Int), i_(v) {}                  // NOLINT
  Scalar(int64_t v) : kind_(Kind::Int), i_(v) {}              // NOLINT
  Scalar(double v) : kind_(Kind::Float), d_(v) {}             // NOLINT
  Kind kind() const { return kind_; }
  bool is_floating() const { return kind_ == Kind::Float; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  double to_double() const { return kind_ == Kind::Float ? d_ : static_cast<double>(i_); }
  int64_t to_int() const { return kind_ == Kind::Float ? static_cast<int64_t>(d_) : i_; }
  bool to_bool() const { return kind_ == Kind::Float ? d_ != 0.0 : i_ != 0; }
  // The dtype a 0-dim tensor holding this scalar has in PyTorch (float64 for Python floats).
  ScalarType natural_dtype() const {
    return kind_ == Kind::Float ? ScalarType::Float64 : kind_ == Kind::Bool ? ScalarType::Bool : ScalarType::Int64;
  }
  template <typename T> T to() const {
    if constexpr (std::is_same_v<T, bool>) return to_bool();
    else if constexpr (std::is_integral_v<T>) return static_cast<T>(to_int());
    else if constexpr (std::is_same_v<T, double>) return to_double();
    else return T(static_cast<float>(to_double()));
  }

 private:
  Kind kind_;
  union { int64_t i_; double d_; };
};

}  // namespace vbt
