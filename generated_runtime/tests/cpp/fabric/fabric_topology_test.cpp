// Topology discovery on the real machine: the Fabric's matrix agrees with the CUDA runtime queried
// directly, enabling peer access turns on exactly the supported pairs, and every enabled pair really
// works (a kernel on the accessor reads the owner's memory; checked against the host sum).
#include <string>

#include "fabric_test_util.h"

using namespace vbt::fabric;
using fabric_test::check;

int main() {
  fabric_test::set_env_defaults();
  fabric_test::need_gpus("fabric_topology_test", 1);
  int n = 0;
  VBT_FABRIC_CUDA(cudaGetDeviceCount(&n));
  Fabric f;
  const Topology& t = f.topology();
  std::printf("%s", t.to_string().c_str());
  std::printf("TOPOLOGY_JSON %s\n", t.to_json().c_str());
  check(t.device_count() == n, "device count " + std::to_string(t.device_count()) + " == cudaGetDeviceCount " +
                                   std::to_string(n));
  for (int d = 0; d < n; ++d) {
    cudaDeviceProp p{};
    VBT_FABRIC_CUDA(cudaGetDeviceProperties(&p, d));
    check(t.devices[d].name == p.name && !t.devices[d].name.empty() && t.devices[d].cc_major == p.major &&
              t.devices[d].total_memory_bytes == p.totalGlobalMem,
          "device " + std::to_string(d) + " properties: " + t.devices[d].name);
  }
  int supported = 0;
  bool matrix_ok = true;
  for (int a = 0; a < n; ++a) {
    for (int b = 0; b < n; ++b) {
      if (a == b) continue;
      int can = 0;
      VBT_FABRIC_CUDA(cudaDeviceCanAccessPeer(&can, a, b));
      matrix_ok = matrix_ok && (t.links[a][b].can_access == (can != 0)) &&
                  (can == 0 || t.links[a][b].performance_rank >= 0);
      supported += can != 0;
    }
  }
  check(matrix_ok, "peer matrix equals cudaDeviceCanAccessPeer for every ordered pair");
  const int enabled = f.enable_all_peer_access();
  check(enabled == supported, "enable_all_peer_access enabled " + std::to_string(enabled) + " of " +
                                  std::to_string(supported) + " supported pairs");
  bool flags_ok = true;
  for (int a = 0; a < n; ++a) {
    for (int b = 0; b < n; ++b) flags_ok = flags_ok && f.peer_enabled(a, b) == f.can_access_peer(a, b);
  }
  check(flags_ok, "peer_enabled(a, b) == can_access_peer(a, b) after enabling all");

  // Every enabled pair, used for real: out and x on the accessor, y on the owner.
  const std::size_t count = 4099;
  for (int a = 0; a < n; ++a) {
    for (int b = 0; b < n; ++b) {
      if (a == b || !f.peer_enabled(a, b)) continue;
      const auto hx = fabric_test::random_floats(count, 11 + a);
      const auto hy = fabric_test::random_floats(count, 23 + b);
      fabric_test::DeviceBuffer x(a, count), y(b, count), out(a, count);
      x.upload(hx);
      y.upload(hy);
      f.add(out.ptr, x.ptr, y.ptr, count);
      f.synchronize();
      std::vector<float> expect(count);
      for (std::size_t i = 0; i < count; ++i) expect[i] = hx[i] + hy[i];
      check(fabric_test::bitwise_equal(out.download(), expect),
            "device " + std::to_string(a) + " reads device " + std::to_string(b) + " through peer access");
    }
  }
  return fabric_test::finish("fabric_topology_test");
}
