// vec_math.h's dispatched fast paths against its portable loops: the register-resident row sums (float32, float64)
// give the plain lane loop's bits for every length and alignment; the AVX2+FMA gelu stays within its error bound
// of a long double reference and gives each element a value of its own (tails, offsets); set_num_threads reaches
// OpenBLAS.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "../../../src/vbt/cpu/vec_math.h"
#include "vbt/cpu/parallel.h"

extern "C" __attribute__((weak)) int openblas_get_num_threads(void);

namespace {

using namespace vbt::vec;

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof(double)) == 0; }

TEST(VecMath, RowSumsMatchThePlainLaneLoopBitForBit) {
  std::mt19937 g(3);
  std::normal_distribution<double> d;
  std::vector<float> xf(1100);
  std::vector<double> xd(1100);
  for (size_t i = 0; i < xf.size(); ++i) {
    xf[i] = static_cast<float>(d(g) * std::exp(d(g) * 5));
    xd[i] = d(g) * std::exp(d(g) * 20);
  }
  for (int64_t n = 0; n <= 1000; ++n) {
    for (int64_t off = 0; off < 3; ++off) {
      double acc[kSumLanes] = {};
      sum_f32_lanes_plain(acc, xf.data() + off, n);
      EXPECT_TRUE(same_bits(sum_f32_f64(xf.data() + off, n), combine_lanes(acc))) << "float32 n=" << n << " " << off;
      double acc64[kSumLanes] = {};
      sum_f64_lanes_plain(acc64, xd.data() + off, n);
      EXPECT_TRUE(same_bits(sum_f64(xd.data() + off, n), combine_lanes(acc64))) << "float64 n=" << n << " off=" << off;
    }
  }
  std::vector<float> negz(37, -0.0f);
  EXPECT_FALSE(std::signbit(sum_f32_f64(negz.data(), 37)));  // lanes start at +0, like the plain loop
}

long double gelu_ref(float x) {
  const long double v = x;
  return 0.5L * v * std::erfc(-v / std::sqrt(2.0L));
}

TEST(VecMath, GeluArrayAccuracyAndElementwiseValues) {
  std::vector<float> xs;
  for (uint32_t b = 0; b < 0x40900000u; b += 4099) {  // every 4099th float in [0, 4.5), both signs
    float v;
    std::memcpy(&v, &b, sizeof v);
    xs.push_back(v);
    xs.push_back(-v);
  }
  const float specials[] = {4.0f, -4.0f, 4.0000005f, -4.0000005f, 3.75f, -0.5f, 0.5f, -13.5f, 7.0f, -20.0f};
  xs.insert(xs.end(), std::begin(specials), std::end(specials));
  const int64_t n = static_cast<int64_t>(xs.size());
  std::vector<float> y(xs.size());
  gelu_erf_f32_array(y.data(), xs.data(), n);
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) {
    const long double r = gelu_ref(xs[i]);
    if (std::fabs(r) < 1e-37L) continue;
    worst = std::max(worst, static_cast<double>(std::fabs((y[i] - r) / r)));
  }
  EXPECT_LT(worst, 6e-7);
  // a value depends on its element only: shifted starts and short tails give the same bits
  for (int64_t s = 1; s < 20; ++s) {
    const int64_t m = std::min<int64_t>(n - s, 37);
    std::vector<float> ys(static_cast<size_t>(m));
    gelu_erf_f32_array(ys.data(), xs.data() + s, m);
    for (int64_t i = 0; i < m; ++i) EXPECT_EQ(std::memcmp(&ys[i], &y[s + i], sizeof(float)), 0) << s << " " << i;
  }
  const float nanv = std::nanf(""), inf = INFINITY;
  float in[3] = {nanv, inf, -inf}, out[3];
  gelu_erf_f32_array(out, in, 3);
  EXPECT_TRUE(std::isnan(out[0]));
  EXPECT_EQ(out[1], inf);
  EXPECT_TRUE(std::isnan(out[2]));  // -inf * 0, as PyTorch
}

// Note [One thread pool] (parallel.cpp): set_num_threads sizes the OpenMP team, which also splits the GEMMs;
// OpenBLAS stays at one thread whatever the count.
TEST(VecMath, SetNumThreadsSizesThePoolAndOpenBlasStaysSingleThreaded) {
  const int saved = vbt::get_num_threads();
  vbt::set_num_threads(2);
  if (vbt::get_num_threads() != 2) GTEST_SKIP() << "built without OpenMP";
  for (int n : {1, 2}) {
    vbt::set_num_threads(n);
    EXPECT_EQ(vbt::get_num_threads(), n);
    if (openblas_get_num_threads) {
      EXPECT_EQ(openblas_get_num_threads(), 1);
    }
  }
  vbt::set_num_threads(0);  // ignored: the last count (2) stays
  EXPECT_EQ(vbt::get_num_threads(), 2);
  vbt::set_num_threads(saved);
}

}  // namespace
