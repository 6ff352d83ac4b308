// Matrix products. mm/bmm are the primitives: float32/float64 go to OpenBLAS cblas_?gemm (single-threaded: large
// products are split by batch entries or rows over the runtime's thread pool, Note [One thread pool] in
// parallel.cpp; any matrix with a unit stride in one dim is passed without copying);
// other dtypes use a plain loop accumulating in double/int64. matmul, addmm, linear, outer,
// dot and baddbmm are composites written with those and elementwise ops, following PyTorch's
// batching/broadcast rules for matmul.
#include <cblas.h>

#include <algorithm>
#include <cstring>

#include "cpu_kernels.h"
#include "vbt/cpu/parallel.h"

namespace vbt {

namespace {

Tensor op(const char* name, Args args) { return call_tensor_op(name, std::move(args)); }

// A matrix operand for BLAS: data pointer, transpose flag and leading dim, or nullopt when
// its strides need a copy.
struct BlasMat { bool trans; int64_t ld; };

bool blas_view(int64_t rows, int64_t cols, int64_t rs, int64_t cs, BlasMat& out) {
  // row-major, not transposed: unit column stride, row stride >= cols (size-1 dims are free)
  int64_t c1 = cols == 1 ? 1 : cs, r1 = rows == 1 ? std::max<int64_t>(cols, 1) : rs;
  if (c1 == 1 && r1 >= std::max<int64_t>(cols, 1)) { out.trans = false; out.ld = r1; return true; }
  // stored column-major: pass as the transpose of a row-major (cols x rows) matrix
  int64_t r2 = rows == 1 ? 1 : rs, c2 = cols == 1 ? std::max<int64_t>(rows, 1) : cs;
  if (r2 == 1 && c2 >= std::max<int64_t>(rows, 1)) { out.trans = true; out.ld = c2; return true; }
  return false;
}

// out[b] = a[b] @ c[b] for 3-d a (B,n,k), c (B,k,m) -> out contiguous (B,n,m).
void batched_gemm(const Tensor& a0, const Tensor& c0, const Tensor& out) {
  int64_t B = a0.sizes()[0], n = a0.sizes()[1], k = a0.sizes()[2], m = c0.sizes()[2];
  ScalarType dt = out.dtype();
  if (n == 0 || m == 0 || B == 0) return;
  if (k == 0) {
    std::memset(out.data_ptr(), 0, static_cast<size_t>(out.numel() * itemsize(dt)));
    return;
  }
  if (dt == ScalarType::Float32 || dt == ScalarType::Float64) {
    Tensor a = a0, c = c0;
    BlasMat am{}, cm{};
    int64_t isz = itemsize(dt);
    auto fits = [&](const Tensor& t, int64_t r, int64_t cc, BlasMat& bm) {
      return blas_view(r, cc, t.strides()[1], t.strides()[2], bm);
    };
    if (!fits(a, n, k, am)) { a = op("clone", {a}); VBT_INTERNAL_ASSERT(fits(a, n, k, am)); }
    if (!fits(c, k, m, cm)) { c = op("clone", {c}); VBT_INTERNAL_ASSERT(fits(c, k, m, cm)); }
    // rows [r0, r1) of out[b] = a[b] @ c[b]: one BLAS call (a's rows start r0 rows, or r0 columns if stored
    // transposed, into the matrix)
    auto gemm_rows = [&](int64_t b, int64_t r0, int64_t r1) {
      const char* ap = static_cast<const char*>(a.data_ptr()) + (b * a.strides()[0] + r0 * (am.trans ? 1 : am.ld)) * isz;
      const char* cp = static_cast<const char*>(c.data_ptr()) + b * c.strides()[0] * isz;
      char* op_ = static_cast<char*>(out.data_ptr()) + (b * n + r0) * m * isz;
      auto ta = am.trans ? CblasTrans : CblasNoTrans, tc = cm.trans ? CblasTrans : CblasNoTrans;
      const int64_t rows = r1 - r0;
      if (dt == ScalarType::Float32)
        cblas_sgemm(CblasRowMajor, ta, tc, rows, m, k, 1.0f, reinterpret_cast<const float*>(ap), am.ld,
                    reinterpret_cast<const float*>(cp), cm.ld, 0.0f, reinterpret_cast<float*>(op_), m);
      else
        cblas_dgemm(CblasRowMajor, ta, tc, rows, m, k, 1.0, reinterpret_cast<const double*>(ap), am.ld,
                    reinterpret_cast<const double*>(cp), cm.ld, 0.0, reinterpret_cast<double*>(op_), m);
    };
    // Note [One thread pool] (parallel.cpp): OpenBLAS runs single-threaded; the runtime's pool splits a product
    // of at least kGemmGrain multiply-adds by batch entries when there are enough of them, else by rows.
    constexpr int64_t kGemmGrain = int64_t(1) << 21;
    const int64_t per_row = std::max<int64_t>(m * k, 1);
    if (B >= get_num_threads() && B > 1) {
      parallel_for(0, B, std::max<int64_t>(1, kGemmGrain / std::max<int64_t>(per_row * n, 1)),
                   [&](int64_t b0, int64_t b1) {
                     for (int64_t b = b0; b < b1; ++b) gemm_rows(b, 0, n);
                   });
    } else {
      for (int64_t b = 0; b < B; ++b)
        parallel_for(0, n, std::max<int64_t>(1, kGemmGrain / per_row), [&](int64_t r0, int64_t r1) { gemm_rows(b, r0, r1); });
    }
    return;
  }
  VBT_DISPATCH_NUMERIC(dt, "matmul", [&]<typename T>() {
    using M = opmath_t<T>;
    using A = std::conditional_t<std::is_floating_point_v<M>, double, int64_t>;
    const T* ap = a0.data<T>();
    const T* cp = c0.data<T>();
    T* o = out.data<T>();
    const Shape &as = a0.strides(), &cs = c0.strides();
    parallel_for(0, B * n, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, k * m)), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        int64_t b = r / n, i = r % n;
        for (int64_t j = 0; j < m; ++j) {
          A acc = 0;
          for (int64_t q = 0; q < k; ++q)
            acc += static_cast<A>(static_cast<M>(ap[b * as[0] + i * as[1] + q * as[2]])) *
                   static_cast<A>(static_cast<M>(cp[b * cs[0] + q * cs[1] + j * cs[2]]));
          o[(b * n + i) * m + j] = static_cast<T>(static_cast<M>(acc));
        }
      }
    });
  });
}

