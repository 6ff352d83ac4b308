// Shape-changing ops that copy: cat, stack, flip, roll, tril, triu, repeat. They are written
// with views + copy_into, so they work for every dtype and any input strides.
#include "cpu_kernels.h"

namespace vbt {

namespace {
Tensor op(const char* name, Args args) { return call_tensor_op(name, std::move(args)); }
}  // namespace

// cat(Tensor[] tensors, int dim=0) -> Tensor
Value k_cat(const Args& a) {
  const TensorList& ts = a.tensor_list(0);
  VBT_CHECK(!ts.empty(), "cat(): expected a non-empty list of Tensors");
  // legacy rule: 1-d empty tensors are skipped
  std::vector<Tensor> parts;
  for (const Tensor& t : ts)
    if (!(t.dim() == 1 && t.numel() == 0)) parts.push_back(t);
  std::vector<bool> wr(ts.size(), false);
  ScalarType dt = result_type(ts, wr);
  if (parts.empty()) return empty({0}, dt);
  const Tensor& ref = parts[0];
  VBT_CHECK(ref.dim() > 0, "cat(): zero-dimensional tensor (at position 0) cannot be concatenated");
  int64_t dim = wrap_dim(a.integer(1), ref.dim(), "cat");
  Shape out_shape = ref.sizes();
  int64_t total = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Tensor& t = parts[i];
    VBT_CHECK(t.dim() == ref.dim(), "cat(): Tensors must have same number of dimensions: got ", ref.dim(), " and ",
              t.dim(), " (shapes ", shape_str(ref.sizes()), " and ", shape_str(t.sizes()), ")");
    for (int64_t d = 0; d < t.dim(); ++d)
      VBT_CHECK(d == dim || t.sizes()[d] == ref.sizes()[d], "cat(): Sizes of tensors must match except in dimension ",
                dim, ". Expected size ", ref.sizes()[d], " but got size ", t.sizes()[d], " for tensor number ", i,
                " in the list (shapes ", shape_str(ref.sizes()), " and ", shape_str(t.sizes()), ")");
    total += t.sizes()[dim];
  }
  out_shape[dim] = total;
  Tensor out = empty(out_shape, dt);
  int64_t off = 0;
  for (const Tensor& t : parts) {
    int64_t len = t.sizes()[dim];
    copy_into(op("narrow", {out, dim, off, len}), t);
    off += len;
  }
  return out;
}

// stack(Tensor[] tensors, int dim=0) -> Tensor
Value k_stack(const Args& a) {
  const TensorList& ts = a.tensor_list(0);
  VBT_CHECK(!ts.empty(), "stack expects a non-empty TensorList");
  int64_t dim = wrap_dim(a.integer(1), ts[0].dim() + 1, "stack");
  TensorList us;
  for (size_t i = 0; i < ts.size(); ++i) {
    VBT_CHECK(ts[i].sizes() == ts[0].sizes(), "stack expects each tensor to be equal size, but got ",
              shape_str(ts[0].sizes()), " at entry 0 and ", shape_str(ts[i].sizes()), " at entry ", i);
    us.push_back(op("unsqueeze", {ts[i], dim}));
  }
  return k_cat(Args{us, dim});
}

// flip(Tensor self, int[] dims) -> Tensor   (a copy, like PyTorch)
Value k_flip(const Args& a) {
  const Tensor& t = a.tensor(0);
  Shape strides = t.strides();
  int64_t off = t.storage_offset();
  std::vector<bool> seen(t.dim(), false);
  for (int64_t d : a.int_list(1)) {
    int64_t w = wrap_dim(d, t.dim(), "flip");
    VBT_CHECK(!seen[w], "flip: dim ", w, " appears multiple times in the list of dims");
    seen[w] = true;
    if (t.sizes()[w] > 0) off += (t.sizes()[w] - 1) * strides[w];
    strides[w] = -strides[w];
  }
  Tensor reversed = make_view(t, t.sizes(), strides, off);
  Tensor out = empty(t.sizes(), t.dtype());
  copy_into(out, reversed);
  return out;
}

