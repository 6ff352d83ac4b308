// bmm_bench: how we call cuBLAS for matmul / bmm today against other ways of calling it, per call, on the shapes of
// tests/gpu/matmul_bench.py (float32 and bfloat16).
//
// Why: on an H200, vt's cuBLAS matmul matches torch on 9 of 10 shapes but batched bfloat16 (32,512,64) x
// (32,64,512) reached 0.82x torch (reports/gpu/README.md, "vt cuBLAS"). Our runtime
// (generated_runtime/src/vbt/cuda/ops/cublas_gemm.cpp, cublas_gemm) calls, per matmul, cublasSetStream and one
// cublasGemmStridedBatchedEx with CUBLAS_COMPUTE_32F and CUBLAS_GEMM_DEFAULT, on a handle whose math mode and
// workspace were never set (cublasSetStream puts the handle back on cuBLAS's default workspace pool). torch 2.x
// (default BLAS backend "cublas") calls cublasGemmStridedBatchedEx with CUBLAS_GEMM_DEFAULT_TENSOR_OP for bfloat16
// and cublasSgemmStridedBatched for float32, after cublasSetStream + cublasSetWorkspace (32 MiB on sm_90 from its
// caching allocator). This program times, per case:
//   today          exactly our call: SetStream + GemmStridedBatchedEx(COMPUTE_32F, GEMM_DEFAULT), default workspace
//   ws32 / ws4     + cublasSetWorkspace(32 MiB / 4 MiB) after SetStream, every call
//   ws0            + cublasSetWorkspace(nullptr, 0): does any workspace matter at all (diagnostic)
//   tensor_op      algo CUBLAS_GEMM_DEFAULT_TENSOR_OP (99), default workspace
//   torch_like     SetStream + SetWorkspace(32 MiB) + algo 99 (bfloat16) / cublasSgemmStridedBatched (float32)
//   lt_heur        cublasLtMatmul, heuristic's first algorithm, 32 MiB workspace; descriptors and algorithm made
//                  once (a runtime would cache them per shape), only cublasLtMatmul per call
//   lt_heur_pc     the same with descriptors + preference + heuristic query made and destroyed on every call
//                  (what torch's Lt path does): shows the host cost of the query
//   lt_heur_ws0    cublasLtMatmul, heuristic's first algorithm with no workspace allowed
//   lt_best8       the fastest (GPU time) of the heuristic's first 8 algorithms, its index printed
//   today_rot4     (not a cuBLAS knob) today's call writing 4 output buffers in turn instead of one: what reusing
//                  the same, L2-resident output block on every call is worth (H200 L2: 50 MiB)
// Times, per call (median of REPEATS batches of `calls` calls each):
//   gpu_us     GPU time only: the batch is queued behind a spin kernel, so the events see back-to-back kernels
//   stream_us  events around the batch issued from the host as a loop would issue it (max of host and GPU time;
//              what a host wall clock around a synchronised batch, as in matmul_bench.py, sees minus Python)
//   host_us    host time to issue one call (the cuBLAS API cost, without Python or allocation)
// Every variant's output is compared with today's over the whole output (max |diff| / max |today|), and today's
// with a float64 host product on a sample of outputs; a variant off by more than the dtype's tolerance prints WRONG.
// Build/run: bash tests/gpu/microbench/run.sh OUTDIR bmm_bench (needs $VBT_CUBLAS_LIBRARY; libcublasLt is taken
// from the same folder). The stream is the legacy default stream, as the runtime's current stream is by default.
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

