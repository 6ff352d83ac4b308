// Private header: the 1-d inner loops shared by the elementwise kernel files. A loop reads
// operands of type In and writes Out; `f` works on opmath values (float for 16-bit floats).
// Contiguous and scalar-broadcast strides get their own plain loops so the compiler can
// vectorise them.
#pragma once
#include "cpu_kernels.h"

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

template <typename Out, typename In, typename F>
void ternary_loop(TensorIterator& it, F f) {
  it.for_each([f](char** data, const int64_t* st, int64_t n) {
    using M = opmath_t<In>;
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
