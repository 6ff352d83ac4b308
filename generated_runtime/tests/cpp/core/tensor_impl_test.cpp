// TensorImpl, Storage and view geometry: sizes/strides/offsets, shared version counter.
#include <gtest/gtest.h>

#include "vbt/core/tensor_impl.h"
#include "vbt/dispatch/dispatcher.h"

using namespace vbt;

TEST(TensorImpl, EmptyIsContiguous) {
  Tensor t = empty({2, 3, 4}, ScalarType::Float32);
  EXPECT_EQ(t.strides(), (Shape{12, 4, 1}));
  EXPECT_EQ(t.numel(), 24);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.impl()->storage()->nbytes, 24u * 4u);
}

TEST(TensorImpl, TransposeIsAViewSharingVersion) {
  Tensor t = call_tensor_op("zeros", {Shape{2, 3}});
  Tensor tt = call_tensor_op("transpose", {t, int64_t(0), int64_t(1)});
  EXPECT_EQ(tt.sizes(), (Shape{3, 2}));
  EXPECT_EQ(tt.strides(), (Shape{1, 3}));
  EXPECT_FALSE(tt.is_contiguous());
  EXPECT_EQ(tt.impl()->storage(), t.impl()->storage());
  int64_t v0 = t.impl()->version();
  call_op("fill_", {tt, Scalar(1.5)});
  EXPECT_EQ(t.impl()->version(), v0 + 1);
  EXPECT_FLOAT_EQ(t.data<float>()[5], 1.5f);
}

TEST(TensorImpl, SliceSelectOffsets) {
  Tensor t = call_tensor_op("arange", {Scalar(int64_t(0)), Scalar(int64_t(12))});
  Tensor m = call_tensor_op("view", {t, Shape{3, 4}});
  Tensor s = call_tensor_op("slice", {m, int64_t(1), int64_t(1), int64_t(4), int64_t(2)});
  EXPECT_EQ(s.sizes(), (Shape{3, 2}));
  EXPECT_EQ(s.strides(), (Shape{4, 2}));
  EXPECT_EQ(s.storage_offset(), 1);
  Tensor row = call_tensor_op("select", {m, int64_t(0), int64_t(-1)});
  EXPECT_EQ(row.storage_offset(), 8);
  EXPECT_EQ(*row.data<int64_t>(), 8);
}

TEST(TensorImpl, ViewOfNonContiguousFailsButReshapeCopies) {
  Tensor m = call_tensor_op("zeros", {Shape{3, 4}});
  Tensor tt = call_tensor_op("t", {m});
  EXPECT_THROW(call_tensor_op("view", {tt, Shape{12}}), Error);
  Tensor r = call_tensor_op("reshape", {tt, Shape{12}});
  EXPECT_NE(r.impl()->storage(), m.impl()->storage());
  // a reshape that a view can express shares storage
  Tensor r2 = call_tensor_op("reshape", {m, Shape{2, 6}});
  EXPECT_EQ(r2.impl()->storage(), m.impl()->storage());
}

TEST(TensorImpl, BadDimIsUserError) {
  Tensor t = empty({2}, ScalarType::Float32);
  try {
    wrap_dim(3, 1, "sum");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Index);
    EXPECT_NE(std::string(e.what()).find("sum"), std::string::npos);
  }
}
