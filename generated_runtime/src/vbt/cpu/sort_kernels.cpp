// Sorting and selection along one dim: sort, argsort, topk, kthvalue.
//
// Note [Sort order]
// Elements are compared as opmath_t<T> (16-bit floats as float). NaN counts as larger than every number
// (ascending sorts put NaNs last, descending first, topk(largest=True) picks them first), NaNs compare
// equal among themselves, and -0.0 == 0.0 (a tie). Every line along `dim` is sorted as an array of
// (value, original index) pairs that starts in index order, with a comparator on the value only:
//  * stable=True: std::stable_sort (ties keep index order: the result is unique);
//  * stable=False: std::sort, which orders ties in an unspecified but deterministic way. PyTorch CPU runs
//    the same algorithm on the same pairs with the same comparator, so with the same C++ library tie
//    order agrees too (tests compare it only for stable sorts). As in PyTorch, a line of stride 0 (an
//    expanded input) keeps index order, and a 1-D integer ascending sort of >= kRadixMin elements is
//    stable (PyTorch sorts those with a radix sort).
// topk follows PyTorch's selection: std::partial_sort of the whole line when k * 64 <= n, otherwise
// std::nth_element at k - 1 and (sorted=True) a sort of the first k - 1; sorted=False returns the selected
// elements in that order. kthvalue selects with std::nth_element on (value, index) with index as the tie
// break: with ties PyTorch (its own quickselect) may return another of the equal elements, so the index, and
// for a -0.0 / 0.0 tie the sign of the zero, may differ from PyTorch's; the value compares equal.
// Lines are independent: parallel_for over the lines (the non-sorted dims), in chunks of about
// kParallelGrain elements. Outputs are contiguous.
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "cpu_kernels.h"

namespace vbt {

namespace {

constexpr int64_t kRadixMin = 32768;

template <typename K> inline bool is_nan(K v) {
  if constexpr (std::is_floating_point_v<K>) return std::isnan(v);
  else return false;
}

template <typename K> using Elem = std::pair<K, int64_t>;

// a before b in ascending order (NaN largest)
template <typename K> struct Asc {
  bool operator()(const Elem<K>& a, const Elem<K>& b) const {
    return (!is_nan(a.first) && is_nan(b.first)) || a.first < b.first;
  }
};
// a before b in descending order (NaN first)
template <typename K> struct Desc {
  bool operator()(const Elem<K>& a, const Elem<K>& b) const {
    return (is_nan(a.first) && !is_nan(b.first)) || a.first > b.first;
  }
};
// Asc with the index as tie break (a strict total order: the selected element is unique)
template <typename K> struct AscIdx {
  bool operator()(const Elem<K>& a, const Elem<K>& b) const {
    if (Asc<K>{}(a, b)) return true;
    if (Asc<K>{}(b, a)) return false;
    return a.second < b.second;
  }
};

// Geometry of the lines of `t` along `dim`: the other dims' sizes/strides, the line length and stride.
struct Lines {
  Shape sizes, strides;
  int64_t count = 1, n = 1, stride = 1;
};

Lines lines_of(const Tensor& t, int64_t dim) {
  Lines l;
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (d == dim) continue;
    l.sizes.push_back(t.sizes()[d]);
    l.strides.push_back(t.strides()[d]);
  }
  l.count = shape_numel(l.sizes);
  if (t.dim() > 0) {
    l.n = t.sizes()[dim];
    l.stride = t.strides()[dim];
  }
  return l;
}

// Offset (elements) of line `i` (row-major over sizes) given per-dim strides.
inline int64_t line_offset(int64_t i, const Shape& sizes, const Shape& strides) {
  int64_t off = 0;
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
    off += (i % sizes[d]) * strides[d];
    i /= sizes[d];
  }
  return off;
}

// Calls fn(in_line, in_stride, n, line_index, buffer) for every line, in parallel chunks; `out_len` is the
// number of output elements written per line (for the grain). fn fills outputs itself.
template <typename T, typename F> void for_each_line(const Tensor& in, const Lines& l, int64_t out_len, F fn) {
  const T* base = in.data<T>();
  const int64_t work = std::max<int64_t>(1, std::max(l.n, out_len));
  parallel_for(0, l.count, std::max<int64_t>(1, kParallelGrain / work), [&](int64_t b, int64_t e) {
    std::vector<Elem<opmath_t<T>>> buf(static_cast<size_t>(l.n));
    for (int64_t i = b; i < e; ++i) fn(base + line_offset(i, l.sizes, l.strides), i, buf);
  });
}

