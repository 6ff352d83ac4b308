// TensorImpl: a strided view on a Storage: sizes, strides (in ELEMENTS), storage offset (in
// elements), dtype and device. Many TensorImpls may view one Storage (views are normal, and
// so are non-contiguous and overlapping strides). Tensor is the value-semantics handle
// (shared ownership of a TensorImpl) used everywhere in the runtime.
// Invariant: sizes.size() == strides.size(); every size >= 0.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vbt/core/device.h"
#include "vbt/core/dtype.h"
#include "vbt/core/storage.h"

namespace vbt {

using Shape = std::vector<int64_t>;

// Reserved for autograd (a wrapper dispatch layer). Empty today.
struct AutogradMetaInterface {
  virtual ~AutogradMetaInterface() = default;
};

class TensorImpl {
 public:
  TensorImpl(Storage storage, ScalarType dtype, Shape sizes, Shape strides, int64_t offset);

  const Shape& sizes() const { return sizes_; }
  const Shape& strides() const { return strides_; }
  int64_t storage_offset() const { return offset_; }
  ScalarType dtype() const { return dtype_; }
  Device device() const { return storage_->data_ptr.device; }
  const Storage& storage() const { return storage_; }
  int64_t dim() const { return static_cast<int64_t>(sizes_.size()); }
  int64_t numel() const { return numel_; }
  bool is_contiguous() const;
  void* data_ptr() const {
    return static_cast<char*>(storage_->data_ptr.data) + offset_ * itemsize(dtype_);
  }
  int64_t version() const { return storage_->version.load(); }
  void bump_version() { storage_->version.fetch_add(1); }
  // Re-strides in place (used by out= resizing); grows the storage when needed.
  void set_sizes_contiguous(const Shape& sizes);

  std::unique_ptr<AutogradMetaInterface> autograd_meta;  // unused until autograd lands
  // A Python number wrapped into a 0-dim tensor; only affects type promotion.
  bool wrapped_number = false;

 private:
  Storage storage_;
  ScalarType dtype_;
  Shape sizes_, strides_;
  int64_t offset_;
  int64_t numel_;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}
  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

  const Shape& sizes() const { return impl_->sizes(); }
  const Shape& strides() const { return impl_->strides(); }
  int64_t size(int64_t d) const;    // negative d wraps; IndexError when out of range
  int64_t stride(int64_t d) const;
  int64_t dim() const { return impl_->dim(); }
  int64_t numel() const { return impl_->numel(); }
  ScalarType dtype() const { return impl_->dtype(); }
  Device device() const { return impl_->device(); }
  int64_t storage_offset() const { return impl_->storage_offset(); }
  bool is_contiguous() const { return impl_->is_contiguous(); }
  void* data_ptr() const { return impl_->data_ptr(); }
  template <typename T> T* data() const { return static_cast<T*>(impl_->data_ptr()); }
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::string shape_str(const Shape& s);  // "[2, 3]"
Shape contiguous_strides(const Shape& sizes);
// Wraps a possibly negative dim into [0, ndim); IndexError naming op and the valid range.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);
int64_t shape_numel(const Shape& s);

// Allocation primitives (no dispatch): uninitialised, contiguous.
Tensor empty(const Shape& sizes, ScalarType dtype, Device device = Device{});
// A new view on t's storage with the given geometry (shares the version counter).
Tensor make_view(const Tensor& t, Shape sizes, Shape strides, int64_t offset);

}  // namespace vbt
