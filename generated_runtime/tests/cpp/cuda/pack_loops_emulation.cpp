// Host emulation of the pack loops (src/vbt/cuda/ops/pack_loops.cuh: PackCopyNote, PackWhereNote), no GPU needed:
// the same plans and pack bodies compiled by the host compiler, the grid-stride kernels run by one thread.
// Copy: for copies of permuted, sliced and broadcast views into dense outputs (every dtype width, 2 to 5 dims,
// aligned and misaligned pointers), the bytes it writes must equal those of the element loop of elementwise_kernel,
// and the plan must take the cases PackCopyNote names (attention's transposed heads: 16-byte packs) and refuse the
// others (a row that is not a whole number of packs, a misaligned pointer or outer stride, an input whose innermost
// stride is not one element). Where: masked_fill's shape (a mask broadcast over rows, a constant fill value) and
// random mixes of dense, row-broadcast and constant operands, against the element loop of WhereF.
// Build and run: bash tests/cpp/cuda/host_emulation.sh pack_loops_emulation
#include <vector_types.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#undef __host__
#undef __device__
#undef __forceinline__
#define __host__
#define __device__
#define __forceinline__ inline

#include "emulation_check.h"
#include "pack_loops.cuh"

using vbt::cuda::ops::LoopGeometry;
namespace pc = vbt::cuda::ops::pack_loops;


// The element loop of elementwise_kernel for a copy: element i's offsets by division over the dims.
static void element_copy(const LoopGeometry& g, int64_t elem) {
  for (int64_t i = 0; i < g.numel; ++i) {
    int64_t r = i, oo = 0, io = 0;
    for (int d = 0; d < g.ndim; ++d) {
      const int64_t idx = r % g.sizes[d];
      r /= g.sizes[d];
      oo += idx * g.strides[0][d];
      io += idx * g.strides[1][d];
    }
    std::memcpy(g.data[0] + oo, g.data[1] + io, static_cast<size_t>(elem));
  }
}

static void pack_copy(const pc::Plan& p) {
  for (int64_t i = 0; i < p.npacks; ++i) {
    if (p.bytes == 16) pc::move_pack<uint4, uint32_t>(p, i);
    else if (p.bytes == 8) pc::move_pack<uint2, uint32_t>(p, i);
    else pc::move_pack<unsigned int, uint32_t>(p, i);
  }
}

struct Buffers {
  std::vector<unsigned char> in, out_ref, out_pack;
};

// A copy of the input view (sizes innermost first; strides in elements, the input's) into a dense output, at byte
// offsets in_off and out_off from 16-byte aligned buffers. Returns the plan's pack width (0: not taken) after
// checking that the pack copy, where taken, writes exactly the element loop's bytes.
static int run_case(const std::vector<int64_t>& sizes, const std::vector<int64_t>& in_strides, int64_t elem,
                    int64_t in_off, int64_t out_off, std::mt19937& rng) {
  LoopGeometry g;
  g.ndim = static_cast<int>(sizes.size());
  g.ntensors = 2;
  g.numel = 1;
  int64_t in_span = 1;
  for (int d = 0; d < g.ndim; ++d) {
    g.sizes[d] = sizes[d];
    g.strides[0][d] = g.numel * elem;  // dense output, innermost first
    g.strides[1][d] = in_strides[d] * elem;
    g.numel *= sizes[d];
    in_span += (sizes[d] - 1) * (in_strides[d] < 0 ? -in_strides[d] : in_strides[d]);
  }
  const size_t in_bytes = static_cast<size_t>(in_span * elem + in_off + 16);
  const size_t out_bytes = static_cast<size_t>(g.numel * elem + out_off + 16);
  alignas(16) static unsigned char in_buf[1 << 22], ref_buf[1 << 22], pack_buf[1 << 22];
  if (in_bytes > sizeof(in_buf) || out_bytes > sizeof(ref_buf)) {
    EXPECT(false, "case too large");
    return 0;
  }
  for (size_t i = 0; i < in_bytes; ++i) in_buf[i] = static_cast<unsigned char>(rng());
  std::memset(ref_buf, 0xAB, out_bytes);
  std::memset(pack_buf, 0xAB, out_bytes);
  g.data[1] = reinterpret_cast<char*>(in_buf + in_off);
  g.data[0] = reinterpret_cast<char*>(ref_buf + out_off);
  element_copy(g, elem);
  g.data[0] = reinterpret_cast<char*>(pack_buf + out_off);
  pc::Plan p;
  if (!pc::plan(g, elem, &p)) return 0;
  EXPECT(p.bytes > elem && p.npacks * p.bytes == g.numel * elem, "plan: %d-byte packs, %lld packs", p.bytes,
        static_cast<long long>(p.npacks));
  pack_copy(p);
  EXPECT(std::memcmp(ref_buf, pack_buf, out_bytes) == 0, "pack copy (%d-byte packs, elem %lld, %d dims) differs "
        "from the element loop", p.bytes, static_cast<long long>(elem), g.ndim);
  return p.bytes;
}

