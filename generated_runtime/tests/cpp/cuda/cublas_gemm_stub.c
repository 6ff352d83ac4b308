/* A host stand-in for libcublas (cublas_gemm_emulation.sh): cublasGemmStridedBatchedEx with cuBLAS's documented
   column-major semantics and argument checks, computed on host memory for float and double; the other entry points
   cublas_gemm.cpp uses. Counts the GEMM calls (stub_gemm_calls) so the harness can tell a cuBLAS run from a
   decline. */
#include <stddef.h>

static int g_calls = 0, g_last[7];
int stub_gemm_calls(void) { return g_calls; }
/* the last GEMM's transa, transb, m, n, k, batch, lda */
const int* stub_last_call(void) { return g_last; }

int cublasCreate_v2(void** h) { *h = (void*)&g_calls; return 0; }
int cublasSetStream_v2(void* h, void* s) { (void)s; return h == (void*)&g_calls ? 0 : 1; }
int cublasGetProperty(int type, int* v) { static const int ver[3] = {13, 0, 0}; *v = ver[type]; return 0; }

static long long mx(long long a, long long b) { return a > b ? a : b; }

int cublasGemmStridedBatchedEx(void* h, int transa, int transb, int m, int n, int k, const void* alpha, const void* A,
                               int Atype, int lda, long long strideA, const void* B, int Btype, int ldb,
                               long long strideB, const void* beta, void* C, int Ctype, int ldc, long long strideC,
                               int batch, int compute, int algo) {
  if (h != (void*)&g_calls) return 1;                                             /* NOT_INITIALIZED */
  if (m < 0 || n < 0 || k < 0 || batch < 0) return 7;                             /* INVALID_VALUE */
  if ((transa != 0 && transa != 1) || (transb != 0 && transb != 1)) return 7;
  if (lda < mx(1, transa == 0 ? m : k) || ldb < mx(1, transb == 0 ? k : n) || ldc < mx(1, m)) return 7;
  if (Atype != Btype || Atype != Ctype || (Atype != 0 && Atype != 1) || algo != -1) return 15; /* NOT_SUPPORTED */
  if ((Atype == 0 && compute != 68) || (Atype == 1 && compute != 70)) return 15;
  ++g_calls;
  g_last[0] = transa; g_last[1] = transb; g_last[2] = m; g_last[3] = n; g_last[4] = k; g_last[5] = batch;
  g_last[6] = lda;
  for (int b = 0; b < batch; ++b)
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        double acc = 0;
        for (int l = 0; l < k; ++l) {
          long long ia = b * strideA + (transa == 0 ? i + (long long)l * lda : l + (long long)i * lda);
          long long ib = b * strideB + (transb == 0 ? l + (long long)j * ldb : j + (long long)l * ldb);
          double x = Atype == 0 ? ((const float*)A)[ia] : ((const double*)A)[ia];
          double y = Atype == 0 ? ((const float*)B)[ib] : ((const double*)B)[ib];
          acc += x * y;
        }
        long long ic = b * strideC + i + (long long)j * ldc;
        if (Atype == 0) {
          float* c = (float*)C;
          float be = *(const float*)beta;
          c[ic] = (float)(*(const float*)alpha * acc + (be != 0 ? be * c[ic] : 0));
        } else {
          double* c = (double*)C;
          double be = *(const double*)beta;
          c[ic] = *(const double*)alpha * acc + (be != 0 ? be * c[ic] : 0);
        }
      }
  return 0;
}
