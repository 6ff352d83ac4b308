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
#include <cmath>
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
// it also has an AVX2+FMA build (chosen once at run time by CPUID; the build flags stay portable), which takes
// Note [gelu fast path] for |x| <= 4: its results may differ from the plain loop's in the last bits (both within
// the ~5.5e-7 bound above). exp_f32_array's FMA build (contraction only) may differ in the last bit.
[[maybe_unused]] VBT_VEC_CLONES static void gelu_erf_f32_array_plain(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = gelu_erf_f32(x[i]);
}
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
// Note [gelu fast path]
// The AVX2+FMA build evaluates lanes with |x| <= 4 (nearly all of them for activations) from a piecewise
// polynomial instead of the division, polynomial and exp of gelu_parts_f32: c = erfc(a/sqrt2), a = |x|, on the
// interval k = min(floor(2a), 7) of [0, 4] (width 1/2) is a degree-7 polynomial in u = a - (k + 1/2)/2, its
// coefficients picked per lane from 8-entry tables with one permute each (kGeluPhiTab[j][k]: coefficient of
// u^j on interval k, for c/2 = Phi(-a)). Fitted by least squares of the relative error on 200 Chebyshev nodes
// per interval against an mpmath erfc (30 digits), coefficients rounded to float: evaluated in float by Horner,
// relative error of c < 2.5e-7 on [0, 4], so gelu = x * (x < 0 ? c/2 : 1 - c/2) keeps the tail's relative
// accuracy (max ~2.9e-7 against a float64 erfc reference over every 37th float in [-4, 4]). Vectors with a lane
// outside [-4, 4] (or
// NaN/inf) also run the full-range gelu_erf_f32 and take its value for those lanes, and a tail of fewer than 8
// elements is padded into one vector: each result depends on its own input only, never on its neighbours or on
// where a parallel chunk starts. ~24 vector operations per 8 elements against ~60 for gelu_erf_f32; blocks of
// 16 (two independent vectors) keep both FMA pipes busy.
constexpr float kGeluFastMax = 4.0f;
alignas(32) inline constexpr float kGeluPhiTab[8][8] = {
    {4.012936652e-01f, 2.266273499e-01f, 1.056497768e-01f, 4.005915672e-02f,
     1.222447306e-02f, 2.979763318e-03f, 5.770250573e-04f, 8.841728413e-05f},
    {-3.866681159e-01f, -3.011374176e-01f, -1.826490909e-01f, -8.627732098e-02f,
     -3.173965216e-02f, -9.093562141e-03f, -2.029048046e-03f, -3.525956708e-04f},
    {4.833349958e-02f, 1.129265204e-01f, 1.141556799e-01f, 7.549266517e-02f,
     3.570710868e-02f, 1.250364631e-02f, 3.297201823e-03f, 6.611169083e-04f},
    {6.041685864e-02f, 2.195790410e-02f, -1.712333225e-02f, -2.965779044e-02f,
     -2.149038389e-02f, -9.946099482e-03f, -3.233803669e-03f, -7.676298264e-04f},
    {-1.183050778e-02f, -2.293680049e-02f, -1.367520355e-02f, 3.923489421e-04f,
     6.137008779e-03f, 4.754209425e-03f, 2.078039339e-03f, 6.094678538e-04f},
    {-8.469625376e-03f, 1.479748171e-04f, 5.986381788e-03f, 4.309860989e-03f,
     4.617809900e-04f, -1.122264192e-03f, -8.653294644e-04f, -3.419753921e-04f},
    {1.901303534e-03f, 3.003787016e-03f, 5.839540390e-04f, -1.287704683e-03f,
     -9.875125252e-04f, -1.251502545e-04f, 1.886666723e-04f, 1.324460609e-04f},
    {9.205964743e-04f, -3.471730161e-04f, -8.022607653e-04f, -1.761245949e-04f,
     2.615439589e-04f, 1.755143021e-04f, 1.229069585e-05f, -2.983517334e-05f},
};

alignas(32) inline constexpr float kGeluCenters[8] = {0.25f, 0.75f, 1.25f, 1.75f, 2.25f, 2.75f, 3.25f, 3.75f};

