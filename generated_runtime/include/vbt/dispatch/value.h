// Value: the boxed form of one op argument or result (schema-lite calling convention).
// Every op kernel receives its arguments as a vector of Values in schema order, with
// defaults already filled, and returns one Value (a Tensor, a list of Tensors, a Scalar...).
// A monostate Value is Python's None. Boxing keeps the dispatcher's wrapper layers (device
// policy, autograd, Python override) generic over all ops.
#pragma once
#include <string>
#include <variant>
#include <vector>

#include "vbt/core/generator.h"
#include "vbt/core/scalar.h"
#include "vbt/core/tensor_impl.h"

namespace vbt {

using TensorList = std::vector<Tensor>;
using Value = std::variant<std::monostate, Tensor, Scalar, int64_t, double, bool, Shape, std::string, TensorList,
                           ScalarType, GeneratorPtr, Device>;

// Typed accessors for kernels. Preconditions are internal invariants (the binding and the
// schema guarantee the types), so a mismatch aborts rather than raising.
class Args {
 public:
  Args() = default;
  Args(std::initializer_list<Value> vs) : v_(vs) {}
  explicit Args(std::vector<Value> vs) : v_(std::move(vs)) {}
  size_t size() const { return v_.size(); }
  Value& operator[](size_t i) { return v_.at(i); }
  const Value& operator[](size_t i) const { return v_.at(i); }
  void push_back(Value v) { v_.push_back(std::move(v)); }
  std::vector<Value>& values() { return v_; }
  const std::vector<Value>& values() const { return v_; }

  bool is_none(size_t i) const { return i >= v_.size() || std::holds_alternative<std::monostate>(v_[i]); }
  const Tensor& tensor(size_t i) const;
  Tensor opt_tensor(size_t i) const { return is_none(i) ? Tensor() : tensor(i); }
  Scalar scalar(size_t i) const;  // also accepts int64/double/bool Values
  int64_t integer(size_t i) const;
  double real(size_t i) const;
  bool boolean(size_t i) const;
  const Shape& int_list(size_t i) const;
  const std::string& str(size_t i) const;
  const TensorList& tensor_list(size_t i) const;
  ScalarType dtype(size_t i) const;
  ScalarType dtype_or(size_t i, ScalarType fallback) const { return is_none(i) ? fallback : dtype(i); }
  GeneratorPtr generator(size_t i) const;  // the default generator when None
  Device device_or_cpu(size_t i) const;

 private:
  std::vector<Value> v_;
};

}  // namespace vbt
