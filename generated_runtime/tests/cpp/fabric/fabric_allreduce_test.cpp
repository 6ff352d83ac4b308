// Ring all-reduce correctness on every ring 0..N-1 (N = 1..visible GPUs, rings of 2+ need P2P): against
// the host sum (integer-valued floats: exact; random floats: tolerance against float64), against NCCL's
// ncclAllReduce on the same inputs when NCCL loads (otherwise reported NOTRUN), all ranks bitwise equal,
// back-to-back calls, caller streams, and sizes that are tiny or not multiples of N.
#include <memory>
#include <string>

#include "fabric_test_util.h"
#include "vbt/fabric/nccl_loader.h"
#include "vbt/fabric/ring_allreduce.h"

using namespace vbt::fabric;
using fabric_test::check;

namespace {

struct RankData {
  std::vector<std::unique_ptr<fabric_test::DeviceBuffer>> bufs;
  std::vector<float*> ptrs() const {
    std::vector<float*> p;
    for (const auto& b : bufs) p.push_back(b->ptr);
    return p;
  }
};

RankData upload(const std::vector<int>& devs, const std::vector<std::vector<float>>& host) {
  RankData d;
  for (std::size_t r = 0; r < devs.size(); ++r) {
    d.bufs.push_back(std::make_unique<fabric_test::DeviceBuffer>(devs[r], host[r].size()));
    d.bufs.back()->upload(host[r]);
  }
  return d;
}

void sync_all(Fabric& f, const std::vector<int>& devs) {
  for (int d : devs) {
    VBT_FABRIC_CUDA(cudaSetDevice(d));
    VBT_FABRIC_CUDA(cudaDeviceSynchronize());
  }
  (void)f;
}

}  // namespace