__attribute__((target("avx2,fma"))) inline __m256 gelu_erf_small_f32x8(__m256 x) {
  const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
  const __m256i k = _mm256_min_epi32(_mm256_cvttps_epi32(_mm256_add_ps(a, a)), _mm256_set1_epi32(7));
  const __m256 u = _mm256_sub_ps(a, _mm256_permutevar8x32_ps(_mm256_load_ps(kGeluCenters), k));
  __m256 c = _mm256_permutevar8x32_ps(_mm256_load_ps(kGeluPhiTab[7]), k);
  for (int j = 6; j >= 0; --j)
    c = _mm256_fmadd_ps(c, u, _mm256_permutevar8x32_ps(_mm256_load_ps(kGeluPhiTab[j]), k));
  const __m256 w = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), c), c, x);  // sign bit of x picks c
  return _mm256_mul_ps(x, w);
}

// Lanes outside [-4, 4] or NaN, as a mask.
__attribute__((target("avx2,fma"))) inline __m256 gelu_erf_big_lanes(__m256 x) {
  return _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), x), _mm256_set1_ps(kGeluFastMax), _CMP_NLE_UQ);
}

// r with the lanes in `big` replaced by the full-range gelu_erf_f32 of x.
__attribute__((target("avx2,fma"))) inline __m256 gelu_erf_fix_big_lanes(__m256 r, __m256 x, __m256 big) {
  alignas(32) float xs[8], ys[8];
  _mm256_store_ps(xs, x);
  for (int k = 0; k < 8; ++k) ys[k] = gelu_erf_f32(xs[k]);
  return _mm256_blendv_ps(r, _mm256_load_ps(ys), big);
}

[[maybe_unused]] __attribute__((target("avx2,fma"))) static void gelu_erf_f32_array_fma(float* y, const float* x,
                                                                                     int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
    __m256 r0 = gelu_erf_small_f32x8(x0), r1 = gelu_erf_small_f32x8(x1);
    const __m256 b0 = gelu_erf_big_lanes(x0), b1 = gelu_erf_big_lanes(x1);
    if (__builtin_expect(_mm256_movemask_ps(_mm256_or_ps(b0, b1)) != 0, 0)) {
      if (_mm256_movemask_ps(b0)) r0 = gelu_erf_fix_big_lanes(r0, x0, b0);
      if (_mm256_movemask_ps(b1)) r1 = gelu_erf_fix_big_lanes(r1, x1, b1);
    }
    _mm256_storeu_ps(y + i, r0);
    _mm256_storeu_ps(y + i + 8, r1);
  }
  for (; i < n; i += 8) {  // 1..15 left: full vectors, then the tail padded with zeros
    const int64_t len = n - i < 8 ? n - i : 8;
    alignas(32) float buf[8] = {};
    std::memcpy(buf, x + i, static_cast<size_t>(len) * sizeof(float));
    const __m256 xv = _mm256_load_ps(buf);
    __m256 r = gelu_erf_small_f32x8(xv);
    const __m256 b = gelu_erf_big_lanes(xv);
    if (_mm256_movemask_ps(b)) r = gelu_erf_fix_big_lanes(r, xv, b);
    _mm256_store_ps(buf, r);
    std::memcpy(y + i, buf, static_cast<size_t>(len) * sizeof(float));
  }
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

// acc[i % 32] += x[i], i < n, for float64 input (the order of reduce_kernels.cpp's generic lane loop).
[[maybe_unused]] static void sum_f64_lanes_plain(double* acc, const double* x, int64_t n) {
  int64_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes)
    for (int64_t j = 0; j < kSumLanes; ++j) acc[j] += x[i + j];
  for (int64_t j = 0; i < n; ++i, ++j) acc[j] += x[i];
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VBT_VEC_X86_DISPATCH 1
// Streaming sums read far ahead with software prefetches: with one output per row (sum over the last dim) the
// hardware prefetcher alone left the float32 lane loop ~1.5x slower than a plain float sum over the same 16 MiB.
// kSumPrefetchBytes ahead (16 KiB; 4 KiB and 8 KiB left part of the gap) measured best here; prefetches never
// fault past the end.
constexpr int64_t kSumPrefetchBytes = 16384;
inline void prefetch_ahead(const void* p, int64_t bytes) {  // integer arithmetic: the address may be past the end
  _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) + static_cast<uintptr_t>(bytes)),
               _MM_HINT_T0);
}

