// Error paths: device indices out of range, pointers that are not device memory of the named device,
// malformed rings, and peer access that is impossible (pairs the topology lacks, pairs denied through
// FabricOptions::deny_peer, pairs not yet enabled). Each must raise FabricError of the right kind and
// count as a failure in the stats; none may crash or enqueue work.
#include <string>

#include "fabric_test_util.h"
#include "vbt/fabric/ring_allreduce.h"

using namespace vbt::fabric;
using fabric_test::check;
using fabric_test::expect_error;
using K = FabricErrorKind;

int main() {
  fabric_test::set_env_defaults();
  fabric_test::need_gpus("fabric_errors_test", 1);
  Fabric f;
  const int n = f.device_count();
  fabric_test::DeviceBuffer d0(0, 64), e0(0, 64);
  std::vector<float> host(64, 1.0f);

  expect_error(K::DeviceIndex, "copy to device index == device count",
               [&] { f.copy(d0.ptr, n, e0.ptr, 0, 16); });
  expect_error(K::DeviceIndex, "copy from device index -1", [&] { f.copy(d0.ptr, 0, e0.ptr, -1, 16); });
  expect_error(K::DeviceIndex, "enable_peer_access to an absent device", [&] { f.enable_peer_access(0, n + 3); });
  expect_error(K::DeviceIndex, "stream of an absent device", [&] { (void)f.stream(n); });
  expect_error(K::InvalidArgument, "copy from a host pointer",
               [&] { f.copy(d0.ptr, 0, host.data(), 0, 16); });
  expect_error(K::InvalidArgument, "copy to a null pointer", [&] { f.copy(nullptr, 0, e0.ptr, 0, 16); });
  expect_error(K::InvalidArgument, "add reading a host pointer",
               [&] { f.add(d0.ptr, host.data(), e0.ptr, 16); });
  expect_error(K::InvalidArgument, "ring with a repeated device", [&] { RingAllReduce r(f, {0, 0}); });
  expect_error(K::DeviceIndex, "ring with an absent device", [&] { RingAllReduce r(f, {0, n}); });
  expect_error(K::InvalidArgument, "ring run with the wrong number of buffers", [&] {
    RingAllReduce r(f, {0});
    r.run({d0.ptr, e0.ptr}, 16);
  });
  expect_error(K::DeviceIndex, "FabricOptions::deny_peer naming an absent device", [&] {
    FabricOptions o;
    o.deny_peer = {{0, n}};
    Fabric g(o);
  });
  const std::uint64_t expected_failures = 5;  // the 4 copies and 1 add above (rings, streams, peers are not ops)
  check(f.stats().failures == expected_failures && f.stats().copies == 0 && f.stats().adds == 0,
        "failed ops are counted as failures (" + std::to_string(f.stats().failures) + ") and not as ops");

  // Pairs the hardware lacks: enabling them must say so.
  int missing = 0;
  for (int a = 0; a < n; ++a) {
    for (int b = 0; b < n; ++b) {
      if (a == b || f.topology().links[a][b].can_access) continue;
      ++missing;
      expect_error(K::PeerUnsupported, "enable_peer_access(" + std::to_string(a) + ", " + std::to_string(b) +
                                           ") on a pair without P2P",
                   [&] { f.enable_peer_access(a, b); });
    }
  }
  if (missing == 0) std::printf("INFO every ordered pair of the %d device(s) supports P2P\n", n);

  if (n < 2) {
    std::printf("NOTRUN peer-unsupported paths between two devices: need 2 GPUs, 1 visible\n");
  } else {
    fabric_test::DeviceBuffer d1(1, 64);
    // Supported but not enabled (a fresh Fabric enables nothing by itself).
    Fabric plain;
    if (plain.can_access_peer(1, 0)) {
      expect_error(K::PeerUnsupported, "peer copy 0 -> 1 before enable_peer_access",
                   [&] { plain.copy(d1.ptr, 1, d0.ptr, 0, 64); });
      expect_error(K::PeerUnsupported, "add on device 1 reading device 0 before enable_peer_access",
                   [&] { plain.add(d1.ptr, d1.ptr, d0.ptr, 16); });
    }
    // Denied by policy: behaves like hardware without P2P.
    FabricOptions o;
    o.deny_peer = {{0, 1}, {1, 0}};
    Fabric denied(o);
    check(!denied.can_access_peer(0, 1) && !denied.can_access_peer(1, 0) && denied.enable_all_peer_access() >= 0,
          "deny_peer masks the pair in can_access_peer");
    expect_error(K::PeerUnsupported, "enable_peer_access(1, 0) on a denied pair",
                 [&] { denied.enable_peer_access(1, 0); });
    expect_error(K::PeerUnsupported, "peer copy 0 -> 1 on a denied pair",
                 [&] { denied.copy(d1.ptr, 1, d0.ptr, 0, 64); });
    expect_error(K::PeerUnsupported, "add on device 1 reading device 0 on a denied pair",
                 [&] { denied.add(d1.ptr, d1.ptr, d0.ptr, 16); });
    expect_error(K::PeerUnsupported, "ring all-reduce over a denied pair",
                 [&] { RingAllReduce r(denied, {0, 1}); });
    expect_error(K::InvalidArgument, "copy naming device 1 for memory of device 0",
                 [&] { denied.copy(d0.ptr, 1, e0.ptr, 0, 16); });
    check(denied.stats().failures == 3, "the denied Fabric counted its failed copy, add and wrong-device copy (" +
                                            std::to_string(denied.stats().failures) + ")");
  }
  return fabric_test::finish("fabric_errors_test");
}
