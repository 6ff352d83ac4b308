// Indexing ops: index_select, gather, scatter(_add), index_add, masked_fill, masked_select,
// advanced indexing (index / index_put_), nonzero, one_hot, embedding, take_along_dim.
// Policy: every index is bounds-checked before any write (IndexError naming op, dim, index
// and size); element moves are dtype-agnostic byte copies unless arithmetic is needed.
#include <cstring>

#include "cpu_kernels.h"

namespace vbt {

namespace {

Tensor op(const char* name, Args args) { return call_tensor_op(name, std::move(args)); }

// Index tensor as contiguous int64 values; TypeError-like RuntimeError for non-integer dtypes.
Tensor index_values(const Tensor& idx, const char* op_name, const char* arg) {
  VBT_CHECK(idx.dtype() == ScalarType::Int64 || idx.dtype() == ScalarType::Int32 || idx.dtype() == ScalarType::Int16 ||
                idx.dtype() == ScalarType::Int8 || idx.dtype() == ScalarType::UInt8,
            op_name, "(): Expected dtype int32/int64 for ", arg, " but got ", dtype_name(idx.dtype()));
  return contiguous_or_self(cast_to(idx, ScalarType::Int64));
}

int64_t checked_index(int64_t i, int64_t size, const char* op_name, int64_t dim) {
  VBT_CHECK_INDEX(i >= -size && i < size, op_name, "(): index ", i, " is out of bounds for dimension ", dim,
                  " with size ", size);
  return i < 0 ? i + size : i;
}

// checked_index's error for an index known to be out of range, out of line with its arguments by value: a loop
// calling checked_index itself kept copies of the arguments on the stack for the throw, three stores per element.
[[gnu::noinline, gnu::cold]] void throw_index_out_of_range(int64_t i, int64_t size, const char* op_name,
                                                          int64_t dim) {
  checked_index(i, size, op_name, dim);
  VBT_INTERNAL_ASSERT(false, "index ", i, " was expected to be out of range");
}

inline void copy_elem(char* dst, const char* src, int64_t isz) {
  switch (isz) {
    case 1: *dst = *src; break;
    case 2: std::memcpy(dst, src, 2); break;
    case 4: std::memcpy(dst, src, 4); break;
    default: std::memcpy(dst, src, 8); break;
  }
}

inline int64_t offset_of(int64_t i, const Shape& sizes, const Shape& strides) {
  int64_t off = 0;
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
    off += (i % sizes[d]) * strides[d];
    i /= sizes[d];
  }
  return off;
}

// For gather/scatter: visits every position of `index` (row-major) with the element offsets
// of that position in index, `a` (with dim replaced by the index value) and `b` (same position).
// The position is advanced like an odometer (no div/mod per element); `a`'s offset is kept without
// dim's term, which the index value supplies.
template <typename F>
void for_each_scatter_position(const Tensor& index, const Tensor& a, const Tensor& b, int64_t dim, const char* op_name, F f) {
  Tensor iv = index_values(index, op_name, "index");
  const int64_t* ip = iv.data<int64_t>();
  const Shape& sizes = index.sizes();
  const int64_t nd = index.dim(), n = index.numel();
  const int64_t asize = a.dim() ? a.sizes()[dim] : 1;
  if (n == 0) return;
  Shape ast(nd, 0), bst(nd, 0);
  for (int64_t d = 0; d < nd; ++d) {
    ast[d] = d == dim || d >= a.dim() ? 0 : a.strides()[d];
    bst[d] = d < b.dim() ? b.strides()[d] : 0;
  }
  const int64_t dim_st = nd > 0 && dim < a.dim() ? a.strides()[dim] : 0;
  const int64_t inner = nd ? sizes[nd - 1] : 1, ai = nd ? ast[nd - 1] : 0, bi = nd ? bst[nd - 1] : 0;
  Shape c(nd, 0);
  int64_t offa = 0, offb = 0;
  for (int64_t i = 0; i < n; i += inner) {
    for (int64_t j = 0; j < inner; ++j) {
      const int64_t v = checked_index(ip[i + j], asize, op_name, dim);
      f(offa + j * ai + v * dim_st, offb + j * bi);
    }
    for (int64_t d = nd - 2; d >= 0; --d) {  // next row
      if (++c[d] < sizes[d]) { offa += ast[d]; offb += bst[d]; break; }
      offa -= (sizes[d] - 1) * ast[d];
      offb -= (sizes[d] - 1) * bst[d];
      c[d] = 0;
    }
  }
}

void check_gather_shapes(const Tensor& self, const Tensor& index, int64_t dim, const Tensor* src, const char* op_name) {
  VBT_CHECK(index.dim() == self.dim() || (index.dim() <= 1 && self.dim() <= 1), op_name,
            "(): Index tensor must have the same number of dimensions as input tensor (index shape ",
            shape_str(index.sizes()), ", input shape ", shape_str(self.sizes()), ")");
  for (int64_t d = 0; d < index.dim(); ++d) {
    if (d != dim)
      VBT_CHECK(index.sizes()[d] <= self.sizes()[d], op_name, "(): Size does not match at dimension ", d,
                " expected index ", shape_str(index.sizes()), " to be smaller than self ", shape_str(self.sizes()),
                " apart from dimension ", dim);
    if (src) VBT_CHECK(index.sizes()[d] <= src->sizes()[d], op_name, "(): Expected index ", shape_str(index.sizes()),
                       " to be smaller than src ", shape_str(src->sizes()));
  }
}

}  // namespace