// The additions are FMAs x * 1 + acc (the same correctly rounded sum as an add): on Zen 3 they then run on the
// multiply pipes while the conversions take the add pipes (~1.3x from L2; identical results).
__attribute__((target("avx2,fma"))) static void sum_f32_lanes_avx2(double* acc, const float* x, int64_t n) {
  int64_t i = 0;
  if (n >= kSumLanes) {  // eight named accumulators: an array of them was kept on the stack by GCC
    const __m256d one = _mm256_set1_pd(1.0);
    __m256d a0 = _mm256_loadu_pd(acc), a1 = _mm256_loadu_pd(acc + 4), a2 = _mm256_loadu_pd(acc + 8);
    __m256d a3 = _mm256_loadu_pd(acc + 12), a4 = _mm256_loadu_pd(acc + 16), a5 = _mm256_loadu_pd(acc + 20);
    __m256d a6 = _mm256_loadu_pd(acc + 24), a7 = _mm256_loadu_pd(acc + 28);
    for (; i + kSumLanes <= n; i += kSumLanes) {
      const float* p = x + i;
      prefetch_ahead(p, kSumPrefetchBytes);
      prefetch_ahead(p, kSumPrefetchBytes + 64);
      a0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(p)), one, a0);
      a1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(p + 4)), one, a1);
      a2 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(p + 8)), one, a2);
      a3 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(p + 12)), one, a3);
      a4 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(p + 16)), one, a4);
      a5 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(p + 20)), one, a5);
      a6 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(p + 24)), one, a6);
      a7 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(p + 28)), one, a7);
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

