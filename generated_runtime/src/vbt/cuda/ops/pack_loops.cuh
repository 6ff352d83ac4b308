// PackCopyNote: a same-dtype copy whose innermost loop dim is contiguous in both operands -- a permuted or sliced
// view copied into a dense tensor (attention's transposed q, k, v; the reshape of a transpose) -- moves B-byte
// packs instead of single elements. B is the largest of 16, 8 and 4 bytes that is wider than one element and
// divides the row's bytes, both data pointers and every outer byte stride of both operands, so every pack is
// aligned and lies inside one row. The loop geometry in packs: dim 0 has sizes[0] * elem / B packs at a stride of
// B bytes in both operands; the outer dims keep their sizes and byte strides. The index divisions are then paid
// once per pack, and each thread moves its pack with one vector load and one store (the element loop of
// elementwise_kernel moved miniGPT's attention copies at 16.3 us a launch on the H200, torch's at 10.0 us).
// Bytes are bytes: one kernel per pack width serves every dtype.
//
// PackWhereNote: where(cond, a, b) -- masked_fill forward and backward -- in packs of V = 16 / sizeof(T) elements
// along the innermost loop dim when every operand is either contiguous there (the output always; a pack of V
// elements, or V bools of the condition, aligned to its bytes, with every outer stride a multiple of them) or
// constant there (stride 0: one load per pack, as the fill value and a mask broadcast over rows are). The attention
// mask's where took 58 us a launch on the H200 in the element loop (four operands' offsets by division for every
// element), torch's 24 us. The select moves bits, so one kernel per element width serves every dtype.
//
// The plans and the pack bodies are host and device code, so tests/cpp/cuda/pack_loops_emulation.cpp runs them on
// the host against the element loop.
#pragma once
#include <cstddef>
#include <cstdint>

#include "loops.h"