// Output shape with dim's size replaced (0-dim input: stays 0-dim).
Shape with_dim_size(const Tensor& t, int64_t dim, int64_t n) {
  Shape s = t.sizes();
  if (t.dim() > 0) s[dim] = n;
  return s;
}

// Strides of a contiguous tensor of `sizes` without dim (the per-line offsets of an output).
Shape line_strides_of(const Shape& sizes, int64_t dim) {
  Shape cs = contiguous_strides(sizes), s;
  for (int64_t d = 0; d < static_cast<int64_t>(sizes.size()); ++d)
    if (d != dim) s.push_back(cs[d]);
  return s;
}

// Sorts `in` along dim into (values, indices); want_values=false skips the values (argsort).
std::pair<Tensor, Tensor> sort_impl(const Tensor& in, int64_t dim_arg, bool descending, bool stable, bool want_values,
                                    const char* op) {
  const int64_t dim = wrap_dim(dim_arg, in.dim(), op);
  Tensor vals = want_values ? empty(in.sizes(), in.dtype()) : Tensor();
  Tensor idx = empty(in.sizes(), ScalarType::Int64);
  if (in.numel() == 0) return {vals, idx};
  const Lines l = lines_of(in, dim);
  const int64_t ostride = in.dim() > 0 ? contiguous_strides(in.sizes())[dim] : 1;
  const Shape ostrides = line_strides_of(in.sizes(), dim);
  const bool radix_like = in.dim() == 1 && is_integral(in.dtype(), false) && !descending && in.numel() >= kRadixMin;
  const bool use_stable = stable || radix_like;
  VBT_DISPATCH_ALL(in.dtype(), op, [&]<typename T>() {
    using K = opmath_t<T>;
    T* vb = want_values ? vals.data<T>() : nullptr;
    int64_t* ib = idx.data<int64_t>();
    for_each_line<T>(in, l, l.n, [&](const T* x, int64_t li, std::vector<Elem<K>>& buf) {
      const int64_t ooff = line_offset(li, l.sizes, ostrides);
      const int64_t n = l.n;
      for (int64_t j = 0; j < n; ++j) buf[j] = {static_cast<K>(x[j * l.stride]), j};
      if (l.stride != 0 && n > 1) {
        if (descending) {
          if (use_stable) std::stable_sort(buf.begin(), buf.end(), Desc<K>{});
          else std::sort(buf.begin(), buf.end(), Desc<K>{});
        } else {
          if (use_stable) std::stable_sort(buf.begin(), buf.end(), Asc<K>{});
          else std::sort(buf.begin(), buf.end(), Asc<K>{});
        }
      }
      if (vb) {
        // values come from the input (a 16-bit float's opmath value converts back exactly)
        for (int64_t j = 0; j < n; ++j) vb[ooff + j * ostride] = x[buf[j].second * l.stride];
      }
      for (int64_t j = 0; j < n; ++j) ib[ooff + j * ostride] = buf[j].second;
    });
  });
  return {vals, idx};
}

}  // namespace

// sort(Tensor self, int dim=-1, bool descending=False, *, bool stable=False) -> (values, indices)
Value k_sort(const Args& a) {
  auto [v, i] = sort_impl(a.tensor(0), a.integer(1), a.boolean(2), a.boolean(3), true, "sort");
  return TensorList{v, i};
}

// argsort(Tensor self, int dim=-1, bool descending=False, *, bool stable=False) -> Tensor
Value k_argsort(const Args& a) {
  return sort_impl(a.tensor(0), a.integer(1), a.boolean(2), a.boolean(3), false, "argsort").second;
}

