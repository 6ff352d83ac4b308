// Reductions (sum, mean, prod, amax/amin, max/min with indices, argmax/argmin, var/std, norm,
// logsumexp, all, any) and dim-wise scans (cumsum, cumprod, softmax, log_softmax).
//
// Note [Reduction plan]
// A reduction splits the input's dims into KEPT and REDUCED sets. Outputs are enumerated in
// row-major order of the kept dims (the output is contiguous, keepdim only changes its final
// shape); for each output the reduced elements are visited in row-major order of the reduced
// dims, so the k-th visited element has linear index k (what argmax/max-indices report).
// Floating accumulation is in double (more accurate than PyTorch's float cascade, within
// tolerance), integer accumulation in int64. Outputs are processed in parallel chunks when
// (outputs x reduced elements) exceeds kParallelGrain.
#include <cmath>
#include <limits>
#include <vector>

#include "cpu_kernels.h"
#include "vec_math.h"

namespace vbt {

namespace {

struct ReducePlan {
  Shape keep_sizes, keep_strides;  // input geometry of kept dims (elements)
  Shape red_sizes, red_strides;    // input geometry of reduced dims (elements)
  Shape out_keepdim_shape, out_shape;
  int64_t num_out = 1, num_red = 1;
};

// Merges neighbouring entries of a (sizes, strides) list that address memory like one dim (outer stride ==
// inner size * inner stride) and drops size-1 entries. Row-major linear indices over the list (and so the
// offsets offset_of computes, and the order reduced elements are visited in) are unchanged.
void coalesce(Shape& sizes, Shape& strides) {
  Shape s2, st2;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 1) continue;
    if (!s2.empty() && sizes[d] != 0 && s2.back() != 0 && st2.back() == sizes[d] * strides[d]) {
      s2.back() *= sizes[d];
      st2.back() = strides[d];
    } else {
      s2.push_back(sizes[d]);
      st2.push_back(strides[d]);
    }
  }
  sizes = std::move(s2);
  strides = std::move(st2);
}

ReducePlan make_plan(const Tensor& t, const Shape* dims, bool keepdim, const char* op) {
  std::vector<bool> reduced(t.dim(), dims == nullptr || dims->empty());
  if (dims && !dims->empty()) {
    for (int64_t d : *dims) {
      int64_t w = wrap_dim(d, t.dim(), op);
      if (t.dim() == 0) continue;
      VBT_CHECK(!reduced[w], op, ": dim ", w, " appears multiple times in the list of dims");
      reduced[w] = true;
    }
  }
  ReducePlan p;
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (reduced[d]) {
      p.red_sizes.push_back(t.sizes()[d]);
      p.red_strides.push_back(t.strides()[d]);
      p.out_keepdim_shape.push_back(1);
      if (keepdim) p.out_shape.push_back(1);
    } else {
      p.keep_sizes.push_back(t.sizes()[d]);
      p.keep_strides.push_back(t.strides()[d]);
      p.out_keepdim_shape.push_back(t.sizes()[d]);
      p.out_shape.push_back(t.sizes()[d]);
    }
  }
  p.num_out = shape_numel(p.keep_sizes);
  p.num_red = shape_numel(p.red_sizes);
  coalesce(p.keep_sizes, p.keep_strides);
  coalesce(p.red_sizes, p.red_strides);
  return p;
}

// Offset (elements) of linear index `i` over (sizes, strides), row-major.
inline int64_t offset_of(int64_t i, const Shape& sizes, const Shape& strides) {
  int64_t off = 0;
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
    off += (i % sizes[d]) * strides[d];
    i /= sizes[d];
  }
  return off;
}

// For each output o: acc = init; step(acc, x, k) over its reduced elements; emit(o, acc).
template <typename T, typename Acc, typename Step, typename Emit>
void run_reduce(const Tensor& in, const ReducePlan& p, Acc init, Step step, Emit emit) {
  const T* base = in.data<T>();
  const int64_t nr = static_cast<int64_t>(p.red_sizes.size());
  const int64_t inner_n = nr ? p.red_sizes.back() : 1, inner_st = nr ? p.red_strides.back() : 0;
  const int64_t outer_red = inner_n ? p.num_red / inner_n : 0;
  Shape outer_sizes(p.red_sizes.begin(), p.red_sizes.end() - (nr ? 1 : 0));
  Shape outer_strides(p.red_strides.begin(), p.red_strides.end() - (nr ? 1 : 0));
  int64_t grain = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, p.num_red));
  parallel_for(0, p.num_out, grain, [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      const T* ob = base + offset_of(o, p.keep_sizes, p.keep_strides);
      Acc acc = init;
      int64_t k = 0;
      for (int64_t r = 0; r < outer_red; ++r) {
        const T* rb = ob + offset_of(r, outer_sizes, outer_strides);
        for (int64_t i = 0; i < inner_n; ++i, ++k) step(acc, static_cast<opmath_t<T>>(rb[i * inner_st]), k);
      }
      emit(o, acc);
    }
  });
}

// Note [Sum fast paths]
// Additive reductions (sum, mean, norm p=1/2) go through run_sum: acc = sum of map(x) over the reduced
// elements, in the accumulator type A (double for floating inputs, int64 for integers), then emit(o, acc).
// Two layouts get loops the compiler can vectorise (no -ffast-math needed: the reassociation is written out):
//  * the innermost reduced dim is contiguous: each contiguous run is summed with kLanes independent
//    accumulators (combined pairwise at the end), one run after another into the output's accumulator;
//  * the innermost kept dim is contiguous and no reduced dim is: a block of consecutive outputs is
//    accumulated row by row into a buffer, so the reduced elements of each output are added in the same
//    order as the plain loop (bit-identical to run_reduce).
// Anything else falls back to run_reduce. Accumulation stays in double/int64, so results are at least as
// accurate as the plain sequential loop.
// float32 sums (Identity map) use vec_math.h's AVX2 kernels (float -> double conversion from memory is the
// bottleneck): every contiguous run of an output adds into the same 32 double lanes (one pairwise combine
// per output, not per run); outputs with several runs are processed in blocks of 32, run index outermost,
// so memory is read in order; a single contiguous run (sum of everything) is cut into fixed 64Ki-element
// chunks summed in parallel and added in chunk order (the result does not depend on the thread count);
// outer-dim sums add 8 rows per pass over a 16-column register block, in row order (same values). A single run
// per output (sum over the last dim) keeps its 32 lanes in registers (vec::sum_f32_f64), and float64 runs use
// vec::sum_f64 (AVX2, same lanes and order as sum_contig's loop); both prefetch ahead (vec_math.h).
constexpr int64_t kLanes = 32;

struct Identity {
  template <typename A> A operator()(A v) const { return v; }
};

template <typename T, typename A, typename Map> A sum_contig(const T* x, int64_t n, Map map) {
  if constexpr (std::is_same_v<T, float> && std::is_same_v<A, double> && std::is_same_v<Map, Identity>)
    return vec::sum_f32_f64(x, n);  // same arithmetic, also compiled for AVX2
  if constexpr (std::is_same_v<T, double> && std::is_same_v<A, double> && std::is_same_v<Map, Identity>)
    return vec::sum_f64(x, n);  // same arithmetic (same lanes, same order), AVX2 with prefetches
  A acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) acc[j] += map(static_cast<A>(static_cast<opmath_t<T>>(x[i + j])));
  for (int64_t j = 0; i < n; ++i, ++j) acc[j] += map(static_cast<A>(static_cast<opmath_t<T>>(x[i])));
  for (int64_t w = kLanes / 2; w > 0; w /= 2)
    for (int64_t j = 0; j < w; ++j) acc[j] += acc[j + w];
  return acc[0];
}

