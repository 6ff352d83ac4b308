// Private header: branch-free float32 math written so that a plain loop over contiguous data
// auto-vectorises under the portable baseline ISA (no -ffast-math, no -march flags).
//
// exp_f32: Cody-Waite reduction x = n*ln2 + r (|r| <= ln2/2, ln2 split in a short high part and a
// correction), exp(r) by the classic degree-6 minimax polynomial for single precision (Cephes expf
// coefficients), then scaled by 2^n in two halves so that subnormal results come out right.
// Max error ~1 ulp over the whole range; inf above 88.7228..., +0 below -103.97..., NaN propagates.
#pragma once
#include <bit>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace vbt::vec {

// c ? a : b without a branch (GCC does not if-convert float selects under the default -ftrapping-math).
inline float select(bool c, float a, float b) {
  const int32_t m = -static_cast<int32_t>(c);
  return std::bit_cast<float>((std::bit_cast<int32_t>(a) & m) | (std::bit_cast<int32_t>(b) & ~m));
}

inline double select(bool c, double a, double b) {
  const int64_t m = -static_cast<int64_t>(c);
  return std::bit_cast<double>((std::bit_cast<int64_t>(a) & m) | (std::bit_cast<int64_t>(b) & ~m));
}

// exp(r) * 2^n for the reduced argument |r| <= ~ln2/2 (+ a small correction): the degree-6 minimax polynomial,
// then the scale applied in two halves (each a normal power of two, so subnormal results come out right).
inline float exp_reduced_f32(float r, int32_t n) {
  const float z = r * r;
  float p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  p = p * z + r + 1.0f;
  const int32_t n1 = n >> 1, n2 = n - n1;
  const float s1 = std::bit_cast<float>((n1 + 127) << 23), s2 = std::bit_cast<float>((n2 + 127) << 23);
  return p * s1 * s2;
}

inline float exp_f32(float x) {
  constexpr float kHi = 88.72283935546875f, kLo = -103.97208404541015625f;
  constexpr float kLog2e = 1.44269504088896341f, kC1 = 0.693359375f, kC2 = -2.12194440e-4f;
  constexpr float kShift = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  float xc = select(x < -104.0f, -104.0f, x);
  xc = select(xc > 89.0f, 89.0f, xc);
  const float t = xc * kLog2e + kShift;
  const float fn = t - kShift;
  const int32_t n = std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(kShift);
  float r = xc - fn * kC1;
  r = r - fn * kC2;
  float y = exp_reduced_f32(r, n);
  y = select(x > kHi, __builtin_inff(), y);
  y = select(x < kLo, 0.0f, y);
  return select(x != x, x, y);
}

// exp(hi + lo) where hi is exact and lo is a small correction (|lo| < ~2): lo joins the reduced argument
// after the Cody-Waite step, so the rounding of hi + lo (up to ~1e-5 absolute for hi ~ -100) never
// enters the result. Needs -150 < hi + lo < 80 (no clamping; the scale is applied in two halves, so results
// down to the subnormal range come out right).
inline float exp_hilo_f32(float hi, float lo) {
  constexpr float kLog2e = 1.44269504088896341f, kC1 = 0.693359375f, kC2 = -2.12194440e-4f;
  constexpr float kShift = 12582912.0f;
  const float t = (hi + lo) * kLog2e + kShift;
  const float fn = t - kShift;
  const int32_t n = std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(kShift);
  float r = hi - fn * kC1;  // exact when hi has few low bits (see gelu_erf_f32) and n * kC1 is exact
  r = r - fn * kC2;
  r = r + lo;
  return exp_reduced_f32(r, n);
}