// ---- where ----------------------------------------------------------------------------------------------------
// The element loop of WhereF: out = cond ? a : b at each element's offsets.
static void element_where(const LoopGeometry& g, int64_t elem) {
  for (int64_t i = 0; i < g.numel; ++i) {
    int64_t r = i, off[4] = {0, 0, 0, 0};
    for (int d = 0; d < g.ndim; ++d) {
      const int64_t idx = r % g.sizes[d];
      r /= g.sizes[d];
      for (int k = 0; k < 4; ++k) off[k] += idx * g.strides[k][d];
    }
    const bool c = *reinterpret_cast<const bool*>(g.data[1] + off[1]);
    std::memcpy(g.data[0] + off[0], g.data[c ? 2 : 3] + off[c ? 2 : 3], static_cast<size_t>(elem));
  }
}

static void pack_where(const pc::WherePlan& p) {
  for (int64_t i = 0; i < p.npacks; ++i) {
    if (p.elem == 8) pc::where_pack<uint64_t, uint32_t>(p, i);
    else if (p.elem == 4) pc::where_pack<uint32_t, uint32_t>(p, i);
    else if (p.elem == 2) pc::where_pack<uint16_t, uint32_t>(p, i);
    else pc::where_pack<uint8_t, uint32_t>(p, i);
  }
}

// How an input of a where case is laid out: dense like the output, constant along dim 0 only (a row broadcast:
// stride 0 there, dense outer), constant everywhere (a scalar), or dense but broadcast over the outer dims.
enum Layout { kDenseIn, kRowConst, kScalarIn, kOuterBcast };

// out[dense] = where(cond, a, b) over sizes (innermost first); returns whether the plan took packs, after checking
// the packs write the element loop's bytes. off: byte offset of every input from its 16-byte aligned buffer.
static bool run_where(const std::vector<int64_t>& sizes, int64_t elem, const Layout lay[3], int64_t off,
                      std::mt19937& rng) {
  LoopGeometry g;
  g.ndim = static_cast<int>(sizes.size());
  g.ntensors = 4;
  g.numel = 1;
  for (int d = 0; d < g.ndim; ++d) g.numel *= sizes[d];
  alignas(16) static unsigned char in_buf[3][1 << 16], ref_buf[1 << 16], pack_buf[1 << 16];
  const int64_t es[4] = {elem, 1, elem, elem};
  int64_t dense = 1;
  for (int d = 0; d < g.ndim; ++d) {
    g.sizes[d] = sizes[d];
    g.strides[0][d] = dense * elem;
    for (int k = 1; k < 4; ++k) {
      const Layout l = lay[k - 1];
      const bool zero = l == kScalarIn || (l == kRowConst && d == 0) || (l == kOuterBcast && d > 0);
      int64_t st = dense;
      if (l == kRowConst) st = dense / sizes[0];  // the row's own index skips dim 0
      g.strides[k][d] = zero ? 0 : st * es[k];
    }
    dense *= sizes[d];
  }
  const size_t out_bytes = static_cast<size_t>(g.numel * elem + 16);
  if (out_bytes > sizeof(ref_buf)) {
    EXPECT(false, "case too large");
    return false;
  }
  for (int k = 0; k < 3; ++k) {
    for (size_t i = 0; i < sizeof(in_buf[k]); i += 1) in_buf[k][i] = static_cast<unsigned char>(rng());
    g.data[k + 1] = reinterpret_cast<char*>(in_buf[k] + off);
  }
  for (size_t i = 0; i < sizeof(in_buf[0]); ++i) in_buf[0][i] &= 1;  // bools are 0 or 1
  std::memset(ref_buf, 0xAB, out_bytes);
  std::memset(pack_buf, 0xAB, out_bytes);
  g.data[0] = reinterpret_cast<char*>(ref_buf);
  element_where(g, elem);
  g.data[0] = reinterpret_cast<char*>(pack_buf);
  pc::WherePlan p;
  if (!pc::plan_where(g, elem, &p)) return false;
  EXPECT(p.npacks * p.vec == g.numel && p.vec * elem == 16, "where plan: %lld packs of %d", static_cast<long long>(p.npacks), p.vec);
  pack_where(p);
  EXPECT(std::memcmp(ref_buf, pack_buf, out_bytes) == 0, "pack where (elem %lld, %d dims, layouts %d %d %d, off %lld) "
        "differs from the element loop", static_cast<long long>(elem), g.ndim, lay[0], lay[1], lay[2],
        static_cast<long long>(off));
  return true;
}

