// Test helpers for the fabric's plain test executables (no GoogleTest: they also run on machines that
// have none). CHECK records a FAIL line and keeps going; finish() prints the summary and returns the exit
// code: 0 all passed, 1 any failed. need_gpus(n) exits with kNeedGpu (77, CTest SKIP_RETURN_CODE) when
// fewer than n GPUs are visible: "not run", never a pass. run_case(name, fn) runs one case and turns an
// unexpected exception into a FAIL line so the remaining cases still run.
//
// Ordering: the Fabric enqueues on its own NON-BLOCKING streams, which do not wait for the legacy default
// stream. DeviceBuffer's upload / fill_zero / download therefore run on the buffer's own device and return
// only when the data is in place (a pageable cudaMemcpy H2D may return before its DMA lands, and
// cudaMemset is asynchronous), so a fabric op issued afterwards never races the setup.
#pragma once
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "vbt/fabric/fabric.h"

namespace fabric_test {

inline constexpr int kNeedGpu = 77;
inline int g_failures = 0;
inline int g_checks = 0;

inline void set_env_defaults() {
  // NVLink multicast stays off for NCCL and anything else in this process.
  setenv("NCCL_NVLS_ENABLE", "0", 1);
  setenv("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1", 1);
  setenv("NVSHMEM_DISABLE_NVLS", "1", 1);
}

inline void need_gpus(const char* test, int n) {
  const int have = vbt::fabric::visible_device_count();
  if (have < n) {
    std::printf("NEEDGPU %s: needs %d CUDA GPU(s), %d visible: not run\n", test, n, have);
    std::fflush(stdout);
    std::exit(kNeedGpu);
  }
}

inline void check(bool ok, const std::string& what) {
  ++g_checks;
  if (ok) {
    std::printf("PASS %s\n", what.c_str());
  } else {
    ++g_failures;
    std::printf("FAIL %s\n", what.c_str());
  }
  std::fflush(stdout);
}

inline int finish(const char* test) {
  std::printf("SUMMARY %s: %d checks, %d failed\n", test, g_checks, g_failures);
  return g_failures == 0 && g_checks > 0 ? 0 : 1;
}

// Runs one test case; an exception escaping it is a FAIL of that case, not an abort of the executable.
template <class F>
void run_case(const std::string& what, F&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    check(false, what + " (unexpected exception: " + e.what() + ")");
  } catch (...) {
    check(false, what + " (unexpected non-standard exception)");
  }
}

// Runs fn, expecting a FabricError of `kind`; prints the message.
template <class F>
void expect_error(vbt::fabric::FabricErrorKind kind, const std::string& what, F&& fn) {
  try {
    fn();
    check(false, what + " (no error raised)");
  } catch (const vbt::fabric::FabricError& e) {
    const bool ok = e.kind() == kind;
    check(ok, what + " -> " + e.what());
  } catch (const std::exception& e) {
    check(false, what + " (wrong exception: " + e.what() + ")");
  }
}

inline std::vector<float> random_floats(std::size_t n, unsigned seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(gen);
  return v;
}

// Small integers as floats: sums of a few of them are exact in float32, so results compare bitwise.
inline std::vector<float> random_ints(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> d(-1000, 1000);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(d(gen));
  return v;
}

// Sets the current device for a scope and restores the previous one (test-side twin of the fabric's
// internal DeviceScope).
class OnDevice {
 public:
  explicit OnDevice(int device) {
    VBT_FABRIC_CUDA(cudaGetDevice(&prev_));
    VBT_FABRIC_CUDA(cudaSetDevice(device));
  }
  ~OnDevice() { (void)cudaSetDevice(prev_); }
  OnDevice(const OnDevice&) = delete;
  OnDevice& operator=(const OnDevice&) = delete;

 private:
  int prev_ = 0;
};

struct DeviceBuffer {
  float* ptr = nullptr;
  int device = 0;
  std::size_t count = 0;
  DeviceBuffer(int dev, std::size_t n) : device(dev), count(n) {
    OnDevice on(dev);
    VBT_FABRIC_CUDA(cudaMalloc(reinterpret_cast<void**>(&ptr), (n == 0 ? 1 : n) * sizeof(float)));
  }
  ~DeviceBuffer() {
    if (ptr) cudaFree(ptr);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  // Returns once the data is in device memory (see "Ordering" above).
  void upload(const std::vector<float>& h) {
    if (h.empty()) return;
    OnDevice on(device);
    VBT_FABRIC_CUDA(cudaMemcpy(ptr, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice));
    VBT_FABRIC_CUDA(cudaDeviceSynchronize());
  }
  // Zeros the whole buffer and returns once the zeros are in place (cudaMemset alone is asynchronous).
  void fill_zero() {
    if (count == 0) return;
    OnDevice on(device);
    VBT_FABRIC_CUDA(cudaMemset(ptr, 0, count * sizeof(float)));
    VBT_FABRIC_CUDA(cudaDeviceSynchronize());
  }
  // Synchronous: a D2H cudaMemcpy into pageable memory returns only once the copy is complete. It does
  // NOT wait for the fabric's non-blocking streams: call Fabric::synchronize (or sync the op's stream)
  // first.
  std::vector<float> download() const {
    std::vector<float> h(count);
    if (count == 0) return h;
    OnDevice on(device);
    VBT_FABRIC_CUDA(cudaMemcpy(h.data(), ptr, count * sizeof(float), cudaMemcpyDeviceToHost));
    return h;
  }
};

inline bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

// "" when bitwise_equal(got, expect), else a description of the difference for a FAIL line: the
// first mismatching index with both values (and bit patterns), and how many elements differ.
inline std::string mismatch(const std::vector<float>& got, const std::vector<float>& expect) {
  if (got.size() != expect.size()) {
    return " [size mismatch: got " + std::to_string(got.size()) + " elements, expected " +
           std::to_string(expect.size()) + "]";
  }
  std::size_t first = got.size(), differ = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (got[i] != expect[i]) {  // the same test as bitwise_equal
      if (differ == 0) first = i;
      ++differ;
    }
  }
  if (differ == 0) return "";
  std::uint32_t gb = 0, eb = 0;
  std::memcpy(&gb, &got[first], sizeof(float));
  std::memcpy(&eb, &expect[first], sizeof(float));
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                " [first mismatch at index %zu: got %.9g (0x%08x), expected %.9g (0x%08x); %zu of %zu differ]",
                first, static_cast<double>(got[first]), gb, static_cast<double>(expect[first]), eb, differ,
                got.size());
  return buf;
}

// max |a - ref| / (atol + rtol * |ref|) <= 1
inline bool all_close(const std::vector<float>& a, const std::vector<double>& ref, double rtol, double atol,
                      double* worst = nullptr) {
  if (a.size() != ref.size()) return false;
  double w = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return false;
    w = std::max(w, std::abs(a[i] - ref[i]) / (atol + rtol * std::abs(ref[i])));
  }
  if (worst) *worst = w;
  return w <= 1.0;
}

}  // namespace fabric_test
