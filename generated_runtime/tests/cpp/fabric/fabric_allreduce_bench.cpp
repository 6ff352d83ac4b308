// Benchmark (not a test): our ring all-reduce against NCCL's ncclAllReduce, float32 sum, in place, on
// the ring of all visible GPUs, for 1 KiB .. 256 MiB (powers of two), plus a synthetic weak-scaling step.
// Writes a JSON document to argv[1] (and a table to stdout); exit 77 without a GPU.
//
// Timing: host wall clock around a batch of `iters` back-to-back calls ended by synchronising every
// device, divided by iters; the median of `reps` batches. The same harness times both implementations.
// algbw = bytes / t; busbw = algbw * 2 (N - 1) / N (the traffic each link carries in a ring, as NCCL's
// tests report it).
// Scaling (synthetic, not a training workload): one "step" per GPU = a fixed memory-bound compute
// (kComputeLaunches elementwise adds over a 64 MiB buffer) followed by the all-reduce of a 64 MiB
// gradient. Weak scaling: every GPU does the same work, so throughput(N) = N / t(N) and efficiency =
// throughput(N) / (N * throughput(1)) = t(1) / t(N); t(1) has no all-reduce (a one-rank all-reduce is the
// identity).
#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>

#include "../../../src/vbt/fabric/kernels.h"
#include "fabric_test_util.h"
#include "vbt/fabric/nccl_loader.h"
#include "vbt/fabric/ring_allreduce.h"

using namespace vbt::fabric;

namespace {

constexpr int kComputeLaunches = 40;
constexpr std::size_t kGradBytes = std::size_t{64} << 20;

void sync_all(const std::vector<int>& devs) {
  for (int d : devs) {
    VBT_FABRIC_CUDA(cudaSetDevice(d));
    VBT_FABRIC_CUDA(cudaDeviceSynchronize());
  }
}

double median_seconds_per_call(const std::vector<int>& devs, int iters, int reps, const std::function<void()>& fn) {
  for (int i = 0; i < 3; ++i) fn();  // warm-up
  sync_all(devs);
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto a = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) fn();
    sync_all(devs);
    const auto b = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double>(b - a).count() / iters);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::string quote_free(std::string s) {
  for (char& c : s) {
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) c = '\'';
  }
  return s;
}

std::string fmt(double v) {  // negative = not measured -> null
  if (v < 0) return "null";
  std::ostringstream os;
  os.precision(6);
  os << v;
  return os.str();
}

}  // namespace