static void where_cases(std::mt19937& rng) {
  // masked_fill over attention scores: (L*L, B*H) after coalescing; the mask broadcast over B*H, the fill value a
  // scalar, the scores dense (forward: where(mask, value, x); backward: where(mask, 0, grad))
  const Layout fill[3] = {kOuterBcast, kScalarIn, kDenseIn};
  EXPECT(run_where({16 * 16, 6}, 4, fill, 0, rng), "masked_fill float32: packs expected");
  EXPECT(run_where({16 * 16, 6}, 2, fill, 0, rng), "masked_fill half: packs expected");
  EXPECT(run_where({16 * 16, 6}, 8, fill, 0, rng), "masked_fill float64: packs expected");
  EXPECT(run_where({16 * 16, 6}, 1, fill, 0, rng), "masked_fill bool: packs expected");
  EXPECT(!run_where({16 * 16, 6}, 4, fill, 4, rng), "inputs 4 bytes off: no packs");
  EXPECT(!run_where({6, 5}, 4, fill, 0, rng), "a row of 6 floats is no whole number of packs");
  const Layout rows[3] = {kRowConst, kDenseIn, kRowConst};
  EXPECT(run_where({8, 3, 2}, 4, rows, 0, rng), "constant along dim 0: packs expected");
  const Layout all[4] = {kDenseIn, kRowConst, kScalarIn, kOuterBcast};
  const int64_t elems[] = {1, 2, 4, 8};
  int taken = 0;
  for (int t = 0; t < 400; ++t) {
    const int64_t elem = elems[rng() % 4];
    const int nd = 1 + static_cast<int>(rng() % 3);
    std::vector<int64_t> sizes(nd);
    for (int d = 0; d < nd; ++d) sizes[d] = 1 + static_cast<int64_t>(rng() % 6);
    if (rng() % 4) sizes[0] = (16 / elem) * (1 + static_cast<int64_t>(rng() % 4));
    const Layout lay[3] = {all[rng() % 4], all[rng() % 4], all[rng() % 4]};
    const int64_t off = rng() % 5 == 0 ? static_cast<int64_t>(rng() % 16) : 0;
    if (run_where(sizes, elem, lay, off, rng)) ++taken;
  }
  EXPECT(taken > 100, "the where plan took too few of the random cases (%d of 400)", taken);
  std::printf("pack where emulation: 400 random cases, %d took packs\n", taken);
}

