// View ops: new TensorImpls over the SAME storage (shared version counter), never copying,
// except reshape, which copies only when no view can express the result. These kernels are
// device-independent (registered as any_device in the op table). Errors name the op, the
// offending argument and the shapes involved.
#include <algorithm>
#include <numeric>

#include "../cpu/cpu_kernels.h"

namespace vbt {

namespace {

// Resolves one -1 in `shape` against numel; errors like PyTorch's "shape '[..]' is invalid".
Shape infer_size(const Shape& shape, int64_t numel, const char* op) {
  Shape out = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      VBT_CHECK(infer < 0, op, ": only one dimension can be inferred");
      infer = static_cast<int64_t>(i);
    } else {
      VBT_CHECK(shape[i] >= 0, op, ": invalid shape dimension ", shape[i]);
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    VBT_CHECK(known != 0 && numel % known == 0, op, ": shape '", shape_str(shape), "' is invalid for input of size ", numel);
    out[infer] = numel / known;
  } else {
    VBT_CHECK(known == numel, op, ": shape '", shape_str(shape), "' is invalid for input of size ", numel);
  }
  return out;
}

// Strides for viewing (sizes, strides) as new_sizes without copying, or false if impossible.
// Walks chunks of old dims that are contiguous with each other and maps new dims onto them.
bool compute_view_strides(const Shape& sizes, const Shape& strides, const Shape& new_sizes, Shape& out) {
  out.assign(new_sizes.size(), 0);
  if (sizes.empty() || shape_numel(sizes) == 0) {  // one element (0-dim: any all-ones shape) or none: any strides
    out = contiguous_strides(new_sizes);
    return true;
  }
  int64_t view_d = static_cast<int64_t>(new_sizes.size()) - 1;
  int64_t chunk_base_stride = strides.empty() ? 1 : strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
    tensor_numel *= sizes[d];
    if (d == 0 || (sizes[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_sizes[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_sizes[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (d > 0) {
        chunk_base_stride = strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return false;
  return true;
}

Tensor view_impl(const Tensor& t, const Shape& shape, const char* op) {
  Shape sizes = infer_size(shape, t.numel(), op);
  Shape strides;
  VBT_CHECK(compute_view_strides(t.sizes(), t.strides(), sizes, strides), op,
            ": view size is not compatible with input tensor's size and stride (at least one dimension spans across "
            "two contiguous subspaces); input shape ", shape_str(t.sizes()), " strides ", shape_str(t.strides()),
            ", requested ", shape_str(shape), ". Use .reshape(...) instead.");
  return make_view(t, sizes, strides, t.storage_offset());
}

Tensor slice_impl(const Tensor& t, int64_t dim, int64_t start, int64_t end, int64_t step, const char* op) {
  VBT_CHECK(t.dim() > 0, op, ": cannot be applied to a 0-dim tensor");
  dim = wrap_dim(dim, t.dim(), op);
  VBT_CHECK_VALUE(step > 0, op, ": slice step must be positive, got ", step);
  int64_t n = t.sizes()[dim];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape sizes = t.sizes(), strides = t.strides();
  sizes[dim] = (end - start + step - 1) / step;
  strides[dim] *= step;
  return make_view(t, sizes, strides, t.storage_offset() + start * t.strides()[dim]);
}

Tensor permute_impl(const Tensor& t, const Shape& dims, const char* op) {
  VBT_CHECK(static_cast<int64_t>(dims.size()) == t.dim(), op, ": number of dims don't match in permute (input has ",
            t.dim(), " dims, got ", shape_str(dims), ")");
  Shape sizes(t.dim()), strides(t.dim());
  std::vector<bool> seen(t.dim(), false);
  for (int64_t i = 0; i < t.dim(); ++i) {
    int64_t d = wrap_dim(dims[i], t.dim(), op);
    VBT_CHECK(!seen[d], op, ": repeated dim ", dims[i], " in ", shape_str(dims));
    seen[d] = true;
    sizes[i] = t.sizes()[d];
    strides[i] = t.strides()[d];
  }
  return make_view(t, sizes, strides, t.storage_offset());
}

Tensor transpose_impl(const Tensor& t, int64_t d0, int64_t d1, const char* op) {
  if (t.dim() == 0) { wrap_dim(d0, 0, op); wrap_dim(d1, 0, op); return make_view(t, {}, {}, t.storage_offset()); }
  d0 = wrap_dim(d0, t.dim(), op);
  d1 = wrap_dim(d1, t.dim(), op);
  Shape sizes = t.sizes(), strides = t.strides();
  std::swap(sizes[d0], sizes[d1]);
  std::swap(strides[d0], strides[d1]);
  return make_view(t, sizes, strides, t.storage_offset());
}

}  // namespace

// view(Tensor self, int[] size) -> Tensor
Value k_view(const Args& a) { return view_impl(a.tensor(0), a.int_list(1), "view"); }

// reshape(Tensor self, int[] shape) -> Tensor
Value k_reshape(const Args& a) {
  const Tensor& t = a.tensor(0);
  Shape sizes = infer_size(a.int_list(1), t.numel(), "reshape");
  Shape strides;
  if (compute_view_strides(t.sizes(), t.strides(), sizes, strides)) return make_view(t, sizes, strides, t.storage_offset());
  // not viewable: a contiguous copy, made by the tensor's own device (the CPU copy loop cannot read device memory)
  if (t.device().type != DeviceType::CPU) return make_view(call_tensor_op("contiguous", {t}), sizes, contiguous_strides(sizes), 0);
  Tensor c = empty(t.sizes(), t.dtype(), t.device());
  copy_into(c, t);
  return make_view(c, sizes, contiguous_strides(sizes), 0);
}

// permute(Tensor self, int[] dims) -> Tensor
Value k_permute(const Args& a) { return permute_impl(a.tensor(0), a.int_list(1), "permute"); }

// transpose(Tensor self, int dim0, int dim1) -> Tensor
Value k_transpose(const Args& a) { return transpose_impl(a.tensor(0), a.integer(1), a.integer(2), "transpose"); }

// t(Tensor self) -> Tensor
Value k_t(const Args& a) {
  const Tensor& t = a.tensor(0);
  VBT_CHECK(t.dim() <= 2, "t: expects a tensor with <= 2 dimensions, but self is ", t.dim(), "D (shape ",
            shape_str(t.sizes()), ")");
  if (t.dim() < 2) return make_view(t, t.sizes(), t.strides(), t.storage_offset());
  return transpose_impl(t, 0, 1, "t");
}

// expand(Tensor self, int[] size) -> Tensor
Value k_expand(const Args& a) {
  const Tensor& t = a.tensor(0);
  const Shape& size = a.int_list(1);
  int64_t nd = static_cast<int64_t>(size.size());
  VBT_CHECK(nd >= t.dim(), "expand: the number of sizes provided (", nd,
            ") must be greater or equal to the number of dimensions in the tensor (", t.dim(), ")");
  Shape sizes(nd), strides(nd);
  for (int64_t i = nd - 1; i >= 0; --i) {
    int64_t td = i - (nd - t.dim());
    if (td < 0) {
      VBT_CHECK(size[i] >= 0, "expand: the expanded size ", size[i], " is not allowed in a leading, non-existing dimension ", i);
      sizes[i] = size[i];
      strides[i] = 0;
      continue;
    }
    int64_t cur = t.sizes()[td], want = size[i] == -1 ? cur : size[i];
    VBT_CHECK(cur == want || cur == 1, "expand: the expanded size of the tensor (", want,
              ") must match the existing size (", cur, ") at non-singleton dimension ", i, ".  Target sizes: ",
              shape_str(size), ".  Tensor sizes: ", shape_str(t.sizes()));
    sizes[i] = want;
    strides[i] = cur == want ? t.strides()[td] : 0;
  }
  return make_view(t, sizes, strides, t.storage_offset());
}

// narrow(Tensor self, int dim, int start, int length) -> Tensor
Value k_narrow(const Args& a) {
  const Tensor& t = a.tensor(0);
  VBT_CHECK(t.dim() > 0, "narrow: narrow() cannot be applied to a 0-dim tensor.");
  int64_t dim = wrap_dim(a.integer(1), t.dim(), "narrow");
  int64_t start = a.integer(2), length = a.integer(3), n = t.sizes()[dim];
  VBT_CHECK_INDEX(start >= -n && start <= n, "narrow: start (", start, ") out of range for dimension ", dim,
                  " of size ", n);
  if (start < 0) start += n;
  VBT_CHECK(length >= 0 && start + length <= n, "narrow: start (", start, ") + length (", length,
            ") exceeds dimension size (", n, ") of tensor with shape ", shape_str(t.sizes()));
  return slice_impl(t, dim, start, start + length, 1, "narrow");
}

// slice(Tensor self, int dim=0, int? start=None, int? end=None, int step=1) -> Tensor
Value k_slice(const Args& a) {
  const Tensor& t = a.tensor(0);
  int64_t start = a.is_none(2) ? 0 : a.integer(2);
  int64_t end = a.is_none(3) ? std::numeric_limits<int64_t>::max() : a.integer(3);
  return slice_impl(t, a.integer(1), start, end, a.integer(4), "slice");
}

// select(Tensor self, int dim, int index) -> Tensor
Value k_select(const Args& a) {
  const Tensor& t = a.tensor(0);
  VBT_CHECK_INDEX(t.dim() > 0, "select: invalid index of a 0-dim tensor. Use `tensor.item()` to convert a 0-dim tensor to a number");
  int64_t dim = wrap_dim(a.integer(1), t.dim(), "select");
  int64_t idx = a.integer(2), n = t.sizes()[dim];
  VBT_CHECK_INDEX(idx >= -n && idx < n, "select: index ", idx, " is out of bounds for dimension ", dim, " with size ", n);
  if (idx < 0) idx += n;
  Shape sizes = t.sizes(), strides = t.strides();
  sizes.erase(sizes.begin() + dim);
  strides.erase(strides.begin() + dim);
  return make_view(t, sizes, strides, t.storage_offset() + idx * t.strides()[dim]);
}

// squeeze(Tensor self, int[]? dim=None) -> Tensor
Value k_squeeze(const Args& a) {
  const Tensor& t = a.tensor(0);
  std::vector<bool> drop(t.dim(), false);
  if (a.is_none(1)) {
    for (int64_t d = 0; d < t.dim(); ++d) drop[d] = t.sizes()[d] == 1;
  } else {
    for (int64_t d : a.int_list(1)) {
      if (t.dim() == 0) { wrap_dim(d, 0, "squeeze"); continue; }
      int64_t w = wrap_dim(d, t.dim(), "squeeze");
      drop[w] = t.sizes()[w] == 1;
    }
  }
  Shape sizes, strides;
  for (int64_t d = 0; d < t.dim(); ++d)
    if (!drop[d]) { sizes.push_back(t.sizes()[d]); strides.push_back(t.strides()[d]); }
  return make_view(t, sizes, strides, t.storage_offset());
}

// unsqueeze(Tensor self, int dim) -> Tensor
Value k_unsqueeze(const Args& a) {
  const Tensor& t = a.tensor(0);
  int64_t dim = wrap_dim(a.integer(1), t.dim() + 1, "unsqueeze");
  Shape sizes = t.sizes(), strides = t.strides();
  int64_t st = dim < t.dim() ? t.sizes()[dim] * t.strides()[dim] : 1;
  sizes.insert(sizes.begin() + dim, 1);
  strides.insert(strides.begin() + dim, st);
  return make_view(t, sizes, strides, t.storage_offset());
}

// flatten(Tensor self, int start_dim=0, int end_dim=-1) -> Tensor
Value k_flatten(const Args& a) {
  const Tensor& t = a.tensor(0);
  if (t.dim() == 0) return view_impl(t, {1}, "flatten");
  int64_t s = wrap_dim(a.integer(1), t.dim(), "flatten"), e = wrap_dim(a.integer(2), t.dim(), "flatten");
  VBT_CHECK(s <= e, "flatten: start_dim (", s, ") cannot come after end_dim (", e, ")");
  Shape shape(t.sizes().begin(), t.sizes().begin() + s);
  int64_t prod = 1;
  for (int64_t d = s; d <= e; ++d) prod *= t.sizes()[d];
  shape.push_back(prod);
  shape.insert(shape.end(), t.sizes().begin() + e + 1, t.sizes().end());
  return k_reshape(Args{t, shape});
}

// unflatten(Tensor self, int dim, int[] sizes) -> Tensor
Value k_unflatten(const Args& a) {
  const Tensor& t = a.tensor(0);
  int64_t dim = wrap_dim(a.integer(1), t.dim(), "unflatten");
  Shape inner = infer_size(a.int_list(2), t.sizes()[dim], "unflatten");
  Shape shape(t.sizes().begin(), t.sizes().begin() + dim);
  shape.insert(shape.end(), inner.begin(), inner.end());
  shape.insert(shape.end(), t.sizes().begin() + dim + 1, t.sizes().end());
  return view_impl(t, shape, "unflatten");
}

// as_strided(Tensor self, int[] size, int[] stride, int? storage_offset=None) -> Tensor
Value k_as_strided(const Args& a) {
  const Tensor& t = a.tensor(0);
  const Shape &size = a.int_list(1), &stride = a.int_list(2);
  int64_t off = a.is_none(3) ? t.storage_offset() : a.integer(3);
  VBT_CHECK(size.size() == stride.size(), "as_strided: mismatch in length of strides and shape (", shape_str(size),
            " vs ", shape_str(stride), ")");
  VBT_CHECK(off >= 0, "as_strided: negative storage offset ", off);
  int64_t max_index = off;
  for (size_t i = 0; i < size.size(); ++i) {
    VBT_CHECK(size[i] >= 0 && stride[i] >= 0, "as_strided: negative size or stride in ", shape_str(size), " / ",
              shape_str(stride));
    if (size[i] == 0) { max_index = -1; break; }
    max_index += (size[i] - 1) * stride[i];
  }
  int64_t avail = static_cast<int64_t>(t.impl()->storage()->nbytes) / itemsize(t.dtype());
  VBT_CHECK(max_index < avail, "as_strided: setStorage: sizes ", shape_str(size), ", strides ", shape_str(stride),
            ", storage offset ", off, " require a storage of ", max_index + 1, " elements but it has ", avail);
  return make_view(t, size, stride, off);
}

// split(Tensor self, int split_size, int dim=0) -> Tensor[]
Value k_split(const Args& a) {
  const Tensor& t = a.tensor(0);
  int64_t size = a.integer(1);
  VBT_CHECK(t.dim() > 0, "split: expected at least a 1-dimensional tensor");
  int64_t dim = wrap_dim(a.integer(2), t.dim(), "split");
  int64_t n = t.sizes()[dim];
  VBT_CHECK(size > 0 || (size == 0 && n == 0), "split: split_size can only be 0 if dimension size is 0, but got dimension size of ", n);
  TensorList out;
  if (n == 0) { out.push_back(slice_impl(t, dim, 0, 0, 1, "split")); return out; }
  for (int64_t s = 0; s < n; s += size) out.push_back(slice_impl(t, dim, s, std::min(n, s + size), 1, "split"));
  return out;
}

// split_with_sizes(Tensor self, int[] split_sizes, int dim=0) -> Tensor[]
Value k_split_with_sizes(const Args& a) {
  const Tensor& t = a.tensor(0);
  const Shape& sizes = a.int_list(1);
  int64_t dim = wrap_dim(a.integer(2), t.dim(), "split_with_sizes");
  int64_t total = std::accumulate(sizes.begin(), sizes.end(), int64_t(0));
  VBT_CHECK(total == t.sizes()[dim], "split_with_sizes: split_sizes ", shape_str(sizes),
            " expected to sum exactly to ", t.sizes()[dim], " (input tensor's size at dimension ", dim, ")");
  TensorList out;
  int64_t s = 0;
  for (int64_t len : sizes) {
    VBT_CHECK(len >= 0, "split_with_sizes: negative split size ", len);
    out.push_back(slice_impl(t, dim, s, s + len, 1, "split_with_sizes"));
    s += len;
  }
  return out;
}

// chunk(Tensor self, int chunks, int dim=0) -> Tensor[]
Value k_chunk(const Args& a) {
  const Tensor& t = a.tensor(0);
  int64_t chunks = a.integer(1);
  VBT_CHECK(chunks > 0, "chunk: chunk expects `chunks` to be greater than 0, got: ", chunks);
  VBT_CHECK(t.dim() > 0, "chunk: chunk expects at least a 1-dimensional tensor");
  int64_t dim = wrap_dim(a.integer(2), t.dim(), "chunk");
  int64_t n = t.sizes()[dim];
  int64_t size = (n + chunks - 1) / chunks;
  if (size == 0 && n == 0) {
    TensorList out;
    for (int64_t i = 0; i < chunks; ++i) out.push_back(slice_impl(t, dim, 0, 0, 1, "chunk"));
    return out;
  }
  return k_split(Args{t, size, dim});
}

// unbind(Tensor self, int dim=0) -> Tensor[]
Value k_unbind(const Args& a) {
  const Tensor& t = a.tensor(0);
  VBT_CHECK(t.dim() > 0, "unbind: Dimension specified as 0 but tensor has no dimensions");
  int64_t dim = wrap_dim(a.integer(1), t.dim(), "unbind");
  TensorList out;
  for (int64_t i = 0; i < t.sizes()[dim]; ++i) out.push_back(std::get<Tensor>(k_select(Args{t, dim, i})));
  return out;
}

// diagonal(Tensor self, int offset=0, int dim1=0, int dim2=1) -> Tensor
Value k_diagonal(const Args& a) {
  const Tensor& t = a.tensor(0);
  int64_t off = a.integer(1);
  int64_t d1 = wrap_dim(a.integer(2), t.dim(), "diagonal"), d2 = wrap_dim(a.integer(3), t.dim(), "diagonal");
  VBT_CHECK(d1 != d2, "diagonal: dimensions cannot be identical ", d1, ", ", d2);
  int64_t n1 = t.sizes()[d1], n2 = t.sizes()[d2];
  int64_t len = off >= 0 ? std::max<int64_t>(0, std::min(n1, n2 - off)) : std::max<int64_t>(0, std::min(n1 + off, n2));
  int64_t storage_off = t.storage_offset();
  if (len > 0) storage_off += off >= 0 ? off * t.strides()[d2] : -off * t.strides()[d1];
  Shape sizes, strides;
  for (int64_t d = 0; d < t.dim(); ++d)
    if (d != d1 && d != d2) { sizes.push_back(t.sizes()[d]); strides.push_back(t.strides()[d]); }
  sizes.push_back(len);
  strides.push_back(t.strides()[d1] + t.strides()[d2]);
  return make_view(t, sizes, strides, storage_off);
}

// movedim(Tensor self, int[] source, int[] destination) -> Tensor
Value k_movedim(const Args& a) {
  const Tensor& t = a.tensor(0);
  const Shape &src = a.int_list(1), &dst = a.int_list(2);
  VBT_CHECK(src.size() == dst.size(), "movedim: Invalid source or destination dims: source (", shape_str(src),
            " dims) should contain the same number of dims as destination (", shape_str(dst), " dims)");
  int64_t n = t.dim();
  Shape perm(n, -1);
  std::vector<bool> used_src(n, false), used_dst(n, false);
  for (size_t i = 0; i < src.size(); ++i) {
    int64_t s = wrap_dim(src[i], n, "movedim"), d = wrap_dim(dst[i], n, "movedim");
    VBT_CHECK(!used_src[s] && !used_dst[d], "movedim: repeated dim in source or destination");
    used_src[s] = used_dst[d] = true;
    perm[d] = s;
  }
  int64_t next = 0;
  for (int64_t d = 0; d < n; ++d) {
    if (perm[d] != -1) continue;
    while (used_src[next]) ++next;
    perm[d] = next++;
  }
  return permute_impl(t, perm, "movedim");
}

// view_dtype(Tensor self, ScalarType dtype) -> Tensor   (torch's Tensor.view(dtype))
// The same bytes read as another dtype: a new TensorImpl over the same storage (shared version counter).
// Same element size: the geometry is unchanged. Otherwise, as in PyTorch, the last dim must have stride 1
// and is split (smaller elements: size and every other stride and the offset scale up by the ratio) or
// merged (larger elements: its size, the other strides and the offset must be divisible by the ratio).
Value k_view_dtype(const Args& a) {
  const Tensor& t = a.tensor(0);
  const ScalarType dt = a.dtype(1);
  const int64_t from = itemsize(t.dtype()), to = itemsize(dt);
  Shape sizes = t.sizes(), strides = t.strides();
  int64_t offset = t.storage_offset();
  if (from != to) {
    const std::string what = std::string(" to view ") + dtype_name(t.dtype()) + " as " + dtype_name(dt) +
                             " (different element sizes)";
    VBT_CHECK(t.dim() > 0, "self.dim() cannot be 0", what);
    VBT_CHECK(strides.back() == 1, "self.stride(-1) must be 1", what, ", but got ", strides.back());
    const int64_t last = t.dim() - 1;
    if (to < from) {
      const int64_t r = from / to;
      sizes[last] *= r;
      for (int64_t d = 0; d < last; ++d) strides[d] *= r;
      offset *= r;
    } else {
      const int64_t r = to / from;
      VBT_CHECK(sizes[last] % r == 0, "self.size(-1) must be divisible by ", r, what, ", but got ", sizes[last]);
      VBT_CHECK(offset % r == 0, "self.storage_offset() must be divisible by ", r, what, ", but got ", offset);
      for (int64_t d = 0; d < last; ++d)
        VBT_CHECK(strides[d] % r == 0, "self.stride(", d, ") must be divisible by ", r, what, ", but got ",
                  strides[d]);
      sizes[last] /= r;
      for (int64_t d = 0; d < last; ++d) strides[d] /= r;
      offset /= r;
    }
  }
  return Tensor(std::make_shared<TensorImpl>(t.impl()->storage(), dt, std::move(sizes), std::move(strides), offset));
}

}  // namespace vbt