void check_same_dtype(const Tensor& a, const Tensor& b, const char* name) {
  VBT_CHECK(a.dtype() == b.dtype(), name, ": expected m1 and m2 to have the same dtype, but got: ", dtype_name(a.dtype()),
            " != ", dtype_name(b.dtype()));
  VBT_CHECK(a.dtype() != ScalarType::Bool, name, ": not implemented for 'bool'");
}

Tensor mm_impl(const Tensor& a, const Tensor& b) {
  VBT_CHECK(a.dim() == 2, "mm: self must be a matrix, got a ", a.dim(), "-D tensor of shape ", shape_str(a.sizes()));
  VBT_CHECK(b.dim() == 2, "mm: mat2 must be a matrix, got a ", b.dim(), "-D tensor of shape ", shape_str(b.sizes()));
  VBT_CHECK(a.sizes()[1] == b.sizes()[0], "mm: mat1 and mat2 shapes cannot be multiplied (", a.sizes()[0], "x",
            a.sizes()[1], " and ", b.sizes()[0], "x", b.sizes()[1], ")");
  check_same_dtype(a, b, "mm");
  Tensor out = empty({1, a.sizes()[0], b.sizes()[1]}, a.dtype());
  batched_gemm(make_view(a, {1, a.sizes()[0], a.sizes()[1]}, {0, a.strides()[0], a.strides()[1]}, a.storage_offset()),
               make_view(b, {1, b.sizes()[0], b.sizes()[1]}, {0, b.strides()[0], b.strides()[1]}, b.storage_offset()), out);
  return make_view(out, {a.sizes()[0], b.sizes()[1]}, {b.sizes()[1], 1}, 0);
}