// topk(Tensor self, int k, int dim=-1, bool largest=True, bool sorted=True) -> (values, indices)
Value k_topk(const Args& a) {
  const char* op = "topk";
  const Tensor& in = a.tensor(0);
  const int64_t k = a.integer(1);
  const int64_t dim = wrap_dim(a.integer(2), in.dim(), op);
  const bool largest = a.boolean(3), sorted = a.boolean(4);
  VBT_CHECK(in.dtype() != ScalarType::Bool, "topk does not support bool dtypes on CPU");
  const int64_t n = in.dim() > 0 ? in.sizes()[dim] : 1;
  VBT_CHECK(k >= 0 && k <= n, op, "(): selected index k out of range (k = ", k, ", size of dim ", dim, " = ", n,
            ", input shape ", shape_str(in.sizes()), ")");
  const Shape osizes = with_dim_size(in, dim, k);
  Tensor vals = empty(osizes, in.dtype()), idx = empty(osizes, ScalarType::Int64);
  if (vals.numel() == 0) return TensorList{vals, idx};
  // a 0-dim input gives 0-dim outputs holding its element, for k = 0 too (as PyTorch)
  const int64_t k_out = in.dim() == 0 ? 1 : k;
  const Lines l = lines_of(in, dim);
  const Shape ostrides = line_strides_of(osizes, dim);
  const int64_t ostride = in.dim() > 0 ? contiguous_strides(osizes)[dim] : 1;
  const bool partial = k_out * 64 <= n;
  VBT_DISPATCH_NUMERIC(in.dtype(), op, [&]<typename T>() {
    using K = opmath_t<T>;
    T* vb = vals.data<T>();
    int64_t* ib = idx.data<int64_t>();
    for_each_line<T>(in, l, k_out, [&](const T* x, int64_t li, std::vector<Elem<K>>& buf) {
      for (int64_t j = 0; j < n; ++j) buf[j] = {static_cast<K>(x[j * l.stride]), j};
      auto select = [&](auto cmp) {
        if (partial) {
          std::partial_sort(buf.begin(), buf.begin() + k_out, buf.end(), cmp);
        } else {
          std::nth_element(buf.begin(), buf.begin() + (k_out - 1), buf.end(), cmp);
          if (sorted) std::sort(buf.begin(), buf.begin() + (k_out - 1), cmp);
        }
      };
      if (largest) select(Desc<K>{});
      else select(Asc<K>{});
      const int64_t ooff = line_offset(li, l.sizes, ostrides);
      for (int64_t j = 0; j < k_out; ++j) {
        vb[ooff + j * ostride] = x[buf[j].second * l.stride];
        ib[ooff + j * ostride] = buf[j].second;
      }
    });
  });
  return TensorList{vals, idx};
}

// kthvalue(Tensor self, int k, int dim=-1, bool keepdim=False) -> (values, indices): the k-th smallest (1-based)
Value k_kthvalue(const Args& a) {
  const char* op = "kthvalue";
  const Tensor& in = a.tensor(0);
  const int64_t k = a.integer(1);
  const int64_t dim = wrap_dim(a.integer(2), in.dim(), op);
  const bool keepdim = a.boolean(3);
  const int64_t n = in.dim() > 0 ? in.sizes()[dim] : 1;
  VBT_CHECK_INDEX(n > 0, op, "(): Expected reduction dim ", dim, " to have non-zero size.");
  VBT_CHECK(k >= 1 && k <= n, op, "(): selected number k out of range for dimension ", dim, " (k = ", k,
            ", input shape ", shape_str(in.sizes()), ")");
  // as PyTorch: no bool kthvalue, except for a 0-dim input (its element is the answer)
  VBT_CHECK_KIND(ErrorKind::NotImplemented, in.dim() == 0 || in.dtype() != ScalarType::Bool,
                 "\"kthvalue_cpu\" not implemented for 'Bool'");
  Shape keep = with_dim_size(in, dim, 1);
  Tensor vals = empty(keep, in.dtype()), idx = empty(keep, ScalarType::Int64);
  if (vals.numel() > 0) {
    const Lines l = lines_of(in, dim);
    const Shape ostrides = line_strides_of(keep, dim);
    VBT_DISPATCH_ALL(in.dtype(), "kthvalue_cpu", [&]<typename T>() {
      using K = opmath_t<T>;
      T* vb = vals.data<T>();
      int64_t* ib = idx.data<int64_t>();
      for_each_line<T>(in, l, 1, [&](const T* x, int64_t li, std::vector<Elem<K>>& buf) {
        for (int64_t j = 0; j < n; ++j) buf[j] = {static_cast<K>(x[j * l.stride]), j};
        std::nth_element(buf.begin(), buf.begin() + (k - 1), buf.end(), AscIdx<K>{});
        const int64_t ooff = line_offset(li, l.sizes, ostrides);
        vb[ooff] = x[buf[k - 1].second * l.stride];
        ib[ooff] = buf[k - 1].second;
      });
    });
  }
  if (keepdim || in.dim() == 0) return TensorList{vals, idx};
  Shape out = in.sizes();
  out.erase(out.begin() + dim);
  return TensorList{make_view(vals, out, contiguous_strides(out), 0), make_view(idx, out, contiguous_strides(out), 0)};
}

}  // namespace vbt