// index_select(Tensor self, int dim, Tensor index) -> Tensor
Value k_index_select(const Args& a) {
  const Tensor& self = a.tensor(0);
  const Tensor& index = a.tensor(2);
  VBT_CHECK_INDEX(index.dim() <= 1, "index_select(): Index is supposed to be a vector, got shape ", shape_str(index.sizes()));
  int64_t dim = wrap_dim(a.integer(1), self.dim(), "index_select");
  Tensor src = contiguous_or_self(self);
  Tensor iv = index_values(index, "index_select", "index");
  int64_t n_idx = iv.numel(), size = self.dim() ? self.sizes()[dim] : 1;
  Shape out_shape = self.sizes();
  if (self.dim()) out_shape[dim] = n_idx;
  Tensor out = empty(out_shape, self.dtype());
  int64_t outer = 1, inner = itemsize(self.dtype());
  for (int64_t d = 0; d < dim; ++d) outer *= self.sizes()[d];
  for (int64_t d = dim + 1; d < self.dim(); ++d) inner *= self.sizes()[d];
  const int64_t* ip = iv.data<int64_t>();
  std::vector<int64_t> idx(n_idx);
  for (int64_t i = 0; i < n_idx; ++i) idx[i] = checked_index(ip[i], size, "index_select", dim);
  const char* sp = static_cast<const char*>(src.data_ptr());
  char* op_ = static_cast<char*>(out.data_ptr());
  parallel_for(0, outer * n_idx, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, inner)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      int64_t o = r / n_idx, i = r % n_idx;
      std::memcpy(op_ + r * inner, sp + (o * size + idx[i]) * inner, static_cast<size_t>(inner));
    }
  });
  return out;
}