// The pieces of gelu and its derivative for a = |x| (clamped at 14.5): c = erfc(a/sqrt2) and e = exp(-a^2/2),
// both in float. erfc(z) ~= t * exp(-z^2 + P(t)), t = 1 / (1 + z/2), P of degree 9 (fractional error < 1.2e-7
// for all z >= 0: Numerical Recipes' erfcc). -z^2 = -a^2/2 is formed exactly as hi + lo (a split into its 12 high
// bits h and the rest l, so h*h, h*l, l*l are exact), and P joins lo, so the large argument adds no rounding
// error. Clamping a at 14.5 changes nothing visible: there x/2 * erfc and x * exp(-x^2/2) round to +-0.
struct GeluParts {
  float c, e;
};
template <bool kWantExp> inline GeluParts gelu_parts_f32(float x) {
  const float a = std::bit_cast<float>(std::bit_cast<int32_t>(x) & INT32_MAX);
  const float ac = select(a < 14.5f, a, 14.5f);
  const float z = ac * 0.70710678118654752440f;
  const float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  const float h = std::bit_cast<float>(std::bit_cast<int32_t>(ac) & static_cast<int32_t>(0xFFFFF000u));
  const float l = ac - h;
  const float hi = -0.5f * (h * h);
  const float lo0 = -(h * l + 0.5f * (l * l));
  GeluParts r;
  r.c = t * exp_hilo_f32(hi, lo0 + p);  // erfc(|x|/sqrt2)
  r.e = kWantExp ? exp_hilo_f32(hi, lo0) : 0.0f;  // exp(-x^2/2)
  return r;
}

// gelu(x) = x/2 * (1 + erf(x/sqrt2)) = x/2 * erfc(-x/sqrt2), all in float (vectorises 8 wide with AVX2): x < 0
// uses erfc directly (no 1 + erf cancellation in the tail), x >= 0 uses 2 - erfc.
// Max relative error ~5.5e-7 against a float64 erfc reference over all finite floats (subnormal results:
// absolute error < 4e-44); NaN propagates through the final product, +inf -> inf, -inf -> NaN (-inf * 0).
inline float gelu_erf_f32(float x) {
  const float c = gelu_parts_f32<false>(x).c;
  const float w = select(x < 0.0f, c, 2.0f - c);
  return 0.5f * x * w;
}

// gelu'(x) = Phi(x) + x * phi(x), Phi(x) = erfc(-x/sqrt2) / 2, phi(x) = exp(-x^2/2) / sqrt(2 pi), in float with
// the same pieces as gelu_erf_f32. +-inf -> NaN (inf * 0, as PyTorch), NaN propagates.
inline float gelu_erf_grad_f32(float x) {
  const GeluParts q = gelu_parts_f32<true>(x);
  const float w = select(x < 0.0f, q.c, 2.0f - q.c);
  return 0.5f * w + x * (0.39894228040143267794f * q.e);
}

// Array forms. On x86-64 Linux with GCC they are compiled twice (baseline and AVX2, no FMA, so both give
// bit-identical results) and the loader picks the one the CPU supports: the build stays portable.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VBT_VEC_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VBT_VEC_CLONES
#endif

// y[i] = exp(x[i] - shift), i < n (y may alias x). Like gelu below, an AVX2+FMA build is picked at run time
// on x86-64 (results may differ from the plain loop's in the last bit).
[[maybe_unused]] VBT_VEC_CLONES static void exp_f32_array_plain(float* y, const float* x, int64_t n, float shift) {
  for (int64_t i = 0; i < n; ++i) y[i] = exp_f32(x[i] - shift);
}
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
[[maybe_unused]] __attribute__((target("avx2,fma"))) static void exp_f32_array_fma(float* y, const float* x,
                                                                                int64_t n, float shift) {
  for (int64_t i = 0; i < n; ++i) y[i] = exp_f32(x[i] - shift);
}
inline bool cpu_has_avx2_fma() {
  static const bool v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return v;
}
[[maybe_unused]] static void exp_f32_array(float* y, const float* x, int64_t n, float shift) {
  if (cpu_has_avx2_fma()) exp_f32_array_fma(y, x, n, shift); else exp_f32_array_plain(y, x, n, shift);
}
#else
[[maybe_unused]] static void exp_f32_array(float* y, const float* x, int64_t n, float shift) {
  exp_f32_array_plain(y, x, n, shift);
}
#endif

// y[i] = gelu(x[i]) (exact form), i < n. gelu is compute-bound (~60 multiply-adds per element), so on x86-64
// it also has an AVX2+FMA build (chosen once at run time by CPUID; the build flags stay portable): with
// contraction (GNU C++ mode: -ffp-contract=fast) its results may differ from the plain loop's in the last bit
// (both within the ~5.5e-7 bound above). The same holds for exp_f32_array.
[[maybe_unused]] VBT_VEC_CLONES static void gelu_erf_f32_array_plain(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = gelu_erf_f32(x[i]);
}
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
[[maybe_unused]] __attribute__((target("avx2,fma"))) static void gelu_erf_f32_array_fma(float* y, const float* x,
                                                                                     int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = gelu_erf_f32(x[i]);
}
[[maybe_unused]] static void gelu_erf_f32_array(float* y, const float* x, int64_t n) {
  if (cpu_has_avx2_fma()) gelu_erf_f32_array_fma(y, x, n); else gelu_erf_f32_array_plain(y, x, n);
}
#else
[[maybe_unused]] static void gelu_erf_f32_array(float* y, const float* x, int64_t n) {
  gelu_erf_f32_array_plain(y, x, n);
}
#endif