template <typename T, typename A, typename Map, typename Emit>
void run_sum(const Tensor& in, const ReducePlan& p, Map map, Emit emit) {
  const T* base = in.data<T>();
  const int64_t nr = static_cast<int64_t>(p.red_sizes.size()), nk = static_cast<int64_t>(p.keep_sizes.size());
  const int64_t inner_n = nr ? p.red_sizes.back() : 1;
  const int64_t outer_red = inner_n ? p.num_red / inner_n : 0;
  Shape outer_sizes(p.red_sizes.begin(), p.red_sizes.end() - (nr ? 1 : 0));
  Shape outer_strides(p.red_strides.begin(), p.red_strides.end() - (nr ? 1 : 0));
  const int64_t grain = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, p.num_red));
  constexpr bool kF32 = std::is_same_v<T, float> && std::is_same_v<A, double> && std::is_same_v<Map, Identity>;
  if constexpr (kF32) {
    if (nr > 0 && p.red_strides.back() == 1) {
      if (p.num_out == 1 && outer_red == 1) {
        // One contiguous run (e.g. sum of everything): fixed chunks summed in parallel, partials added in
        // chunk order, so the result does not depend on the thread count.
        constexpr int64_t kChunk = int64_t(1) << 16;
        const int64_t nchunks = (inner_n + kChunk - 1) / kChunk;
        std::vector<double> part(static_cast<size_t>(nchunks));
        parallel_for(0, nchunks, std::max<int64_t>(1, kParallelGrain / kChunk), [&](int64_t b, int64_t e) {
          for (int64_t c = b; c < e; ++c)  // lanes from zero, combined: sum_f32_f64 (registers on AVX2+FMA)
            part[static_cast<size_t>(c)] =
                vec::sum_f32_f64(base + c * kChunk, std::min(kChunk, inner_n - c * kChunk));
        });
        double acc = 0;
        for (double v : part) acc += v;
        emit(0, acc);
        return;
      }
      if (outer_red == 1) {
        // One contiguous run per output (sum over the last dim): vec::sum_f32_f64 per output, the same arithmetic
        // as the block loop below without its per-output lane zeroing (a rep stos) and, for one kept dim, without
        // offset_of's divisions.
        const int64_t kst = nk == 1 ? p.keep_strides[0] : 0;
        parallel_for(0, p.num_out, grain, [&](int64_t b, int64_t e) {
          for (int64_t o = b; o < e; ++o) {
            const int64_t off = nk == 1 ? o * kst : offset_of(o, p.keep_sizes, p.keep_strides);
            emit(o, vec::sum_f32_f64(base + off, inner_n));
          }
        });
        return;
      }
      // Every run of an output feeds the same 32 lanes (no per-run combination), then one pairwise combine.
      // Several runs per output (e.g. mean over dims (0, 2)): a block of outputs is walked run index outermost,
      // so the memory of consecutive outputs' runs is read in order; each output still adds its runs in order.
      constexpr int64_t kOutBlock = 32;
      parallel_for(0, p.num_out, grain, [&](int64_t b, int64_t e) {
        double lanes[kOutBlock][vec::kSumLanes];
        int64_t ooff[kOutBlock];
        for (int64_t o0 = b; o0 < e; o0 += kOutBlock) {
          const int64_t len = std::min(kOutBlock, e - o0);
          for (int64_t j = 0; j < len; ++j) {
            ooff[j] = offset_of(o0 + j, p.keep_sizes, p.keep_strides);
            for (int64_t l = 0; l < vec::kSumLanes; ++l) lanes[j][l] = 0.0;
          }
          for (int64_t r = 0; r < outer_red; ++r) {
            const T* rb = base + (outer_red == 1 ? 0 : offset_of(r, outer_sizes, outer_strides));
            for (int64_t j = 0; j < len; ++j) vec::sum_f32_lanes(lanes[j], rb + ooff[j], inner_n);
          }
          for (int64_t j = 0; j < len; ++j) emit(o0 + j, vec::combine_lanes(lanes[j]));
        }
      });
      return;
    }
  }
  if (nr == 0 || p.red_strides.back() == 1) {
    const int64_t kst = nk == 1 ? p.keep_strides[0] : 0;  // one kept dim (row sums): no divisions per output
    parallel_for(0, p.num_out, grain, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        const T* ob = base + (nk == 1 ? o * kst : offset_of(o, p.keep_sizes, p.keep_strides));
        A acc = A(0);
        for (int64_t r = 0; r < outer_red; ++r)
          acc += sum_contig<T, A>(ob + offset_of(r, outer_sizes, outer_strides), inner_n, map);
        emit(o, acc);
      }
    });
    return;
  }
  const bool inner_kept_contig = nk > 0 && p.keep_strides.back() == 1;
  if (!inner_kept_contig) {
    run_reduce<T, A>(in, p, A(0), [map](A& acc, auto x, int64_t) { acc += map(static_cast<A>(x)); }, emit);
    return;
  }
  const int64_t kin = p.keep_sizes.back(), inner_st = p.red_strides.back();
  constexpr int64_t kBlock = 512;
  parallel_for(0, p.num_out, grain, [&](int64_t b, int64_t e) {
    A acc[kBlock];
    for (int64_t o = b; o < e;) {
      const int64_t len = std::min({e - o, kin - o % kin, kBlock});
      const T* ob = base + offset_of(o, p.keep_sizes, p.keep_strides);
      for (int64_t j = 0; j < len; ++j) acc[j] = A(0);
      for (int64_t r = 0; r < outer_red; ++r) {
        const T* rb = ob + offset_of(r, outer_sizes, outer_strides);
        if constexpr (kF32) {
          vec::add_rows_f32(acc, rb, inner_st, inner_n, len);  // same order as the loop below
          continue;
        }
        for (int64_t i = 0; i < inner_n; ++i) {
          const T* row = rb + i * inner_st;
          for (int64_t j = 0; j < len; ++j) acc[j] += map(static_cast<A>(static_cast<opmath_t<T>>(row[j])));
        }
      }
      for (int64_t j = 0; j < len; ++j) emit(o + j, acc[j]);
      o += len;
    }
  });
}

Tensor finish_shape(const Tensor& out_keep, const ReducePlan& p) {
  return make_view(out_keep, p.out_shape, contiguous_strides(p.out_shape), 0);
}

const Shape* opt_dims(const Args& a, size_t i) { return a.is_none(i) ? nullptr : &a.int_list(i); }

template <typename T> using acc_t = std::conditional_t<std::is_floating_point_v<opmath_t<T>>, double, int64_t>;

void check_nonempty(const ReducePlan& p, const Tensor& t, const char* op) {
  VBT_CHECK(p.num_red > 0 || p.num_out == 0, op, "(): Expected reduction dim to have non-zero size (input shape ",
            shape_str(t.sizes()), ")");
}

// sum/prod share this: dtype rule is "integers and bool accumulate to int64".
template <bool IsProd> Value sum_like(const Args& a, const char* op) {
  Tensor in = a.tensor(0);
  ScalarType out_dt = !a.is_none(3) ? a.dtype(3) : is_integral(in.dtype(), true) ? ScalarType::Int64 : in.dtype();
  in = cast_to(in, out_dt);
  ReducePlan p = make_plan(in, opt_dims(a, 1), a.boolean(2), op);
  Tensor out = empty(p.out_keepdim_shape, out_dt);
  VBT_DISPATCH_NUMERIC(out_dt, op, [&]<typename T>() {
    using A = acc_t<T>;
    T* o = out.data<T>();
    auto emit = [o](int64_t i, A acc) { o[i] = static_cast<T>(static_cast<opmath_t<T>>(acc)); };
    if constexpr (IsProd) run_reduce<T, A>(in, p, A(1), [](A& acc, auto x, int64_t) { acc *= static_cast<A>(x); }, emit);
    else run_sum<T, A>(in, p, Identity{}, emit);
  });
  return finish_shape(out, p);
}

}  // namespace

// sum(Tensor self, int[]? dim=None, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor
Value k_sum(const Args& a) { return sum_like<false>(a, "sum"); }
// prod(Tensor self, int[]? dim=None, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor
Value k_prod(const Args& a) { return sum_like<true>(a, "prod"); }

// mean(Tensor self, int[]? dim=None, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor
Value k_mean(const Args& a) {
  Tensor in = a.tensor(0);
  ScalarType dt = a.dtype_or(3, in.dtype());
  VBT_CHECK(is_floating(dt), "mean(): could not infer output dtype. Input dtype must be either a floating point or "
            "complex dtype. Got: ", dtype_name(dt));
  in = cast_to(in, dt);
  ReducePlan p = make_plan(in, opt_dims(a, 1), a.boolean(2), "mean");
  Tensor out = empty(p.out_keepdim_shape, dt);
  double n = static_cast<double>(p.num_red);
  VBT_DISPATCH_FLOATING(dt, "mean", [&]<typename T>() {
    T* o = out.data<T>();
    run_sum<T, double>(in, p, Identity{},
                       [o, n](int64_t i, double acc) { o[i] = static_cast<T>(static_cast<opmath_t<T>>(acc / n)); });
  });
  return finish_shape(out, p);
}