// gather(Tensor self, int dim, Tensor index) -> Tensor
Value k_gather(const Args& a) {
  const Tensor &self = a.tensor(0), &index = a.tensor(2);
  int64_t dim = wrap_dim(a.integer(1), self.dim(), "gather");
  check_gather_shapes(self, index, dim, nullptr, "gather");
  Tensor out = empty(index.sizes(), self.dtype());
  int64_t isz = itemsize(self.dtype());
  const char* sp = static_cast<const char*>(self.data_ptr());
  char* op_ = static_cast<char*>(out.data_ptr());
  // Rows along the last dim (the common take-along-last-dim case): self's last dim contiguous, index
  // contiguous 64-bit. Rows run in parallel; each row's values are typed loads from one self row.
  if (index.dim() >= 1 && self.dim() == index.dim() && dim == index.dim() - 1 && self.strides()[dim] == 1 &&
      index.is_contiguous() && index.dtype() == ScalarType::Int64 && (isz == 4 || isz == 8) && index.numel() > 0) {
    const int64_t inner = index.sizes()[dim], rows = index.numel() / inner, asize = self.sizes()[dim];
    const Shape lead_sizes(index.sizes().begin(), index.sizes().end() - 1);
    const Shape lead_strides(self.strides().begin(), self.strides().end() - 1);
    const int64_t* ip = index.data<int64_t>();
    // The values of a row are read in random order, which the hardware prefetcher does not follow: when a self row
    // is short (<= 64 KiB) and most of it is likely read (at most 16 self elements per index), a later row is
    // prefetched (two rows ahead) while this one is gathered, a few lines per 16 elements (~1.5x on a 1024x1024
    // float32 self, 256 indices per row, out of cache; all 64 prefetches at once stalled the loop).
    const bool prefetch_rows = asize * isz <= 65536 && asize <= 16 * inner;
    const uint64_t usize = static_cast<uint64_t>(asize);
    auto rows_of = [&]<typename E>() {
      const E* src = reinterpret_cast<const E*>(sp);
      E* dst = reinterpret_cast<E*>(op_);
      auto row_offset = [&](int64_t r) {
        if (lead_sizes.size() == 1) return r * lead_strides[0];  // 2-d: no divisions
        int64_t off = 0, q = r;
        for (int64_t d = static_cast<int64_t>(lead_sizes.size()) - 1; d >= 0; --d) {
          off += (q % lead_sizes[d]) * lead_strides[d];
          q /= lead_sizes[d];
        }
        return off;
      };
      parallel_for(0, rows, std::max<int64_t>(1, kParallelGrain / inner), [&](int64_t r0, int64_t r1) {
        const int64_t nlines = prefetch_rows ? (asize * isz + 63) / 64 : 0;
        const int64_t per_block = (nlines * 16 + inner - 1) / inner;  // prefetches per 16 elements: all by row end
        constexpr int64_t kAhead = 2;  // rows ahead (measured: 2 a little better than 1 or 4)
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t off = row_offset(r);
          const bool ahead = prefetch_rows && r + kAhead < r1;
          const char* nrow = reinterpret_cast<const char*>(src + (ahead ? row_offset(r + kAhead) : 0));
          int64_t pf = ahead ? 0 : nlines;  // next line of the row kAhead ahead to prefetch
          const E* srow = src + off;
          const int64_t* irow = ip + r * inner;
          E* orow = dst + r * inner;
          for (int64_t j0 = 0; j0 < inner; j0 += 16) {
            for (int64_t q = 0; q < per_block && pf < nlines; ++q, ++pf) __builtin_prefetch(nrow + pf * 64, 0, 3);
            const int64_t j1 = std::min(inner, j0 + 16);
            for (int64_t j = j0; j < j1; ++j) {
              const int64_t v = irow[j];
              const uint64_t w = static_cast<uint64_t>(v) + (static_cast<uint64_t>(v >> 63) & usize);
              if (w >= usize) [[unlikely]]  // v < -asize wraps to a huge w
                throw_index_out_of_range(v, asize, "gather", dim);
              orow[j] = srow[w];
            }
          }
        }
      });
    };
    if (isz == 4) rows_of.template operator()<int32_t>(); else rows_of.template operator()<int64_t>();
    return out;
  }
  auto run = [&]<int64_t K>() {  // K: the element size as a constant, so the copy is one load/store
    for_each_scatter_position(index, self, out, dim, "gather", [&](int64_t offs, int64_t offo) {
      std::memcpy(op_ + offo * K, sp + offs * K, K);
    });
  };
  switch (isz) {
    case 1: run.template operator()<1>(); break;
    case 2: run.template operator()<2>(); break;
    case 4: run.template operator()<4>(); break;
    case 8: run.template operator()<8>(); break;
    default:
      for_each_scatter_position(index, self, out, dim, "gather", [&](int64_t offs, int64_t offo) {
        copy_elem(op_ + offo * isz, sp + offs * isz, isz);
      });
  }
  return out;
}