// sum_f64_lanes_plain with AVX2 and prefetches: the same additions in the same order (identical results).
__attribute__((target("avx2"))) static void sum_f64_lanes_avx2(double* acc, const double* x, int64_t n) {
  int64_t i = 0;
  if (n >= kSumLanes) {
    __m256d a0 = _mm256_loadu_pd(acc), a1 = _mm256_loadu_pd(acc + 4), a2 = _mm256_loadu_pd(acc + 8);
    __m256d a3 = _mm256_loadu_pd(acc + 12), a4 = _mm256_loadu_pd(acc + 16), a5 = _mm256_loadu_pd(acc + 20);
    __m256d a6 = _mm256_loadu_pd(acc + 24), a7 = _mm256_loadu_pd(acc + 28);
    for (; i + kSumLanes <= n; i += kSumLanes) {
      const double* p = x + i;
      for (int64_t b = 0; b < 256; b += 64) prefetch_ahead(p, kSumPrefetchBytes + b);
      a0 = _mm256_add_pd(a0, _mm256_loadu_pd(p));
      a1 = _mm256_add_pd(a1, _mm256_loadu_pd(p + 4));
      a2 = _mm256_add_pd(a2, _mm256_loadu_pd(p + 8));
      a3 = _mm256_add_pd(a3, _mm256_loadu_pd(p + 12));
      a4 = _mm256_add_pd(a4, _mm256_loadu_pd(p + 16));
      a5 = _mm256_add_pd(a5, _mm256_loadu_pd(p + 20));
      a6 = _mm256_add_pd(a6, _mm256_loadu_pd(p + 24));
      a7 = _mm256_add_pd(a7, _mm256_loadu_pd(p + 28));
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
  for (int64_t j = 0; i < n; ++i, ++j) acc[j] += x[i];
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
  if (cpu_has_avx2_fma()) return sum_f32_lanes_avx2(acc, x, n);
#endif
  sum_f32_lanes_plain(acc, x, n);
}

[[maybe_unused]] static void sum_f64_lanes(double* acc, const double* x, int64_t n) {
#ifdef VBT_VEC_X86_DISPATCH
  if (cpu_has_avx2()) return sum_f64_lanes_avx2(acc, x, n);
#endif
  sum_f64_lanes_plain(acc, x, n);
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

#ifdef VBT_VEC_X86_DISPATCH
// sum_f32_f64 with the 32 lanes kept in registers from zero to the end: the tail's partial groups of 4 come in by
// masked loads, and the pairwise combination of combine_lanes is done on the registers (lanes j and j + w added,
// w = 16, 8, 4, 2, 1). The same additions in the same order, so the same result, without the per-call zeroing,
// loads and stores of the lane array and the scalar tail and combine (~15% of a sum over 2048-float rows).
// A lane starts at +0 and never becomes -0, so a masked-off element (+0) adds nothing.
// The first min(k, 4) floats at p widened to double, the other lanes +0 (k >= 1).
__attribute__((target("avx2,fma"))) inline __m256d load_f32x4_as_f64(const float* p, int64_t k) {
  if (k >= 4) return _mm256_cvtps_pd(_mm_loadu_ps(p));
  const __m128i mask = _mm_setr_epi32(-1, k > 1 ? -1 : 0, k > 2 ? -1 : 0, 0);
  return _mm256_cvtps_pd(_mm_maskload_ps(p, mask));
}

__attribute__((target("avx2,fma"))) static double sum_f32_row_avx2(const float* x, int64_t n) {
  const __m256d one = _mm256_set1_pd(1.0);
  __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  int64_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes) {
    const float* p = x + i;
    prefetch_ahead(p, kSumPrefetchBytes);
    prefetch_ahead(p, kSumPrefetchBytes + 64);
    a0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(p)), one, a0);
    a1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(p + 4)), one, a1);
    a2 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(p + 8)), one, a2);
    a3 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(p + 12)), one, a3);
    a4 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(p + 16)), one, a4);
    a5 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(p + 20)), one, a5);
    a6 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(p + 24)), one, a6);
    a7 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(p + 28)), one, a7);
  }
  const int64_t r = n - i;  // 0..31 elements left: lanes 0..r-1
  const float* t = x + i;
  if (r > 0) a0 = _mm256_fmadd_pd(load_f32x4_as_f64(t, r), one, a0);
  if (r > 4) a1 = _mm256_fmadd_pd(load_f32x4_as_f64(t + 4, r - 4), one, a1);
  if (r > 8) a2 = _mm256_fmadd_pd(load_f32x4_as_f64(t + 8, r - 8), one, a2);
  if (r > 12) a3 = _mm256_fmadd_pd(load_f32x4_as_f64(t + 12, r - 12), one, a3);
  if (r > 16) a4 = _mm256_fmadd_pd(load_f32x4_as_f64(t + 16, r - 16), one, a4);
  if (r > 20) a5 = _mm256_fmadd_pd(load_f32x4_as_f64(t + 20, r - 20), one, a5);
  if (r > 24) a6 = _mm256_fmadd_pd(load_f32x4_as_f64(t + 24, r - 24), one, a6);
  if (r > 28) a7 = _mm256_fmadd_pd(load_f32x4_as_f64(t + 28, r - 28), one, a7);
  a0 = _mm256_add_pd(a0, a4);  // w = 16
  a1 = _mm256_add_pd(a1, a5);
  a2 = _mm256_add_pd(a2, a6);
  a3 = _mm256_add_pd(a3, a7);
  a0 = _mm256_add_pd(a0, a2);  // w = 8
  a1 = _mm256_add_pd(a1, a3);
  a0 = _mm256_add_pd(a0, a1);  // w = 4
  const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(a0), _mm256_extractf128_pd(a0, 1));  // w = 2
  return _mm_cvtsd_f64(h) + _mm_cvtsd_f64(_mm_unpackhi_pd(h, h));                       // w = 1
}

// The first min(k, 4) doubles at p, the other lanes +0 (k >= 1).
__attribute__((target("avx2,fma"))) inline __m256d load_f64x4(const double* p, int64_t k) {
  if (k >= 4) return _mm256_loadu_pd(p);
  const __m256i mask = _mm256_setr_epi64x(-1, k > 1 ? -1 : 0, k > 2 ? -1 : 0, 0);
  return _mm256_maskload_pd(p, mask);
}