namespace {
// Note [Extreme fast paths]
// amax/amin: the result does not depend on the visiting order (NaN propagates: any NaN gives NaN), so the two
// layouts of Note [Sum fast paths] get loops the compiler vectorises: kLanes independent running extremes over a
// contiguous innermost reduced run, and a block of consecutive outputs updated row by row when the innermost
// kept dim is contiguous (outer-dim reductions). `pick` takes x when it is more extreme or NaN, so a NaN, once
// taken, stays (nothing compares greater than it and it is not replaced by a non-NaN): branch-free compare, or,
// blend. float, double, int32 and int64 runs use vec_math.h's extreme_simd (vector extensions, AVX2 clone);
// other dtypes the lane loop. Other layouts use run_reduce.
template <bool IsMax, typename M> inline M pick(M acc, M x) { return vec::pick_extreme<IsMax>(acc, x); }

template <bool IsMax, typename T, typename M> M extreme_contig(const T* x, int64_t n, M init) {
  if constexpr (std::is_same_v<T, M> && std::is_same_v<M, float>)
    return IsMax ? vec::max_f32(x, n, init) : vec::min_f32(x, n, init);
  if constexpr (std::is_same_v<T, M> && std::is_same_v<M, double>)
    return IsMax ? vec::max_f64(x, n, init) : vec::min_f64(x, n, init);
  if constexpr (std::is_same_v<T, M> && std::is_same_v<M, int32_t>)
    return IsMax ? vec::max_i32(x, n, init) : vec::min_i32(x, n, init);
  if constexpr (std::is_same_v<T, M> && std::is_same_v<M, int64_t>)
    return IsMax ? vec::max_i64(x, n, init) : vec::min_i64(x, n, init);
  constexpr int64_t kLanes = 16;
  M acc[kLanes];
  for (int64_t j = 0; j < kLanes; ++j) acc[j] = init;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) acc[j] = pick<IsMax>(acc[j], static_cast<M>(x[i + j]));
  for (int64_t j = 0; i < n; ++i, ++j) acc[j] = pick<IsMax>(acc[j], static_cast<M>(x[i]));
  M r = acc[0];
  for (int64_t j = 1; j < kLanes; ++j) r = pick<IsMax>(r, acc[j]);
  return r;
}

template <bool IsMax, typename T, typename M, typename Emit>
void run_extreme(const Tensor& in, const ReducePlan& p, M init, Emit emit) {
  const T* base = in.data<T>();
  const int64_t nr = static_cast<int64_t>(p.red_sizes.size()), nk = static_cast<int64_t>(p.keep_sizes.size());
  const int64_t inner_n = nr ? p.red_sizes.back() : 1, inner_st = nr ? p.red_strides.back() : 0;
  const int64_t outer_red = inner_n ? p.num_red / inner_n : 0;
  Shape outer_sizes(p.red_sizes.begin(), p.red_sizes.end() - (nr ? 1 : 0));
  Shape outer_strides(p.red_strides.begin(), p.red_strides.end() - (nr ? 1 : 0));
  const int64_t grain = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, p.num_red));
  if (nr > 0 && inner_st == 1) {
    parallel_for(0, p.num_out, grain, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        const T* ob = base + offset_of(o, p.keep_sizes, p.keep_strides);
        M acc = init;
        for (int64_t r = 0; r < outer_red; ++r)
          acc = pick<IsMax>(acc, extreme_contig<IsMax, T, M>(ob + offset_of(r, outer_sizes, outer_strides),
                                                             inner_n, init));
        emit(o, acc);
      }
    });
    return;
  }
  if (!(nk > 0 && p.keep_strides.back() == 1)) {
    run_reduce<T, M>(in, p, init, [](M& acc, M x, int64_t) { acc = pick<IsMax>(acc, x); }, emit);
    return;
  }
  const int64_t kin = p.keep_sizes.back();
  constexpr int64_t kBlock = 512;
  parallel_for(0, p.num_out, grain, [&](int64_t b, int64_t e) {
    M acc[kBlock];
    for (int64_t o = b; o < e;) {
      const int64_t len = std::min({e - o, kin - o % kin, kBlock});
      const T* ob = base + offset_of(o, p.keep_sizes, p.keep_strides);
      for (int64_t j = 0; j < len; ++j) acc[j] = init;
      for (int64_t r = 0; r < outer_red; ++r) {
        const T* rb = ob + offset_of(r, outer_sizes, outer_strides);
        for (int64_t i = 0; i < inner_n; ++i) {
          const T* row = rb + i * inner_st;
          for (int64_t j = 0; j < len; ++j) acc[j] = pick<IsMax>(acc[j], static_cast<M>(row[j]));
        }
      }
      for (int64_t j = 0; j < len; ++j) emit(o + j, acc[j]);
      o += len;
    }
  });
}

template <bool IsMax> Value amax_like(const Args& a, const char* op) {
  const Tensor& in = a.tensor(0);
  ReducePlan p = make_plan(in, &a.int_list(1), a.boolean(2), op);
  check_nonempty(p, in, op);
  Tensor out = empty(p.out_keepdim_shape, in.dtype());
  VBT_DISPATCH_ALL(in.dtype(), op, [&]<typename T>() {
    using M = opmath_t<T>;
    T* o = out.data<T>();
    M init = IsMax ? std::numeric_limits<M>::lowest() : std::numeric_limits<M>::max();
    if constexpr (std::is_floating_point_v<M>) init = IsMax ? -std::numeric_limits<M>::infinity() : std::numeric_limits<M>::infinity();
    run_extreme<IsMax, T, M>(in, p, init, [o](int64_t i, M acc) { o[i] = static_cast<T>(acc); });
  });
  return finish_shape(out, p);
}

// Index of the first max (min); NaN counts as the extreme (first NaN wins), like PyTorch.
template <bool IsMax> std::pair<Tensor, Tensor> arg_extreme(const Tensor& in, const ReducePlan& p, bool want_values) {
  Tensor idx = empty(p.out_keepdim_shape, ScalarType::Int64);
  Tensor vals = want_values ? empty(p.out_keepdim_shape, in.dtype()) : Tensor();
  VBT_DISPATCH_ALL(in.dtype(), "argmax", [&]<typename T>() {
    using M = opmath_t<T>;
    struct St { M v; int64_t k; bool any; };
    int64_t* oi = idx.data<int64_t>();
    T* ov = want_values ? vals.data<T>() : nullptr;
    run_reduce<T, St>(in, p, St{M(0), 0, false}, [](St& s, M x, int64_t k) {
      if (!s.any) { s = {x, k, true}; return; }
      if constexpr (std::is_floating_point_v<M>) {
        if (std::isnan(s.v)) return;
        if (std::isnan(x)) { s.v = x; s.k = k; return; }
      }
      if (IsMax ? x > s.v : x < s.v) { s.v = x; s.k = k; }
    }, [oi, ov](int64_t i, const St& s) { oi[i] = s.k; if (ov) ov[i] = static_cast<T>(s.v); });
  });
  return {vals, idx};
}

template <bool IsMax> Value max_dim_like(const Args& a, const char* op) {
  const Tensor& in = a.tensor(0);
  Shape dims{a.integer(1)};
  ReducePlan p = make_plan(in, &dims, a.boolean(2), op);
  VBT_CHECK_INDEX(p.num_red > 0 || p.num_out == 0, op, "(): Expected reduction dim ", dims[0],
                  " to have non-zero size (input shape ", shape_str(in.sizes()), ")");
  auto [vals, idx] = arg_extreme<IsMax>(in, p, true);
  return TensorList{finish_shape(vals, p), finish_shape(idx, p)};
}

