// Host emulation of the CUDA kernels of src/vbt/cuda/ops/scan_index_kernels.cuh (no GPU needed): the same
// kernel bodies compiled by the host compiler, grid-stride kernels run by one thread, block kernels one block
// at a time by kThreads std::threads with a std::barrier as __syncthreads (__shared__ arrays become statics,
// shared by the block's threads). Checks the arg-reductions (sequential and block, ties and NaNs), the row
// reductions (prod and every norm), the scans (one thread per row and chunked), scatter / scatter_add / index_add lines (and
// their sorted variant against them, bit for bit), the masked compaction
// and nonzero against direct host computations. Build and run: bash tests/cpp/cuda/host_emulation.sh scan_index_emulation
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <thread>
#include <vector>

using std::fabs;
using std::fmax;
using std::fmin;
using std::isnan;
using std::nan;
using std::pow;
using std::sqrt;

#undef __global__
#undef __device__
#undef __forceinline__
#undef __shared__
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static

struct Dim3 {
  unsigned x = 0, y = 0, z = 0;
};
thread_local Dim3 threadIdx, blockIdx;
Dim3 blockDim{1, 1, 1}, gridDim{1, 1, 1};
std::barrier<>* g_bar = nullptr;
inline void __syncthreads() { g_bar->arrive_and_wait(); }

#include "scan_index_kernels.cuh"

using namespace vbt::cuda::ops;
using namespace vbt::cuda::ops::scan_detail;

void run_seq(std::function<void()> k) {  // one block of one thread
  blockDim = {1, 1, 1}; gridDim = {1, 1, 1}; threadIdx = {}; blockIdx = {};
  k();
}
void run_blocks(unsigned blocks, std::function<void()> k) {  // kThreads threads per block
  blockDim = {unsigned(kThreads), 1, 1}; gridDim = {blocks, 1, 1};
  for (unsigned b = 0; b < blocks; ++b) {
    std::barrier<> bar(kThreads);
    g_bar = &bar;
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < unsigned(kThreads); ++t)
      ts.emplace_back([&, t, b] { threadIdx = {t, 0, 0}; blockIdx = {b, 0, 0}; k(); });
    for (auto& t : ts) t.join();
  }
}
int fails = 0;
#define EXPECT(c) do { if (!(c)) { ++fails; std::printf("FAIL line %d: %s\n", __LINE__, #c); } } while (0)

// reference argmax: first NaN, else first extreme
template <bool IsMax> int64_t ref_arg(const std::vector<float>& r) {
  int64_t bi = 0;
  for (size_t j = 1; j < r.size(); ++j) {
    if (std::isnan(r[bi])) break;
    if (std::isnan(r[j]) || (IsMax ? r[j] > r[bi] : r[j] < r[bi])) bi = j;
  }
  return bi;
}