// y[i] = g[i] * gelu'(x[i]) (exact form), i < n: gelu's float32 backward, with an AVX2+FMA build picked at run
// time like gelu_erf_f32_array.
[[maybe_unused]] VBT_VEC_CLONES static void gelu_erf_backward_f32_array_plain(float* y, const float* x, const float* g,
                                                                              int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = g[i] * gelu_erf_grad_f32(x[i]);
}
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
[[maybe_unused]] __attribute__((target("avx2,fma"))) static void gelu_erf_backward_f32_array_fma(
    float* y, const float* x, const float* g, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = g[i] * gelu_erf_grad_f32(x[i]);
}
[[maybe_unused]] static void gelu_erf_backward_f32_array(float* y, const float* x, const float* g, int64_t n) {
  if (cpu_has_avx2_fma()) gelu_erf_backward_f32_array_fma(y, x, g, n); else gelu_erf_backward_f32_array_plain(y, x, g, n);
}
#else
[[maybe_unused]] static void gelu_erf_backward_f32_array(float* y, const float* x, const float* g, int64_t n) {
  gelu_erf_backward_f32_array_plain(y, x, g, n);
}
#endif

// Float32 sums accumulate in double (each float converted exactly, so the result is the float64 sum up to
// double rounding): 32 double lanes, lane j taking the elements at offsets == j (mod 32) of each run, combined
// pairwise at the end. The conversion is the bottleneck, so on x86-64 an AVX2 build converts straight from
// memory (picked once at run time); it adds in the same order as the plain loop, so both give identical
// results.
constexpr int64_t kSumLanes = 32;

// acc[i % 32] += x[i], i < n.
[[maybe_unused]] static void sum_f32_lanes_plain(double* acc, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes)
    for (int64_t j = 0; j < kSumLanes; ++j) acc[j] += static_cast<double>(x[i + j]);
  for (int64_t j = 0; i < n; ++i, ++j) acc[j] += static_cast<double>(x[i]);
}

// acc[j] += rows[r * stride + j] for r < nrows (in row order), j < len.
[[maybe_unused]] static void add_rows_f32_plain(double* acc, const float* rows, int64_t stride, int64_t nrows,
                                                int64_t len) {
  for (int64_t r = 0; r < nrows; ++r) {
    const float* row = rows + r * stride;
    for (int64_t j = 0; j < len; ++j) acc[j] += static_cast<double>(row[j]);
  }
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VBT_VEC_X86_DISPATCH 1
__attribute__((target("avx2"))) static void sum_f32_lanes_avx2(double* acc, const float* x, int64_t n) {
  int64_t i = 0;
  if (n >= kSumLanes) {  // eight named accumulators: an array of them was kept on the stack by GCC
    __m256d a0 = _mm256_loadu_pd(acc), a1 = _mm256_loadu_pd(acc + 4), a2 = _mm256_loadu_pd(acc + 8);
    __m256d a3 = _mm256_loadu_pd(acc + 12), a4 = _mm256_loadu_pd(acc + 16), a5 = _mm256_loadu_pd(acc + 20);
    __m256d a6 = _mm256_loadu_pd(acc + 24), a7 = _mm256_loadu_pd(acc + 28);
    for (; i + kSumLanes <= n; i += kSumLanes) {
      const float* p = x + i;
      a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm_loadu_ps(p)));
      a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm_loadu_ps(p + 4)));
      a2 = _mm256_add_pd(a2, _mm256_cvtps_pd(_mm_loadu_ps(p + 8)));
      a3 = _mm256_add_pd(a3, _mm256_cvtps_pd(_mm_loadu_ps(p + 12)));
      a4 = _mm256_add_pd(a4, _mm256_cvtps_pd(_mm_loadu_ps(p + 16)));
      a5 = _mm256_add_pd(a5, _mm256_cvtps_pd(_mm_loadu_ps(p + 20)));
      a6 = _mm256_add_pd(a6, _mm256_cvtps_pd(_mm_loadu_ps(p + 24)));
      a7 = _mm256_add_pd(a7, _mm256_cvtps_pd(_mm_loadu_ps(p + 28)));
    }
    _mm256_storeu_pd(acc, a0);
    _mm256_storeu_pd(acc + 4, a1);
    _mm256_storeu_pd(acc + 8, a2);
    _mm256_storeu_pd(acc + 12, a3);
    _mm256_storeu_pd(acc + 16, a4);
    _mm256_storeu_pd(acc + 20, a5);
    _mm256_storeu_pd(acc + 24, a6);
    _mm256_storeu_pd(acc + 28, a7);
  }
  for (int64_t j = 0; i < n; ++i, ++j) acc[j] += static_cast<double>(x[i]);
}