template <bool IsMax> Value argmax_like(const Args& a, const char* op) {
  Tensor in = a.tensor(0);
  bool keepdim = a.boolean(2);
  if (a.is_none(1)) {
    VBT_CHECK(in.numel() > 0, op, "(): Expected reduction dim to be specified for input.numel() == 0.");
    Tensor flat = contiguous_or_self(in);
    flat = make_view(flat, {in.numel()}, {1}, flat.storage_offset());
    ReducePlan p = make_plan(flat, nullptr, false, op);
    Tensor idx = arg_extreme<IsMax>(flat, p, false).second;
    if (keepdim) {
      Shape ones(in.dim(), 1);
      return make_view(idx, ones, contiguous_strides(ones), 0);
    }
    return make_view(idx, {}, {}, 0);  // a 0-dim index, as in PyTorch
  }
  Shape dims{a.integer(1)};
  ReducePlan p = make_plan(in, &dims, keepdim, op);
  VBT_CHECK_INDEX(p.num_red > 0 || p.num_out == 0, op, "(): Expected reduction dim ", dims[0], " to have non-zero size.");
  return finish_shape(arg_extreme<IsMax>(in, p, false).second, p);
}
}  // namespace

// amax/amin(Tensor self, int[] dim=[], bool keepdim=False) -> Tensor   (NaN propagates)
Value k_amax(const Args& a) { return amax_like<true>(a, "amax"); }
Value k_amin(const Args& a) { return amax_like<false>(a, "amin"); }
// max_dim/min_dim(Tensor self, int dim, bool keepdim=False) -> (values, indices)
Value k_max_dim(const Args& a) { return max_dim_like<true>(a, "max"); }
Value k_min_dim(const Args& a) { return max_dim_like<false>(a, "min"); }
// argmax/argmin(Tensor self, int? dim=None, bool keepdim=False) -> Tensor
Value k_argmax(const Args& a) { return argmax_like<true>(a, "argmax"); }
Value k_argmin(const Args& a) { return argmax_like<false>(a, "argmin"); }

namespace {
Value var_like(const Args& a, bool take_sqrt, const char* op) {
  const Tensor& in = a.tensor(0);
  VBT_CHECK(is_floating(in.dtype()), op, "(): input dtype should be floating point, got ", dtype_name(in.dtype()));
  double correction = a.is_none(2) ? 1.0 : a.real(2);
  ReducePlan p = make_plan(in, opt_dims(a, 1), a.boolean(3), op);
  Tensor out = empty(p.out_keepdim_shape, in.dtype());
  struct W { double n, mean, m2; };
  VBT_DISPATCH_FLOATING(in.dtype(), op, [&]<typename T>() {
    T* o = out.data<T>();
    run_reduce<T, W>(in, p, W{0, 0, 0}, [](W& w, auto x, int64_t) {
      double v = static_cast<double>(x);
      w.n += 1;
      double d = v - w.mean;
      w.mean += d / w.n;
      w.m2 += d * (v - w.mean);
    }, [o, correction, take_sqrt](int64_t i, const W& w) {
      double denom = std::max(0.0, w.n - correction);
      double var = w.m2 / denom;
      o[i] = static_cast<T>(static_cast<opmath_t<T>>(take_sqrt ? std::sqrt(var) : var));
    });
  });
  return finish_shape(out, p);
}
}  // namespace

// var/std(Tensor self, int[]? dim=None, *, Scalar? correction=None, bool keepdim=False) -> Tensor
Value k_var(const Args& a) { return var_like(a, false, "var"); }
Value k_std(const Args& a) { return var_like(a, true, "std"); }

// norm(Tensor self, Scalar p=2, int[]? dim=None, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor
Value k_norm(const Args& a) {
  Tensor in = a.tensor(0);
  ScalarType dt = a.dtype_or(4, in.dtype());
  VBT_CHECK(is_floating(dt), "norm(): input dtype should be floating point, but got ", dtype_name(dt));
  in = cast_to(in, dt);
  double pw = a.real(1);
  ReducePlan p = make_plan(in, opt_dims(a, 2), a.boolean(3), "norm");
  Tensor out = empty(p.out_keepdim_shape, dt);
  VBT_DISPATCH_FLOATING(dt, "norm", [&]<typename T>() {
    T* o = out.data<T>();
    auto emit_as = [o](int64_t i, double v) { o[i] = static_cast<T>(static_cast<opmath_t<T>>(v)); };
    if (std::isinf(pw)) {
      bool mx = pw > 0;
      double init = mx ? 0.0 : std::numeric_limits<double>::infinity();
      run_reduce<T, double>(in, p, init, [mx](double& acc, auto x, int64_t) {
        double v = std::abs(static_cast<double>(x));
        if (std::isnan(v) || std::isnan(acc)) { acc = std::nan(""); return; }
        acc = mx ? std::max(acc, v) : std::min(acc, v);
      }, emit_as);
    } else if (pw == 0) {
      run_reduce<T, double>(in, p, 0.0, [](double& acc, auto x, int64_t) { acc += static_cast<double>(x) != 0.0; }, emit_as);
    } else if (pw == 1) {
      run_sum<T, double>(in, p, [](double v) { return std::abs(v); }, emit_as);
    } else if (pw == 2) {
      run_sum<T, double>(in, p, [](double v) { return v * v; }, [&](int64_t i, double acc) { emit_as(i, std::sqrt(acc)); });
    } else {
      run_reduce<T, double>(in, p, 0.0, [pw](double& acc, auto x, int64_t) { acc += std::pow(std::abs(static_cast<double>(x)), pw); },
                            [&](int64_t i, double acc) { emit_as(i, std::pow(acc, 1.0 / pw)); });
    }
  });
  return finish_shape(out, p);
}

// logsumexp(Tensor self, int[] dim, bool keepdim=False) -> Tensor   (integers promote to float)
Value k_logsumexp(const Args& a) {
  Tensor in = a.tensor(0);
  ScalarType dt = is_floating(in.dtype()) ? in.dtype() : default_float_dtype();
  in = cast_to(in, dt);
  ReducePlan p = make_plan(in, &a.int_list(1), a.boolean(2), "logsumexp");
  Tensor out = empty(p.out_keepdim_shape, dt);
  struct L { double m, s; };
  VBT_DISPATCH_FLOATING(dt, "logsumexp", [&]<typename T>() {
    T* o = out.data<T>();
    run_reduce<T, L>(in, p, L{-std::numeric_limits<double>::infinity(), 0.0}, [](L& l, auto x, int64_t) {
      double v = static_cast<double>(x);
      if (std::isnan(v) || std::isnan(l.m)) { l.m = std::nan(""); return; }
      if (v == -std::numeric_limits<double>::infinity()) return;
      if (v > l.m) { l.s = l.s * std::exp(l.m - v) + 1.0; l.m = v; }
      else l.s += std::exp(v - l.m);
    }, [o](int64_t i, const L& l) {
      double r = std::isnan(l.m) ? l.m : (l.s == 0 ? -std::numeric_limits<double>::infinity()
                                                   : (std::isinf(l.m) ? l.m : l.m + std::log(l.s)));
      o[i] = static_cast<T>(static_cast<opmath_t<T>>(r));
    });
  });
  return finish_shape(out, p);
}

namespace {
template <bool IsAll> Value all_like(const Args& a, const char* op) {
  const Tensor& in = a.tensor(0);
  ReducePlan p = make_plan(in, opt_dims(a, 1), a.boolean(2), op);
  Tensor out = empty(p.out_keepdim_shape, ScalarType::Bool);
  VBT_DISPATCH_ALL(in.dtype(), op, [&]<typename T>() {
    using M = opmath_t<T>;
    bool* o = out.data<bool>();
    run_reduce<T, bool>(in, p, IsAll, [](bool& acc, M x, int64_t) {
      if (IsAll) acc = acc && (x != M(0)); else acc = acc || (x != M(0));
    }, [o](int64_t i, bool acc) { o[i] = acc; });
  });
  Tensor r = finish_shape(out, p);
  if (in.dtype() == ScalarType::UInt8) {  // torch: all/any of uint8 give uint8 (0/1); bool for every other dtype
    Tensor u = empty(r.sizes(), ScalarType::UInt8, r.device());
    copy_into(u, r);
    return u;
  }
  return r;
}
}  // namespace

// all/any(Tensor self, int[]? dim=None, bool keepdim=False, *, Tensor? out=None) -> Tensor (bool; uint8 for uint8)
Value k_all(const Args& a) { return all_like<true>(a, "all"); }
Value k_any(const Args& a) { return all_like<false>(a, "any"); }