namespace {
Tensor scatter_impl(const Args& a, bool add, const char* op_name) {
  const Tensor &self = a.tensor(0), &index = a.tensor(2), &src0 = a.tensor(3);
  int64_t dim = wrap_dim(a.integer(1), self.dim(), op_name);
  bool value_mode = src0.dim() == 0 && src0.impl()->wrapped_number;
  Tensor src = value_mode ? op("expand", {cast_to(src0, self.dtype()), index.sizes()}) : src0;
  VBT_CHECK(src.dtype() == self.dtype(), op_name, "(): Expected self.dtype to be equal to src.dtype (",
            dtype_name(self.dtype()), " vs ", dtype_name(src.dtype()), ")");
  check_gather_shapes(self, index, dim, value_mode ? nullptr : &src, op_name);
  Tensor out = op("clone", {self});
  int64_t isz = itemsize(self.dtype());
  char* op_ = static_cast<char*>(out.data_ptr());
  const char* sp = static_cast<const char*>(src.data_ptr());
  if (!add) {
    for_each_scatter_position(index, out, src, dim, op_name, [&](int64_t offo, int64_t offs) {
      copy_elem(op_ + offo * isz, sp + offs * isz, isz);
    });
  } else {
    VBT_DISPATCH_ALL(self.dtype(), op_name, [&]<typename T>() {
      T* o = out.data<T>();
      const T* s = src.data<T>();
      for_each_scatter_position(index, out, src, dim, op_name, [&](int64_t offo, int64_t offs) {
        if constexpr (std::is_same_v<T, bool>) o[offo] = o[offo] || s[offs];
        else o[offo] = static_cast<T>(static_cast<opmath_t<T>>(o[offo]) + static_cast<opmath_t<T>>(s[offs]));
      });
    });
  }
  return out;
}
}  // namespace

// scatter(Tensor self, int dim, Tensor index, Tensor src) -> Tensor   (src may be a Python number)
Value k_scatter(const Args& a) { return scatter_impl(a, false, "scatter"); }
// scatter_add(Tensor self, int dim, Tensor index, Tensor src) -> Tensor
Value k_scatter_add(const Args& a) { return scatter_impl(a, true, "scatter_add"); }

// index_add(Tensor self, int dim, Tensor index, Tensor source, *, Scalar alpha=1) -> Tensor
Value k_index_add(const Args& a) {
  const Tensor &self = a.tensor(0), &index = a.tensor(2), &source = a.tensor(3);
  int64_t dim = wrap_dim(a.integer(1), self.dim(), "index_add");
  VBT_CHECK_INDEX(index.dim() <= 1, "index_add(): Index is supposed to be a vector, got shape ", shape_str(index.sizes()));
  VBT_CHECK(source.dtype() == self.dtype(), "index_add(): self (", dtype_name(self.dtype()), ") and source (",
            dtype_name(source.dtype()), ") must have the same scalar type");
  Shape expect = self.sizes();
  if (self.dim()) expect[dim] = index.numel();
  VBT_CHECK(source.sizes() == expect || (self.dim() == 0 && source.numel() == 1), "index_add(): source shape ",
            shape_str(source.sizes()), " does not match ", shape_str(expect), " (self ", shape_str(self.sizes()),
            " with dim ", dim, " replaced by the number of indices)");
  Tensor out = op("clone", {self});
  Tensor iv = index_values(index, "index_add", "index");
  Scalar alpha = a.scalar(4);
  for (int64_t i = 0; i < iv.numel(); ++i) {
    int64_t j = checked_index(iv.data<int64_t>()[i], self.dim() ? self.sizes()[dim] : 1, "index_add", dim);
    Tensor dst = self.dim() ? op("select", {out, dim, j}) : out;
    Tensor srcs = self.dim() ? op("select", {source, dim, i}) : op("reshape", {source, Shape{}});
    call_op("add", {dst, srcs, alpha, dst});
  }
  return out;
}

// masked_fill(Tensor self, Tensor mask, Tensor value) -> Tensor
Value k_masked_fill(const Args& a) {
  const Tensor &self = a.tensor(0), &mask = a.tensor(1), &value = a.tensor(2);
  VBT_CHECK(mask.dtype() == ScalarType::Bool, "masked_fill: expected BoolTensor for mask, got ", dtype_name(mask.dtype()));
  VBT_CHECK(value.dim() == 0, "masked_fill: only supports a 0-dimensional value tensor, but got tensor with ",
            value.dim(), " dimension(s)");
  Shape b = broadcast_shapes(self.sizes(), mask.sizes(), "masked_fill");
  VBT_CHECK(b == self.sizes(), "masked_fill: mask of shape ", shape_str(mask.sizes()),
            " cannot be broadcast to self of shape ", shape_str(self.sizes()));
  VBT_CHECK(!(is_floating(value.dtype()) && is_integral(self.dtype(), true)),
            "masked_fill: value cannot be converted to type ", dtype_name(self.dtype()), " without overflow");
  return op("where", {mask, cast_to(value, self.dtype()), self});
}

