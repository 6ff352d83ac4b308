// Float GEMMs through cuBLAS (cublas_gemm.h) and the matmul-backend switches of include/vbt/cuda/ops.h.
//
// Note [cuBLAS at run time] (CublasNote): the build never links cuBLAS (CI builds without it). The first float
// matmul dlopens it, trying in order: the file named by $VBT_CUBLAS_LIBRARY; the files Python found in
// site-packages (the pip wheels next to torch: nvidia/cu13/lib, nvidia/cublas/lib; set_cublas_search_paths);
// then "libcublas.so.13", "libcublas.so.12", "libcublas.so" through the loader's search path. The few
// prototypes and enum values used are declared below (facts of the API, from cublas_api.h / library_types.h).
// When none loads, matmuls run on the built-in tiled kernel (reduce_gemm.cu); VBT_CUBLAS=0 (read once) or
// set_cublas_enabled(false) forces that kernel, e.g. to compare the two.
// Math: float32 with CUBLAS_COMPUTE_32F and the handle's default math mode, so no TF32 (torch's default
// allow_tf32=False for matmul); float16 / bfloat16 accumulate in float32; float64 in float64.
// Handles: one per (device, thread), bound to the current stream on every call; a thread's handles go back to
// a pool when it exits and are never destroyed (the driver may be gone at process exit). A thread's first
// matmul on a capturing stream takes the built-in kernel rather than create a handle inside the capture.
// Layout: row-major C = A @ B is column-major C^T = B^T A^T, so cuBLAS gets (B, A) with m = N, n = M; an
// operand that is column-major in memory (a transpose) goes as it is with op T, an operand of neither layout is
// copied by the caller (cublas_layout_ok). A batch that shares B (stride 0) over row-stacked A and C folds into
// one GEMM of batch * M rows.
#include "cublas_gemm.h"

#include <dlfcn.h>
#include <strings.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "vbt/core/error.h"
#include "vbt/cuda/ops.h"