namespace {
// Calls fn(in_line, in_stride, out_line, out_stride, n) for every line of `in`/`out` along dim.
template <typename TI, typename TO, typename F> void for_each_line(const Tensor& in, const Tensor& out, int64_t dim, F fn) {
  Shape sizes, in_st, out_st;
  for (int64_t d = 0; d < in.dim(); ++d) {
    if (d == dim) continue;
    sizes.push_back(in.sizes()[d]);
    in_st.push_back(in.strides()[d]);
    out_st.push_back(out.strides()[d]);
  }
  int64_t lines = shape_numel(sizes), n = in.dim() ? in.sizes()[dim] : 1;
  int64_t is = in.dim() ? in.strides()[dim] : 1, os = out.dim() ? out.strides()[dim] : 1;
  const TI* ib = in.data<TI>();
  TO* ob = out.data<TO>();
  parallel_for(0, lines, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, n)), [&](int64_t b, int64_t e) {
    for (int64_t l = b; l < e; ++l) fn(ib + offset_of(l, sizes, in_st), is, ob + offset_of(l, sizes, out_st), os, n);
  });
}

template <bool IsProd> Value cum_like(const Args& a, const char* op) {
  Tensor in = a.tensor(0);
  int64_t dim = wrap_dim(a.integer(1), in.dim(), op);
  ScalarType dt = !a.is_none(2) ? a.dtype(2) : is_integral(in.dtype(), true) ? ScalarType::Int64 : in.dtype();
  in = cast_to(in, dt);
  Tensor out = empty(in.sizes(), dt);
  VBT_DISPATCH_NUMERIC(dt, op, [&]<typename T>() {
    using A = acc_t<T>;
    for_each_line<T, T>(in, out, dim, [](const T* x, int64_t xs, T* y, int64_t ys, int64_t n) {
      A acc = IsProd ? A(1) : A(0);
      for (int64_t i = 0; i < n; ++i) {
        A v = static_cast<A>(static_cast<opmath_t<T>>(x[i * xs]));
        acc = IsProd ? acc * v : acc + v;
        y[i * ys] = static_cast<T>(static_cast<opmath_t<T>>(acc));
      }
    });
  });
  return out;
}

// The max of a contiguous float32 row in kLanes vectorisable lanes; NaN is skipped (it reaches the later sum);
// -inf for an empty or all -inf row.
float row_max_f32(const float* x, int64_t n) {
  float ml[kLanes];
  for (int64_t j = 0; j < kLanes; ++j) ml[j] = -std::numeric_limits<float>::infinity();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) ml[j] = vec::select(ml[j] < x[i + j], x[i + j], ml[j]);
  for (; i < n; ++i) ml[0] = vec::select(ml[0] < x[i], x[i], ml[0]);
  float mf = ml[0];
  for (int64_t j = 1; j < kLanes; ++j) mf = ml[j] > mf ? ml[j] : mf;
  return mf;
}

// Fused (log_)softmax of one contiguous float32 row: max (NaN ignored, as in the generic loop), one
// vectorised exp pass that stores exp(x - max) in y, a double sum of y (kLanes accumulators), then a scale
// pass (softmax) or y = (x - max) - log(sum) in double (log_softmax).
template <bool IsLog> void softmax_row_f32(const float* x, float* y, int64_t n) {
  float mf = row_max_f32(x, n);
  if (std::isinf(mf) && mf < 0) mf = 0;
  const float m = mf;
  vec::exp_f32_array(y, x, n, m);
  const double s = sum_contig<float, double>(y, n, Identity{});
  // The last pass stays in float (no conversions): softmax scales by 1/s rounded to float (<= ~1.5 ulp);
  // log_softmax computes (x - m) - log(s): both terms are <= 0 and >= 0, so no cancellation (<= ~1 ulp).
  if constexpr (IsLog) {
    const float ls = static_cast<float>(std::log(s));
    for (int64_t k = 0; k < n; ++k) y[k] = (x[k] - m) - ls;
  } else {
    const float inv = static_cast<float>(1.0 / s);
    for (int64_t k = 0; k < n; ++k) y[k] = y[k] * inv;
  }
}

template <bool IsLog> Value softmax_like(const Args& a, const char* op) {
  Tensor in = a.tensor(0);
  int64_t dim = wrap_dim(a.integer(1), in.dim(), op);
  ScalarType dt = a.dtype_or(2, in.dtype());
  VBT_CHECK(is_floating(dt), op, ": not implemented for '", dtype_name(dt), "' (softmax needs a floating point input)");
  in = cast_to(in, dt);
  Tensor out = empty(in.sizes(), dt);
  VBT_DISPATCH_FLOATING(dt, op, [&]<typename T>() {
    for_each_line<T, T>(in, out, dim, [](const T* x, int64_t xs, T* y, int64_t ys, int64_t n) {
      if constexpr (std::is_same_v<T, float>) {
        if (xs == 1 && ys == 1) return softmax_row_f32<IsLog>(x, y, n);
      }
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(static_cast<opmath_t<T>>(x[i * xs])));
      if (std::isinf(m) && m < 0) m = 0;
      double s = 0;
      for (int64_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(static_cast<opmath_t<T>>(x[i * xs])) - m);
      double ls = std::log(s);
      for (int64_t i = 0; i < n; ++i) {
        double v = static_cast<double>(static_cast<opmath_t<T>>(x[i * xs])) - m;
        y[i * ys] = static_cast<T>(static_cast<opmath_t<T>>(IsLog ? v - ls : std::exp(v) / s));
      }
    });
  });
  return out;
}
}  // namespace

// _fused_layer_norm(Tensor input, int[] normalized_shape, Tensor? weight=None, Tensor? bias=None,
//                   float eps=1e-05) -> Tensor
// Forward-only layer_norm over the trailing dims (no autograd formula: nn.functional.layer_norm calls it only
// when no operand requires grad and otherwise composes mean/sub/mul/rsqrt, which autograd differentiates).
// Per row: mean, then the biased variance of (x - mean) (two passes, no cancellation), rstd = 1/sqrt(var +
// eps) in double, y = (x - mean) * rstd * w + b. float32 rows use float sums over 4096-element blocks
// (vec_math.h), float64 rows double sums.
Value k_fused_layer_norm(const Args& a) {
  const char* op = "_fused_layer_norm";
  Tensor in = a.tensor(0);
  const Shape& ns = a.int_list(1);
  Tensor w = a.opt_tensor(2), b = a.opt_tensor(3);
  const double eps = a.real(4);
  const int64_t n = check_layer_norm_operands(op, in, ns, w, b), rows = n ? in.numel() / n : 0;
  VBT_CHECK(in.dtype() == ScalarType::Float32 || in.dtype() == ScalarType::Float64, op,
            ": expected a float32 or float64 input, got ", dtype_name(in.dtype()));
  in = contiguous_or_self(in);
  if (w.defined()) w = contiguous_or_self(w);
  if (b.defined()) b = contiguous_or_self(b);
  Tensor out = empty(in.sizes(), in.dtype());
  if (rows == 0 || n == 0) return out;
  VBT_DISPATCH_FLOATING(in.dtype(), op, [&]<typename T>() {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      const T* x = in.data<T>();
      T* y = out.data<T>();
      const T* wp = w.defined() ? w.data<T>() : nullptr;
      const T* bp = b.defined() ? b.data<T>() : nullptr;
      parallel_for(0, rows, std::max<int64_t>(1, kParallelGrain / n), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const T* xr = x + r * n;
          T* yr = y + r * n;
          if constexpr (std::is_same_v<T, float>) {
            const double mean = vec::sum_f32_blocked(xr, n, 0.0f, false) / static_cast<double>(n);
            const float mf = static_cast<float>(mean);
            const double var = vec::sum_f32_blocked(xr, n, mf, true) / static_cast<double>(n);
            const float rstd = static_cast<float>(1.0 / std::sqrt(var + eps));
            vec::layer_norm_row_f32(yr, xr, n, mf, rstd, wp, bp);
          } else {
            const double mean = sum_contig<double, double>(xr, n, Identity{}) / static_cast<double>(n);
            double ss = 0;
            for (int64_t i = 0; i < n; ++i) ss += (xr[i] - mean) * (xr[i] - mean);
            const double rstd = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
            for (int64_t i = 0; i < n; ++i) {
              double v = (xr[i] - mean) * rstd;
              if (wp) v *= wp[i];
              if (bp) v += bp[i];
              yr[i] = v;
            }
          }
        }
      });
    }
  });
  return out;
}

