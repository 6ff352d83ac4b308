// Copy family: copy_ (broadcast + cast into an existing tensor), dtype conversion, contiguous,
// clone, item. The cast loop is the one place instantiated per (src, dst) dtype pair.
#include <cstring>

#include "cpu_kernels.h"

namespace vbt {

namespace {
template <typename To, typename From> inline To cast_value(From v) {
  if constexpr (std::is_same_v<To, bool>) {
    if constexpr (std::is_same_v<From, Half> || std::is_same_v<From, BFloat16>) return static_cast<float>(v) != 0.0f;
    else return v != From(0);
  } else if constexpr (std::is_same_v<From, Half> || std::is_same_v<From, BFloat16>) return static_cast<To>(static_cast<float>(v));
  else if constexpr (std::is_same_v<To, Half> || std::is_same_v<To, BFloat16>) return To(static_cast<float>(v));
  else return static_cast<To>(v);
}
}  // namespace

void copy_into(const Tensor& dst, const Tensor& src) {
  TensorIterator it = TensorIteratorConfig("copy_")
                          .add_output(dst)
                          .add_input(src)
                          .set_shape(dst.sizes())  // src broadcasts to dst's shape
                          .promote_inputs_to_common_dtype(false)
                          .set_common_dtype(dst.dtype())
                          .is_inplace(true)
                          .build();
  VBT_DISPATCH_ALL(dst.dtype(), "copy_", [&]<typename D>() {
    VBT_DISPATCH_ALL(src.dtype(), "copy_", [&]<typename S>() {
      it.for_each([](char** data, const int64_t* st, int64_t n) {
        char* out = data[0];
        const char* in = data[1];
        if (st[0] == sizeof(D) && st[1] == sizeof(S)) {  // contiguous runs: memcpy, or a loop that vectorises
          if constexpr (std::is_same_v<D, S>) {
            std::memmove(out, in, static_cast<size_t>(n) * sizeof(D));
          } else {
            D* o = reinterpret_cast<D*>(out);
            const S* x = reinterpret_cast<const S*>(in);
            for (int64_t i = 0; i < n; ++i) o[i] = cast_value<D>(x[i]);
          }
          return;
        }
        if (st[0] == sizeof(D) && st[1] == 0) {  // broadcast of one value
          D* o = reinterpret_cast<D*>(out);
          const D v = cast_value<D>(*reinterpret_cast<const S*>(in));
          for (int64_t i = 0; i < n; ++i) o[i] = v;
          return;
        }
        for (int64_t i = 0; i < n; ++i)
          *reinterpret_cast<D*>(out + i * st[0]) = cast_value<D>(*reinterpret_cast<const S*>(in + i * st[1]));
      });
    });
  });
}

Tensor contiguous_or_self(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor out = empty(t.sizes(), t.dtype(), t.device());
  copy_into(out, t);
  return out;
}

Tensor cast_to(const Tensor& t, ScalarType dtype) {
  if (t.dtype() == dtype) return t;
  Tensor out = empty(t.sizes(), dtype, t.device());
  copy_into(out, t);
  return out;
}

Scalar item_of(const Tensor& t) {
  VBT_CHECK(t.numel() == 1, "item: a Tensor with ", t.numel(), " elements cannot be converted to Scalar");
  return VBT_DISPATCH_ALL(t.dtype(), "item", [&]<typename T>() -> Scalar {
    T v = *t.data<T>();
    if constexpr (std::is_same_v<T, bool>) return Scalar(v);
    else if constexpr (std::is_integral_v<T>) return Scalar(static_cast<int64_t>(v));
    else return Scalar(static_cast<double>(static_cast<opmath_t<T>>(v)));
  });
}

// copy_(Tensor self, Tensor src) -> Tensor
Value k_copy_(const Args& a) {
  const Tensor& self = a.tensor(0);
  copy_into(self, a.tensor(1));
  self.impl()->bump_version();
  return self;
}

// to_dtype(Tensor self, ScalarType dtype, bool copy=False) -> Tensor
Value k_to_dtype(const Args& a) {
  const Tensor& self = a.tensor(0);
  ScalarType dt = a.dtype(1);
  if (dt == self.dtype() && !a.boolean(2)) return self;
  Tensor out = empty(self.sizes(), dt, self.device());
  copy_into(out, self);
  return out;
}

// contiguous(Tensor self) -> Tensor
Value k_contiguous(const Args& a) { return contiguous_or_self(a.tensor(0)); }

// clone(Tensor self) -> Tensor
Value k_clone(const Args& a) {
  const Tensor& self = a.tensor(0);
  Tensor out = empty(self.sizes(), self.dtype(), self.device());
  copy_into(out, self);
  return out;
}

// item(Tensor self) -> Scalar
Value k_item(const Args& a) { return item_of(a.tensor(0)); }

}  // namespace vbt