// roll(Tensor self, int[] shifts, int[] dims=[]) -> Tensor
Value k_roll(const Args& a) {
  const Tensor& t = a.tensor(0);
  const Shape &shifts = a.int_list(1), &dims = a.int_list(2);
  if (dims.empty()) {
    VBT_CHECK(shifts.size() == 1, "roll: `shifts` required to be of size 1 when `dims` is empty, got ", shape_str(shifts));
    Tensor flat = op("reshape", {t, Shape{-1}});
    return op("reshape", {std::get<Tensor>(k_roll(Args{flat, shifts, Shape{0}})), t.sizes()});
  }
  VBT_CHECK(shifts.size() == dims.size(), "roll: shifts and dimensions must align. shifts: ", shifts.size(),
            ", dims: ", dims.size());
  Tensor cur = t;
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], t.dim(), "roll"), n = t.sizes()[d];
    if (n == 0) continue;
    int64_t s = ((shifts[i] % n) + n) % n;
    if (s == 0) continue;
    cur = std::get<Tensor>(k_cat(Args{TensorList{op("narrow", {cur, d, n - s, s}), op("narrow", {cur, d, int64_t(0), n - s})}, d}));
  }
  return cur.is_same(t) ? op("clone", {t}) : cur;
}

namespace {
template <bool Lower> Value tri_like(const Args& a, const char* name) {
  const Tensor& t = a.tensor(0);
  int64_t k = a.integer(1);
  VBT_CHECK(t.dim() >= 2, name, ": input tensor must have at least 2 dimensions, got shape ", shape_str(t.sizes()));
  Tensor out = op("clone", {t});
  int64_t r = t.sizes()[t.dim() - 2], c = t.sizes()[t.dim() - 1];
  int64_t mats = r * c ? out.numel() / (r * c) : 0;
  VBT_DISPATCH_ALL(t.dtype(), name, [&]<typename T>() {
    T* p = out.data<T>();
    for (int64_t m = 0; m < mats; ++m)
      for (int64_t i = 0; i < r; ++i)
        for (int64_t j = 0; j < c; ++j) {
          bool keep = Lower ? (j - i <= k) : (j - i >= k);
          if (!keep) p[(m * r + i) * c + j] = T(0);
        }
  });
  return out;
}
}  // namespace

// tril/triu(Tensor self, int diagonal=0) -> Tensor
Value k_tril(const Args& a) { return tri_like<true>(a, "tril"); }
Value k_triu(const Args& a) { return tri_like<false>(a, "triu"); }

// repeat(Tensor self, int[] repeats) -> Tensor
Value k_repeat(const Args& a) {
  const Tensor& t = a.tensor(0);
  const Shape& reps = a.int_list(1);
  int64_t n = static_cast<int64_t>(reps.size());
  VBT_CHECK(n >= t.dim(), "repeat: Number of dimensions of repeat dims (", n,
            ") can not be smaller than number of dimensions of tensor (", t.dim(), ")");
  for (int64_t r : reps) VBT_CHECK(r >= 0, "repeat: Trying to create tensor with negative dimension ", r, ": ", shape_str(reps));
  Shape padded(n - t.dim(), 1);
  padded.insert(padded.end(), t.sizes().begin(), t.sizes().end());
  Shape inter, expanded, final_shape;
  for (int64_t d = 0; d < n; ++d) {
    inter.push_back(1);
    inter.push_back(padded[d]);
    expanded.push_back(reps[d]);
    expanded.push_back(padded[d]);
    final_shape.push_back(reps[d] * padded[d]);
  }
  Tensor v = op("reshape", {t, inter});
  Tensor e = op("expand", {v, expanded});
  return op("reshape", {op("contiguous", {e}), final_shape});
}

}  // namespace vbt