// cumsum/cumprod(Tensor self, int dim, *, ScalarType? dtype=None) -> Tensor
Value k_cumsum(const Args& a) { return cum_like<false>(a, "cumsum"); }
Value k_cumprod(const Args& a) { return cum_like<true>(a, "cumprod"); }
// softmax/log_softmax(Tensor self, int dim, ScalarType? dtype=None) -> Tensor
Value k_softmax(const Args& a) { return softmax_like<false>(a, "softmax"); }
Value k_log_softmax(const Args& a) { return softmax_like<true>(a, "log_softmax"); }

// _softmax_backward_data(Tensor grad_output, Tensor output, int dim, ScalarType input_dtype) -> Tensor
// _log_softmax_backward_data(...): softmax's and log_softmax's backward as one op, as torch names them (the
// autograd formulas call them without create_graph). Per line along dim, with the sum in double:
//   softmax:     grad_input = y * (g - sum(g * y))        log_softmax: grad_input = g - exp(y) * sum(g)
// computed in double and rounded once to the output's dtype, then cast to input_dtype (the forward's input
// dtype when softmax was asked for another one). The CUDA kernels (src/vbt/cuda/ops/reduce_gemm.cu,
// SoftmaxNote) compute the same with float sums for float/half/bfloat16.
template <bool IsLog> Value softmax_backward_like(const Args& a, const char* op) {
  Tensor g = a.tensor(0), y = a.tensor(1);
  const int64_t dim = check_softmax_backward_operands(op, g, y, a.integer(2), a.dtype(3));
  g = contiguous_or_self(g);
  y = contiguous_or_self(y);
  Tensor out = empty(y.sizes(), y.dtype());
  VBT_DISPATCH_FLOATING(y.dtype(), op, [&]<typename T>() {
    const T* gb = g.data<T>();
    const T* yb = y.data<T>();
    // g, y and out are contiguous with one shape: a line's offset is the same in all three
    for_each_line<T, T>(y, out, dim, [&](const T* yl, int64_t s, T* ol, int64_t, int64_t n) {
      const T* gl = gb + (yl - yb);
      auto d = [](T v) { return static_cast<double>(static_cast<opmath_t<T>>(v)); };
      double acc = 0;
      for (int64_t i = 0; i < n; ++i) acc += IsLog ? d(gl[i * s]) : d(gl[i * s]) * d(yl[i * s]);
      for (int64_t i = 0; i < n; ++i) {
        const double gv = d(gl[i * s]), yv = d(yl[i * s]);
        ol[i * s] = static_cast<T>(static_cast<opmath_t<T>>(IsLog ? gv - std::exp(yv) * acc : yv * (gv - acc)));
      }
    });
  });
  return cast_to(out, a.dtype(3));
}
Value k_softmax_backward_data(const Args& a) { return softmax_backward_like<false>(a, "_softmax_backward_data"); }
Value k_log_softmax_backward_data(const Args& a) {
  return softmax_backward_like<true>(a, "_log_softmax_backward_data");
}

// ================================================================================================================
// Fused NN ops with a backward (Note [Fused NN ops]): the CPU reference kernels of _fused_cross_entropy(_backward)
// and _fused_layer_norm_fwd / _fused_layer_norm_backward. The CUDA kernels (src/vbt/cuda/ops/reduce_gemm.cu,
// FusedNnNote) compute the same quantities; autograd formulas (src/vbt/autograd/formulas.cpp) connect forward and
// backward; nn.functional.cross_entropy / layer_norm call them (python/vibetensor/torch/nn/functional.py).
//
// Note [Fused NN ops]
//  * _fused_cross_entropy(input [M, C], target [M] int, ignore_index, label_smoothing eps, reduction) ->
//    [loss, stats [M, 2], total []]: per row the max m and ls = log(sum_j exp(x_j - m)) (lse = m + ls); a row
//    whose target is
//    ignore_index contributes 0, else loss_i = lse - (1 - eps) * x_t - eps / C * sum_j x_j (the label-smoothed
//    negative log-likelihood). total: the number of non-ignored rows; mean = sum_i loss_i / total (NaN when every
//    row is ignored, as PyTorch). stats and total are in the accumulate dtype (float64 for float64, else float32);
//    m and ls are kept apart so that the backward's softmax exp(x - m) * exp(-ls) does not lose the digits a
//    rounded lse of a large |x| would.
//    CPU: an out-of-range target raises IndexError; CUDA (no host sync): its row's loss and gradient are NaN.
//  * _fused_cross_entropy_backward(grad, input, target, stats, total, ...) -> dinput: for a non-ignored row
//    s * (softmax(x)_j - eps / C - (1 - eps) [j == t]) with s = grad_i (none), grad (sum), grad / total (mean);
//    ignored rows 0.
//  * _fused_layer_norm_fwd(input, normalized_shape, weight?, bias?, eps) -> [y, mean [R], rstd [R]] (R rows of
//    the trailing normalized dims, mean/rstd in the accumulate dtype) and _fused_layer_norm_backward(grad, input,
//    mean, rstd, weight?, normalized_shape, bool has_bias) -> [dx, dweight (if weight), dbias (if has_bias)]:
//    xhat = (x - mean) * rstd, h = grad * w, dx = rstd * (h - mean_j(h) - xhat * mean_j(h * xhat)),
//    dweight = sum_rows grad * xhat, dbias = sum_rows grad.
namespace {

int ce_reduction(const std::string& r, const char* op) {
  if (r == "none") return 0;
  if (r == "mean") return 1;
  if (r == "sum") return 2;
  VBT_CHECK_VALUE(false, op, ": ", r, " is not a valid value for reduction");
  return 1;
}

// Checks of _fused_cross_entropy's operands (CPU and CUDA kernels share them); returns C.
int64_t ce_check(const char* op, const Tensor& in, const Tensor& tgt) {
  VBT_CHECK(in.dim() == 2, op, ": expected a 2-D input [N, C], got ", shape_str(in.sizes()));
  VBT_CHECK(is_floating(in.dtype()), op, ": expected a floating input, got ", dtype_name(in.dtype()));
  VBT_CHECK(!is_floating(tgt.dtype()) && tgt.dtype() != ScalarType::Bool, op,
            ": expected target of an integer dtype (class indices), got ", dtype_name(tgt.dtype()));
  VBT_CHECK_VALUE(tgt.dim() == 1 && tgt.sizes()[0] == in.sizes()[0], op, ": Expected input batch_size (",
                  in.sizes()[0], ") to match target batch_size (", tgt.numel(), ").");
  return in.sizes()[1];
}

// The row's max m (NaN when any element is NaN; 0 when infinite, so that exp(x - m) stays defined) and
// ls = log(sum_j exp(x_j - m)).
template <typename T> std::pair<double, double> ce_row_stats(const T* x, int64_t n, std::vector<float>& buf) {
  if constexpr (std::is_same_v<T, float>) {  // vectorisable: lane maxima (NaN skipped: it reaches the sum), exp, sum
    float mf = row_max_f32(x, n);
    if (std::isinf(mf)) mf = 0;  // all -inf (or NaN): ls = -inf / NaN; a +inf: ls = +inf
    buf.resize(static_cast<size_t>(n));
    vec::exp_f32_array(buf.data(), x, n, mf);
    return {static_cast<double>(mf), std::log(sum_contig<float, double>(buf.data(), n, Identity{}))};
  }
  double m = -std::numeric_limits<double>::infinity();
  bool nan = false;
  for (int64_t j = 0; j < n; ++j) {
    nan = nan || std::isnan(static_cast<double>(x[j]));
    m = std::max(m, static_cast<double>(x[j]));
  }
  if (nan) return {std::numeric_limits<double>::quiet_NaN(), 0.0};
  if (std::isinf(m)) m = 0;  // all -inf: ls = -inf; a +inf: ls = +inf
  double s = 0;
  if constexpr (std::is_same_v<T, float>) {
    buf.resize(static_cast<size_t>(n));
    vec::exp_f32_array(buf.data(), x, n, static_cast<float>(m));
    for (int64_t j = 0; j < n; ++j) s += buf[j];
  } else {
    for (int64_t j = 0; j < n; ++j) s += std::exp(x[j] - m);
  }
  return {m, std::log(s)};
}
}  // namespace