int main(int argc, char** argv) {
  fabric_test::set_env_defaults();
  fabric_test::need_gpus("fabric_allreduce_bench", 1);
  const std::string out_path = argc > 1 ? argv[1] : "fabric_bench.json";
  Fabric f;
  const int ndev = f.device_count();
  f.enable_all_peer_access();
  NcclLibrary nccl;
  std::vector<int> all;
  for (int d = 0; d < ndev; ++d) all.push_back(d);
  bool ring_possible = true;
  for (int r = 0; r < ndev && ndev > 1; ++r) ring_possible = ring_possible && f.peer_enabled((r + 1) % ndev, r);

  // Buffers: 256 MiB per device (the largest size), plus a compute buffer triple for the scaling step.
  const std::size_t max_bytes = std::size_t{256} << 20;
  std::vector<float*> buf(ndev), work_a(ndev), work_b(ndev);
  for (int d = 0; d < ndev; ++d) {
    VBT_FABRIC_CUDA(cudaSetDevice(d));
    VBT_FABRIC_CUDA(cudaMalloc(reinterpret_cast<void**>(&buf[d]), max_bytes));
    VBT_FABRIC_CUDA(cudaMemset(buf[d], 0, max_bytes));  // zeros stay zeros: no overflow over repeats
    VBT_FABRIC_CUDA(cudaMalloc(reinterpret_cast<void**>(&work_a[d]), kGradBytes));
    VBT_FABRIC_CUDA(cudaMalloc(reinterpret_cast<void**>(&work_b[d]), kGradBytes));
    VBT_FABRIC_CUDA(cudaMemset(work_a[d], 0, kGradBytes));
    VBT_FABRIC_CUDA(cudaMemset(work_b[d], 0, kGradBytes));
  }
  std::vector<cudaStream_t> streams;
  for (int d : all) streams.push_back(f.stream(d));

  std::ostringstream js;
  js << "{\"devices\": " << ndev << ", \"topology\": " << f.topology().to_json()
     << ", \"timing\": \"host wall clock, median of batches, per call\", \"nccl\": {\"available\": "
     << (nccl.available() ? "true" : "false") << ", \"path\": \"" << quote_free(nccl.path()) << "\", \"version\": "
     << nccl.version() << ", \"reason\": \"" << quote_free(nccl.reason()) << "\"}, \"allreduce\": [";
  std::printf("ring of %d GPU(s); NCCL %s\n", ndev,
              nccl.available() ? (nccl.path() + " v" + std::to_string(nccl.version())).c_str()
                               : ("not available: " + nccl.reason()).c_str());
  std::printf("%12s %12s %12s %12s %12s %12s\n", "bytes", "ours_us", "ours_busbw", "nccl_us", "nccl_busbw",
              "ours/nccl");

  const double busfactor = ndev > 1 ? 2.0 * (ndev - 1) / ndev : 1.0;
  std::unique_ptr<RingAllReduce> ring;
  if (ring_possible && ndev >= 2) ring = std::make_unique<RingAllReduce>(f, all);
  if (!ring_possible) std::printf("ring not possible: some neighbour pair lacks peer access\n");
  if (nccl.available()) nccl.init_comms(all);
  bool first = true;
  if (ndev < 2) std::printf("all-reduce sweep not run: it needs 2+ GPUs (one rank is the identity)\n");
  for (std::size_t bytes = 1024; ndev >= 2 && bytes <= max_bytes; bytes *= 2) {
    const std::size_t count = bytes / sizeof(float);
    const int iters = static_cast<int>(std::clamp<std::size_t>((std::size_t{64} << 20) / bytes, 2, 50));
    const int reps = 7;
    double ours = -1, theirs = -1;
    if (ring) ours = median_seconds_per_call(all, iters, reps, [&] { ring->run(buf, count, streams); });
    if (nccl.available()) {
      theirs = median_seconds_per_call(all, iters, reps, [&] { nccl.allreduce_sum(buf, count, streams); });
    }
    auto busbw = [&](double t) { return t > 0 ? bytes / t * busfactor / 1e9 : -1.0; };
    std::printf("%12zu %12.2f %12.2f %12.2f %12.2f %12.3f\n", bytes, ours * 1e6, busbw(ours), theirs * 1e6,
                busbw(theirs), (ours > 0 && theirs > 0) ? theirs / ours : -1.0);
    js << (first ? "" : ", ") << "{\"bytes\": " << bytes << ", \"ours_us\": " << fmt(ours * 1e6)
       << ", \"ours_busbw_gbps\": " << fmt(busbw(ours)) << ", \"nccl_us\": " << fmt(theirs * 1e6)
       << ", \"nccl_busbw_gbps\": " << fmt(busbw(theirs)) << ", \"ours_speed_vs_nccl\": "
       << fmt((ours > 0 && theirs > 0) ? theirs / ours : -1.0) << "}";
    first = false;
  }
  js << "], \"scaling\": {\"kind\": \"synthetic weak scaling: " << kComputeLaunches
     << " elementwise adds over 64 MiB then all-reduce of a 64 MiB gradient, per GPU\", \"points\": [";
  if (nccl.available()) nccl.destroy_comms();

  // Synthetic weak scaling over rings 0..n-1.
  const std::size_t gcount = kGradBytes / sizeof(float);
  double t1 = -1;
  first = true;
  for (int n = 1; n <= ndev; ++n) {
    std::vector<int> devs(all.begin(), all.begin() + n);
    std::vector<float*> grads(buf.begin(), buf.begin() + n);
    std::vector<cudaStream_t> ss(streams.begin(), streams.begin() + n);
    auto compute = [&] {
      for (int r = 0; r < n; ++r) {
        VBT_FABRIC_CUDA(cudaSetDevice(devs[r]));
        for (int k = 0; k < kComputeLaunches; ++k) {
          VBT_FABRIC_CUDA(detail::launch_add(work_a[r], work_a[r], work_b[r], gcount, ss[r]));
        }
      }
    };
    bool ring_n = true;
    for (int r = 0; r < n && n > 1; ++r) ring_n = ring_n && f.peer_enabled(devs[(r + 1) % n], devs[r]);
    std::unique_ptr<RingAllReduce> rn;
    if (ring_n) rn = std::make_unique<RingAllReduce>(f, devs);
    double t_ours = -1, t_nccl = -1;
    if (rn) {
      t_ours = median_seconds_per_call(devs, 5, 5, [&] {
        compute();
        rn->run(grads, gcount, ss);
      });
    }
    if (nccl.available()) {
      nccl.init_comms(devs);
      t_nccl = median_seconds_per_call(devs, 5, 5, [&] {
        compute();
        nccl.allreduce_sum(grads, gcount, ss);
      });
      nccl.destroy_comms();
    }
    if (n == 1) t1 = t_ours > 0 ? t_ours : t_nccl;
    const double e_ours = (t1 > 0 && t_ours > 0) ? t1 / t_ours : -1;
    const double e_nccl = (t1 > 0 && t_nccl > 0) ? t1 / t_nccl : -1;
    std::printf("scaling N=%d: step ours %.3f ms (efficiency %.3f), nccl %.3f ms (efficiency %.3f)\n", n,
                t_ours * 1e3, e_ours, t_nccl * 1e3, e_nccl);
    js << (first ? "" : ", ") << "{\"gpus\": " << n << ", \"step_ms_ours\": " << fmt(t_ours * 1e3)
       << ", \"step_ms_nccl\": " << fmt(t_nccl * 1e3) << ", \"efficiency_ours\": " << fmt(e_ours)
       << ", \"efficiency_nccl\": " << fmt(e_nccl) << "}";
    first = false;
  }
  js << "]}}\n";
  std::ofstream(out_path) << js.str();
  std::printf("wrote %s\n", out_path.c_str());
  for (int d = 0; d < ndev; ++d) {
    cudaSetDevice(d);
    cudaFree(buf[d]);
    cudaFree(work_a[d]);
    cudaFree(work_b[d]);
  }
  return 0;
}