namespace vbt::cuda {
namespace ops {
namespace {

// ---- the slice of the cuBLAS API used here
using cublasHandle_t = void*;  // struct cublasContext*
using cublasStatus_t = int;
constexpr cublasStatus_t kStatusSuccess = 0, kStatusInvalidValue = 7, kStatusNotSupported = 15;
constexpr int kOpN = 0, kOpT = 1;                                // cublasOperation_t
constexpr int kR32F = 0, kR64F = 1, kR16F = 2, kR16BF = 14;      // cudaDataType
constexpr int kCompute32F = 68, kCompute64F = 70;                // cublasComputeType_t
constexpr int kGemmDefault = -1;                                 // cublasGemmAlgo_t
using CreateFn = cublasStatus_t (*)(cublasHandle_t*);
using SetStreamFn = cublasStatus_t (*)(cublasHandle_t, cudaStream_t);
using GetPropertyFn = cublasStatus_t (*)(int type, int* value);  // libraryPropertyType: 0 major, 1 minor, 2 patch
using GemmStridedBatchedExFn = cublasStatus_t (*)(
    cublasHandle_t, int transa, int transb, int m, int n, int k, const void* alpha, const void* A, int Atype, int lda,
    long long strideA, const void* B, int Btype, int ldb, long long strideB, const void* beta, void* C, int Ctype,
    int ldc, long long strideC, int batchCount, int computeType, int algo);

struct Library {
  std::mutex mu;
  std::atomic<bool> tried{false};  // written under mu
  void* so = nullptr;
  std::string path, error;
  std::vector<std::string> search;  // from set_cublas_search_paths
  CreateFn create = nullptr;
  SetStreamFn set_stream = nullptr;
  GetPropertyFn get_property = nullptr;
  GemmStridedBatchedExFn gemm = nullptr;
  std::atomic<bool> ready{false};
};
Library& lib() {
  static Library* l = new Library;  // leaked on purpose: used until exit
  return *l;
}

std::atomic<int> g_enabled{-1};  // -1: not decided yet (VBT_CUBLAS), 0 off, 1 on

bool try_open(Library& L, const std::string& name) {
  void* so = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!so) {
    const char* e = dlerror();  // names the file
    L.error += (L.error.empty() ? "" : "; ") + (e ? std::string(e) : name + ": dlopen failed");
    return false;
  }
  auto create = reinterpret_cast<CreateFn>(dlsym(so, "cublasCreate_v2"));
  auto set_stream = reinterpret_cast<SetStreamFn>(dlsym(so, "cublasSetStream_v2"));
  auto gemm = reinterpret_cast<GemmStridedBatchedExFn>(dlsym(so, "cublasGemmStridedBatchedEx"));
  if (!create || !set_stream || !gemm) {
    L.error += (L.error.empty() ? "" : "; ") + name + ": missing cublasCreate_v2 / cublasSetStream_v2 / "
               "cublasGemmStridedBatchedEx";
    dlclose(so);
    return false;
  }
  L.so = so;
  L.create = create;
  L.set_stream = set_stream;
  L.get_property = reinterpret_cast<GetPropertyFn>(dlsym(so, "cublasGetProperty"));
  L.gemm = gemm;
  char resolved[4096] = {};
  if (dlinfo(so, RTLD_DI_ORIGIN, resolved) == 0 && resolved[0]) {  // the directory it came from
    const char* base = std::strrchr(name.c_str(), '/');
    L.path = std::string(resolved) + "/" + (base ? base + 1 : name.c_str());
  } else {
    L.path = name;
  }
  return true;
}

void load_locked(Library& L) {
  if (L.tried.load()) return;
  L.tried.store(true);
  std::vector<std::string> names;
  if (const char* env = std::getenv("VBT_CUBLAS_LIBRARY"); env && *env) names.emplace_back(env);
  names.insert(names.end(), L.search.begin(), L.search.end());
  for (const char* n : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"}) names.emplace_back(n);
  for (const std::string& n : names)
    if (try_open(L, n)) {
      L.error.clear();
      L.ready.store(true);
      return;
    }
}

Library& loaded() {
  Library& L = lib();
  if (!L.ready.load() && !L.tried.load()) {
    std::lock_guard<std::mutex> lock(L.mu);
    load_locked(L);
  }
  return L;
}

// ---- handles: one per (device, thread), pooled across threads
struct HandlePool {
  std::mutex mu;
  std::vector<std::vector<cublasHandle_t>> free_by_device;
};
HandlePool& pool() {
  static HandlePool* p = new HandlePool;  // leaked on purpose, like the handles
  return *p;
}
struct ThreadHandles {
  std::vector<cublasHandle_t> by_device;
  ~ThreadHandles() {
    HandlePool& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    for (size_t d = 0; d < by_device.size(); ++d) {
      if (!by_device[d]) continue;
      if (p.free_by_device.size() <= d) p.free_by_device.resize(d + 1);
      p.free_by_device[d].push_back(by_device[d]);
    }
  }
};
thread_local ThreadHandles t_handles;

// The calling thread's handle for `device` (the current device), bound to `stream`; nullptr when none can be
// had without creating one inside a stream capture.
cublasHandle_t handle_for(Library& L, int device, cudaStream_t stream) {
  auto& v = t_handles.by_device;
  if (v.size() <= static_cast<size_t>(device)) v.resize(static_cast<size_t>(device) + 1, nullptr);
  cublasHandle_t& h = v[static_cast<size_t>(device)];
  if (!h) {
    {
      HandlePool& p = pool();
      std::lock_guard<std::mutex> lock(p.mu);
      if (p.free_by_device.size() > static_cast<size_t>(device) && !p.free_by_device[device].empty()) {
        h = p.free_by_device[device].back();
        p.free_by_device[device].pop_back();
      }
    }
    if (!h) {
      cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
      if (cudaStreamIsCapturing(stream, &cs) != cudaSuccess) {
        (void)cudaGetLastError();
        return nullptr;
      }
      if (cs != cudaStreamCaptureStatusNone) return nullptr;
      cublasHandle_t nh = nullptr;
      const cublasStatus_t st = L.create(&nh);
      if (st != kStatusSuccess || !nh) {  // unusable here (driver, device): the built-in kernel from now on
        std::lock_guard<std::mutex> lock(L.mu);
        L.ready.store(false);
        L.error = "cublasCreate failed with cuBLAS status " + std::to_string(st) + " (library " + L.path + ")";
        return nullptr;
      }
      h = nh;
    }
  }
  const cublasStatus_t st = L.set_stream(h, stream);
  if (st != kStatusSuccess) throw_error(ErrorKind::Runtime, "matmul: cublasSetStream failed with cuBLAS status ", st);
  return h;
}

struct Operand {
  int op;
  int64_t ld;
};
// The cuBLAS view of a row-major-indexed [rows, cols] operand: op N with ld = row stride when the rows are
// contiguous (the column-major reading of its transpose), op T with ld = column stride when the columns are.
bool operand_of(int64_t rows, int64_t cols, int64_t s_row, int64_t s_col, Operand* o) {
  if ((cols == 1 || s_col == 1) && (rows == 1 || s_row >= std::max<int64_t>(1, cols))) {
    *o = {kOpN, rows == 1 ? std::max<int64_t>(1, cols) : s_row};
    return true;
  }
  if ((rows == 1 || s_row == 1) && (cols == 1 || s_col >= std::max<int64_t>(1, rows))) {
    *o = {kOpT, cols == 1 ? std::max<int64_t>(1, rows) : s_col};
    return true;
  }
  return false;
}
bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

}  // namespace

bool cublas_layout_ok(int64_t rows, int64_t cols, int64_t s_row, int64_t s_col) {
  Operand o;
  return operand_of(rows, cols, s_row, s_col, &o) && fits_int(o.ld);
}

bool cublas_ready() { return cublas_enabled() && loaded().ready.load(); }

bool cublas_gemm(int dtype, const GemmArgs& g, int device, cudaStream_t stream) {
  if (device < 0 || !cublas_ready()) return false;
  Library& L = loaded();
  int dt;
  int compute;
  const float f1 = 1.0f, f0 = 0.0f;
  const double d1 = 1.0, d0 = 0.0;
  const void *alpha = &f1, *beta = &f0;
  switch (dtype) {
    case 6: dt = kR16F; compute = kCompute32F; break;
    case 7: dt = kR16BF; compute = kCompute32F; break;
    case 8: dt = kR32F; compute = kCompute32F; break;
    case 9: dt = kR64F; compute = kCompute64F; alpha = &d1; beta = &d0; break;
    default: return false;
  }
  int64_t batch = g.batch, M = g.M;
  const int64_t N = g.N, K = g.K;
  if (batch == 0 || M == 0 || N == 0) return true;  // nothing to compute
  if (K == 0) return false;                          // the caller fills zeros
  // C must be row-major with rows of N contiguous elements (the caller allocates it so)
  if (!(N == 1 || g.sc_n == 1) || !(M == 1 || g.sc_m >= N)) return false;
  int64_t sc_m = M == 1 ? N : g.sc_m;
  // one GEMM of batch * M rows when B is shared and A, C stack their rows uniformly
  if (batch > 1 && g.sb_b == 0 && (K == 1 || g.sa_k == 1) && g.sa_b == M * g.sa_m && g.sc_b == M * sc_m) {
    M *= batch;
    batch = 1;
  }
  Operand ob, oa;  // cuBLAS's A is our B ([K, N]), its B our A ([M, K])
  if (!operand_of(K, N, g.sb_k, g.sb_n, &ob) || !operand_of(M, K, g.sa_m, g.sa_k, &oa)) return false;
  if (!fits_int(M) || !fits_int(N) || !fits_int(K) || !fits_int(batch) || !fits_int(ob.ld) || !fits_int(oa.ld) ||
      !fits_int(sc_m))
    return false;
  cublasHandle_t h = handle_for(L, device, stream);
  if (!h) return false;
  const cublasStatus_t st =
      L.gemm(h, ob.op, oa.op, int(N), int(M), int(K), alpha, g.B, dt, int(ob.ld), static_cast<long long>(g.sb_b), g.A,
             dt, int(oa.ld), static_cast<long long>(g.sa_b), beta, g.C, dt, int(sc_m), static_cast<long long>(g.sc_b),
             int(batch), compute, kGemmDefault);
  if (st == kStatusNotSupported || st == kStatusInvalidValue) return false;  // e.g. a size this build refuses
  if (st != kStatusSuccess)
    throw_error(ErrorKind::Runtime, "matmul: cublasGemmStridedBatchedEx failed with cuBLAS status ", st, " (M=", g.M,
                " N=", N, " K=", K, " batch=", g.batch, "); VBT_CUBLAS=0 uses the built-in GEMM kernel");
  return true;
}

}  // namespace ops

// ---- the public switches (include/vbt/cuda/ops.h)
bool cublas_enabled() {
  int e = ops::g_enabled.load();
  if (e < 0) {
    const char* v = std::getenv("VBT_CUBLAS");
    const bool off = v && (std::strcmp(v, "0") == 0 || strcasecmp(v, "off") == 0 || strcasecmp(v, "false") == 0 ||
                           strcasecmp(v, "no") == 0);
    e = off ? 0 : 1;
    ops::g_enabled.store(e);
  }
  return e == 1;
}
void set_cublas_enabled(bool on) { ops::g_enabled.store(on ? 1 : 0); }
void set_cublas_search_paths(const std::vector<std::string>& paths) {
  ops::Library& L = ops::lib();
  std::lock_guard<std::mutex> lock(L.mu);
  L.search = paths;
  if (!L.ready.load()) L.tried.store(false);  // a later matmul tries again with these
}
std::string matmul_backend() { return ops::cublas_ready() ? "cublas" : "kernel"; }
std::string cublas_library() {
  ops::Library& L = ops::loaded();
  std::lock_guard<std::mutex> lock(L.mu);
  return L.path;
}
std::string cublas_load_error() {
  ops::Library& L = ops::loaded();
  std::lock_guard<std::mutex> lock(L.mu);
  return L.error;
}
std::string cublas_version() {
  ops::Library& L = ops::loaded();
  if (!L.ready.load() || !L.get_property) return "";
  int v[3] = {0, 0, 0};
  for (int i = 0; i < 3; ++i)
    if (L.get_property(i, &v[i]) != ops::kStatusSuccess) return "";
  return std::to_string(v[0]) + "." + std::to_string(v[1]) + "." + std::to_string(v[2]);
}

}  // namespace vbt::cuda
