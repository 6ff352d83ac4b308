// Cross-device ops through peer access (needs 2 GPUs with P2P between devices 0 and 1): peer copies in
// both directions (fabric stream and a caller stream), adds whose operands live on the other device, and
// the per-pair stats and snapshots they leave, all against host-computed results. Setup (upload, zeroing)
// completes on the buffer's own device before each fabric op, whose non-blocking stream would not wait
// for it (see fabric_test_util.h); a failed comparison prints the first mismatching index and values.
#include <string>

#include "fabric_test_util.h"

using namespace vbt::fabric;
using fabric_test::check;

int main() {
  fabric_test::set_env_defaults();
  fabric_test::need_gpus("fabric_peer_ops_test", 2);
  Fabric f;
  if (!f.can_access_peer(0, 1) || !f.can_access_peer(1, 0)) {
    std::printf("NEEDGPU fabric_peer_ops_test: devices 0 and 1 have no peer access both ways: not run\n");
    return fabric_test::kNeedGpu;
  }
  f.enable_peer_access(0, 1);
  f.enable_peer_access(1, 0);

  std::uint64_t bytes01 = 0, bytes10 = 0, copies = 0;
  for (std::size_t count : {std::size_t{1}, std::size_t{7}, std::size_t{4096 + 3}, std::size_t{1} << 22}) {
    for (int dir = 0; dir < 2; ++dir) {
      const int src_dev = dir, dst_dev = 1 - dir;
      const std::string what = "peer copy " + std::to_string(src_dev) + " -> " + std::to_string(dst_dev) + ", " +
                               std::to_string(count) + " floats";
      fabric_test::run_case(what, [&] {
        const auto h = fabric_test::random_floats(count, 3 + dir + static_cast<unsigned>(count));
        fabric_test::DeviceBuffer src(src_dev, count), dst(dst_dev, count);
        src.upload(h);
        // Was a bare cudaMemset here: asynchronous, on the legacy stream of the CURRENT device (0), so for
        // 0 -> 1 it zeroed device 1's dst over the peer link concurrently with the fabric's copy on device
        // 1's non-blocking stream, and for 16 MiB it finished after the copy (zeros in dst).
        dst.fill_zero();
        f.copy(dst.ptr, dst_dev, src.ptr, src_dev, count * sizeof(float));
        (dir == 0 ? bytes01 : bytes10) += count * sizeof(float);
        ++copies;
        f.synchronize();
        const auto got = dst.download();
        check(fabric_test::bitwise_equal(got, h), what + fabric_test::mismatch(got, h));
      });
    }
  }
  fabric_test::run_case("peer copy 1 -> 0 on a caller stream", [&] {  // a caller-made stream of the dst device
    const std::size_t count = 12345;
    const auto h = fabric_test::random_floats(count, 555);
    fabric_test::DeviceBuffer src(1, count), dst(0, count);
    src.upload(h);
    cudaStream_t s = nullptr;
    VBT_FABRIC_CUDA(cudaSetDevice(0));
    VBT_FABRIC_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    f.copy(dst.ptr, 0, src.ptr, 1, count * sizeof(float), s);
    bytes10 += count * sizeof(float);
    ++copies;
    VBT_FABRIC_CUDA(cudaStreamSynchronize(s));
    VBT_FABRIC_CUDA(cudaStreamDestroy(s));
    const auto got = dst.download();
    check(fabric_test::bitwise_equal(got, h), "peer copy 1 -> 0 on a caller stream" + fabric_test::mismatch(got, h));
  });

  std::uint64_t adds = 0;
  for (std::size_t count : {std::size_t{1}, std::size_t{5}, std::size_t{100003}, std::size_t{1} << 22}) {
    for (std::size_t offset : {std::size_t{0}, std::size_t{1}}) {
      fabric_test::run_case("add, " + std::to_string(count) + " floats, offset " + std::to_string(offset), [&] {
        const auto ha = fabric_test::random_floats(count + offset, 61 + static_cast<unsigned>(count));
        const auto hb = fabric_test::random_floats(count + offset, 67 + static_cast<unsigned>(count));
        std::vector<float> expect(count);
        for (std::size_t i = 0; i < count; ++i) expect[i] = ha[i + offset] + hb[i + offset];
        // (a) out and a on device 1, b on device 0.  (b) out on device 0, both operands on device 1.
        fabric_test::DeviceBuffer a1(1, count + offset), b0(0, count + offset), out1(1, count + offset);
        fabric_test::DeviceBuffer b1(1, count + offset), out0(0, count + offset);
        a1.upload(ha);
        b0.upload(hb);
        b1.upload(hb);
        f.add(out1.ptr + offset, a1.ptr + offset, b0.ptr + offset, count);
        bytes01 += count * sizeof(float);  // b0 read by device 1
        ++adds;
        f.add(out0.ptr + offset, a1.ptr + offset, b1.ptr + offset, count);
        bytes10 += 2 * count * sizeof(float);  // a1 and b1 read by device 0
        ++adds;
        f.synchronize();
        auto g1 = out1.download();
        auto g0 = out0.download();
        const std::vector<float> r1(g1.begin() + offset, g1.end()), r0(g0.begin() + offset, g0.end());
        check(fabric_test::bitwise_equal(r1, expect), "add on device 1 reading device 0, " + std::to_string(count) +
                                                          " floats, offset " + std::to_string(offset) +
                                                          fabric_test::mismatch(r1, expect));
        check(fabric_test::bitwise_equal(r0, expect), "add on device 0 reading both operands from device 1, " +
                                                          std::to_string(count) + " floats, offset " +
                                                          std::to_string(offset) + fabric_test::mismatch(r0, expect));
      });
    }
  }

  const FabricStats st = f.stats();
  const auto p01 = st.per_pair.count({0, 1}) ? st.per_pair.at({0, 1}).bytes : 0;
  const auto p10 = st.per_pair.count({1, 0}) ? st.per_pair.at({1, 0}).bytes : 0;
  check(p01 == bytes01 && p10 == bytes10, "per-pair bytes: 0->1 " + std::to_string(p01) + " (expect " +
                                              std::to_string(bytes01) + "), 1->0 " + std::to_string(p10) +
                                              " (expect " + std::to_string(bytes10) + ")");
  check(st.copies == copies && st.adds == adds && st.failures == 0, "op counters: copies, adds, no failures");
  const auto snaps = f.snapshots();
  bool ok = snaps.size() == copies + adds;
  std::size_t cross = 0;
  for (const auto& s : snaps) {
    ok = ok && s.completed && s.elapsed_ms >= 0.0f;
    cross += s.src_device != s.dst_device;
  }
  check(ok && cross == copies + adds, "every op has a completed timed snapshot naming two devices");
  return fabric_test::finish("fabric_peer_ops_test");
}