// _fused_cross_entropy(Tensor input, Tensor target, int ignore_index=-100, float label_smoothing=0.0,
//                      str reduction='mean') -> Tensor[]   (Note [Fused NN ops])
Value k_fused_cross_entropy(const Args& a) {
  const char* op = "_fused_cross_entropy";
  Tensor in = a.tensor(0), tgt = a.tensor(1);
  const int64_t ignore = a.integer(2);
  const double eps = a.real(3);
  const int red = ce_reduction(a.str(4), op);
  const int64_t C = ce_check(op, in, tgt);
  VBT_CHECK(in.dtype() == ScalarType::Float32 || in.dtype() == ScalarType::Float64, op,
            ": expected a float32 or float64 input on the CPU, got ", dtype_name(in.dtype()));
  in = contiguous_or_self(in);
  tgt = cast_to(contiguous_or_self(tgt), ScalarType::Int64);
  const int64_t M = in.sizes()[0];
  const ScalarType acc = in.dtype();
  Tensor lse = empty({M, 2}, acc);
  Tensor rowloss = empty({M}, ScalarType::Float64);
  const int64_t* tp = tgt.data<int64_t>();
  for (int64_t i = 0; i < M; ++i)
    VBT_CHECK_INDEX(tp[i] == ignore || (tp[i] >= 0 && tp[i] < C), op, ": Target ", tp[i],
                    " is out of bounds (number of classes ", C, ")");
  VBT_DISPATCH_FLOATING(in.dtype(), op, [&]<typename T>() {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      const T* x = in.data<T>();
      T* lp = lse.data<T>();
      double* rl = rowloss.data<double>();
      parallel_for(0, M, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(C, 1)), [&](int64_t r0, int64_t r1) {
        std::vector<float> buf;
        for (int64_t i = r0; i < r1; ++i) {
          const T* xr = x + i * C;
          const auto [m, ls] = ce_row_stats(xr, C, buf);
          lp[2 * i] = static_cast<T>(m);
          lp[2 * i + 1] = static_cast<T>(ls);
          if (tp[i] == ignore) { rl[i] = 0; continue; }
          double v = (m - static_cast<double>(xr[tp[i]])) + ls + eps * static_cast<double>(xr[tp[i]]);
          if (eps > 0) {
            double sx = 0;
            for (int64_t j = 0; j < C; ++j) sx += xr[j];
            v -= eps / static_cast<double>(C) * sx;
          }
          rl[i] = v;
        }
      });
    }
  });
  double count = 0, total = 0;
  const double* rl = rowloss.data<double>();
  for (int64_t i = 0; i < M; ++i) {
    if (tp[i] != ignore) count += 1;
    total += rl[i];
  }
  Tensor cnt = empty({}, acc);
  Tensor loss;
  if (red == 0) {
    loss = cast_to(rowloss, in.dtype());
  } else {
    loss = empty({}, in.dtype());
    const double v = red == 2 ? total : total / count;
    if (in.dtype() == ScalarType::Float32) *loss.data<float>() = static_cast<float>(v);
    else *loss.data<double>() = v;
  }
  if (acc == ScalarType::Float32) *cnt.data<float>() = static_cast<float>(count);
  else *cnt.data<double>() = count;
  return TensorList{loss, lse, cnt};
}

// _fused_cross_entropy_backward(Tensor grad, Tensor input, Tensor target, Tensor stats, Tensor total,
//                               int ignore_index=-100, float label_smoothing=0.0, str reduction='mean') -> Tensor
Value k_fused_cross_entropy_backward(const Args& a) {
  const char* op = "_fused_cross_entropy_backward";
  Tensor g = a.tensor(0), in = a.tensor(1), tgt = a.tensor(2), lse = a.tensor(3), cnt = a.tensor(4);
  const int64_t ignore = a.integer(5);
  const double eps = a.real(6);
  const int red = ce_reduction(a.str(7), op);
  const int64_t C = ce_check(op, in, tgt);
  VBT_CHECK(in.dtype() == ScalarType::Float32 || in.dtype() == ScalarType::Float64, op,
            ": expected a float32 or float64 input on the CPU, got ", dtype_name(in.dtype()));
  const int64_t M = in.sizes()[0];
  VBT_CHECK(red == 0 ? g.numel() == M : g.numel() == 1, op, ": grad of shape ", shape_str(g.sizes()),
            " does not match the reduction");
  VBT_CHECK(lse.numel() == 2 * M && cnt.numel() == 1, op, ": stats/total do not match the input");
  in = contiguous_or_self(in);
  tgt = cast_to(contiguous_or_self(tgt), ScalarType::Int64);
  Tensor gd = cast_to(contiguous_or_self(g), ScalarType::Float64);
  Tensor ld = cast_to(contiguous_or_self(lse), ScalarType::Float64);
  const double total = item_of(cnt).to_double();
  Tensor out = empty(in.sizes(), in.dtype());
  const int64_t* tp = tgt.data<int64_t>();
  const double* gp = gd.data<double>();
  const double* lp = ld.data<double>();
  VBT_DISPATCH_FLOATING(in.dtype(), op, [&]<typename T>() {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      const T* x = in.data<T>();
      T* y = out.data<T>();
      parallel_for(0, M, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(C, 1)), [&](int64_t r0, int64_t r1) {
        for (int64_t i = r0; i < r1; ++i) {
          const T* xr = x + i * C;
          T* yr = y + i * C;
          if (tp[i] == ignore) {
            std::fill(yr, yr + C, T(0));
            continue;
          }
          const double s = red == 0 ? gp[i] : red == 2 ? gp[0] : gp[0] / total;
          const T sm = static_cast<T>(eps / static_cast<double>(C) * s);
          // softmax = exp(x - m) * exp(-ls), scaled by s in one factor
          const T f = static_cast<T>(std::exp(-lp[2 * i + 1]) * s);
          if constexpr (std::is_same_v<T, float>) {
            vec::exp_f32_array(yr, xr, C, static_cast<float>(lp[2 * i]));
          } else {
            for (int64_t j = 0; j < C; ++j) yr[j] = std::exp(xr[j] - lp[2 * i]);
          }
          for (int64_t j = 0; j < C; ++j) yr[j] = yr[j] * f - sm;
          if (tp[i] >= 0 && tp[i] < C) yr[tp[i]] -= static_cast<T>((1.0 - eps) * s);
        }
      });
    }
  });
  return out;
}

// cpu_kernels.h
int64_t check_softmax_backward_operands(const char* op, const Tensor& g, const Tensor& y, int64_t dim,
                                        ScalarType input_dtype) {
  VBT_CHECK(g.sizes() == y.sizes(), op, ": grad_output of shape ", shape_str(g.sizes()), " and output of shape ",
            shape_str(y.sizes()), " differ");
  VBT_CHECK(g.dtype() == y.dtype() && is_floating(y.dtype()), op, ": expected grad_output and output of one "
            "floating dtype, got ", dtype_name(g.dtype()), " and ", dtype_name(y.dtype()));
  VBT_CHECK(is_floating(input_dtype), op, ": input_dtype must be a floating dtype, got ", dtype_name(input_dtype));
  return wrap_dim(dim, y.dim(), op);
}
// cpu_kernels.h
int64_t check_layer_norm_operands(const char* op, const Tensor& in, const Shape& ns, const Tensor& w, const Tensor& b) {
  const int64_t nd = static_cast<int64_t>(ns.size());
  VBT_CHECK(nd >= 1 && nd <= in.dim(), op, ": normalized_shape ", shape_str(ns), " does not fit input shape ",
            shape_str(in.sizes()));
  for (int64_t d = 0; d < nd; ++d)
    VBT_CHECK(in.sizes()[in.dim() - nd + d] == ns[d], op, ": input shape ", shape_str(in.sizes()),
              " does not end with normalized_shape ", shape_str(ns));
  VBT_CHECK(is_floating(in.dtype()), op, ": expected a floating input, got ", dtype_name(in.dtype()));
  for (const Tensor* t : {&w, &b})
    if (t->defined())
      VBT_CHECK(t->dtype() == in.dtype() && t->sizes() == ns && t->device() == in.device(), op,
                ": weight/bias must have shape ", shape_str(ns), " and dtype ", dtype_name(in.dtype()), " on ",
                in.device().str(), ", got ", shape_str(t->sizes()), " ", dtype_name(t->dtype()), " on ",
                t->device().str());
  return shape_numel(ns);
}