Tensor bmm_impl(const Tensor& a, const Tensor& b) {
  VBT_CHECK(a.dim() == 3, "bmm: batch1 must be a 3D tensor, got shape ", shape_str(a.sizes()));
  VBT_CHECK(b.dim() == 3, "bmm: batch2 must be a 3D tensor, got shape ", shape_str(b.sizes()));
  VBT_CHECK(a.sizes()[0] == b.sizes()[0], "bmm: batch1 and batch2 must have same number of batches, got ",
            shape_str(a.sizes()), " and ", shape_str(b.sizes()));
  VBT_CHECK(a.sizes()[2] == b.sizes()[1], "bmm: Expected size for first two dimensions of batch2 tensor to be: [",
            a.sizes()[0], ", ", a.sizes()[2], "] but got: [", b.sizes()[0], ", ", b.sizes()[1], "] (shapes ",
            shape_str(a.sizes()), " and ", shape_str(b.sizes()), ")");
  check_same_dtype(a, b, "bmm");
  Tensor out = empty({a.sizes()[0], a.sizes()[1], b.sizes()[2]}, a.dtype());
  batched_gemm(a, b, out);
  return out;
}

Tensor combine_beta_alpha(const Tensor& self, const Tensor& prod, const Scalar& beta, const Scalar& alpha) {
  Tensor scaled = alpha.to_double() == 1.0 ? prod : op("mul", {prod, scalar_to_tensor(alpha, alpha.natural_dtype())});
  if (beta.to_double() == 0.0) {
    // PyTorch ignores self when beta == 0 (NaNs in self do not propagate) but still broadcasts it
    return op("add", {op("mul", {op("expand", {op("zeros", {Shape{}, prod.dtype()}), self.sizes()}), Scalar(int64_t(0))}), scaled});
  }
  Tensor s = beta.to_double() == 1.0 ? self : op("mul", {self, scalar_to_tensor(beta, beta.natural_dtype())});
  return op("add", {s, scaled});
}

}  // namespace

// mm(Tensor self, Tensor mat2) -> Tensor
Value k_mm(const Args& a) { return mm_impl(a.tensor(0), a.tensor(1)); }
// bmm(Tensor self, Tensor mat2) -> Tensor
Value k_bmm(const Args& a) { return bmm_impl(a.tensor(0), a.tensor(1)); }

// matmul(Tensor self, Tensor other) -> Tensor
Value k_matmul(const Args& a) {
  const Tensor &x = a.tensor(0), &y = a.tensor(1);
  VBT_CHECK(x.dim() > 0 && y.dim() > 0, "matmul: both arguments to matmul need to be at least 1D, but they are ",
            x.dim(), "D and ", y.dim(), "D");
  if (x.dim() == 1 && y.dim() == 1) return k_dot(Args{x, y});
  if (x.dim() == 2 && y.dim() == 1) {
    VBT_CHECK(x.sizes()[1] == y.sizes()[0], "matmul: size mismatch, got input (", x.sizes()[0], "x", x.sizes()[1],
              "), vec (", y.sizes()[0], ")");
    return op("squeeze", {mm_impl(x, op("unsqueeze", {y, int64_t(1)})), Shape{1}});
  }
  if (x.dim() == 1 && y.dim() == 2) {
    VBT_CHECK(x.sizes()[0] == y.sizes()[0], "matmul: mat1 and mat2 shapes cannot be multiplied (1x", x.sizes()[0],
              " and ", y.sizes()[0], "x", y.sizes()[1], ")");
    return op("squeeze", {mm_impl(op("unsqueeze", {x, int64_t(0)}), y), Shape{0}});
  }
  if (x.dim() == 2 && y.dim() == 2) return mm_impl(x, y);
  // batched: promote vectors to matrices, broadcast the batch dims, run bmm, drop added dims
  Tensor xa = x.dim() == 1 ? op("unsqueeze", {x, int64_t(0)}) : x;
  Tensor ya = y.dim() == 1 ? op("unsqueeze", {y, int64_t(1)}) : y;
  int64_t n = xa.sizes()[xa.dim() - 2], k = xa.sizes()[xa.dim() - 1];
  int64_t k2 = ya.sizes()[ya.dim() - 2], m = ya.sizes()[ya.dim() - 1];
  VBT_CHECK(k == k2, "matmul: Expected size for first two dimensions of batch2 tensor to be: [*, ", k, "] but got: [*, ",
            k2, "] (shapes ", shape_str(x.sizes()), " and ", shape_str(y.sizes()), ")");
  Shape xb(xa.sizes().begin(), xa.sizes().end() - 2), yb(ya.sizes().begin(), ya.sizes().end() - 2);
  Shape batch = broadcast_shapes(xb, yb, "matmul");
  int64_t B = shape_numel(batch);
  Shape xe = batch, ye = batch;
  xe.push_back(n); xe.push_back(k);
  ye.push_back(k); ye.push_back(m);
  Tensor x3 = op("reshape", {op("expand", {xa, xe}), Shape{B, n, k}});
  Tensor y3 = op("reshape", {op("expand", {ya, ye}), Shape{B, k, m}});
  Tensor r = bmm_impl(x3, y3);
  Shape out_shape = batch;
  if (x.dim() > 1) out_shape.push_back(n);
  if (y.dim() > 1) out_shape.push_back(m);
  return op("reshape", {r, out_shape});
}