__attribute__((target("avx2"))) static void add_rows_f32_avx2(double* acc, const float* rows, int64_t stride,
                                                             int64_t nrows, int64_t len) {
  constexpr int64_t kRows = 8;  // rows added per pass over acc (acc stays in registers for 16 columns)
  for (int64_t r0 = 0; r0 < nrows; r0 += kRows) {
    const int64_t rn = nrows - r0 < kRows ? nrows - r0 : kRows;
    const float* base = rows + r0 * stride;
    int64_t j = 0;
    for (; j + 16 <= len; j += 16) {
      __m256d a0 = _mm256_loadu_pd(acc + j), a1 = _mm256_loadu_pd(acc + j + 4);
      __m256d a2 = _mm256_loadu_pd(acc + j + 8), a3 = _mm256_loadu_pd(acc + j + 12);
      for (int64_t r = 0; r < rn; ++r) {
        const float* row = base + r * stride + j;
        a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm_loadu_ps(row)));
        a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm_loadu_ps(row + 4)));
        a2 = _mm256_add_pd(a2, _mm256_cvtps_pd(_mm_loadu_ps(row + 8)));
        a3 = _mm256_add_pd(a3, _mm256_cvtps_pd(_mm_loadu_ps(row + 12)));
      }
      _mm256_storeu_pd(acc + j, a0);
      _mm256_storeu_pd(acc + j + 4, a1);
      _mm256_storeu_pd(acc + j + 8, a2);
      _mm256_storeu_pd(acc + j + 12, a3);
    }
    for (int64_t r = 0; r < rn; ++r) {
      const float* row = base + r * stride;
      for (int64_t jj = j; jj < len; ++jj) acc[jj] += static_cast<double>(row[jj]);
    }
  }
}

inline bool cpu_has_avx2() {
  static const bool v = __builtin_cpu_supports("avx2");
  return v;
}
#endif

[[maybe_unused]] static void sum_f32_lanes(double* acc, const float* x, int64_t n) {
#ifdef VBT_VEC_X86_DISPATCH
  if (cpu_has_avx2()) return sum_f32_lanes_avx2(acc, x, n);
#endif
  sum_f32_lanes_plain(acc, x, n);
}

[[maybe_unused]] static void add_rows_f32(double* acc, const float* rows, int64_t stride, int64_t nrows, int64_t len) {
#ifdef VBT_VEC_X86_DISPATCH
  if (cpu_has_avx2()) return add_rows_f32_avx2(acc, rows, stride, nrows, len);
#endif
  add_rows_f32_plain(acc, rows, stride, nrows, len);
}

// Pairwise combination of the 32 lanes (the same order as reduce_kernels.cpp's generic sum_contig).
inline double combine_lanes(double* acc) {
  for (int64_t w = kSumLanes / 2; w > 0; w /= 2)
    for (int64_t j = 0; j < w; ++j) acc[j] += acc[j + w];
  return acc[0];
}

// Sum of n floats in double.
[[maybe_unused]] static double sum_f32_f64(const float* x, int64_t n) {
  double acc[kSumLanes] = {};
  sum_f32_lanes(acc, x, n);
  return combine_lanes(acc);
}

