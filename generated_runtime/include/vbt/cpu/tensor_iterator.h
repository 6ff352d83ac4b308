// TensorIterator: the engine under every elementwise CPU kernel (and the outer loop of
// reductions and dim-wise ops). Given outputs and inputs it
//   1. broadcasts the inputs to one shape (an out= tensor of another shape is resized, with a
//      warning when it had elements, as torch does; an in-place output must have that shape),
//   2. computes the common dtype (Note [Type promotion]) and casts inputs to it if asked,
//   3. allocates missing outputs (contiguous); an output of another dtype is computed into a
//      temporary and copied back (with a can-cast check, as PyTorch does),
//   4. orders dims by the first output's strides and coalesces them (Note [Coalescing]),
//   5. runs an inner 1-d loop `loop(char** data, const int64_t* byte_strides, int64_t n)`
//      over all elements, in parallel when there are at least kParallelGrain of them.
// Operand 0..noutputs-1 are outputs; the rest inputs. Strides are in BYTES here.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "vbt/core/tensor_impl.h"
#include "vbt/core/scalar.h"
#include "vbt/cpu/parallel.h"

namespace vbt {

// The result dtype of an op over these operands; `wrapped[i]` marks operand i as a
// Python number wrapped into a 0-dim tensor.
ScalarType result_type(const std::vector<Tensor>& operands, const std::vector<bool>& wrapped);
bool can_cast(ScalarType from, ScalarType to);  // false only for a category downgrade
// Broadcast shape of a and b; ValueError-free RuntimeError naming op and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// A Python number as a 0-dim tensor of its natural dtype (float64/int64/bool).
Tensor scalar_to_tensor(const Scalar& s, ScalarType dtype);

class TensorIterator;

class TensorIteratorConfig {
 public:
  explicit TensorIteratorConfig(const char* op_name) : op_(op_name) {}
  TensorIteratorConfig& add_output(const Tensor& t) { outputs_.push_back(t); return *this; }
  TensorIteratorConfig& add_input(const Tensor& t, bool wrapped_number = false) {
    inputs_.push_back(t);
    wrapped_.push_back(wrapped_number);
    return *this;
  }
  // Cast all inputs to the common dtype before the loop (default on).
  TensorIteratorConfig& promote_inputs_to_common_dtype(bool v) { promote_ = v; return *this; }
  // Force the compute dtype instead of deriving it by promotion.
  TensorIteratorConfig& set_common_dtype(ScalarType t) { forced_common_ = true; common_ = t; return *this; }
  // Dtype of allocated outputs (default: the common dtype), e.g. Bool for comparisons.
  TensorIteratorConfig& set_output_dtype(ScalarType t) { forced_out_ = true; out_dtype_ = t; return *this; }
  // In-place ops: an output must not need broadcasting/resizing (error otherwise).
  TensorIteratorConfig& is_inplace(bool v) { inplace_ = v; return *this; }
  // Allow an explicit shape (for ops without inputs, e.g. fills).
  TensorIteratorConfig& set_shape(const Shape& s) { has_shape_ = true; shape_ = s; return *this; }
  TensorIterator build();

 private:
  friend class TensorIterator;
  const char* op_;
  std::vector<Tensor> outputs_, inputs_;
  std::vector<bool> wrapped_;
  bool promote_ = true, forced_common_ = false, forced_out_ = false, inplace_ = false, has_shape_ = false;
  ScalarType common_ = ScalarType::Float32, out_dtype_ = ScalarType::Float32;
  Shape shape_;
};

class TensorIterator {
 public:
  using Loop = std::function<void(char** data, const int64_t* strides, int64_t n)>;

  int ntensors() const { return static_cast<int>(operands_.size()); }
  int noutputs() const { return noutputs_; }
  ScalarType common_dtype() const { return common_; }
  ScalarType dtype(int i) const { return operands_[i].dtype(); }  // dtype seen by the loop
  const Shape& shape() const { return shape_; }  // coalesced, innermost dim first
  const Shape& broadcast_shape() const { return full_shape_; }  // the logical output shape
  int64_t numel() const { return numel_; }
  // The user-visible output i (after for_each: holds the result).
  const Tensor& output(int i = 0) const { return user_outputs_[i]; }
  // Runs the loop over all elements; parallel above `grain` elements. Then copies outputs
  // computed into temporaries back into the user's tensors.
  void for_each(const Loop& loop, int64_t grain = kParallelGrain);
  // Serial loop over the linear element range [begin, end) (building block of for_each).
  void serial_for_each(const Loop& loop, int64_t begin, int64_t end) const;

 private:
  friend class TensorIteratorConfig;
  const char* op_ = "";
  int noutputs_ = 0;
  ScalarType common_ = ScalarType::Float32;
  std::vector<Tensor> operands_;       // what the loop reads/writes (maybe casted temporaries)
  std::vector<Tensor> user_outputs_;   // what the caller gets back
  Shape full_shape_, shape_;
  std::vector<Shape> strides_;         // per operand, per (coalesced) dim, in bytes
  int64_t numel_ = 0;
};

// Note [Coalescing]
// Two adjacent dims (inner d, outer d+1) merge when, for EVERY operand,
// stride[d+1] == stride[d] * shape[d] (size-1 dims merge with anything). The merged dim has
// the inner stride. Coalescing turns contiguous and broadcast-of-contiguous cases into one
// long inner loop, which is what makes the 1-d loops fast.
void coalesce_dims(Shape& shape, std::vector<Shape>& strides);

}  // namespace vbt