// ---- the slice of the cuBLAS / cuBLASLt API used here (facts of cublas_api.h, cublasLt.h, library_types.h)
using cublasHandle_t = void*;
using cublasLtHandle_t = void*;
using cublasLtMatmulDesc_t = void*;
using cublasLtMatrixLayout_t = void*;
using cublasLtMatmulPreference_t = void*;
using Status = int;
constexpr int kOpN = 0;
constexpr int kR32F = 0, kR16BF = 14;                 // cudaDataType
constexpr int kCompute32F = 68;                       // cublasComputeType_t
constexpr int kGemmDefault = -1, kGemmDefaultTensorOp = 99;
constexpr int kDescTransA = 3, kDescTransB = 4;       // cublasLtMatmulDescAttributes_t
constexpr int kLayoutBatchCount = 5, kLayoutBatchStride = 6;  // cublasLtMatrixLayoutAttribute_t
constexpr int kPrefMaxWorkspace = 1;                  // cublasLtMatmulPreferenceAttributes_t
struct LtAlgo {
  uint64_t data[8];
};
struct LtHeuristic {  // cublasLtMatmulHeuristicResult_t
  LtAlgo algo;
  size_t workspaceSize;
  Status state;
  float wavesCount;
  int reserved[4];
};

struct Blas {
  Status (*create)(cublasHandle_t*) = nullptr;
  Status (*set_stream)(cublasHandle_t, cudaStream_t) = nullptr;
  Status (*set_workspace)(cublasHandle_t, void*, size_t) = nullptr;
  Status (*get_property)(int, int*) = nullptr;
  Status (*gemm_ex)(cublasHandle_t, int, int, int, int, int, const void*, const void*, int, int, long long,
                    const void*, int, int, long long, const void*, void*, int, int, long long, int, int,
                    int) = nullptr;
  Status (*sgemm_sb)(cublasHandle_t, int, int, int, int, int, const float*, const float*, int, long long,
                     const float*, int, long long, const float*, float*, int, long long, int) = nullptr;
  // Lt
  Status (*lt_create)(cublasLtHandle_t*) = nullptr;
  Status (*desc_create)(cublasLtMatmulDesc_t*, int, int) = nullptr;
  Status (*desc_set)(cublasLtMatmulDesc_t, int, const void*, size_t) = nullptr;
  Status (*desc_destroy)(cublasLtMatmulDesc_t) = nullptr;
  Status (*layout_create)(cublasLtMatrixLayout_t*, int, uint64_t, uint64_t, int64_t) = nullptr;
  Status (*layout_set)(cublasLtMatrixLayout_t, int, const void*, size_t) = nullptr;
  Status (*layout_destroy)(cublasLtMatrixLayout_t) = nullptr;
  Status (*pref_create)(cublasLtMatmulPreference_t*) = nullptr;
  Status (*pref_set)(cublasLtMatmulPreference_t, int, const void*, size_t) = nullptr;
  Status (*pref_destroy)(cublasLtMatmulPreference_t) = nullptr;
  Status (*heuristic)(cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                      cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatmulPreference_t, int, LtHeuristic*,
                      int*) = nullptr;
  Status (*lt_matmul)(cublasLtHandle_t, cublasLtMatmulDesc_t, const void*, const void*, cublasLtMatrixLayout_t,
                      const void*, cublasLtMatrixLayout_t, const void*, const void*, cublasLtMatrixLayout_t, void*,
                      cublasLtMatrixLayout_t, const LtAlgo*, void*, size_t, cudaStream_t) = nullptr;
  bool lt = false;
};
static Blas B;

