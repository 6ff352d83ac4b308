// Fabric checks that need no GPU: the ring plan (chunking and schedule, simulated on the host against a
// direct sum), NCCL loading failure reported as "not available", and device discovery that does not
// throw on a machine without a GPU. Runs everywhere the fabric builds.
#include <cstdlib>
#include <string>

#include "fabric_test_util.h"
#include "vbt/fabric/nccl_loader.h"
#include "vbt/fabric/ring_plan.h"

using namespace vbt::fabric;
using fabric_test::check;

static void check_chunks() {
  const std::size_t counts[] = {0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 1000, 1001, 4097, 65539};
  for (int ranks = 1; ranks <= 8; ++ranks) {
    bool ok = true;
    std::string why;
    for (std::size_t count : counts) {
      std::size_t expect_begin = 0;
      std::size_t biggest = 0;
      for (int c = 0; c < ranks; ++c) {
        const auto [b, e] = ring_chunk(count, ranks, c);
        if (b != expect_begin || e < b || e > count) {
          ok = false;
          why = "count " + std::to_string(count) + " chunk " + std::to_string(c) + " not contiguous";
        }
        if (e < count && e % kChunkAlign != 0) {
          ok = false;
          why = "count " + std::to_string(count) + " chunk " + std::to_string(c) + " end not aligned";
        }
        biggest = std::max(biggest, e - b);
        expect_begin = e;
      }
      if (expect_begin != count) {
        ok = false;
        why = "count " + std::to_string(count) + " not covered";
      }
      // Balanced: no chunk larger than ceil(count / ranks) rounded up to the alignment.
      const std::size_t cap = ((count + ranks - 1) / ranks + kChunkAlign - 1) / kChunkAlign * kChunkAlign;
      if (biggest > cap) {
        ok = false;
        why = "count " + std::to_string(count) + " unbalanced";
      }
    }
    check(ok, "ring_chunk partitions [0,count) into aligned contiguous chunks, ranks=" + std::to_string(ranks) +
                  (ok ? "" : " (" + why + ")"));
  }
}

static void check_schedule() {
  for (int ranks = 2; ranks <= 8; ++ranks) {
    bool ok = true;
    for (int phase = 0; phase < 2; ++phase) {
      for (int s = 0; s + 1 < ranks; ++s) {
        std::vector<int> as_src(ranks, 0), as_dst(ranks, 0);
        for (const RingTransfer& t : ring_step(ranks, s, phase == 0)) {
          as_src[t.src_rank]++;
          as_dst[t.dst_rank]++;
          if (t.dst_rank != (t.src_rank + 1) % ranks) ok = false;
        }
        for (int r = 0; r < ranks; ++r) ok = ok && as_src[r] == 1 && as_dst[r] == 1;
      }
    }
    check(ok, "ring_step: every rank sends once and receives once from its upstream, ranks=" +
                  std::to_string(ranks));
  }
}

static void check_host_allreduce() {
  const std::size_t counts[] = {1, 2, 3, 5, 8, 13, 17, 100, 1001, 4099};
  for (int ranks = 1; ranks <= 8; ++ranks) {
    bool exact = true, close = true, identical = true;
    for (std::size_t count : counts) {
      std::vector<std::vector<float>> ints(ranks), floats(ranks);
      std::vector<float> int_sum(count, 0.0f);
      std::vector<double> float_sum(count, 0.0);
      for (int r = 0; r < ranks; ++r) {
        ints[r] = fabric_test::random_ints(count, 100 + r * 7 + static_cast<unsigned>(count));
        floats[r] = fabric_test::random_floats(count, 900 + r * 5 + static_cast<unsigned>(count));
        for (std::size_t i = 0; i < count; ++i) {
          int_sum[i] += ints[r][i];
          float_sum[i] += floats[r][i];
        }
      }
      ring_allreduce_host(ints);
      ring_allreduce_host(floats);
      for (int r = 0; r < ranks; ++r) {
        exact = exact && fabric_test::bitwise_equal(ints[r], int_sum);
        close = close && fabric_test::all_close(floats[r], float_sum, 1e-5, 1e-6 * ranks);
        identical = identical && fabric_test::bitwise_equal(floats[r], floats[0]);
      }
    }
    const std::string n = std::to_string(ranks);
    check(exact, "host ring plan: integer-valued all-reduce equals the direct sum exactly, ranks=" + n);
    check(close, "host ring plan: float all-reduce within tolerance of the float64 sum, ranks=" + n);
    check(identical, "host ring plan: every rank ends with the same bits, ranks=" + n);
  }
}

static void check_nccl_missing() {
  const char* old = std::getenv("VBT_NCCL_LIBRARY");
  const std::string saved = old ? old : "";
  setenv("VBT_NCCL_LIBRARY", "/nonexistent/vbt/libnccl.so.2", 1);
  {
    NcclLibrary lib;
    check(!lib.available() && lib.reason().find("/nonexistent/vbt/libnccl.so.2") != std::string::npos,
          "NCCL from a missing VBT_NCCL_LIBRARY is reported unavailable, naming the path: " + lib.reason());
    bool threw = false;
    try {
      lib.init_comms({0});
    } catch (const std::runtime_error&) {
      threw = true;
    }
    check(threw, "init_comms on an unavailable NCCL raises");
  }
  if (old) {
    setenv("VBT_NCCL_LIBRARY", saved.c_str(), 1);
  } else {
    unsetenv("VBT_NCCL_LIBRARY");
  }
  NcclLibrary found;
  std::printf("INFO NCCL: %s\n", found.available() ? ("loaded " + found.path() + " version " +
                                                      std::to_string(found.version())).c_str()
                                                   : ("not available: " + found.reason()).c_str());
}

static void check_discovery() {
  const int n = visible_device_count();
  const Topology t = discover_topology();
  check(t.device_count() == n && static_cast<int>(t.links.size()) == n,
        "discover_topology agrees with visible_device_count (" + std::to_string(n) + ")");
  if (n == 0) {
    bool no_device = false;
    try {
      Fabric f;
    } catch (const FabricError& e) {
      no_device = e.kind() == FabricErrorKind::NoDevice;
    }
    check(no_device, "Fabric() without a GPU raises NoDevice");
  } else {
    Fabric f;
    check(f.device_count() == n, "Fabric() sees every visible GPU");
  }
}

int main() {
  fabric_test::set_env_defaults();
  check_chunks();
  check_schedule();
  check_host_allreduce();
  check_nccl_missing();
  check_discovery();
  return fabric_test::finish("fabric_host_test");
}