// masked_select(Tensor self, Tensor mask) -> Tensor
Value k_masked_select(const Args& a) {
  const Tensor &self = a.tensor(0), &mask = a.tensor(1);
  VBT_CHECK(mask.dtype() == ScalarType::Bool, "masked_select: expected BoolTensor for mask, got ", dtype_name(mask.dtype()));
  Shape b = broadcast_shapes(self.sizes(), mask.sizes(), "masked_select");
  Tensor s = op("contiguous", {op("expand", {self, b})});
  Tensor m = op("contiguous", {op("expand", {mask, b})});
  const bool* mp = m.data<bool>();
  int64_t cnt = 0;
  for (int64_t i = 0; i < m.numel(); ++i) cnt += mp[i];
  Tensor out = empty({cnt}, self.dtype());
  int64_t isz = itemsize(self.dtype());
  const char* sp = static_cast<const char*>(s.data_ptr());
  char* op_ = static_cast<char*>(out.data_ptr());
  for (int64_t i = 0, j = 0; i < m.numel(); ++i)
    if (mp[i]) copy_elem(op_ + (j++) * isz, sp + i * isz, isz);
  return out;
}

// nonzero(Tensor self) -> Tensor   (shape [n, ndim], int64)
Value k_nonzero(const Args& a) {
  Tensor self = op("contiguous", {a.tensor(0)});
  Tensor b = cast_to(self, ScalarType::Bool);
  const bool* p = b.data<bool>();
  int64_t nd = self.dim(), n = self.numel();
  std::vector<int64_t> coords;
  for (int64_t i = 0; i < n; ++i) {
    if (!p[i]) continue;
    int64_t rem = i;
    size_t base = coords.size();
    coords.resize(base + nd);
    for (int64_t d = nd - 1; d >= 0; --d) { coords[base + d] = rem % self.sizes()[d]; rem /= self.sizes()[d]; }
  }
  int64_t cnt = 0;
  for (int64_t i = 0; i < n; ++i) cnt += p[i];
  Tensor out = empty({cnt, nd}, ScalarType::Int64);
  std::copy(coords.begin(), coords.end(), out.data<int64_t>());
  return out;
}

