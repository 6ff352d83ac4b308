// Typed access to boxed op arguments (see value.h for the invariants).
#include "vbt/dispatch/value.h"

namespace vbt {

namespace {
template <typename T> const T& get_as(const std::vector<Value>& v, size_t i, const char* what) {
  VBT_INTERNAL_ASSERT(i < v.size(), "argument index ", i, " out of range");
  const T* p = std::get_if<T>(&v[i]);
  VBT_INTERNAL_ASSERT(p != nullptr, "argument ", i, " is not a ", what, " (index ", v[i].index(), ")");
  return *p;
}
}  // namespace

const Tensor& Args::tensor(size_t i) const { return get_as<Tensor>(v_, i, "Tensor"); }
const Shape& Args::int_list(size_t i) const { return get_as<Shape>(v_, i, "int[]"); }
const std::string& Args::str(size_t i) const { return get_as<std::string>(v_, i, "str"); }
const TensorList& Args::tensor_list(size_t i) const { return get_as<TensorList>(v_, i, "Tensor[]"); }
ScalarType Args::dtype(size_t i) const { return get_as<ScalarType>(v_, i, "ScalarType"); }

Scalar Args::scalar(size_t i) const {
  VBT_INTERNAL_ASSERT(i < v_.size());
  const Value& v = v_[i];
  if (auto p = std::get_if<Scalar>(&v)) return *p;
  if (auto p = std::get_if<int64_t>(&v)) return Scalar(*p);
  if (auto p = std::get_if<double>(&v)) return Scalar(*p);
  if (auto p = std::get_if<bool>(&v)) return Scalar(*p);
  VBT_INTERNAL_ASSERT(false, "argument ", i, " is not a Scalar");
}
int64_t Args::integer(size_t i) const {
  if (auto p = std::get_if<int64_t>(&v_.at(i))) return *p;
  return scalar(i).to_int();
}
double Args::real(size_t i) const {
  if (auto p = std::get_if<double>(&v_.at(i))) return *p;
  return scalar(i).to_double();
}
bool Args::boolean(size_t i) const {
  if (auto p = std::get_if<bool>(&v_.at(i))) return *p;
  return scalar(i).to_bool();
}
GeneratorPtr Args::generator(size_t i) const {
  if (is_none(i)) return default_generator();
  return get_as<GeneratorPtr>(v_, i, "Generator");
}
Device Args::device_or_cpu(size_t i) const {
  if (is_none(i)) return Device{};
  return get_as<Device>(v_, i, "Device");
}

}  // namespace vbt
