// Host check of the row-major -> cuBLAS mapping in src/vbt/cuda/ops/cublas_gemm.cpp (no GPU needed): that file is
// compiled into this program, which fakes the two CUDA runtime calls it makes, and loads the stand-in library
// cublas_gemm_stub.c (cuBLAS's column-major GEMM semantics and argument checks, on host memory) through
// VBT_CUBLAS_LIBRARY, the way a real libcublas is loaded. For many shapes, batch strides (broadcast included) and
// operand layouts (row-major and column-major with padded leading dimensions, size-1 dims with arbitrary strides,
// layouts cuBLAS cannot take), it checks cublas_layout_ok, that an accepted GEMM runs on the library and matches a
// direct row-major computation, that a batch sharing B folds into one GEMM, and that unsupported dtypes decline.
// Build and run: bash generated_runtime/tests/cpp/cuda/cublas_gemm_emulation.sh
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "cublas_gemm.h"
#include "vbt/cuda/ops.h"

// The CUDA runtime calls of cublas_gemm.cpp (C linkage, as cuda_runtime_api.h declares them).
cudaError_t cudaStreamIsCapturing(cudaStream_t, cudaStreamCaptureStatus* s) {
  *s = cudaStreamCaptureStatusNone;
  return cudaSuccess;
}
cudaError_t cudaGetLastError(void) { return cudaSuccess; }

using vbt::cuda::ops::GemmArgs;

#include "emulation_check.h"