namespace {
// Geometry shared by index/index_put_: the indexed dims of self (in order), the broadcast
// shape of the index tensors, and the remaining dims.
struct AdvIndex {
  std::vector<int64_t> dims;        // indexed dims of self
  std::vector<Tensor> idx;          // int64, contiguous, broadcast to ishape
  Shape ishape;                     // broadcast index shape
  Shape rest_sizes, rest_strides;   // non-indexed dims of self
  std::vector<int64_t> rest_dims;
  bool adjacent = true;             // indexed dims consecutive -> result dims go at the first one's place
};

AdvIndex plan_index(const Tensor& self, const TensorList& indices, const Shape& dims, const char* op_name) {
  VBT_CHECK(indices.size() == dims.size() && !indices.empty(), op_name, ": indices and dims must match");
  AdvIndex p;
  std::vector<bool> used(self.dim(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    VBT_CHECK_INDEX(dims[i] >= 0 && dims[i] < self.dim(), op_name, ": too many indices for tensor of dimension ", self.dim());
    VBT_CHECK_INDEX(!used[dims[i]], op_name, ": dim ", dims[i], " indexed twice");
    used[dims[i]] = true;
    p.dims.push_back(dims[i]);
    if (i > 0 && dims[i] != dims[i - 1] + 1) p.adjacent = false;
    p.ishape = i == 0 ? indices[i].sizes() : broadcast_shapes(p.ishape, indices[i].sizes(), op_name);
  }
  for (size_t i = 0; i < dims.size(); ++i) {
    Tensor iv = index_values(indices[i], op_name, "indices");
    p.idx.push_back(op("contiguous", {op("expand", {iv, p.ishape})}));
  }
  for (int64_t d = 0; d < self.dim(); ++d)
    if (!used[d]) { p.rest_dims.push_back(d); p.rest_sizes.push_back(self.sizes()[d]); p.rest_strides.push_back(self.strides()[d]); }
  return p;
}

// Element offsets in self of each index tuple (bounds-checked).
std::vector<int64_t> tuple_offsets(const Tensor& self, const AdvIndex& p, const char* op_name) {
  int64_t n = shape_numel(p.ishape);
  std::vector<int64_t> offs(n, self.storage_offset());
  for (size_t k = 0; k < p.dims.size(); ++k) {
    const int64_t* ip = p.idx[k].data<int64_t>();
    int64_t d = p.dims[k], size = self.sizes()[d], st = self.strides()[d];
    for (int64_t i = 0; i < n; ++i) offs[i] += checked_index(ip[i], size, op_name, d) * st;
  }
  return offs;
}

// Result layout of advanced indexing: [index dims..., rest dims...], then moved to the first
// indexed dim's place when the indexed dims are adjacent (PyTorch's rule).
Tensor place_result(const Tensor& r, const AdvIndex& p) {
  if (!p.adjacent || p.dims[0] == 0) return r;
  int64_t before = 0;
  for (int64_t d : p.rest_dims) before += d < p.dims[0];
  int64_t ni = static_cast<int64_t>(p.ishape.size()), nr = static_cast<int64_t>(p.rest_dims.size());
  Shape perm;
  for (int64_t i = 0; i < before; ++i) perm.push_back(ni + i);
  for (int64_t i = 0; i < ni; ++i) perm.push_back(i);
  for (int64_t i = before; i < nr; ++i) perm.push_back(ni + i);
  return op("permute", {r, perm});
}
}  // namespace

// index(Tensor self, Tensor[] indices, int[] dims) -> Tensor
// Advanced indexing of dims `dims` of self by integer tensors (bool masks are converted to
// integer tensors by the caller).
Value k_index(const Args& a) {
  const Tensor& self = a.tensor(0);
  AdvIndex p = plan_index(self, a.tensor_list(1), a.int_list(2), "index");
  std::vector<int64_t> offs = tuple_offsets(self, p, "index");
  Shape out_shape = p.ishape;
  out_shape.insert(out_shape.end(), p.rest_sizes.begin(), p.rest_sizes.end());
  Tensor out = empty(out_shape, self.dtype());
  int64_t isz = itemsize(self.dtype()), rn = shape_numel(p.rest_sizes);
  const char* base = static_cast<const char*>(self.impl()->storage()->data_ptr.data);
  char* o = static_cast<char*>(out.data_ptr());
  std::vector<int64_t> rest_off(rn);
  for (int64_t r = 0; r < rn; ++r) rest_off[r] = offset_of(r, p.rest_sizes, p.rest_strides);
  parallel_for(0, static_cast<int64_t>(offs.size()), std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, rn)), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      for (int64_t r = 0; r < rn; ++r) copy_elem(o + (i * rn + r) * isz, base + (offs[i] + rest_off[r]) * isz, isz);
  });
  return place_result(out, p);
}

// index_put_(Tensor self, Tensor[] indices, int[] dims, Tensor values, bool accumulate=False) -> Tensor
Value k_index_put_(const Args& a) {
  const Tensor& self = a.tensor(0);
  AdvIndex p = plan_index(self, a.tensor_list(1), a.int_list(2), "index_put_");
  std::vector<int64_t> offs = tuple_offsets(self, p, "index_put_");
  bool accumulate = a.boolean(4);
  // values broadcast to the result layout of index(), then brought to [index dims, rest dims]
  Shape res_shape = p.ishape;
  res_shape.insert(res_shape.end(), p.rest_sizes.begin(), p.rest_sizes.end());
  Tensor placed = place_result(empty(res_shape, self.dtype()), p);  // only for its shape
  const Tensor& values = a.tensor(3);
  broadcast_shapes(placed.sizes(), values.sizes(), "index_put_");
  Tensor v = cast_to(values, self.dtype());
  Tensor vb = op("expand", {v, placed.sizes()});
  if (p.adjacent && p.dims[0] != 0) {
    // invert place_result's permutation
    int64_t before = 0;
    for (int64_t d : p.rest_dims) before += d < p.dims[0];
    int64_t ni = static_cast<int64_t>(p.ishape.size()), nr = static_cast<int64_t>(p.rest_dims.size());
    Shape perm;
    for (int64_t i = 0; i < ni; ++i) perm.push_back(before + i);
    for (int64_t i = 0; i < before; ++i) perm.push_back(i);
    for (int64_t i = before; i < nr; ++i) perm.push_back(ni + i);
    vb = op("permute", {vb, perm});
  }
  vb = op("contiguous", {vb});
  int64_t isz = itemsize(self.dtype()), rn = shape_numel(p.rest_sizes);
  std::vector<int64_t> rest_off(rn);
  for (int64_t r = 0; r < rn; ++r) rest_off[r] = offset_of(r, p.rest_sizes, p.rest_strides);
  char* base = static_cast<char*>(self.impl()->storage()->data_ptr.data);
  const char* vp = static_cast<const char*>(vb.data_ptr());
  if (!accumulate) {
    for (size_t i = 0; i < offs.size(); ++i)
      for (int64_t r = 0; r < rn; ++r) copy_elem(base + (offs[i] + rest_off[r]) * isz, vp + (i * rn + r) * isz, isz);
  } else {
    VBT_DISPATCH_ALL(self.dtype(), "index_put_", [&]<typename T>() {
      T* b = reinterpret_cast<T*>(base);
      const T* vv = reinterpret_cast<const T*>(vp);
      for (size_t i = 0; i < offs.size(); ++i)
        for (int64_t r = 0; r < rn; ++r) {
          T& dst = b[offs[i] + rest_off[r]];
          if constexpr (std::is_same_v<T, bool>) dst = dst || vv[i * rn + r];
          else dst = static_cast<T>(static_cast<opmath_t<T>>(dst) + static_cast<opmath_t<T>>(vv[i * rn + r]));
        }
    });
  }
  self.impl()->bump_version();
  return self;
}