// _fused_layer_norm_fwd(Tensor input, int[] normalized_shape, Tensor? weight=None, Tensor? bias=None,
//                       float eps=1e-05) -> Tensor[]   (Note [Fused NN ops])
Value k_fused_layer_norm_fwd(const Args& a) {
  const char* op = "_fused_layer_norm_fwd";
  Tensor in = a.tensor(0);
  const Shape& ns = a.int_list(1);
  Tensor w = a.opt_tensor(2), b = a.opt_tensor(3);
  const double eps = a.real(4);
  const int64_t n = check_layer_norm_operands(op, in, ns, w, b);
  VBT_CHECK(in.dtype() == ScalarType::Float32 || in.dtype() == ScalarType::Float64, op,
            ": expected a float32 or float64 input on the CPU, got ", dtype_name(in.dtype()));
  in = contiguous_or_self(in);
  if (w.defined()) w = contiguous_or_self(w);
  if (b.defined()) b = contiguous_or_self(b);
  const int64_t rows = n ? in.numel() / n : 0;
  Tensor out = empty(in.sizes(), in.dtype());
  Tensor mean_t = empty({rows}, in.dtype()), rstd_t = empty({rows}, in.dtype());
  if (rows == 0) return TensorList{out, mean_t, rstd_t};
  VBT_DISPATCH_FLOATING(in.dtype(), op, [&]<typename T>() {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      const T* x = in.data<T>();
      T* y = out.data<T>();
      T* mp = mean_t.data<T>();
      T* rp = rstd_t.data<T>();
      const T* wp = w.defined() ? w.data<T>() : nullptr;
      const T* bp = b.defined() ? b.data<T>() : nullptr;
      parallel_for(0, rows, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(n, 1)), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const T* xr = x + r * n;
          T* yr = y + r * n;
          if constexpr (std::is_same_v<T, float>) {  // as _fused_layer_norm's float32 rows (vec_math.h)
            const float mf = static_cast<float>(vec::sum_f32_blocked(xr, n, 0.0f, false) / static_cast<double>(n));
            const double var = vec::sum_f32_blocked(xr, n, mf, true) / static_cast<double>(n);
            const float rf = static_cast<float>(1.0 / std::sqrt(var + eps));
            mp[r] = mf;
            rp[r] = rf;
            vec::layer_norm_row_f32(yr, xr, n, mf, rf, wp, bp);
            continue;
          }
          double mean = 0;
          for (int64_t i = 0; i < n; ++i) mean += xr[i];
          mean /= static_cast<double>(n);
          double ss = 0;
          for (int64_t i = 0; i < n; ++i) ss += (xr[i] - mean) * (xr[i] - mean);
          const double rstd = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
          mp[r] = static_cast<T>(mean);
          rp[r] = static_cast<T>(rstd);
          const T mf = static_cast<T>(mean), rf = static_cast<T>(rstd);
          for (int64_t i = 0; i < n; ++i) {
            T v = (xr[i] - mf) * rf;
            if (wp) v *= wp[i];
            if (bp) v += bp[i];
            yr[i] = v;
          }
        }
      });
    }
  });
  return TensorList{out, mean_t, rstd_t};
}

// _fused_layer_norm_backward(Tensor grad, Tensor input, Tensor mean, Tensor rstd, Tensor? weight,
//                            int[] normalized_shape, bool has_bias=False) -> Tensor[]
//   -> [dinput, dweight (when weight is given), dbias (when has_bias)]   (Note [Fused NN ops])
Value k_fused_layer_norm_backward(const Args& a) {
  const char* op = "_fused_layer_norm_backward";
  Tensor g = a.tensor(0), in = a.tensor(1), mean_t = a.tensor(2), rstd_t = a.tensor(3), w = a.opt_tensor(4);
  const Shape& ns = a.int_list(5);
  const bool has_bias = a.boolean(6);
  const int64_t n = check_layer_norm_operands(op, in, ns, w, Tensor());
  VBT_CHECK(in.dtype() == ScalarType::Float32 || in.dtype() == ScalarType::Float64, op,
            ": expected a float32 or float64 input on the CPU, got ", dtype_name(in.dtype()));
  VBT_CHECK(g.sizes() == in.sizes(), op, ": grad of shape ", shape_str(g.sizes()), " for input of shape ",
            shape_str(in.sizes()));
  in = contiguous_or_self(in);
  g = cast_to(contiguous_or_self(g), in.dtype());
  if (w.defined()) w = contiguous_or_self(w);
  Tensor md = cast_to(contiguous_or_self(mean_t), ScalarType::Float64);
  Tensor rd = cast_to(contiguous_or_self(rstd_t), ScalarType::Float64);
  const int64_t rows = n ? in.numel() / n : 0;
  VBT_CHECK(md.numel() == rows && rd.numel() == rows, op, ": mean/rstd must have ", rows, " elements");
  Tensor dx = empty(in.sizes(), in.dtype());
  // dweight/dbias: per-row-chunk partial sums in double, combined in chunk order (deterministic)
  const int64_t nchunks = rows ? std::min<int64_t>(rows, 64) : 0;
  std::vector<double> pw(w.defined() ? static_cast<size_t>(nchunks * n) : 0, 0.0);
  std::vector<double> pb(has_bias ? static_cast<size_t>(nchunks * n) : 0, 0.0);
  VBT_DISPATCH_FLOATING(in.dtype(), op, [&]<typename T>() {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      const T* x = in.data<T>();
      const T* gp = g.data<T>();
      T* y = dx.data<T>();
      const T* wp = w.defined() ? w.data<T>() : nullptr;
      const double* mp = md.data<double>();
      const double* rp = rd.data<double>();
      // at least kParallelGrain elements per thread, as every parallel loop (a small layer_norm stays serial)
      const int64_t chunk_elems = std::max<int64_t>(1, rows / std::max<int64_t>(nchunks, 1) * n);
      parallel_for(0, nchunks, std::max<int64_t>(1, kParallelGrain / chunk_elems), [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
          const int64_t rb = rows * c / nchunks, re = rows * (c + 1) / nchunks;
          double* pwc = wp ? pw.data() + c * n : nullptr;
          double* pbc = has_bias ? pb.data() + c * n : nullptr;
          for (int64_t r = rb; r < re; ++r) {
            const T* xr = x + r * n;
            const T* gr = gp + r * n;
            T* yr = y + r * n;
            const double mu = mp[r], rs = rp[r];
            double s1 = 0, s2 = 0;
            for (int64_t i = 0; i < n; ++i) {
              const double xh = (xr[i] - mu) * rs;
              const double h = wp ? static_cast<double>(gr[i]) * wp[i] : static_cast<double>(gr[i]);
              s1 += h;
              s2 += h * xh;
              if (pwc) pwc[i] += static_cast<double>(gr[i]) * xh;
              if (pbc) pbc[i] += gr[i];
            }
            s1 /= static_cast<double>(n);
            s2 /= static_cast<double>(n);
            for (int64_t i = 0; i < n; ++i) {
              const double xh = (xr[i] - mu) * rs;
              const double h = wp ? static_cast<double>(gr[i]) * wp[i] : static_cast<double>(gr[i]);
              yr[i] = static_cast<T>(rs * (h - s1 - xh * s2));
            }
          }
        }
      });
    }
  });
  TensorList outs{dx};
  auto combine = [&](const std::vector<double>& p) {
    Tensor t = empty(ns, ScalarType::Float64);
    double* tp = t.data<double>();
    for (int64_t i = 0; i < n; ++i) {
      double s = 0;
      for (int64_t c = 0; c < nchunks; ++c) s += p[c * n + i];
      tp[i] = s;
    }
    return cast_to(t, in.dtype());
  };
  if (w.defined()) outs.push_back(combine(pw));
  if (has_bias) outs.push_back(combine(pb));
  return outs;
}

}  // namespace vbt
