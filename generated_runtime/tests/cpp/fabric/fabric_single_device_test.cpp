// The single-device case (N = 1): copies within a device, the add kernel (vector and scalar paths,
// aliasing), the ring all-reduce as the identity, NCCL's one-rank all-reduce as the identity when NCCL is
// present, and the stats and event snapshots those ops leave. Only device 0 is used. Zero-size copies and
// adds are valid no-ops whatever the pointers (one past the end of an allocation, null), as cudaMemcpy of 0
// bytes is. Each case runs under fabric_test::run_case: an unexpected exception is a FAIL of that case and
// the others still run.
#include <string>

#include "fabric_test_util.h"
#include "vbt/fabric/nccl_loader.h"
#include "vbt/fabric/ring_allreduce.h"

using namespace vbt::fabric;
using fabric_test::check;

int main() {
  fabric_test::set_env_defaults();
  fabric_test::need_gpus("fabric_single_device_test", 1);
  Fabric f;
  std::printf("device 0: %s\n", f.topology().devices[0].name.c_str());

  std::size_t ops = 0, copies = 0, copy_bytes = 0;
  // Copies within the device, including unaligned offsets.
  for (std::size_t count : {std::size_t{0}, std::size_t{1}, std::size_t{1001}, std::size_t{(1 << 20) + 3}}) {
    for (std::size_t offset : {std::size_t{0}, std::size_t{1}}) {
      const std::string what =
          "copy within device 0: " + std::to_string(count) + " floats at offset " + std::to_string(offset);
      fabric_test::run_case(what, [&] {
        const auto h = fabric_test::random_floats(count + offset, 5 + static_cast<unsigned>(count));
        fabric_test::DeviceBuffer src(0, count + offset), dst(0, count + offset);
        src.upload(h);
        dst.fill_zero();
        // count == 0 at offset 1: both pointers are one past the end of a 1-float allocation.
        f.copy(dst.ptr + offset, 0, src.ptr + offset, 0, count * sizeof(float));
        ++ops;
        ++copies;
        copy_bytes += count * sizeof(float);
        f.synchronize();
        auto got = dst.download();
        std::vector<float> expect(count + offset, 0.0f);
        for (std::size_t i = offset; i < count + offset; ++i) expect[i] = h[i];
        check(fabric_test::bitwise_equal(got, expect), what + fabric_test::mismatch(got, expect));
      });
    }
  }
  fabric_test::run_case("zero-byte copy with null pointers", [&] {
    f.copy(nullptr, 0, nullptr, 0, 0);
    ++ops;
    ++copies;
    f.synchronize();
    check(true, "zero-byte copy with null pointers is a no-op");
  });
  fabric_test::run_case("zero-element add", [&] {
    fabric_test::DeviceBuffer a(0, 1), out(0, 1);
    a.upload({3.0f});
    out.upload({7.0f});
    f.add(out.ptr + 1, a.ptr + 1, a.ptr + 1, 0);  // one past the end of 1-float allocations
    f.add(nullptr, nullptr, nullptr, 0);
    ops += 2;
    f.synchronize();
    const std::vector<float> g_out = out.download(), g_a = a.download();
    check(g_out == std::vector<float>{7.0f} && g_a == std::vector<float>{3.0f},
          "zero-element adds (past-the-end and null pointers) are no-ops" + fabric_test::mismatch(g_out, {7.0f}));
  });
  // Adds: vector path (aligned) and scalar path (offset 1), tails, aliasing out == a.
  for (std::size_t count : {std::size_t{1}, std::size_t{3}, std::size_t{4}, std::size_t{1000},
                            std::size_t{(1 << 20) + 1}}) {
    for (std::size_t offset : {std::size_t{0}, std::size_t{1}}) {
      const std::string what = "add on device 0: " + std::to_string(count) + " floats at offset " +
                               std::to_string(offset) + " (and in place)";
      fabric_test::run_case(what, [&] {
        const auto ha = fabric_test::random_floats(count + offset, 31 + static_cast<unsigned>(count));
        const auto hb = fabric_test::random_floats(count + offset, 47 + static_cast<unsigned>(count));
        fabric_test::DeviceBuffer a(0, count + offset), b(0, count + offset), out(0, count + offset);
        a.upload(ha);
        b.upload(hb);
        f.add(out.ptr + offset, a.ptr + offset, b.ptr + offset, count);
        ++ops;
        f.add(a.ptr + offset, a.ptr + offset, b.ptr + offset, count);  // in place
        ++ops;
        f.synchronize();
        std::vector<float> expect(count);
        for (std::size_t i = 0; i < count; ++i) expect[i] = ha[i + offset] + hb[i + offset];
        auto got = out.download();
        auto got_inplace = a.download();
        const std::vector<float> g(got.begin() + offset, got.end());
        const std::vector<float> gi(got_inplace.begin() + offset, got_inplace.end());
        check(fabric_test::bitwise_equal(g, expect) && fabric_test::bitwise_equal(gi, expect),
              what + fabric_test::mismatch(g, expect) + fabric_test::mismatch(gi, expect));
      });
    }
  }

  fabric_test::run_case("stats and snapshots", [&] {
    const FabricStats st = f.stats();
    check(st.copies == copies && st.bytes_copied == copy_bytes && st.adds == ops - copies && st.failures == 0,
          "stats count " + std::to_string(st.copies) + " copies / " + std::to_string(st.bytes_copied) + " bytes / " +
              std::to_string(st.adds) + " adds / " + std::to_string(st.failures) + " failures");
    const auto it = st.per_pair.find({0, 0});
    check(it != st.per_pair.end() && it->second.ops == copies + 2 * (ops - copies),
          "per-pair stats (0,0) count every copy and both operands of every add");
    const auto snaps = f.snapshots();
    bool snaps_ok = snaps.size() == ops;
    for (const auto& s : snaps) snaps_ok = snaps_ok && s.completed && s.elapsed_ms >= 0.0f && s.exec_device == 0;
    check(snaps_ok, "one completed, timed snapshot per op (" + std::to_string(snaps.size()) + ")");
    f.reset_stats();
    check(f.stats().copies == 0 && f.stats().per_pair.empty(), "reset_stats clears the counters");
  });

  // All-reduce of one rank is the identity, ours and NCCL's.
  for (std::size_t count : {std::size_t{1}, std::size_t{7}, std::size_t{100003}}) {
    const std::string what = "ring all-reduce on 1 rank is the identity, n=" + std::to_string(count);
    fabric_test::run_case(what, [&] {
      const auto h = fabric_test::random_floats(count, 77 + static_cast<unsigned>(count));
      fabric_test::DeviceBuffer buf(0, count);
      buf.upload(h);
      RingAllReduce ring(f, {0});
      ring.run({buf.ptr}, count);
      f.synchronize();
      const auto got = buf.download();
      check(fabric_test::bitwise_equal(got, h), what + fabric_test::mismatch(got, h));
    });
  }
  fabric_test::run_case("ring all-reduce of 0 elements", [&] {
    fabric_test::DeviceBuffer buf(0, 1);
    RingAllReduce ring(f, {0});
    ring.run({buf.ptr + 1}, 0);  // one past the end: a valid empty range
    ring.run({nullptr}, 0);
    f.synchronize();
    check(true, "ring all-reduce of 0 elements (past-the-end and null buffers) is a no-op");
  });
  NcclLibrary nccl;
  if (!nccl.available()) {
    std::printf("NOTRUN NCCL one-rank all-reduce: %s\n", nccl.reason().c_str());
  } else {
    fabric_test::run_case("NCCL all-reduce on 1 rank is the identity", [&] {
      const std::size_t count = 1001;
      const auto h = fabric_test::random_floats(count, 99);
      fabric_test::DeviceBuffer buf(0, count);
      buf.upload(h);
      nccl.init_comms({0});
      cudaStream_t s = f.stream(0);
      nccl.allreduce_sum({buf.ptr}, count, {s});
      VBT_FABRIC_CUDA(cudaStreamSynchronize(s));
      const auto got = buf.download();
      nccl.destroy_comms();
      check(fabric_test::bitwise_equal(got, h),
            "NCCL all-reduce on 1 rank is the identity" + fabric_test::mismatch(got, h));
    });
  }
  return fabric_test::finish("fabric_single_device_test");
}
