// Private header: the 1-d inner loops shared by the elementwise kernel files. A loop reads
// operands of type In and writes Out; `f` works on opmath values (float for 16-bit floats).
// Contiguous and scalar-broadcast strides get their own plain loops so the compiler can
// vectorise them.
#pragma once
#include "cpu_kernels.h"
#include "vec_math.h"

namespace vbt {

template <typename Out, typename In, typename F>
void unary_loop(TensorIterator& it, F f) {
  it.for_each([f](char** data, const int64_t* st, int64_t n) {
    if (st[0] == sizeof(Out) && st[1] == sizeof(In)) {
      Out* o = reinterpret_cast<Out*>(data[0]);
      const In* x = reinterpret_cast<const In*>(data[1]);
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<Out>(f(static_cast<opmath_t<In>>(x[i])));
    } else {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<Out*>(data[0] + i * st[0]) =
            static_cast<Out>(f(static_cast<opmath_t<In>>(*reinterpret_cast<const In*>(data[1] + i * st[1]))));
    }
  });
}

template <typename Out, typename In, typename F>
void binary_loop(TensorIterator& it, F f) {
  it.for_each([f](char** data, const int64_t* st, int64_t n) {
    using M = opmath_t<In>;
    if (st[0] == sizeof(Out) && st[1] == sizeof(In) && st[2] == sizeof(In)) {
      Out* o = reinterpret_cast<Out*>(data[0]);
      const In* x = reinterpret_cast<const In*>(data[1]);
      const In* y = reinterpret_cast<const In*>(data[2]);
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<Out>(f(static_cast<M>(x[i]), static_cast<M>(y[i])));
    } else if (st[0] == sizeof(Out) && st[1] == sizeof(In) && st[2] == 0) {
      Out* o = reinterpret_cast<Out*>(data[0]);
      const In* x = reinterpret_cast<const In*>(data[1]);
      const M y = static_cast<M>(*reinterpret_cast<const In*>(data[2]));
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<Out>(f(static_cast<M>(x[i]), y));
    } else {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<Out*>(data[0] + i * st[0]) =
            static_cast<Out>(f(static_cast<M>(*reinterpret_cast<const In*>(data[1] + i * st[1])),
                               static_cast<M>(*reinterpret_cast<const In*>(data[2] + i * st[2]))));
    }
  });
}

// A contiguous run of a ternary op: o[i] = f(a[i], b[i], c[i]) on opmath values; c_bcast: c[0] for every i (a
// scalar weight or value). Always inlined, so that ternary_contig_fma compiles this same loop for AVX2+FMA.
template <typename Out, typename In, typename F>
__attribute__((always_inline)) inline void ternary_contig(Out* o, const In* a, const In* b, const In* c, bool c_bcast,
                                                          int64_t n, F f) {
  using M = opmath_t<In>;
  if (c_bcast) {
    const M cv = static_cast<M>(c[0]);
    for (int64_t i = 0; i < n; ++i) o[i] = static_cast<Out>(f(static_cast<M>(a[i]), static_cast<M>(b[i]), cv));
  } else {
    for (int64_t i = 0; i < n; ++i)
      o[i] = static_cast<Out>(f(static_cast<M>(a[i]), static_cast<M>(b[i]), static_cast<M>(c[i])));
  }
}
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
// The same loop built for AVX2+FMA, where std::fma in f is one instruction (the baseline build calls libm's fma,
// which gives the same bits): picked at run time by ternary_loop<..., /*Fma=*/true>.
template <typename Out, typename In, typename F>
__attribute__((target("avx2,fma"))) void ternary_contig_fma(Out* o, const In* a, const In* b, const In* c,
                                                            bool c_bcast, int64_t n, F f) {
  ternary_contig<Out, In>(o, a, b, c, c_bcast, n, f);
}
#endif

// Fma: f uses std::fma, so contiguous runs take the AVX2+FMA build of the loop where the CPU has it.
template <typename Out, typename In, bool Fma = false, typename F>
void ternary_loop(TensorIterator& it, F f) {
  it.for_each([f](char** data, const int64_t* st, int64_t n) {
    using M = opmath_t<In>;
    if (st[0] == sizeof(Out) && st[1] == sizeof(In) && st[2] == sizeof(In) && (st[3] == sizeof(In) || st[3] == 0)) {
      Out* o = reinterpret_cast<Out*>(data[0]);
      const In *a = reinterpret_cast<const In*>(data[1]), *b = reinterpret_cast<const In*>(data[2]),
               *c = reinterpret_cast<const In*>(data[3]);
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
      if (Fma && vec::cpu_has_avx2_fma()) return ternary_contig_fma<Out, In>(o, a, b, c, st[3] == 0, n, f);
#endif
      return ternary_contig<Out, In>(o, a, b, c, st[3] == 0, n, f);
    }
    for (int64_t i = 0; i < n; ++i)
      *reinterpret_cast<Out*>(data[0] + i * st[0]) =
          static_cast<Out>(f(static_cast<M>(*reinterpret_cast<const In*>(data[1] + i * st[1])),
                             static_cast<M>(*reinterpret_cast<const In*>(data[2] + i * st[2])),
                             static_cast<M>(*reinterpret_cast<const In*>(data[3] + i * st[3]))));
  });
}

// After writing into a user-provided out= tensor (or in place), bump its version.
inline Tensor finish_out(const TensorIterator& it, const Tensor& out) {
  if (out.defined()) out.impl()->bump_version();
  return it.output(0);
}

}  // namespace vbt