namespace vbt::cuda::ops {

// V elements of T moved as one aligned vector (at most 16 bytes of alignment: the widest load of the device); the
// pack of VecNote's contiguous kernels (elementwise.cu) and of the pack loops below.
template <typename T, int V> struct alignas(sizeof(T) * V < 16 ? sizeof(T) * V : 16) Pack { T v[V]; };
template <typename T, int V> constexpr size_t pack_align() { return sizeof(T) * V < 16 ? sizeof(T) * V : 16; }

namespace pack_loops {

struct Plan {
  int ndim = 0;
  int bytes = 0;  // the pack width: 16, 8 or 4
  int64_t npacks = 0;
  int64_t sizes[kMaxDims] = {};  // dim 0 in packs
  int64_t out_st[kMaxDims] = {}, in_st[kMaxDims] = {};  // bytes
  char* out = nullptr;
  const char* in = nullptr;
};

// Fills *p and returns true when g (operand 0 the output, 1 the input, elements of elem bytes in both) qualifies.
inline bool plan(const LoopGeometry& g, int64_t elem, Plan* p) {
  if (g.ntensors != 2 || g.ndim < 2 || g.ndim > kMaxDims || g.numel <= 0 || elem <= 0) return false;
  if (g.strides[0][0] != elem || g.strides[1][0] != elem) return false;
  const int64_t row = g.sizes[0] * elem;
  const auto po = static_cast<int64_t>(reinterpret_cast<uintptr_t>(g.data[0]) & 15u);
  const auto pi = static_cast<int64_t>(reinterpret_cast<uintptr_t>(g.data[1]) & 15u);
  for (int64_t b = 16; b >= 4 && b > elem; b /= 2) {
    bool ok = row % b == 0 && po % b == 0 && pi % b == 0;
    for (int d = 1; d < g.ndim && ok; ++d) ok = g.strides[0][d] % b == 0 && g.strides[1][d] % b == 0;
    if (!ok) continue;
    *p = Plan{};
    p->ndim = g.ndim;
    p->bytes = static_cast<int>(b);
    p->sizes[0] = row / b;
    p->out_st[0] = p->in_st[0] = b;
    for (int d = 1; d < g.ndim; ++d) {
      p->sizes[d] = g.sizes[d];
      p->out_st[d] = g.strides[0][d];
      p->in_st[d] = g.strides[1][d];
    }
    p->npacks = g.numel * elem / b;
    p->out = g.data[0];
    p->in = g.data[1];
    return true;
  }
  return false;
}

// Pack i of the plan: W is the pack's type (uint4, uint2 or unsigned int: sizeof(W) == p.bytes); Idx the type of
// the index arithmetic (uint32_t when npacks fits, as in elementwise_kernel).
template <typename W, typename Idx>
__host__ __device__ __forceinline__ void move_pack(const Plan& p, int64_t i) {
  int64_t oo = 0, io = 0;
  Idx r = static_cast<Idx>(i);
  for (int d = 0; d < p.ndim; ++d) {
    const Idx sz = static_cast<Idx>(p.sizes[d]);
    const Idx idx = r % sz;
    r /= sz;
    oo += static_cast<int64_t>(idx) * p.out_st[d];
    io += static_cast<int64_t>(idx) * p.in_st[d];
  }
  *reinterpret_cast<W*>(p.out + oo) = *reinterpret_cast<const W*>(p.in + io);
}

// ---- PackWhereNote --------------------------------------------------------------------------------------------
struct WherePlan {
  int ndim = 0;
  int elem = 0;   // bytes of an element of the output, a and b (1, 2, 4 or 8)
  int vec = 0;    // elements per pack: 16 / elem
  int64_t npacks = 0;
  int64_t sizes[kMaxDims] = {};              // dim 0 in packs
  int64_t st[4][kMaxDims] = {};              // bytes: out, cond, a, b; dim 0 is the pack's stride (0: constant)
  char* data[4] = {};
};

// Fills *p and returns true when g (out, cond (bool), a, b; elem bytes per element of out, a, b) qualifies.
inline bool plan_where(const LoopGeometry& g, int64_t elem, WherePlan* p) {
  if (g.ntensors != 4 || g.ndim < 1 || g.ndim > kMaxDims || g.numel <= 0) return false;
  if (elem != 1 && elem != 2 && elem != 4 && elem != 8) return false;
  const int64_t vec = 16 / elem;
  if (g.sizes[0] % vec != 0) return false;
  const int64_t es[4] = {elem, 1, elem, elem};
  for (int k = 0; k < 4; ++k) {
    const int64_t s0 = g.strides[k][0];
    if (s0 == 0 && k > 0) continue;  // constant along dim 0: one element per pack, any alignment
    if (s0 != es[k]) return false;
    const int64_t pb = vec * es[k];  // the pack's bytes
    if (static_cast<int64_t>(reinterpret_cast<uintptr_t>(g.data[k]) & 15u) % pb != 0) return false;
    for (int d = 1; d < g.ndim; ++d)
      if (g.strides[k][d] % pb != 0) return false;
  }
  *p = WherePlan{};
  p->ndim = g.ndim;
  p->elem = static_cast<int>(elem);
  p->vec = static_cast<int>(vec);
  p->sizes[0] = g.sizes[0] / vec;
  for (int d = 1; d < g.ndim; ++d) p->sizes[d] = g.sizes[d];
  for (int k = 0; k < 4; ++k) {
    p->st[k][0] = g.strides[k][0] * vec;
    for (int d = 1; d < g.ndim; ++d) p->st[k][d] = g.strides[k][d];
    p->data[k] = g.data[k];
  }
  p->npacks = g.numel / vec;
  return true;
}

// Pack i of a where plan; U is the unsigned integer type of elem bytes, V = 16 / sizeof(U).
template <typename U, typename Idx>
__host__ __device__ __forceinline__ void where_pack(const WherePlan& p, int64_t i) {
  constexpr int V = static_cast<int>(16 / sizeof(U));
  int64_t off[4] = {0, 0, 0, 0};
  Idx r = static_cast<Idx>(i);
  for (int d = 0; d < p.ndim; ++d) {
    const Idx sz = static_cast<Idx>(p.sizes[d]);
    const Idx idx = r % sz;
    r /= sz;
    for (int k = 0; k < 4; ++k) off[k] += static_cast<int64_t>(idx) * p.st[k][d];
  }
  Pack<bool, V> c;
  if (p.st[1][0] == 0) {
    const bool c0 = *reinterpret_cast<const bool*>(p.data[1] + off[1]);
    for (int e = 0; e < V; ++e) c.v[e] = c0;
  } else {
    c = *reinterpret_cast<const Pack<bool, V>*>(p.data[1] + off[1]);
  }
  Pack<U, V> x[2];
  for (int k = 0; k < 2; ++k) {
    const char* src = p.data[2 + k] + off[2 + k];
    if (p.st[2 + k][0] == 0) {
      const U s0 = *reinterpret_cast<const U*>(src);
      for (int e = 0; e < V; ++e) x[k].v[e] = s0;
    } else {
      x[k] = *reinterpret_cast<const Pack<U, V>*>(src);
    }
  }
  Pack<U, V> o;
  for (int e = 0; e < V; ++e) o.v[e] = c.v[e] ? x[0].v[e] : x[1].v[e];
  *reinterpret_cast<Pack<U, V>*>(p.data[0] + off[0]) = o;
}

}  // namespace pack_loops
}  // namespace vbt::cuda::ops