// one_hot(Tensor self, int num_classes=-1) -> Tensor
Value k_one_hot(const Args& a) {
  const Tensor& self = a.tensor(0);
  VBT_CHECK(self.dtype() == ScalarType::Int64, "one_hot is only applicable to index tensor of type LongTensor, got ",
            dtype_name(self.dtype()));
  Tensor iv = op("contiguous", {self});
  const int64_t* ip = iv.data<int64_t>();
  int64_t n = iv.numel(), classes = a.integer(1);
  int64_t mx = -1;
  for (int64_t i = 0; i < n; ++i) {
    VBT_CHECK(ip[i] >= 0, "one_hot: Class values must be non-negative.");
    mx = std::max(mx, ip[i]);
  }
  if (classes == -1) {
    VBT_CHECK(n > 0, "one_hot: Can not infer total number of classes from empty tensor.");
    classes = mx + 1;
  }
  VBT_CHECK(mx < classes, "one_hot: Class values must be smaller than num_classes.");
  Shape shape = self.sizes();
  shape.push_back(classes);
  Tensor out = empty(shape, ScalarType::Int64);
  std::memset(out.data_ptr(), 0, static_cast<size_t>(out.numel() * 8));
  for (int64_t i = 0; i < n; ++i) out.data<int64_t>()[i * classes + ip[i]] = 1;
  return out;
}

// embedding(Tensor weight, Tensor indices) -> Tensor   (rows of weight, shape indices.shape + [D])
Value k_embedding(const Args& a) {
  const Tensor &w = a.tensor(0), &idx = a.tensor(1);
  VBT_CHECK(w.dim() == 2, "embedding: weight must be 2-D, got shape ", shape_str(w.sizes()));
  Tensor flat = op("reshape", {idx, Shape{-1}});
  Tensor rows = std::get<Tensor>(k_index_select(Args{w, int64_t(0), flat}));
  Shape shape = idx.sizes();
  shape.push_back(w.sizes()[1]);
  return op("reshape", {rows, shape});
}

// take_along_dim(Tensor self, Tensor indices, int? dim=None) -> Tensor
Value k_take_along_dim(const Args& a) {
  const Tensor &self = a.tensor(0), &indices = a.tensor(1);
  if (a.is_none(2)) {
    Tensor flat = op("reshape", {self, Shape{-1}});
    return op("gather", {flat, int64_t(0), op("reshape", {indices, Shape{-1}})});  // any device: through the dispatcher
  }
  VBT_CHECK(self.dim() == indices.dim(), "take_along_dim: input and indices should have the same number of dimensions, "
            "but got ", self.dim(), " dimensions for input, and ", indices.dim(), " dimensions for indices");
  int64_t dim = wrap_dim(a.integer(2), self.dim(), "take_along_dim");
  Shape s = self.sizes(), i = indices.sizes();
  s[dim] = 1; i[dim] = 1;
  Shape b = broadcast_shapes(s, i, "take_along_dim");
  Shape se = b, ie = b;
  se[dim] = self.sizes()[dim];
  ie[dim] = indices.sizes()[dim];
  return op("gather", {op("expand", {self, se}), dim, op("expand", {indices, ie})});
}

}  // namespace vbt
