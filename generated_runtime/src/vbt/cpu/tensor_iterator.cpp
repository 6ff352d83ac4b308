// TensorIterator implementation (see tensor_iterator.h, Note [Type promotion], Note [Coalescing]).
#include "vbt/cpu/tensor_iterator.h"

#include <algorithm>
#include <numeric>
#include <optional>

#include "cpu_kernels.h"

namespace vbt {

namespace {
int category(ScalarType t) { return t == ScalarType::Bool ? 0 : is_floating(t) ? 2 : 1; }

// PyTorch's combine_categories: a lower-priority group only matters if it is of a higher category.
std::optional<ScalarType> combine(std::optional<ScalarType> higher, std::optional<ScalarType> lower) {
  if (!higher) return lower;
  if (!lower) return higher;
  if (is_floating(*higher)) return higher;
  if (*higher == ScalarType::Bool || is_floating(*lower)) return promote_types(*higher, *lower);
  return higher;
}
}  // namespace

ScalarType result_type(const std::vector<Tensor>& operands, const std::vector<bool>& wrapped) {
  std::optional<ScalarType> dim_result, zero_result, wrapped_result;
  auto upd = [](std::optional<ScalarType>& r, ScalarType t) { r = r ? promote_types(*r, t) : t; };
  for (size_t i = 0; i < operands.size(); ++i) {
    const Tensor& t = operands[i];
    if (!t.defined()) continue;
    if (i < wrapped.size() && wrapped[i]) {
      ScalarType w = t.dtype();
      if (is_floating(w)) w = default_float_dtype();
      upd(wrapped_result, w);
    } else if (t.dim() == 0) {
      upd(zero_result, t.dtype());
    } else {
      upd(dim_result, t.dtype());
    }
  }
  auto r = combine(dim_result, combine(zero_result, wrapped_result));
  return r ? *r : default_float_dtype();
}

bool can_cast(ScalarType from, ScalarType to) { return category(from) <= category(to); }

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      throw_error(ErrorKind::Runtime, op, ": The size of tensor a (", da, ") must match the size of tensor b (", db,
                  ") at non-singleton dimension ", i, " (shapes ", shape_str(a), " and ", shape_str(b), ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Tensor scalar_to_tensor(const Scalar& s, ScalarType dtype) {
  Tensor t = empty({}, dtype);
  VBT_DISPATCH_ALL(dtype, "scalar_to_tensor", [&]<typename T>() { *t.data<T>() = s.to<T>(); });
  return t;
}

void coalesce_dims(Shape& shape, std::vector<Shape>& strides) {
  if (shape.size() <= 1) return;
  size_t out = 0;  // index of the dim being grown
  for (size_t d = 1; d < shape.size(); ++d) {
    bool can = true;
    for (auto& st : strides) {
      if (shape[out] == 1 || shape[d] == 1) continue;
      if (st[d] != st[out] * shape[out]) { can = false; break; }
    }
    if (can) {
      for (auto& st : strides) if (shape[out] == 1) st[out] = st[d];
      shape[out] *= shape[d];
    } else {
      ++out;
      shape[out] = shape[d];
      for (auto& st : strides) st[out] = st[d];
    }
  }
  shape.resize(out + 1);
  for (auto& st : strides) st.resize(out + 1);
}

TensorIterator TensorIteratorConfig::build() {
  TensorIterator it;
  it.op_ = op_;
  it.noutputs_ = static_cast<int>(outputs_.size());
  // 1. broadcast shape
  Shape shape;
  bool first = true;
  if (has_shape_) { shape = shape_; first = false; }
  for (const Tensor& t : inputs_) {
    VBT_INTERNAL_ASSERT(t.defined(), op_, ": undefined input");
    shape = first ? t.sizes() : broadcast_shapes(shape, t.sizes(), op_);
    first = false;
  }
  if (first) {
    for (const Tensor& t : outputs_) if (t.defined()) { shape = t.sizes(); first = false; break; }
  }
  it.full_shape_ = shape;
  // 2. common dtype
  ScalarType common = forced_common_ ? common_ : result_type(inputs_, wrapped_);
  if (!forced_common_ && inputs_.empty() && !outputs_.empty() && outputs_[0].defined()) common = outputs_[0].dtype();
  it.common_ = common;
  ScalarType out_dtype = forced_out_ ? out_dtype_ : common;
  // 3. outputs
  std::vector<Tensor> loop_outputs;
  for (const Tensor& o : outputs_) {
    if (!o.defined()) {
      Tensor t = empty(shape, out_dtype);
      it.user_outputs_.push_back(t);
      loop_outputs.push_back(t);
      continue;
    }
    if (o.sizes() != shape) {
      bool aliases_input = inplace_;
      for (const Tensor& in : inputs_) aliases_input = aliases_input || in.is_same(o);
      VBT_CHECK(!aliases_input, op_, ": output with shape ", shape_str(o.sizes()), " doesn't match the broadcast shape ",
                shape_str(shape));
      if (o.numel() != 0)  // torch resizes a non-empty out= too, with a deprecation warning
        warn(detail::str_cat("An output with one or more elements was resized since it had shape ", shape_str(o.sizes()),
                             ", which does not match the required output shape ", shape_str(shape),
                             ". This behavior is deprecated, and in a future PyTorch release outputs will not be "
                             "resized unless they have zero elements. (", op_, ")"));
      o.impl()->set_sizes_contiguous(shape);
    }
    if (o.dtype() != out_dtype) {
      VBT_CHECK(can_cast(out_dtype, o.dtype()), op_, ": result type ", dtype_name(out_dtype),
                " can't be cast to the desired output type ", dtype_name(o.dtype()));
      it.user_outputs_.push_back(o);
      loop_outputs.push_back(empty(shape, out_dtype));
    } else {
      it.user_outputs_.push_back(o);
      loop_outputs.push_back(o);
    }
  }
  it.operands_ = loop_outputs;
  for (const Tensor& in : inputs_) {
    if (promote_ && in.dtype() != common) {
      Tensor cast = empty(in.sizes(), common);
      copy_into(cast, in);
      it.operands_.push_back(cast);
    } else {
      it.operands_.push_back(in);
    }
  }
  // 4. strides in bytes on the broadcast shape, innermost dim first
  int64_t ndim = static_cast<int64_t>(shape.size());
  it.numel_ = shape_numel(shape);
  Shape rshape(shape.rbegin(), shape.rend());
  for (const Tensor& t : it.operands_) {
    Shape st(ndim, 0);
    int64_t off = ndim - t.dim();
    int64_t isz = itemsize(t.dtype());
    for (int64_t d = 0; d < t.dim(); ++d) {
      int64_t logical = d + off;
      st[ndim - 1 - logical] = t.sizes()[d] == 1 ? 0 : t.strides()[d] * isz;
    }
    it.strides_.push_back(st);
  }
  // order dims by the first operand's strides (ascending), stable, so that an output with a
  // permuted layout (in-place on a transposed tensor) is walked in memory order
  if (ndim > 1 && !it.strides_.empty()) {
    std::vector<int64_t> perm(ndim);
    std::iota(perm.begin(), perm.end(), 0);
    auto should_swap = [&](int64_t a, int64_t b) {  // is dim a (currently inner) outer to dim b?
      for (const auto& st : it.strides_) {
        if (st[a] == 0 || st[b] == 0) continue;
        if (st[a] != st[b]) return st[a] > st[b];
      }
      return false;
    };
    for (int64_t i = 1; i < ndim; ++i)
      for (int64_t j = i; j > 0 && should_swap(perm[j - 1], perm[j]); --j) std::swap(perm[j - 1], perm[j]);
    Shape ps(ndim);
    for (int64_t d = 0; d < ndim; ++d) ps[d] = rshape[perm[d]];
    rshape = ps;
    for (auto& st : it.strides_) {
      Shape ns(ndim);
      for (int64_t d = 0; d < ndim; ++d) ns[d] = st[perm[d]];
      st = ns;
    }
  }
  if (ndim == 0) {
    rshape = {1};
    for (auto& st : it.strides_) st = {0};
  }
  coalesce_dims(rshape, it.strides_);
  it.shape_ = rshape;
  return it;
}

void TensorIterator::serial_for_each(const Loop& loop, int64_t begin, int64_t end) const {
  if (begin >= end) return;
  const int n = ntensors();
  const int64_t ndim = static_cast<int64_t>(shape_.size());
  std::vector<char*> base(n), ptrs(n);
  for (int i = 0; i < n; ++i) base[i] = static_cast<char*>(operands_[i].data_ptr());
  std::vector<int64_t> idx(ndim, 0);
  int64_t rem = begin;
  for (int64_t d = 0; d < ndim; ++d) { idx[d] = rem % shape_[d]; rem /= shape_[d]; }
  std::vector<int64_t> inner(n);
  for (int i = 0; i < n; ++i) inner[i] = strides_[i][0];
  int64_t pos = begin;
  while (pos < end) {
    for (int i = 0; i < n; ++i) {
      int64_t off = 0;
      for (int64_t d = 0; d < ndim; ++d) off += idx[d] * strides_[i][d];
      ptrs[i] = base[i] + off;
    }
    int64_t count = std::min(shape_[0] - idx[0], end - pos);
    loop(ptrs.data(), inner.data(), count);
    pos += count;
    idx[0] += count;
    for (int64_t d = 0; d < ndim - 1 && idx[d] >= shape_[d]; ++d) { idx[d] = 0; ++idx[d + 1]; }
  }
}

void TensorIterator::for_each(const Loop& loop, int64_t grain) {
  if (numel_ > 0) {
    parallel_for(0, numel_, grain, [&](int64_t b, int64_t e) { serial_for_each(loop, b, e); });
  }
  for (int i = 0; i < noutputs_; ++i) {
    if (!operands_[i].is_same(user_outputs_[i])) copy_into(user_outputs_[i], operands_[i]);
  }
}

}  // namespace vbt
