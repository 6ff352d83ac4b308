// dtype metadata, promotion lattice and 16-bit float conversions.
#include <gtest/gtest.h>

#include <cmath>

#include "vbt/core/dtype.h"

using namespace vbt;

TEST(DType, PromotionTable) {
  EXPECT_EQ(promote_types(ScalarType::UInt8, ScalarType::Int8), ScalarType::Int16);
  EXPECT_EQ(promote_types(ScalarType::Bool, ScalarType::Int32), ScalarType::Int32);
  EXPECT_EQ(promote_types(ScalarType::Int64, ScalarType::Float16), ScalarType::Float16);
  EXPECT_EQ(promote_types(ScalarType::Float16, ScalarType::BFloat16), ScalarType::Float32);
  EXPECT_EQ(promote_types(ScalarType::Float32, ScalarType::Float64), ScalarType::Float64);
  EXPECT_EQ(promote_types(ScalarType::Int16, ScalarType::UInt8), ScalarType::Int16);
}

TEST(DType, HalfRoundTrip) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.1f}) {
    Half h(f);
    EXPECT_NEAR(static_cast<float>(h), f, std::abs(f) * 1e-3f + 1e-7f) << f;
  }
  EXPECT_TRUE(std::isinf(static_cast<float>(Half(1e6f))));
  EXPECT_TRUE(std::isnan(static_cast<float>(Half(std::nanf("")))));
}

TEST(DType, BFloat16RoundsToNearestEven) {
  EXPECT_EQ(static_cast<float>(BFloat16(1.0f)), 1.0f);
  EXPECT_NEAR(static_cast<float>(BFloat16(3.14159f)), 3.140625f, 1e-6);
}

TEST(DType, NamesRoundTrip) {
  for (int i = 0; i < kNumScalarTypes; ++i) {
    auto t = static_cast<ScalarType>(i);
    EXPECT_EQ(dtype_from_name(dtype_name(t)), t);
  }
  EXPECT_THROW(dtype_from_name("complex64"), Error);
}