int main() {
  fabric_test::set_env_defaults();
  fabric_test::need_gpus("fabric_allreduce_test", 1);
  Fabric f;
  const int ndev = f.device_count();
  f.enable_all_peer_access();
  NcclLibrary nccl;
  if (!nccl.available()) std::printf("NOTRUN comparison with NCCL: %s\n", nccl.reason().c_str());

  for (int n = 1; n <= ndev; ++n) {
    std::vector<int> devs;
    for (int d = 0; d < n; ++d) devs.push_back(d);
    bool ring_ok = true;
    for (int r = 0; r < n && n > 1; ++r) ring_ok = ring_ok && f.peer_enabled(devs[(r + 1) % n], devs[r]);
    if (!ring_ok) {
      std::printf("NOTRUN ring of %d devices: some neighbour pair lacks peer access\n", n);
      continue;
    }
    RingAllReduce ring(f, devs);
    const bool with_nccl = nccl.available();
    if (with_nccl) nccl.init_comms(devs);
    const std::string tag = "N=" + std::to_string(n);

    std::vector<std::size_t> sizes = {1, 2, 3, 4, 5, 7, 16, 17, 1000, 4097, 65536 + 3, (1u << 22) + 1,
                                      (1u << 24) + 5};
    if (n > 1) {
      sizes.push_back(static_cast<std::size_t>(n - 1));
      sizes.push_back(static_cast<std::size_t>(4 * n + 1));
    }
    for (std::size_t count : sizes) {
      const std::string what = tag + " count=" + std::to_string(count);
      // Integer-valued: exact.
      std::vector<std::vector<float>> hi(n);
      std::vector<float> isum(count, 0.0f);
      for (int r = 0; r < n; ++r) {
        hi[r] = fabric_test::random_ints(count, 1000u * r + static_cast<unsigned>(count));
        for (std::size_t i = 0; i < count; ++i) isum[i] += hi[r][i];
      }
      RankData di = upload(devs, hi);
      ring.run(di.ptrs(), count);
      sync_all(f, devs);
      bool exact = true;
      for (int r = 0; r < n; ++r) exact = exact && fabric_test::bitwise_equal(di.bufs[r]->download(), isum);
      check(exact, "ring all-reduce, integer-valued, equals the host sum exactly on every rank, " + what);

      // Random floats: tolerance against float64, identical bits across ranks, and against NCCL.
      std::vector<std::vector<float>> hf(n);
      std::vector<double> fsum(count, 0.0);
      for (int r = 0; r < n; ++r) {
        hf[r] = fabric_test::random_floats(count, 7000u * r + 13u + static_cast<unsigned>(count));
        for (std::size_t i = 0; i < count; ++i) fsum[i] += hf[r][i];
      }
      RankData df = upload(devs, hf);
      ring.run(df.ptrs(), count);
      sync_all(f, devs);
      const auto r0 = df.bufs[0]->download();
      double worst = 0;
      const bool close = fabric_test::all_close(r0, fsum, 1e-5, 1e-6 * n, &worst);
      bool same = true;
      for (int r = 1; r < n; ++r) same = same && fabric_test::bitwise_equal(df.bufs[r]->download(), r0);
      check(close, "ring all-reduce, random floats, within tolerance of the float64 sum (worst " +
                       std::to_string(worst) + "), " + what);
      check(same, "ring all-reduce leaves identical bits on every rank, " + what);

      if (with_nccl) {
        RankData dn = upload(devs, hf);
        std::vector<cudaStream_t> streams;
        for (int d : devs) streams.push_back(f.stream(d));
        nccl.allreduce_sum(dn.ptrs(), count, streams);
        sync_all(f, devs);
        const auto nr = dn.bufs[0]->download();
        double wn = 0, wo = 0;
        const bool nccl_ref = fabric_test::all_close(nr, fsum, 1e-5, 1e-6 * n, &wn);
        std::vector<double> nd(nr.begin(), nr.end());
        const bool vs = fabric_test::all_close(r0, nd, 2e-5, 2e-6 * n, &wo);
        check(nccl_ref && vs, "ring all-reduce matches ncclAllReduce on the same inputs (worst " +
                                  std::to_string(wo) + "; NCCL vs float64 " + std::to_string(wn) + "), " + what);
        RankData dni = upload(devs, hi);
        nccl.allreduce_sum(dni.ptrs(), count, streams);
        sync_all(f, devs);
        check(fabric_test::bitwise_equal(dni.bufs[0]->download(), di.bufs[0]->download()),
              "integer-valued: ring and NCCL agree bitwise, " + what);
      }
    }

    // Back-to-back calls on caller-made streams: sum, then the sum of the sums (n * sum), exact for ints.
    {
      const std::size_t count = 300007;
      std::vector<std::vector<float>> hi(n);
      std::vector<float> isum(count, 0.0f);
      for (int r = 0; r < n; ++r) {
        hi[r] = fabric_test::random_ints(count, 4242u + r);
        for (std::size_t i = 0; i < count; ++i) isum[i] += hi[r][i];
      }
      std::vector<float> expect(count);
      for (std::size_t i = 0; i < count; ++i) expect[i] = isum[i] * static_cast<float>(n);
      RankData d = upload(devs, hi);
      std::vector<cudaStream_t> streams(n);
      for (int r = 0; r < n; ++r) {
        VBT_FABRIC_CUDA(cudaSetDevice(devs[r]));
        VBT_FABRIC_CUDA(cudaStreamCreateWithFlags(&streams[r], cudaStreamNonBlocking));
      }
      ring.run(d.ptrs(), count, streams);
      ring.run(d.ptrs(), count, streams);
      for (int r = 0; r < n; ++r) VBT_FABRIC_CUDA(cudaStreamSynchronize(streams[r]));
      bool ok = true;
      for (int r = 0; r < n; ++r) ok = ok && fabric_test::bitwise_equal(d.bufs[r]->download(), expect);
      check(ok, "two back-to-back ring all-reduces on caller streams give n * sum on every rank, " + tag);
      for (int r = 0; r < n; ++r) VBT_FABRIC_CUDA(cudaStreamDestroy(streams[r]));
    }
    if (with_nccl) nccl.destroy_comms();
  }
  return fabric_test::finish("fabric_allreduce_test");
}