// addmm(Tensor self, Tensor mat1, Tensor mat2, *, Scalar beta=1, Scalar alpha=1) -> Tensor
Value k_addmm(const Args& a) {
  Tensor prod = mm_impl(a.tensor(1), a.tensor(2));
  broadcast_shapes(a.tensor(0).sizes(), prod.sizes(), "addmm");
  return combine_beta_alpha(a.tensor(0), prod, a.scalar(3), a.scalar(4));
}

// baddbmm(Tensor self, Tensor batch1, Tensor batch2, *, Scalar beta=1, Scalar alpha=1) -> Tensor
Value k_baddbmm(const Args& a) {
  Tensor prod = bmm_impl(a.tensor(1), a.tensor(2));
  broadcast_shapes(a.tensor(0).sizes(), prod.sizes(), "baddbmm");
  return combine_beta_alpha(a.tensor(0), prod, a.scalar(3), a.scalar(4));
}

// linear(Tensor input, Tensor weight, Tensor? bias=None) -> Tensor   (y = x W^T + b)
Value k_linear(const Args& a) {
  const Tensor &x = a.tensor(0), &w = a.tensor(1);
  Tensor b = a.opt_tensor(2);
  VBT_CHECK(w.dim() == 1 || w.dim() == 2, "linear: weight must be 1-D or 2-D, got shape ", shape_str(w.sizes()));
  VBT_CHECK(x.dim() > 0 && x.sizes().back() == w.sizes().back(), "linear: input and weight shapes cannot be multiplied (input ",
            shape_str(x.sizes()), ", weight ", shape_str(w.sizes()), ")");
  Tensor y = std::get<Tensor>(k_matmul(Args{x, w.dim() == 2 ? op("t", {w}) : w}));
  return b.defined() ? op("add", {y, b}) : y;
}

// outer(Tensor self, Tensor vec2) -> Tensor
Value k_outer(const Args& a) {
  const Tensor &x = a.tensor(0), &y = a.tensor(1);
  VBT_CHECK(x.dim() == 1 && y.dim() == 1, "outer: expected 1-D tensors, got shapes ", shape_str(x.sizes()), " and ",
            shape_str(y.sizes()));
  return op("mul", {op("unsqueeze", {x, int64_t(1)}), op("unsqueeze", {y, int64_t(0)})});
}

// dot(Tensor self, Tensor tensor) -> Tensor
Value k_dot(const Args& a) {
  const Tensor &x = a.tensor(0), &y = a.tensor(1);
  VBT_CHECK(x.dim() == 1 && y.dim() == 1, "dot: 1D tensors expected, but got ", x.dim(), "D and ", y.dim(), "D tensors");
  VBT_CHECK(x.sizes()[0] == y.sizes()[0], "dot: inconsistent tensor size, expected tensor [", x.sizes()[0],
            "] and src [", y.sizes()[0], "] to have the same number of elements, but got ", x.sizes()[0], " and ",
            y.sizes()[0], " elements respectively");
  VBT_CHECK(x.dtype() == y.dtype(), "dot: expected both vectors to have same dtype, but found ", dtype_name(x.dtype()),
            " and ", dtype_name(y.dtype()));
  Tensor r = mm_impl(op("unsqueeze", {x, int64_t(0)}), op("unsqueeze", {y, int64_t(1)}));
  return op("reshape", {r, Shape{}});
}

}  // namespace vbt
