// TensorImpl geometry helpers and the allocation primitives empty()/make_view().
#include "vbt/core/tensor_impl.h"

#include <sstream>

namespace vbt {

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t v : s) n *= v;
  return n;
}

TensorImpl::TensorImpl(Storage storage, ScalarType dtype, Shape sizes, Shape strides, int64_t offset)
    : storage_(std::move(storage)), dtype_(dtype), sizes_(std::move(sizes)), strides_(std::move(strides)),
      offset_(offset) {
  VBT_INTERNAL_ASSERT(sizes_.size() == strides_.size());
  for (int64_t s : sizes_) VBT_INTERNAL_ASSERT(s >= 0, "negative size");
  numel_ = shape_numel(sizes_);
}

bool TensorImpl::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    if (sizes_[d] == 1) continue;
    if (sizes_[d] == 0) return true;
    if (strides_[d] != expected) return false;
    expected *= sizes_[d];
  }
  return true;
}

void TensorImpl::set_sizes_contiguous(const Shape& sizes) {
  int64_t n = shape_numel(sizes);
  size_t need = static_cast<size_t>((n + offset_) * itemsize(dtype_));
  if (need > storage_->nbytes) {
    Storage grown = make_storage(need, device());
    grown->version.store(storage_->version.load());
    storage_ = grown;
  }
  sizes_ = sizes;
  strides_ = contiguous_strides(sizes);
  numel_ = n;
}

int64_t Tensor::size(int64_t d) const { return sizes()[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides()[wrap_dim(d, dim(), "stride")]; }

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

Shape contiguous_strides(const Shape& sizes) {
  Shape st(sizes.size());
  int64_t acc = 1;
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
    st[d] = acc;
    acc *= std::max<int64_t>(sizes[d], 1);
  }
  return st;
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t lo = ndim == 0 ? -1 : -ndim, hi = ndim == 0 ? 0 : ndim - 1;
  VBT_CHECK_INDEX(dim >= lo && dim <= hi, op, ": Dimension out of range (expected to be in range of [", lo, ", ",
                  hi, "], but got ", dim, ")");
  return dim < 0 ? dim + std::max<int64_t>(ndim, 1) : dim;
}

Tensor empty(const Shape& sizes, ScalarType dtype, Device device) {
  for (int64_t s : sizes)
    VBT_CHECK(s >= 0, "empty: Trying to create tensor with negative dimension ", s, ": ", shape_str(sizes));
  int64_t n = shape_numel(sizes);
  Storage st = make_storage(static_cast<size_t>(n * itemsize(dtype)), device);
  return Tensor(std::make_shared<TensorImpl>(std::move(st), dtype, sizes, contiguous_strides(sizes), 0));
}

Tensor make_view(const Tensor& t, Shape sizes, Shape strides, int64_t offset) {
  return Tensor(std::make_shared<TensorImpl>(t.impl()->storage(), t.dtype(), std::move(sizes), std::move(strides),
                                             offset));
}

}  // namespace vbt