// Row helpers of the fused float32 layer_norm (reduce_kernels.cpp). Sums run in float over blocks of 4096
// elements (32 lanes, 128 elements per lane at most, combined pairwise), block results in double: about
// PyTorch's float cascade accuracy, at float speed.
[[maybe_unused]] VBT_VEC_CLONES static double sum_f32_blocked(const float* x, int64_t n, float shift, bool square) {
  constexpr int64_t kBlk = 4096;
  double total = 0;
  for (int64_t b0 = 0; b0 < n; b0 += kBlk) {
    const int64_t m = n - b0 < kBlk ? n - b0 : kBlk;
    const float* xb = x + b0;
    float acc[kSumLanes] = {};
    int64_t i = 0;
    if (square) {
      for (; i + kSumLanes <= m; i += kSumLanes)
        for (int64_t j = 0; j < kSumLanes; ++j) acc[j] += (xb[i + j] - shift) * (xb[i + j] - shift);
      for (int64_t j = 0; i < m; ++i, ++j) acc[j] += (xb[i] - shift) * (xb[i] - shift);
    } else {
      for (; i + kSumLanes <= m; i += kSumLanes)
        for (int64_t j = 0; j < kSumLanes; ++j) acc[j] += xb[i + j];
      for (int64_t j = 0; i < m; ++i, ++j) acc[j] += xb[i];
    }
    for (int64_t w = kSumLanes / 2; w > 0; w /= 2)
      for (int64_t j = 0; j < w; ++j) acc[j] += acc[j + w];
    total += static_cast<double>(acc[0]);
  }
  return total;
}

// y[i] = (x[i] - mean) * rstd * w[i] + b[i] (w, b may be null: factor 1, term 0).
[[maybe_unused]] VBT_VEC_CLONES static void layer_norm_row_f32(float* y, const float* x, int64_t n, float mean,
                                                              float rstd, const float* w, const float* b) {
  if (w && b) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd * w[i] + b[i];
  } else if (w) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd * w[i];
  } else if (b) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd + b[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd;
  }
}

// Running extreme (max or min) of x[0..n) starting from `init`, NaN-propagating: a lane takes x when it is more
// extreme or NaN, and a NaN lane keeps it (nothing compares greater than NaN). GCC vector extensions, 32-byte
// vectors, two accumulators; the order-independence of max/min makes the result exactly the plain loop's (up to
// which NaN payload or signed zero wins a tie). Note [Extreme fast paths] in reduce_kernels.cpp.
template <bool IsMax, typename M> inline M pick_extreme(M acc, M x) {
  const bool more = IsMax ? (x > acc) : (x < acc);
  return (more | (x != x)) ? x : acc;
}

template <bool IsMax, typename M> inline M extreme_simd(const M* x, int64_t n, M init) {
  constexpr int kW = 32 / static_cast<int>(sizeof(M));
  typedef M V __attribute__((vector_size(32)));
  V a0, a1;
  for (int j = 0; j < kW; ++j) { a0[j] = init; a1[j] = init; }
  int64_t i = 0;
  for (; i + 2 * kW <= n; i += 2 * kW) {
    V v0, v1;
    std::memcpy(&v0, x + i, sizeof(V));
    std::memcpy(&v1, x + i + kW, sizeof(V));
    a0 = ((IsMax ? v0 > a0 : v0 < a0) | (v0 != v0)) ? v0 : a0;
    a1 = ((IsMax ? v1 > a1 : v1 < a1) | (v1 != v1)) ? v1 : a1;
  }
  M r = init;
  for (int j = 0; j < kW; ++j) r = pick_extreme<IsMax>(pick_extreme<IsMax>(r, a0[j]), a1[j]);
  for (; i < n; ++i) r = pick_extreme<IsMax>(r, x[i]);
  return r;
}

#define VBT_EXTREME_ARRAY(NAME, M, IS_MAX)                                                                   \
  [[maybe_unused]] VBT_VEC_CLONES static M NAME(const M* x, int64_t n, M init) {                             \
    return extreme_simd<IS_MAX, M>(x, n, init);                                                              \
  }
VBT_EXTREME_ARRAY(max_f32, float, true)
VBT_EXTREME_ARRAY(min_f32, float, false)
VBT_EXTREME_ARRAY(max_f64, double, true)
VBT_EXTREME_ARRAY(min_f64, double, false)
VBT_EXTREME_ARRAY(max_i32, int32_t, true)
VBT_EXTREME_ARRAY(min_i32, int32_t, false)
VBT_EXTREME_ARRAY(max_i64, int64_t, true)
VBT_EXTREME_ARRAY(min_i64, int64_t, false)
#undef VBT_EXTREME_ARRAY

}  // namespace vbt::vec