#define CK(x)                                                                                          \
  do {                                                                                                 \
    cudaError_t e_ = (x);                                                                              \
    if (e_ != cudaSuccess) {                                                                           \
      std::fprintf(stderr, "CUDA error %s at %s:%d: %s\n", cudaGetErrorString(e_), __FILE__, __LINE__, #x); \
      std::exit(1);                                                                                    \
    }                                                                                                  \
  } while (0)

template <class F>
static bool sym(void* so, const char* name, F* f) {
  *f = reinterpret_cast<F>(dlsym(so, name));
  if (!*f) std::printf("missing symbol %s\n", name);
  return *f != nullptr;
}

static bool load(std::string* blas_path, std::string* lt_path) {
  const char* env = std::getenv("VBT_CUBLAS_LIBRARY");
  std::vector<std::string> names;
  if (env && *env) names.push_back(env);
  for (const char* n : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"}) names.push_back(n);
  void* so = nullptr;
  for (const auto& n : names)
    if ((so = dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL))) {
      *blas_path = n;
      break;
    }
  if (!so) {
    std::printf("cannot dlopen cuBLAS (set VBT_CUBLAS_LIBRARY): %s\n", dlerror());
    return false;
  }
  bool ok = sym(so, "cublasCreate_v2", &B.create) && sym(so, "cublasSetStream_v2", &B.set_stream) &&
            sym(so, "cublasSetWorkspace_v2", &B.set_workspace) && sym(so, "cublasGemmStridedBatchedEx", &B.gemm_ex) &&
            sym(so, "cublasSgemmStridedBatched", &B.sgemm_sb);
  B.get_property = reinterpret_cast<Status (*)(int, int*)>(dlsym(so, "cublasGetProperty"));
  if (!ok) return false;
  // libcublasLt: the folder of libcublas first (same suffix), then the loader's path
  std::vector<std::string> lt_names;
  std::string dir, suffix;
  const size_t slash = blas_path->rfind('/');
  if (slash != std::string::npos) dir = blas_path->substr(0, slash + 1);
  const size_t so_pos = blas_path->find(".so");
  if (so_pos != std::string::npos) suffix = blas_path->substr(so_pos);  // ".so.13"
  if (!suffix.empty()) lt_names.push_back(dir + "libcublasLt" + suffix);
  for (const char* n : {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"}) {
    if (!dir.empty()) lt_names.push_back(dir + n);
    lt_names.push_back(n);
  }
  void* lt = nullptr;
  for (const auto& n : lt_names)
    if ((lt = dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL))) {
      *lt_path = n;
      break;
    }
  if (!lt) {
    std::printf("cannot dlopen cuBLASLt: the lt_* variants are skipped\n");
    return true;
  }
  B.lt = sym(lt, "cublasLtCreate", &B.lt_create) && sym(lt, "cublasLtMatmulDescCreate", &B.desc_create) &&
         sym(lt, "cublasLtMatmulDescSetAttribute", &B.desc_set) &&
         sym(lt, "cublasLtMatmulDescDestroy", &B.desc_destroy) &&
         sym(lt, "cublasLtMatrixLayoutCreate", &B.layout_create) &&
         sym(lt, "cublasLtMatrixLayoutSetAttribute", &B.layout_set) &&
         sym(lt, "cublasLtMatrixLayoutDestroy", &B.layout_destroy) &&
         sym(lt, "cublasLtMatmulPreferenceCreate", &B.pref_create) &&
         sym(lt, "cublasLtMatmulPreferenceSetAttribute", &B.pref_set) &&
         sym(lt, "cublasLtMatmulPreferenceDestroy", &B.pref_destroy) &&
         sym(lt, "cublasLtMatmulAlgoGetHeuristic", &B.heuristic) && sym(lt, "cublasLtMatmul", &B.lt_matmul);
  return true;
}

// ---- helpers
static uint16_t f2bf(float f) {  // round to nearest even
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
static float bf2f(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
__global__ void spin_kernel(unsigned long long ns) {
  unsigned long long t0, t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  do {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  } while (t - t0 < ns);
}
static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

struct Case {
  const char* dtype;
  int64_t batch, M, K, N;  // [batch, M, K] @ [batch, K, N]
  const char* label;
};

// The runtime's cublas_gemm for contiguous row-major operands (cublas_gemm.cpp): cuBLAS computes the column-major
// C^T = B^T A^T, so cuBLAS's A is our B ([K, N], op N, ld N), its B our A ([M, K], op N, ld K), m = N, n = M,
// ldc = N; batch strides K*N, M*K, M*N. (No fold applies here: B is not shared.)
struct Problem {
  Case c;
  int dt;
  size_t esize;
  void *A, *Bm;
  long long sa, sb, sc;
  double flops;
};

static cudaStream_t g_stream = 0;  // the legacy default stream, as the runtime's default current stream
static const float kOne = 1.0f, kZero = 0.0f;

static Status call_ex(cublasHandle_t h, const Problem& p, void* C, int algo) {
  return B.gemm_ex(h, kOpN, kOpN, int(p.c.N), int(p.c.M), int(p.c.K), &kOne, p.Bm, p.dt, int(p.c.N), p.sb, p.A, p.dt,
                   int(p.c.K), p.sa, &kZero, C, p.dt, int(p.c.N), p.sc, int(p.c.batch), kCompute32F, algo);
}

struct LtPlan {  // descriptors of one problem
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  bool ok = false;
};
static bool lt_layout(cublasLtMatrixLayout_t* l, int dt, uint64_t rows, uint64_t cols, int64_t ld, int32_t batch,
                      int64_t stride) {
  if (B.layout_create(l, dt, rows, cols, ld) != 0) return false;
  if (batch > 1) {
    if (B.layout_set(*l, kLayoutBatchCount, &batch, sizeof(batch)) != 0) return false;
    if (B.layout_set(*l, kLayoutBatchStride, &stride, sizeof(stride)) != 0) return false;
  }
  return true;
}
static LtPlan lt_plan(const Problem& p) {
  LtPlan pl;
  const int32_t opn = kOpN;
  if (B.desc_create(&pl.op, kCompute32F, kR32F) != 0) return pl;
  if (B.desc_set(pl.op, kDescTransA, &opn, sizeof(opn)) != 0 || B.desc_set(pl.op, kDescTransB, &opn, sizeof(opn)) != 0)
    return pl;
  const int32_t b = int32_t(p.c.batch);
  // column-major: A' = our B as [N, K] ld N; B' = our A as [K, M] ld K; C' = [N, M] ld N
  pl.ok = lt_layout(&pl.la, p.dt, p.c.N, p.c.K, p.c.N, b, p.sb) && lt_layout(&pl.lb, p.dt, p.c.K, p.c.M, p.c.K, b, p.sa) &&
          lt_layout(&pl.lc, p.dt, p.c.N, p.c.M, p.c.N, b, p.sc);
  return pl;
}
static void lt_free(LtPlan& pl) {
  if (pl.la) B.layout_destroy(pl.la);
  if (pl.lb) B.layout_destroy(pl.lb);
  if (pl.lc) B.layout_destroy(pl.lc);
  if (pl.op) B.desc_destroy(pl.op);
  pl = LtPlan{};
}
static int lt_query(cublasLtHandle_t lh, const LtPlan& pl, size_t ws, int want, LtHeuristic* out) {
  cublasLtMatmulPreference_t pref = nullptr;
  if (B.pref_create(&pref) != 0) return 0;
  const uint64_t w = ws;
  int got = 0;
  if (B.pref_set(pref, kPrefMaxWorkspace, &w, sizeof(w)) == 0 &&
      B.heuristic(lh, pl.op, pl.la, pl.lb, pl.lc, pl.lc, pref, want, out, &got) != 0)
    got = 0;
  B.pref_destroy(pref);
  return got;
}

struct Timing {
  double gpu_us = 0, stream_us = 0, host_us = 0;
  bool failed = false;
};
constexpr int REPEATS = 15;

// issue(): one call on g_stream, returns a cuBLAS status (0 = ok)
static Timing time_variant(const std::function<Status()>& issue, int calls, int repeats, bool full) {
  Timing t;
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  for (int w = 0; w < 3; ++w)
    if (issue() != 0) t.failed = true;
  CK(cudaStreamSynchronize(g_stream));
  if (t.failed) {
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
    return t;
  }
  std::vector<double> host, stream, gpu;
  for (int r = 0; r < repeats; ++r) {
    // host issue time and events around the batch as issued
    CK(cudaEventRecord(e0, g_stream));
    auto h0 = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) issue();
    auto h1 = std::chrono::steady_clock::now();
    CK(cudaEventRecord(e1, g_stream));
    CK(cudaEventSynchronize(e1));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    const double host_s = std::chrono::duration<double>(h1 - h0).count();
    host.push_back(host_s * 1e6 / calls);
    stream.push_back(ms * 1e3 / calls);
    if (!full) {
      stream.pop_back();
    }
    // GPU-only: the batch waits behind a spin kernel that outlasts its issue
    const unsigned long long spin_ns = (unsigned long long)std::min(20e6, 2.0 * host_s * 1e9 + 50e3);
    spin_kernel<<<1, 1, 0, g_stream>>>(spin_ns);
    CK(cudaGetLastError());
    CK(cudaEventRecord(e0, g_stream));
    for (int i = 0; i < calls; ++i) issue();
    CK(cudaEventRecord(e1, g_stream));
    CK(cudaEventSynchronize(e1));
    CK(cudaEventElapsedTime(&ms, e0, e1));
    gpu.push_back(ms * 1e3 / calls);
  }
  CK(cudaGetLastError());
  t.gpu_us = median(gpu);
  t.stream_us = full ? median(stream) : 0;
  t.host_us = median(host);
  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
  return t;
}

static std::vector<float> to_host(const Problem& p, const void* C) {
  const size_t n = size_t(p.c.batch * p.c.M * p.c.N);
  std::vector<float> out(n);
  if (p.dt == kR32F) {
    CK(cudaMemcpy(out.data(), C, n * 4, cudaMemcpyDeviceToHost));
  } else {
    std::vector<uint16_t> h(n);
    CK(cudaMemcpy(h.data(), C, n * 2, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; ++i) out[i] = bf2f(h[i]);
  }
  return out;
}
static double rel_err(const std::vector<float>& got, const std::vector<float>& ref) {
  double md = 0, mr = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = std::fabs(double(got[i]) - double(ref[i]));
    if (!(d == d)) return INFINITY;  // NaN
    md = std::max(md, d);
    mr = std::max(mr, std::fabs(double(ref[i])));
  }
  return mr > 0 ? md / mr : md;
}

int main() {
  std::string blas_path, lt_path;
  if (!load(&blas_path, &lt_path)) return 1;
  int dev = 0;
  CK(cudaSetDevice(dev));
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, dev));
  int ver[3] = {0, 0, 0};
  if (B.get_property)
    for (int i = 0; i < 3; ++i) B.get_property(i, &ver[i]);
  std::printf("device: %s (sm_%d%d, %d SMs)\ncuBLAS: %s (%d.%d.%d)\ncuBLASLt: %s\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount, blas_path.c_str(), ver[0], ver[1], ver[2],
              B.lt ? lt_path.c_str() : "not loaded");

  // device-to-device copy bandwidth (read + write), for scale
  {
    const size_t bytes = size_t(256) << 20;
    void *s, *d;
    CK(cudaMalloc(&s, bytes));
    CK(cudaMalloc(&d, bytes));
    CK(cudaMemset(s, 0, bytes));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    std::vector<double> v;
    for (int r = 0; r < 7; ++r) {
      CK(cudaEventRecord(e0, g_stream));
      CK(cudaMemcpyAsync(d, s, bytes, cudaMemcpyDeviceToDevice, g_stream));
      CK(cudaEventRecord(e1, g_stream));
      CK(cudaEventSynchronize(e1));
      float ms = 0;
      CK(cudaEventElapsedTime(&ms, e0, e1));
      v.push_back(2.0 * bytes / (ms * 1e-3) / 1e9);
    }
    std::printf("cudaMemcpyAsync D2D: %.0f GB/s (read + write)\n", median(v));
    CK(cudaFree(s));
    CK(cudaFree(d));
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
  }

  cublasHandle_t h_today = nullptr, h_ws = nullptr;
  if (B.create(&h_today) != 0 || B.create(&h_ws) != 0) {
    std::printf("cublasCreate failed\n");
    return 1;
  }
  cublasLtHandle_t lt = nullptr;
  if (B.lt && B.lt_create(&lt) != 0) {
    std::printf("cublasLtCreate failed: the lt_* variants are skipped\n");
    B.lt = false;
  }
  const size_t kWs32 = size_t(32) << 20, kWs4 = size_t(4) << 20;
  void* ws = nullptr;
  CK(cudaMalloc(&ws, kWs32));

  const Case cases[] = {
      {"float32", 1, 1024, 1024, 1024, "(1024,1024)x(1024,1024)"},
      {"float32", 1, 4096, 4096, 4096, "(4096,4096)x(4096,4096)"},
      {"float32", 64, 128, 128, 128, "(64,128,128)x(64,128,128)"},
      {"float32", 1, 8192, 256, 1024, "(8192,256)x(256,1024)"},
      {"float32", 32, 512, 64, 512, "(32,512,64)x(32,64,512)"},
      {"bfloat16", 1, 1024, 1024, 1024, "(1024,1024)x(1024,1024)"},
      {"bfloat16", 1, 4096, 4096, 4096, "(4096,4096)x(4096,4096)"},
      {"bfloat16", 64, 128, 128, 128, "(64,128,128)x(64,128,128)"},
      {"bfloat16", 1, 8192, 256, 1024, "(8192,256)x(256,1024)"},
      {"bfloat16", 32, 512, 64, 512, "(32,512,64)x(32,64,512)"},
  };
  std::printf("\nper call: gpu_us = GPU time (queued batch), stream_us = events around the batch as issued, host_us ="
              " host time to issue; x = today's time / variant's time (gpu, stream); err = max|C - C_today| / "
              "max|C_today|\n");
  std::printf("%-8s %-26s %-14s %9s %8s %6s %9s %6s %8s %9s\n", "dtype", "shape", "variant", "gpu_us", "TFLOP/s",
              "x", "stream_us", "x", "host_us", "err");
  int wrong = 0;
  for (const Case& c : cases) {
    Problem p;
    p.c = c;
    const bool bf = std::strcmp(c.dtype, "bfloat16") == 0;
    p.dt = bf ? kR16BF : kR32F;
    p.esize = bf ? 2 : 4;
    p.sa = c.M * c.K;
    p.sb = c.K * c.N;
    p.sc = c.M * c.N;
    p.flops = 2.0 * double(c.batch) * c.M * c.N * c.K;
    const size_t na = size_t(c.batch * c.M * c.K), nb = size_t(c.batch * c.K * c.N), nc = size_t(c.batch * c.M * c.N);
    std::vector<float> ha(na), hb(nb);
    uint64_t st = 0x9e3779b97f4a7c15ull ^ uint64_t(na * 31 + nb);
    auto rnd = [&st]() {
      st = st * 6364136223846793005ull + 1442695040888963407ull;
      return float(int64_t(st >> 40) - (1ll << 23)) / float(1 << 23);  // [-1, 1)
    };
    for (auto& x : ha) x = rnd();
    for (auto& x : hb) x = rnd();
    if (bf) {
      std::vector<uint16_t> a16(na), b16(nb);
      for (size_t i = 0; i < na; ++i) ha[i] = bf2f(a16[i] = f2bf(ha[i]));
      for (size_t i = 0; i < nb; ++i) hb[i] = bf2f(b16[i] = f2bf(hb[i]));
      CK(cudaMalloc(&p.A, na * 2));
      CK(cudaMalloc(&p.Bm, nb * 2));
      CK(cudaMemcpy(p.A, a16.data(), na * 2, cudaMemcpyHostToDevice));
      CK(cudaMemcpy(p.Bm, b16.data(), nb * 2, cudaMemcpyHostToDevice));
    } else {
      CK(cudaMalloc(&p.A, na * 4));
      CK(cudaMalloc(&p.Bm, nb * 4));
      CK(cudaMemcpy(p.A, ha.data(), na * 4, cudaMemcpyHostToDevice));
      CK(cudaMemcpy(p.Bm, hb.data(), nb * 4, cudaMemcpyHostToDevice));
    }
    void *C0, *C1;
    CK(cudaMalloc(&C0, nc * p.esize));
    CK(cudaMalloc(&C1, nc * p.esize));
    const double tol = bf ? 1e-2 : 1e-4;

    // today's call, checked against a float64 host product on a sample of outputs
    auto today = [&]() -> Status {
      Status s = B.set_stream(h_today, g_stream);
      return s ? s : call_ex(h_today, p, C0, kGemmDefault);
    };
    CK(cudaMemset(C0, 0xff, nc * p.esize));  // NaN pattern: an unwritten output shows up
    if (today() != 0) {
      std::printf("%-8s %-26s today: cuBLAS refused the call\n", c.dtype, c.label);
      continue;
    }
    CK(cudaDeviceSynchronize());
    const std::vector<float> ref = to_host(p, C0);
    {
      double md = 0, mr = 0;
      for (int s = 0; s < 256; ++s) {
        const size_t idx = (size_t(s) * 2654435761ull) % nc;
        const int64_t b = int64_t(idx / (c.M * c.N)), m = int64_t(idx / c.N % c.M), n = int64_t(idx % c.N);
        double acc = 0;
        for (int64_t k = 0; k < c.K; ++k) acc += double(ha[(b * c.M + m) * c.K + k]) * hb[(b * c.K + k) * c.N + n];
        const double d = std::fabs(acc - ref[idx]);
        md = (d == d) ? std::max(md, d) : INFINITY;
        mr = std::max(mr, std::fabs(acc));
      }
      const double e = mr > 0 ? md / mr : md;
      const bool bad = !(e <= (bf ? 2e-2 : 1e-4));
      if (bad) ++wrong;
      std::printf("%-8s %-26s today vs float64 host product (256 samples): rel err %.1e%s\n", c.dtype, c.label, e,
                  bad ? "  WRONG" : "");
    }
    const Timing t0 = time_variant(today, 1, 1, true);  // a first estimate for the batch size
    const int calls = std::max(5, std::min(100, int(2000.0 / std::max(1.0, t0.gpu_us))));
    const Timing base = time_variant(today, calls, REPEATS, true);

    auto row = [&](const char* name, const Timing& t, bool check) {
      if (t.failed) {
        std::printf("%-8s %-26s %-14s cuBLAS refused the call\n", c.dtype, c.label, name);
        return;
      }
      double err = 0;
      if (check) {
        CK(cudaDeviceSynchronize());
        err = rel_err(to_host(p, C1), ref);
      }
      const bool bad = check && !(err <= tol);
      if (bad) ++wrong;
      std::printf("%-8s %-26s %-14s %9.2f %8.1f %6.2f %9.2f %6.2f %8.2f %9.1e%s\n", c.dtype, c.label, name, t.gpu_us,
                  p.flops / (t.gpu_us * 1e-6) / 1e12, base.gpu_us / t.gpu_us, t.stream_us,
                  base.stream_us / t.stream_us, t.host_us, err, bad ? "  WRONG" : "");
      std::fflush(stdout);
    };
    row("today", base, false);
    // Each variant writes C1; it is poisoned first so that a call that writes nothing is caught.
    auto variant = [&](const char* name, const std::function<Status()>& issue) {
      CK(cudaMemset(C1, 0xff, nc * p.esize));
      row(name, time_variant(issue, calls, REPEATS, true), true);
    };
    {  // not a cuBLAS knob: today's call writing 4 outputs in turn (an allocator that does not hand back the same
       // block every call), to see how much the reuse of one L2-resident output block is worth
      void* rot[4] = {C1, nullptr, nullptr, nullptr};
      for (int i = 1; i < 4; ++i) CK(cudaMalloc(&rot[i], nc * p.esize));
      int next = 0;
      variant("today_rot4", [&]() -> Status {
        Status s = B.set_stream(h_today, g_stream);
        void* out = rot[next];
        next = (next + 1) % 4;
        return s ? s : call_ex(h_today, p, out, kGemmDefault);
      });
      for (int i = 1; i < 4; ++i) CK(cudaFree(rot[i]));
    }
    variant("ws32", [&]() -> Status {
      Status s = B.set_stream(h_ws, g_stream);
      if (!s) s = B.set_workspace(h_ws, ws, kWs32);
      return s ? s : call_ex(h_ws, p, C1, kGemmDefault);
    });
    variant("ws4", [&]() -> Status {
      Status s = B.set_stream(h_ws, g_stream);
      if (!s) s = B.set_workspace(h_ws, ws, kWs4);
      return s ? s : call_ex(h_ws, p, C1, kGemmDefault);
    });
    variant("ws0", [&]() -> Status {
      Status s = B.set_stream(h_ws, g_stream);
      if (!s) s = B.set_workspace(h_ws, nullptr, 0);
      return s ? s : call_ex(h_ws, p, C1, kGemmDefault);
    });
    variant("tensor_op", [&]() -> Status {
      Status s = B.set_stream(h_ws, g_stream);  // resets h_ws to the default workspace
      return s ? s : call_ex(h_ws, p, C1, kGemmDefaultTensorOp);
    });
    variant("torch_like", [&]() -> Status {
      Status s = B.set_stream(h_ws, g_stream);
      if (!s) s = B.set_workspace(h_ws, ws, kWs32);
      if (s) return s;
      if (!bf)
        return B.sgemm_sb(h_ws, kOpN, kOpN, int(c.N), int(c.M), int(c.K), &kOne, static_cast<const float*>(p.Bm),
                          int(c.N), p.sb, static_cast<const float*>(p.A), int(c.K), p.sa, &kZero,
                          static_cast<float*>(C1), int(c.N), p.sc, int(c.batch));
      return call_ex(h_ws, p, C1, kGemmDefaultTensorOp);
    });
    if (B.lt) {
      LtPlan pl = lt_plan(p);
      if (!pl.ok) {
        std::printf("%-8s %-26s lt_*: descriptor setup failed\n", c.dtype, c.label);
      } else {
        LtHeuristic hr[8];
        const int got = lt_query(lt, pl, kWs32, 8, hr);
        LtHeuristic h0[1];
        const int got0 = lt_query(lt, pl, 0, 1, h0);
        if (got == 0) {
          std::printf("%-8s %-26s lt_*: the heuristic returned no algorithm\n", c.dtype, c.label);
        } else {
          auto lt_call = [&](const LtAlgo* a, size_t wsz) -> Status {
            return B.lt_matmul(lt, pl.op, &kOne, p.Bm, pl.la, p.A, pl.lb, &kZero, C1, pl.lc, C1, pl.lc, a,
                               wsz ? ws : nullptr, wsz, g_stream);
          };
          variant("lt_heur", [&]() -> Status { return lt_call(&hr[0].algo, kWs32); });
          variant("lt_heur_pc", [&]() -> Status {  // everything per call, as torch's cublasLt path does
            LtPlan q = lt_plan(p);
            LtHeuristic r[1];
            Status s = 1;
            if (q.ok && lt_query(lt, q, kWs32, 1, r) == 1)
              s = B.lt_matmul(lt, q.op, &kOne, p.Bm, q.la, p.A, q.lb, &kZero, C1, q.lc, C1, q.lc, &r[0].algo, ws,
                              kWs32, g_stream);
            lt_free(q);
            return s;
          });
          if (got0 > 0) variant("lt_heur_ws0", [&]() -> Status { return lt_call(&h0[0].algo, 0); });
          // the fastest of the first 8 by GPU time (fewer repeats), then timed in full
          int best = -1;
          double best_us = 1e30;
          for (int i = 0; i < got; ++i) {
            if (hr[i].state != 0) continue;
            const Timing t = time_variant([&]() { return lt_call(&hr[i].algo, kWs32); }, calls, 5, false);
            if (!t.failed && t.gpu_us < best_us) {
              best_us = t.gpu_us;
              best = i;
            }
          }
          if (best >= 0) {
            char name[32];
            std::snprintf(name, sizeof(name), "lt_best8(#%d)", best);
            variant(name, [&]() -> Status { return lt_call(&hr[best].algo, kWs32); });
          }
          std::printf("%-8s %-26s (heuristic: %d algorithms, workspace of the first %zu bytes)\n", c.dtype, c.label,
                      got, hr[0].workspaceSize);
        }
      }
      lt_free(pl);
    }
    CK(cudaFree(p.A));
    CK(cudaFree(p.Bm));
    CK(cudaFree(C0));
    CK(cudaFree(C1));
  }
  CK(cudaFree(ws));
  std::printf("\n%s\n", wrong ? "SOME VARIANTS ARE WRONG (see WRONG above)" : "all variants agree with today's call");
  return wrong ? 2 : 0;
}
