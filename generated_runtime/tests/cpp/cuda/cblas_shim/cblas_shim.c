/* Naive row-major GEMM behind cblas.h (see there). */
#include "cblas.h"

#define VBT_SHIM_GEMM(NAME, T)                                                                          \
  void NAME(CBLAS_ORDER order, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, T alpha,     \
            const T* a, int lda, const T* b, int ldb, T beta, T* c, int ldc) {                         \
    (void)order;                                                                                        \
    for (int i = 0; i < m; ++i)                                                                         \
      for (int j = 0; j < n; ++j) {                                                                     \
        T acc = 0;                                                                                      \
        for (int p = 0; p < k; ++p) {                                                                   \
          T x = ta == CblasNoTrans ? a[i * lda + p] : a[p * lda + i];                                   \
          T y = tb == CblasNoTrans ? b[p * ldb + j] : b[j * ldb + p];                                   \
          acc += x * y;                                                                                 \
        }                                                                                               \
        c[i * ldc + j] = alpha * acc + (beta == 0 ? 0 : beta * c[i * ldc + j]);                         \
      }                                                                                                 \
  }
VBT_SHIM_GEMM(cblas_sgemm, float)
VBT_SHIM_GEMM(cblas_dgemm, double)