int main() {
  std::mt19937 rng(1);
  // ---- arg reductions, both kernels
  for (int64_t cols : {1, 7, 300, 2048, 5000}) {
    const int64_t rows = 5;
    std::vector<float> in(rows * cols);
    for (auto& x : in) x = float(int(rng() % 7) - 3);
    if (cols > 10) { in[0 * cols + cols / 2] = NAN; in[0 * cols + cols - 1] = NAN; in[1 * cols + cols - 1] = NAN; }
    for (int mx = 0; mx < 2; ++mx) {
      std::vector<int64_t> i1(rows), i2(rows);
      std::vector<float> v1(rows), v2(rows);
      if (mx) {
        run_seq([&] { arg_rows_kernel<float, true>(in.data(), i1.data(), v1.data(), rows, cols); });
        run_blocks(rows, [&] { arg_rows_block_kernel<float, true>(in.data(), i2.data(), v2.data(), cols); });
      } else {
        run_seq([&] { arg_rows_kernel<float, false>(in.data(), i1.data(), v1.data(), rows, cols); });
        run_blocks(rows, [&] { arg_rows_block_kernel<float, false>(in.data(), i2.data(), v2.data(), cols); });
      }
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<float> row(in.begin() + r * cols, in.begin() + (r + 1) * cols);
        int64_t e = mx ? ref_arg<true>(row) : ref_arg<false>(row);
        EXPECT(i1[r] == e);
        EXPECT(i2[r] == e);
        if (i1[r] != e || i2[r] != e) std::printf("  cols %ld row %ld max %d: seq %ld block %ld ref %ld\n", cols, r, mx, i1[r], i2[r], e);
      }
    }
  }
  // ---- row reductions (double), both kernels, vs a direct computation
  for (int64_t cols : {0, 3, 2048, 4099}) {
    const int64_t rows = 3;
    std::vector<double> in(rows * cols);
    std::normal_distribution<double> nd;
    for (auto& x : in) x = nd(rng);
    if (cols > 100) in[cols + 77] = 0.0;
    for (int op = 0; op <= 6; ++op) {
      const double p = 3.0;
      std::vector<double> o1(rows), o2(rows);
      RowRed rr = RowRed(op);
      if (rr == RowRed::Prod) for (auto& x : in) x = 1 + 0.001 * x;
      run_seq([&] { row_reduce_kernel<double>(rr, in.data(), o1.data(), rows, cols, p); });
      if (cols) run_blocks(rows, [&] { row_reduce_block_kernel<double>(rr, in.data(), o2.data(), cols, p); });
      for (int64_t r = 0; r < rows; ++r) {
        double e = rr == RowRed::Prod ? 1 : rr == RowRed::NormNegInf ? INFINITY : 0;
        for (int64_t j = 0; j < cols; ++j) {
          double x = in[r * cols + j];
          switch (rr) {
            case RowRed::Prod: e *= x; break;
            case RowRed::NormInf: e = std::max(e, std::fabs(x)); break;
            case RowRed::NormNegInf: e = std::min(e, std::fabs(x)); break;
            case RowRed::Norm0: e += x != 0; break;
            case RowRed::Norm1: e += std::fabs(x); break;
            case RowRed::Norm2: e += x * x; break;
            case RowRed::NormP: e += std::pow(std::fabs(x), p); break;
          }
        }
        if (rr == RowRed::Norm2) e = std::sqrt(e);
        if (rr == RowRed::NormP) e = std::pow(e, 1 / p);
        EXPECT(o1[r] == e || std::fabs(o1[r] - e) <= 1e-9 * (1 + std::fabs(e)));
        if (cols) EXPECT(o2[r] == e || std::fabs(o2[r] - e) <= 1e-9 * (1 + std::fabs(e)));
      }
    }
  }
  // NaN in the inf norms
  {
    std::vector<float> in(3000, 1.0f);
    in[2999] = NAN;
    float o1 = 0, o2 = 0;
    run_seq([&] { row_reduce_kernel<float>(RowRed::NormInf, in.data(), &o1, 1, 3000, 0); });
    run_blocks(1, [&] { row_reduce_block_kernel<float>(RowRed::NormNegInf, in.data(), &o2, 3000, 0); });
    EXPECT(std::isnan(o1) && std::isnan(o2));
  }
  // int prod wraps, half prod
  {
    std::vector<int8_t> in{-3, 2, 5, 7};
    int8_t o = 0;
    run_seq([&] { row_reduce_kernel<int8_t>(RowRed::Prod, in.data(), &o, 1, 4, 0); });
    EXPECT(o == int8_t(-210));
    std::vector<int64_t> big(3000, 1);
    big[5] = -2; big[2500] = 3;
    int64_t ob = 0;
    run_blocks(1, [&] { row_reduce_block_kernel<int64_t>(RowRed::Prod, big.data(), &ob, 3000, 0); });
    EXPECT(ob == -6);
  }
  // ---- scans
  {
    std::vector<int64_t> in{1, -2, 3, 4, 5, 6}, out(6);
    run_seq([&] { scan_rows_kernel<int64_t, false>(in.data(), out.data(), 2, 3); });
    EXPECT((out == std::vector<int64_t>{1, -1, 2, 4, 9, 15}));
    run_seq([&] { scan_rows_kernel<int64_t, true>(in.data(), out.data(), 2, 3); });
    EXPECT((out == std::vector<int64_t>{1, -2, -6, 4, 20, 120}));
    std::vector<__half> hin{__float2half(0.5f), __float2half(1.5f)}, hout(2);
    run_seq([&] { scan_rows_kernel<__half, false>(hin.data(), hout.data(), 1, 2); });
    EXPECT(__half2float(hout[1]) == 2.0f);
  }
  // ---- chunked scans (long rows) vs the one-thread-per-row scan
  for (int64_t cols : {2048, 2049, 3072, 5000}) {
    for (int64_t rows : {1, 3}) {
      const int64_t nchunks = (cols + kScanChunk - 1) / kScanChunk;
      std::vector<int64_t> in(rows * cols), o1(rows * cols), o2(rows * cols), ws(rows * nchunks);
      for (auto& x : in) x = int64_t(rng() % 5) - 2;
      for (int pr = 0; pr < 2; ++pr) {
        if (pr) for (auto& x : in) x = (rng() % 50 == 0) ? -1 : 1;
        if (pr) {
          run_seq([&] { scan_rows_kernel<int64_t, true>(in.data(), o1.data(), rows, cols); });
          run_seq([&] { scan_chunk_totals_kernel<int64_t, true>(in.data(), ws.data(), rows, cols, nchunks); });
          run_seq([&] { scan_chunk_prefix_kernel<int64_t, true>(ws.data(), rows, nchunks); });
          run_seq([&] { scan_chunks_kernel<int64_t, true>(in.data(), o2.data(), ws.data(), rows, cols, nchunks); });
        } else {
          run_seq([&] { scan_rows_kernel<int64_t, false>(in.data(), o1.data(), rows, cols); });
          run_seq([&] { scan_chunk_totals_kernel<int64_t, false>(in.data(), ws.data(), rows, cols, nchunks); });
          run_seq([&] { scan_chunk_prefix_kernel<int64_t, false>(ws.data(), rows, nchunks); });
          run_seq([&] { scan_chunks_kernel<int64_t, false>(in.data(), o2.data(), ws.data(), rows, cols, nchunks); });
        }
        std::vector<int64_t> e(rows * cols);
        for (int64_t r = 0; r < rows; ++r) {
          int64_t acc = pr ? 1 : 0;
          for (int64_t j = 0; j < cols; ++j) e[r * cols + j] = acc = pr ? acc * in[r * cols + j] : acc + in[r * cols + j];
        }
        EXPECT(o1 == e);
        EXPECT(o2 == e);
      }
    }
    std::vector<float> fin(cols), fo(cols);
    std::vector<double> fws((cols + kScanChunk - 1) / kScanChunk);
    std::normal_distribution<double> nd;
    for (auto& x : fin) x = float(nd(rng));
    run_seq([&] { scan_chunk_totals_kernel<float, false>(fin.data(), fws.data(), 1, cols, int64_t(fws.size())); });
    run_seq([&] { scan_chunk_prefix_kernel<double, false>(fws.data(), 1, int64_t(fws.size())); });
    run_seq([&] { scan_chunks_kernel<float, false>(fin.data(), fo.data(), fws.data(), 1, cols, int64_t(fws.size())); });
    double acc = 0;
    bool close = true;
    for (int64_t j = 0; j < cols; ++j) {
      acc += fin[j];
      close = close && std::fabs(fo[j] - float(acc)) <= 1e-5 * (1 + std::fabs(acc));
    }
    EXPECT(close);
  }
  // ---- scatter lines: scatter_add along dim 1 of a [2, 3] out with index [2, 4] (duplicates)
  {
    std::vector<float> out(6, 0.0f), src{1, 2, 3, 4, 5, 6, 7, 8};
    std::vector<int64_t> idx{0, 2, 2, -1, 1, 1, 0, 0};
    ScatterArgs a;
    a.ndim = 2; a.dim = 1;
    a.sizes[0] = 2; a.sizes[1] = 4;
    a.idx_st[0] = 4; a.idx_st[1] = 1;
    a.src_st[0] = 4; a.src_st[1] = 1;
    a.out_st[0] = 3; a.out_st[1] = 1;
    a.idx = idx.data(); a.src = src.data(); a.out = out.data(); a.out_size = 3;
    run_seq([&] { scatter_lines_kernel<float, true>(a, 2); });
    EXPECT((out == std::vector<float>{1, 0, 2 + 3 + 4, 7 + 8, 5 + 6, 0}));
    // scatter (set): last write wins
    std::fill(out.begin(), out.end(), 0.0f);
    run_seq([&] { scatter_lines_kernel<float, false>(a, 2); });
    EXPECT((out == std::vector<float>{1, 0, 4, 8, 6, 0}));
    // index_add along dim 0 of out [3, 2] with index [2, 0, 2], source [3, 2], alpha 2
    std::vector<int32_t> o2(6, 1), s2{1, 2, 3, 4, 5, 6};
    std::vector<int64_t> i2{2, 0, 2};
    ScatterArgs b;
    b.ndim = 2; b.dim = 0;
    b.sizes[0] = 3; b.sizes[1] = 2;
    b.idx_st[0] = 1; b.idx_st[1] = 0;
    b.src_st[0] = 2; b.src_st[1] = 1;
    b.out_st[0] = 2; b.out_st[1] = 1;
    b.idx = i2.data(); b.src = s2.data(); b.out = o2.data(); b.out_size = 3; b.ialpha = 2;
    run_seq([&] { scatter_lines_kernel<int32_t, true>(b, 2); });
    EXPECT((o2 == std::vector<int32_t>{1 + 6, 1 + 8, 1, 1, 1 + 2 + 10, 1 + 4 + 12}));
  }
  // ---- sorted_lines_kernel (index_put_ / index_add with many indices) against scatter_lines_kernel, bit for
  // bit: out [5, 3, 4] (strided: out_st of a transposed layout), index along dim 0 with many duplicates, src
  // [n, 3, 4] contiguous; float add / set, int32 add with alpha, bool add.
  {
    const int64_t n = 200, R0 = 5, R1 = 3, R2 = 4;
    std::uniform_int_distribution<int64_t> pick(0, R0 - 1);
    std::normal_distribution<float> val(0.0f, 1.0f);
    std::vector<int64_t> idx(n);
    for (auto& v : idx) v = pick(rng);
    std::vector<int64_t> order(n);
    for (int64_t i = 0; i < n; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return idx[x] < idx[y]; });
    std::vector<int64_t> keys(n);
    for (int64_t i = 0; i < n; ++i) keys[i] = idx[order[i]];
    ScatterArgs a;
    a.ndim = 3; a.dim = 0;
    a.sizes[0] = n; a.sizes[1] = R1; a.sizes[2] = R2;
    a.idx_st[0] = 1;
    a.src_st[0] = R1 * R2; a.src_st[1] = R2; a.src_st[2] = 1;
    a.out_st[0] = 1; a.out_st[1] = R2 * R0; a.out_st[2] = R0;  // out stored as [3][4][5]
    a.idx = idx.data(); a.out_size = R0; a.alpha = 0.37;
    auto check = [&](auto zero, auto gen, auto add_tag) {
      using T = decltype(zero);
      constexpr bool Add = decltype(add_tag)::value;
      const int64_t ns = n * R1 * R2, no = R0 * R1 * R2;  // (not std::vector: vector<bool> has no data())
      std::unique_ptr<T[]> src(new T[ns]), o1(new T[no]), o2(new T[no]);
      for (int64_t i = 0; i < ns; ++i) src[i] = gen();
      for (int64_t i = 0; i < no; ++i) o1[i] = o2[i] = gen();
      a.src = src.get();
      a.out = o1.get();
      run_seq([&] { scatter_lines_kernel<T, Add>(a, R1 * R2); });
      a.out = o2.get();
      run_seq([&] { sorted_lines_kernel<T, Add>(a, keys.data(), order.data(), n, R1 * R2); });
      EXPECT(std::memcmp(o1.get(), o2.get(), no * sizeof(T)) == 0);
    };
    check(0.0f, [&] { return val(rng); }, std::true_type{});
    check(0.0f, [&] { return val(rng); }, std::false_type{});
    a.ialpha = 3;
    check(int32_t(0), [&] { return int32_t(pick(rng)) - 2; }, std::true_type{});
    a.ialpha = 1;
    check(false, [&] { return pick(rng) == 0; }, std::true_type{});
  }
  // ---- compaction and nonzero
  {
    std::vector<int16_t> src{5, 6, 7, 8, 9, 10};
    bool mask[6] = {false, true, true, false, false, true};
    std::vector<int64_t> m64{0, 1, 1, 0, 0, 1}, pos(6);
    run_seq([&] { scan_rows_kernel<int64_t, false>(m64.data(), pos.data(), 1, 6); });
    std::vector<uint16_t> out(3);
    run_seq([&] { compact_kernel<uint16_t>(reinterpret_cast<const uint16_t*>(src.data()), mask, pos.data(), out.data(), 6); });
    EXPECT((out == std::vector<uint16_t>{6, 7, 10}));
    NonzeroArgs na;
    na.ndim = 2; na.sizes[0] = 2; na.sizes[1] = 3;
    std::vector<int64_t> coords(6);
    run_seq([&] { nonzero_kernel(mask, pos.data(), coords.data(), 6, na); });
    EXPECT((coords == std::vector<int64_t>{0, 1, 0, 2, 1, 2}));
  }
  std::printf("%s (%d failures)\n", fails ? "FAILED" : "ok", fails);
  return fails != 0;
}