int main() {
  std::mt19937 rng(1234);
  where_cases(rng);
  // attention's q = x.reshape(B, L, H, D).transpose(1, 2), copied to (B, H, L, D): innermost first (D, L, H, B),
  // the input's strides (1, C, D, L * C) with C = H * D
  {
    const int64_t B = 2, L = 16, H = 4, D = 32, C = H * D;
    EXPECT(run_case({D, L, H, B}, {1, C, D, L * C}, 4, 0, 0, rng) == 16, "attention heads: 16-byte packs expected");
    EXPECT(run_case({D, L, H, B}, {1, C, D, L * C}, 2, 0, 0, rng) == 16, "half heads: 16-byte packs expected");
    EXPECT(run_case({D, L, H, B}, {1, C, D, L * C}, 8, 0, 0, rng) == 16, "double heads: 16-byte packs expected");
    EXPECT(run_case({D, L, H, B}, {1, C, D, L * C}, 4, 8, 0, rng) == 8, "input 8 bytes off: 8-byte packs expected");
    EXPECT(run_case({D, L, H, B}, {1, C, D, L * C}, 4, 4, 0, rng) == 0, "float input 4 bytes off: no packs");
    EXPECT(run_case({D, L, H, B}, {1, C, D, L * C}, 4, 0, 4, rng) == 0, "float output 4 bytes off: no packs");
    EXPECT(run_case({D, L, H, B}, {1, C, D, L * C}, 1, 3, 3, rng) == 0, "bytes 3 off: no packs");
  }
  EXPECT(run_case({3, 5, 2}, {1, 7, 40}, 4, 0, 0, rng) == 0, "a row of 12 bytes is no whole number of packs >= 8");
  EXPECT(run_case({6, 5, 2}, {1, 8, 40}, 2, 0, 0, rng) == 4, "a row of 12 bytes of halves: 4-byte packs");
  EXPECT(run_case({6, 5, 2}, {1, 7, 40}, 2, 0, 0, rng) == 0, "an outer stride of 14 bytes: no packs");
  EXPECT(run_case({4, 5}, {1, 6}, 4, 0, 0, rng) == 8, "an outer stride of 24 bytes: 8-byte packs");
  EXPECT(run_case({4, 5}, {1, 8}, 4, 0, 0, rng) == 16, "an outer stride of 32 bytes: 16-byte packs");
  EXPECT(run_case({4, 5}, {2, 8}, 4, 0, 0, rng) == 0, "an innermost stride of 2 elements: no packs");
  EXPECT(run_case({8, 3, 4}, {1, 0, 8}, 4, 0, 0, rng) == 16, "a broadcast outer dim (stride 0): packs");
  EXPECT(run_case({8, 3, 4}, {1, -8, 32}, 4, 64, 0, rng) == 16, "a flipped outer dim (negative stride): packs");

  // random views: a dense input of up to 5 dims, permuted with its innermost dim kept innermost, sliced
  int taken = 0, cases = 0;
  const int64_t elems[] = {1, 2, 4, 8};
  for (int t = 0; t < 3000; ++t) {
    const int nd = 2 + static_cast<int>(rng() % 4);
    const int64_t elem = elems[rng() % 4];
    std::vector<int64_t> full(nd), sizes(nd);
    for (int d = 0; d < nd; ++d) {
      full[d] = 1 + static_cast<int64_t>(rng() % 9);
      if (d == 0 && rng() % 2) full[d] = 16 * (1 + static_cast<int64_t>(rng() % 3));  // often whole packs
      sizes[d] = 1 + static_cast<int64_t>(rng() % full[d]);                           // a slice of it
    }
    std::vector<int64_t> dense(nd);
    dense[0] = 1;
    for (int d = 1; d < nd; ++d) dense[d] = dense[d - 1] * full[d - 1];
    std::vector<int> perm(nd);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin() + 1, perm.end(), rng);  // the outer dims of the input, in another order
    std::vector<int64_t> st(nd), sz(nd);
    for (int d = 0; d < nd; ++d) {
      st[d] = dense[perm[d]];
      sz[d] = std::min(sizes[d], full[perm[d]]);
    }
    const int64_t in_off = (rng() % 4 == 0) ? static_cast<int64_t>(rng() % 16) : 0;
    const int64_t out_off = (rng() % 4 == 0) ? static_cast<int64_t>(rng() % 16) : 0;
    ++cases;
    if (run_case(sz, st, elem, in_off, out_off, rng) != 0) ++taken;
  }
  EXPECT(taken > cases / 10, "the plan took too few of the random views (%d of %d)", taken, cases);
  std::printf("pack copy emulation: %d random views, %d took packs\n", cases, taken);
  std::printf("%s (%d failures)\n", emulation_failures ? "FAILED" : "ok", emulation_failures);
  return emulation_failures == 0 ? 0 : 1;
}