// sum_f64 in registers, like sum_f32_row_avx2 (the same additions in the same order as sum_f64_lanes_plain and
// combine_lanes).
__attribute__((target("avx2,fma"))) static double sum_f64_row_avx2(const double* x, int64_t n) {
  __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  int64_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes) {
    const double* p = x + i;
    for (int64_t b = 0; b < 256; b += 64) prefetch_ahead(p, kSumPrefetchBytes + b);
    a0 = _mm256_add_pd(a0, _mm256_loadu_pd(p));
    a1 = _mm256_add_pd(a1, _mm256_loadu_pd(p + 4));
    a2 = _mm256_add_pd(a2, _mm256_loadu_pd(p + 8));
    a3 = _mm256_add_pd(a3, _mm256_loadu_pd(p + 12));
    a4 = _mm256_add_pd(a4, _mm256_loadu_pd(p + 16));
    a5 = _mm256_add_pd(a5, _mm256_loadu_pd(p + 20));
    a6 = _mm256_add_pd(a6, _mm256_loadu_pd(p + 24));
    a7 = _mm256_add_pd(a7, _mm256_loadu_pd(p + 28));
  }
  const int64_t r = n - i;
  const double* t = x + i;
  if (r > 0) a0 = _mm256_add_pd(a0, load_f64x4(t, r));
  if (r > 4) a1 = _mm256_add_pd(a1, load_f64x4(t + 4, r - 4));
  if (r > 8) a2 = _mm256_add_pd(a2, load_f64x4(t + 8, r - 8));
  if (r > 12) a3 = _mm256_add_pd(a3, load_f64x4(t + 12, r - 12));
  if (r > 16) a4 = _mm256_add_pd(a4, load_f64x4(t + 16, r - 16));
  if (r > 20) a5 = _mm256_add_pd(a5, load_f64x4(t + 20, r - 20));
  if (r > 24) a6 = _mm256_add_pd(a6, load_f64x4(t + 24, r - 24));
  if (r > 28) a7 = _mm256_add_pd(a7, load_f64x4(t + 28, r - 28));
  a0 = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(a0, a4), _mm256_add_pd(a2, a6)),
                     _mm256_add_pd(_mm256_add_pd(a1, a5), _mm256_add_pd(a3, a7)));  // w = 16, 8, 4
  const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(a0), _mm256_extractf128_pd(a0, 1));  // w = 2
  return _mm_cvtsd_f64(h) + _mm_cvtsd_f64(_mm_unpackhi_pd(h, h));                       // w = 1
}
#endif

// Sum of n floats in double.
[[maybe_unused]] static double sum_f32_f64(const float* x, int64_t n) {
#ifdef VBT_VEC_X86_DISPATCH
  if (cpu_has_avx2_fma()) return sum_f32_row_avx2(x, n);
#endif
  double acc[kSumLanes] = {};
  sum_f32_lanes(acc, x, n);
  return combine_lanes(acc);
}

// Sum of n doubles: 32 lanes combined pairwise (reduce_kernels.cpp's generic sum_contig order).
[[maybe_unused]] static double sum_f64(const double* x, int64_t n) {
#ifdef VBT_VEC_X86_DISPATCH
  if (cpu_has_avx2_fma()) return sum_f64_row_avx2(x, n);
#endif
  double acc[kSumLanes] = {};
  sum_f64_lanes(acc, x, n);
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

// o[i] = x[i] + al * y[i] with one rounding (a fused multiply-add), i < n; y_bcast: y[0] for every i. PyTorch's
// CPU add/sub with alpha are fused multiply-adds (its vectorised loops use the FMA instruction), so these are too:
// with the FMA instruction where the CPU has it (picked once at run time), std::fma (libm, the same bits) where not.
template <typename M>
__attribute__((always_inline)) inline void fma_array_plain(M* o, const M* x, const M* y, bool y_bcast, M al,
                                                           int64_t n) {
  if (y_bcast) {
    const M p = y[0];
    for (int64_t i = 0; i < n; ++i) o[i] = std::fma(al, p, x[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) o[i] = std::fma(al, y[i], x[i]);
  }
}
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
// The same loop, always inlined into an AVX2+FMA build (std::fma is then one vectorised instruction).
template <typename M>
__attribute__((target("avx2,fma"))) static void fma_array_avx2(M* o, const M* x, const M* y, bool y_bcast, M al,
                                                               int64_t n) {
  fma_array_plain<M>(o, x, y, y_bcast, al, n);
}
#endif
template <typename M> static void fma_array(M* o, const M* x, const M* y, bool y_bcast, M al, int64_t n) {
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
  if (cpu_has_avx2_fma()) return fma_array_avx2<M>(o, x, y, y_bcast, al, n);
#endif
  fma_array_plain<M>(o, x, y, y_bcast, al, n);
}

}  // namespace vbt::vec
