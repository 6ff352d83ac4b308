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
  const float z = r * r;
  float p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  p = p * z + r + 1.0f;
  const int32_t n1 = n >> 1, n2 = n - n1;  // each half stays a normal power of two
  const float s1 = std::bit_cast<float>((n1 + 127) << 23), s2 = std::bit_cast<float>((n2 + 127) << 23);
  float y = p * s1 * s2;
  y = select(x > kHi, __builtin_inff(), y);
  y = select(x < kLo, 0.0f, y);
  return select(x != x, x, y);
}

// erfc(y) for y >= 0 (or +inf/NaN), as a double with ~2e-7 relative error: the Chebyshev-fitted form
// erfc(y) ~= t * exp(-y^2 + P(t)), t = 1 / (1 + y/2) (P of degree 9, fractional error < 1.2e-7, Numerical
// Recipes' erfcc). P and -y^2 + P are evaluated in double; the exponential is exp_f32 of the float part
// times (1 + the small remainder), so the error does not grow with y^2.
inline double erfc_pos(double y) {
  const double t = 1.0 / (1.0 + 0.5 * y);
  double p = 0.17087277;
  p = p * t - 0.82215223;
  p = p * t + 1.48851587;
  p = p * t - 1.13520398;
  p = p * t + 0.27886807;
  p = p * t - 0.18628806;
  p = p * t + 0.09678418;
  p = p * t + 0.37409196;
  p = p * t + 1.00002368;
  p = p * t - 1.26551223;
  const double e = p - y * y;
  const float hi = static_cast<float>(e);
  const double lo = e - static_cast<double>(hi);
  const double lo_ok = select(hi > -104.0f, lo, 0.0);  // e = -inf gives lo = NaN; exp_f32(hi) is 0 there
  return t * static_cast<double>(exp_f32(hi)) * (1.0 + lo_ok);
}

// gelu(x) = x/2 * (1 + erf(x/sqrt2)) = x/2 * erfc(-x/sqrt2): erfc(|x|/sqrt2) for x < 0, 2 - that for x >= 0,
// so negative inputs keep full relative accuracy (no 1 + erf cancellation).
inline float gelu_erf_f32(float x) {
  const double xd = static_cast<double>(x);
  const double c = erfc_pos(std::bit_cast<double>(std::bit_cast<int64_t>(xd) & INT64_MAX) * 0.70710678118654752440);
  const double w = select(xd < 0, c, 2.0 - c);
  return static_cast<float>(0.5 * xd * w);
}

// Array forms. On x86-64 Linux with GCC they are compiled twice (baseline and AVX2, no FMA, so both give
// bit-identical results) and the loader picks the one the CPU supports: the build stays portable.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VBT_VEC_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VBT_VEC_CLONES
#endif

// y[i] = exp(x[i] - shift), i < n (y may alias x).
[[maybe_unused]] VBT_VEC_CLONES static void exp_f32_array(float* y, const float* x, int64_t n, float shift) {
  for (int64_t i = 0; i < n; ++i) y[i] = exp_f32(x[i] - shift);
}

// y[i] = gelu(x[i]) (exact form), i < n.
[[maybe_unused]] VBT_VEC_CLONES static void gelu_erf_f32_array(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = gelu_erf_f32(x[i]);
}

// Sum of n floats in double with kLanes independent accumulators combined pairwise (the same order as
// reduce_kernels.cpp's sum_contig, so both clones and the generic template give identical results).
[[maybe_unused]] VBT_VEC_CLONES static double sum_f32_f64(const float* x, int64_t n) {
  constexpr int64_t kLanes = 32;
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) acc[j] += static_cast<double>(x[i + j]);
  for (int64_t j = 0; i < n; ++i, ++j) acc[j] += static_cast<double>(x[i]);
  for (int64_t w = kLanes / 2; w > 0; w /= 2)
    for (int64_t j = 0; j < w; ++j) acc[j] += acc[j + w];
  return acc[0];
}

}  // namespace vbt::vec