namespace {


struct Layout {  // element strides of a [batch, rows, cols] operand
  int64_t sb, sr, sc;
};
enum Kind { RowMajor, ColMajor, RowPadded, ColPadded, Strided, OneRowOdd, OneColOdd };
const char* kind_name[] = {"row", "col", "row+pad", "col+pad", "strided", "1row-odd", "1col-odd"};

// A layout of kind k for [rows, cols]; broadcast: batch stride 0. Returns false when k does not apply.
bool layout_of(Kind k, int64_t rows, int64_t cols, bool broadcast, Layout* l) {
  switch (k) {
    case RowMajor: *l = {0, cols, 1}; break;
    case ColMajor: *l = {0, 1, rows}; break;
    case RowPadded: *l = {0, cols + 3, 1}; break;
    case ColPadded: *l = {0, 1, rows + 5}; break;
    case Strided: *l = {0, 2 * cols, 2}; break;  // neither: the caller copies
    case OneRowOdd: if (rows != 1) return false; *l = {0, 977, 1}; break;
    case OneColOdd: if (cols != 1) return false; *l = {0, 1, 613}; break;
  }
  const int64_t span = (rows - 1) * l->sr + (cols - 1) * l->sc + 1;
  l->sb = broadcast ? 0 : span + 7;
  return true;
}
int64_t extent(int64_t batch, int64_t rows, int64_t cols, const Layout& l) {
  return (batch - 1) * l.sb + (rows - 1) * l.sr + (cols - 1) * l.sc + 1;
}

template <typename T> void run_case(int dtype, int64_t batch, int64_t M, int64_t N, int64_t K, Kind ka, Kind kb,
                                    bool bcast_a, bool bcast_b, std::mt19937& rng) {
  Layout la, lb;
  if (!layout_of(ka, M, K, bcast_a, &la) || !layout_of(kb, K, N, bcast_b, &lb)) return;
  std::normal_distribution<double> nd;
  std::vector<T> A(size_t(extent(batch, M, K, la))), B(size_t(extent(batch, K, N, lb)));
  for (auto& v : A) v = T(nd(rng));
  for (auto& v : B) v = T(nd(rng));
  std::vector<T> C(size_t(batch * M * N), T(-12345));
  GemmArgs g{batch, M, N, K, A.data(), la.sb, la.sr, la.sc, B.data(), lb.sb, lb.sr, lb.sc, C.data(), M * N, N, 1};
  const bool ok_a = vbt::cuda::ops::cublas_layout_ok(M, K, la.sr, la.sc);
  const bool ok_b = vbt::cuda::ops::cublas_layout_ok(K, N, lb.sr, lb.sc);
  // a strided operand is acceptable only as a single row or column (a vector with any stride)
  const bool want_a = ka != Strided || M == 1 || K == 1, want_b = kb != Strided || K == 1 || N == 1;
  const bool expect_ok = want_a && want_b;
  EXPECT(ok_a == want_a && ok_b == want_b, "layout_ok(%s)=%d layout_ok(%s)=%d for M=%lld N=%lld K=%lld",
         kind_name[ka], ok_a, kind_name[kb], ok_b, (long long)M, (long long)N, (long long)K);
  const bool ran = vbt::cuda::ops::cublas_gemm(dtype, g, 0, nullptr);
  EXPECT(ran == expect_ok, "cublas_gemm returned %d for A %s%s, B %s%s, batch=%lld M=%lld N=%lld K=%lld", ran,
         kind_name[ka], bcast_a ? " (bcast)" : "", kind_name[kb], bcast_b ? " (bcast)" : "", (long long)batch,
         (long long)M, (long long)N, (long long)K);
  if (!ran) return;
  double max_err = 0;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double acc = 0;
        for (int64_t l = 0; l < K; ++l)
          acc += double(A[size_t(b * la.sb + i * la.sr + l * la.sc)]) * double(B[size_t(b * lb.sb + l * lb.sr + j * lb.sc)]);
        max_err = std::max(max_err, std::fabs(double(C[size_t(b * M * N + i * N + j)]) - acc) / (1.0 + std::fabs(acc)));
      }
  EXPECT(max_err < (sizeof(T) == 4 ? 1e-5 : 1e-12), "wrong result (max rel err %g) for A %s%s, B %s%s, batch=%lld M=%lld "
         "N=%lld K=%lld", max_err, kind_name[ka], bcast_a ? " (bcast)" : "", kind_name[kb], bcast_b ? " (bcast)" : "",
         (long long)batch, (long long)M, (long long)N, (long long)K);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s STUB_LIBRARY\n", argv[0]);
    return 2;
  }
  setenv("VBT_CUBLAS_LIBRARY", argv[1], 1);
  EXPECT(vbt::cuda::matmul_backend() == "cublas", "the stub library did not load: %s",
         vbt::cuda::cublas_load_error().c_str());
  EXPECT(vbt::cuda::cublas_version() == "13.0.0", "version %s", vbt::cuda::cublas_version().c_str());
  void* so = dlopen(argv[1], RTLD_NOW | RTLD_NOLOAD);
  auto calls = reinterpret_cast<int (*)()>(so ? dlsym(so, "stub_gemm_calls") : nullptr);
  auto last = reinterpret_cast<const int* (*)()>(so ? dlsym(so, "stub_last_call") : nullptr);
  if (!calls || !last) {
    std::printf("FAIL: the stub library is not the one loaded\n");
    return 1;
  }

  std::mt19937 rng(1234);
  const int64_t sizes[] = {1, 2, 5, 16, 33};
  const Kind kinds[] = {RowMajor, ColMajor, RowPadded, ColPadded, Strided, OneRowOdd, OneColOdd};
  for (int64_t batch : {int64_t(1), int64_t(3)})
    for (int64_t M : sizes)
      for (int64_t N : sizes)
        for (int64_t K : {int64_t(1), int64_t(7), int64_t(20)})
          for (Kind ka : kinds)
            for (Kind kb : kinds)
              for (int bc = 0; bc < (batch > 1 ? 3 : 1); ++bc) {
                run_case<float>(8, batch, M, N, K, ka, kb, bc == 1, bc == 2, rng);
                if (M == 5 && N == 16) run_case<double>(9, batch, M, N, K, ka, kb, bc == 1, bc == 2, rng);
              }

  // a batch sharing B over row-stacked A folds into one GEMM of batch * M rows
  {
    const int64_t batch = 4, M = 6, N = 5, K = 9;
    std::vector<float> A(size_t(batch * M * K)), B(size_t(K * N)), C(size_t(batch * M * N));
    for (size_t i = 0; i < A.size(); ++i) A[i] = float(i % 7) - 3;
    for (size_t i = 0; i < B.size(); ++i) B[i] = float(i % 5) - 2;
    GemmArgs g{batch, M, N, K, A.data(), M * K, K, 1, B.data(), 0, N, 1, C.data(), M * N, N, 1};
    const int before = calls();
    EXPECT(vbt::cuda::ops::cublas_gemm(8, g, 0, nullptr), "folded GEMM declined");
    EXPECT(calls() == before + 1 && last()[5] == 1 && last()[3] == batch * M, "not folded: batch=%d n=%d", last()[5],
           last()[3]);
    double err = 0;
    for (int64_t r = 0; r < batch * M; ++r)
      for (int64_t j = 0; j < N; ++j) {
        double acc = 0;
        for (int64_t l = 0; l < K; ++l) acc += double(A[size_t(r * K + l)]) * B[size_t(l * N + j)];
        err = std::max(err, std::fabs(C[size_t(r * N + j)] - acc));
      }
    EXPECT(err == 0, "folded GEMM wrong by %g", err);
  }
  // a transposed B (column-major) goes as op T, no copy
  {
    std::vector<float> A(12, 1.0f), B(12, 2.0f), C(9);
    GemmArgs g{1, 3, 3, 4, A.data(), 0, 4, 1, B.data(), 0, 1, 4, C.data(), 9, 3, 1};
    EXPECT(vbt::cuda::ops::cublas_gemm(8, g, 0, nullptr) && last()[0] == 1 && last()[1] == 0 && last()[6] == 4,
           "transposed B: transa=%d transb=%d lda=%d", last()[0], last()[1], last()[6]);
    EXPECT(C[0] == 8.0f && C[8] == 8.0f, "transposed B result %g", C[0]);
  }
  // dtypes the library refuses (the stub has no half) decline without a throw; so do other dtype codes
  {
    std::vector<uint16_t> A(4), B(4), C(4);
    GemmArgs g{1, 2, 2, 2, A.data(), 0, 2, 1, B.data(), 0, 2, 1, C.data(), 4, 2, 1};
    EXPECT(!vbt::cuda::ops::cublas_gemm(6, g, 0, nullptr), "half GEMM ran on a library without it");
    EXPECT(!vbt::cuda::ops::cublas_gemm(5, g, 0, nullptr), "int64 GEMM went to cuBLAS");
  }
  // the switch
  vbt::cuda::set_cublas_enabled(false);
  EXPECT(vbt::cuda::matmul_backend() == "kernel" && !vbt::cuda::ops::cublas_ready(), "set_cublas_enabled(false)");
  {
    std::vector<float> A(4, 1.0f), B(4, 1.0f), C(4);
    GemmArgs g{1, 2, 2, 2, A.data(), 0, 2, 1, B.data(), 0, 2, 1, C.data(), 4, 2, 1};
    EXPECT(!vbt::cuda::ops::cublas_gemm(8, g, 0, nullptr), "cuBLAS used while disabled");
  }
  vbt::cuda::set_cublas_enabled(true);
  EXPECT(vbt::cuda::matmul_backend() == "cublas", "set_cublas_enabled(true)");

  std::printf("cublas_gemm_emulation: %d checks, %d failures, %d GEMMs on the stub library\n", emulation_checks,
              emulation_failures,
              calls());
  return emulation_failures ? 1 : 0;
}
