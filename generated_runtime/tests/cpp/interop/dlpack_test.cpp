// DLPack in C++: struct layout, export/import geometry, deleter discipline, rejected inputs.
#include <gtest/gtest.h>

#include <cstddef>

#include "vbt/interop/dlpack_convert.h"

using namespace vbt;
using namespace vbt::interop;

// The ABI: offsets every DLPack implementation agrees on (64-bit platforms).
static_assert(sizeof(DLDevice) == 8 && sizeof(DLDataType) == 4);
static_assert(offsetof(DLTensor, device) == 8 && offsetof(DLTensor, ndim) == 16 && offsetof(DLTensor, dtype) == 20);
static_assert(offsetof(DLTensor, shape) == 24 && offsetof(DLTensor, strides) == 32 && offsetof(DLTensor, byte_offset) == 40);
static_assert(sizeof(DLTensor) == 48);
static_assert(offsetof(DLManagedTensor, manager_ctx) == 48 && offsetof(DLManagedTensor, deleter) == 56);
static_assert(offsetof(DLManagedTensorVersioned, manager_ctx) == 8 && offsetof(DLManagedTensorVersioned, deleter) == 16);
static_assert(offsetof(DLManagedTensorVersioned, flags) == 24 && offsetof(DLManagedTensorVersioned, dl_tensor) == 32);

namespace {

// A foreign producer: owns its buffer, counts deleter calls.
struct FakeProducer {
  std::vector<float> buffer = std::vector<float>(64, 0.0f);
  int64_t shape[2] = {3, 4};
  int64_t strides[2] = {8, 2};
  int deleter_calls = 0;
  DLManagedTensorVersioned managed{};

  FakeProducer() {
    for (size_t i = 0; i < buffer.size(); ++i) buffer[i] = static_cast<float>(i);
    managed.version = {1, 0};
    managed.manager_ctx = this;
    managed.deleter = [](DLManagedTensorVersioned* self) { static_cast<FakeProducer*>(self->manager_ctx)->deleter_calls++; };
    managed.dl_tensor = DLTensor{buffer.data(), {kDLCPU, 0}, 2, {kDLFloat, 32, 1}, shape, strides, 3 * sizeof(float)};
  }
};

}  // namespace

TEST(DLPack, ImportKeepsGeometryAndCallsDeleterOnceAtLastRelease) {
  FakeProducer p;
  {
    Tensor t = from_dlpack_versioned(&p.managed);
    EXPECT_EQ(t.sizes(), (Shape{3, 4}));
    EXPECT_EQ(t.strides(), (Shape{8, 2}));
    EXPECT_EQ(t.storage_offset(), 3);  // byte_offset 12 = 3 floats
    EXPECT_EQ(t.data_ptr(), p.buffer.data() + 3);
    Tensor view = make_view(t, {2}, {1}, 5);
    t = Tensor();
    EXPECT_EQ(p.deleter_calls, 0);  // the view still holds the storage
    view.data<float>()[0] = -1.0f;
    EXPECT_EQ(p.buffer[5], -1.0f);  // zero-copy
  }
  EXPECT_EQ(p.deleter_calls, 1);
}

TEST(DLPack, ReadOnlyInputIsCopiedAndReleasedAtOnce) {
  FakeProducer p;
  p.managed.flags = DLPACK_FLAG_BITMASK_READ_ONLY;
  Tensor t = from_dlpack_versioned(&p.managed);
  EXPECT_EQ(p.deleter_calls, 1);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.data<float>()[1 * 4 + 2], p.buffer[3 + 1 * 8 + 2 * 2]);
}

TEST(DLPack, RejectedInputsKeepOwnershipWithTheCaller) {
  FakeProducer cuda, half_lanes, future, negative;
  cuda.managed.dl_tensor.device = {kDLCUDA, 1};
  half_lanes.managed.dl_tensor.dtype = {kDLFloat, 32, 4};
  future.managed.version = {2, 0};
  negative.strides[1] = -2;
  try {
    from_dlpack_versioned(&cuda.managed);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no CUDA backend"), std::string::npos) << e.what();
  }
  EXPECT_THROW(from_dlpack_versioned(&half_lanes.managed), Error);
  EXPECT_THROW(from_dlpack_versioned(&future.managed), Error);
  EXPECT_THROW(from_dlpack_versioned(&negative.managed), Error);
  for (auto* p : {&cuda, &half_lanes, &future, &negative}) EXPECT_EQ(p->deleter_calls, 0);
}

TEST(DLPack, ExportSharesStorageAndOwnExportComesBackAsTheSameView) {
  Tensor base = empty({4, 6}, ScalarType::BFloat16);
  Tensor view = make_view(base, {3, 2}, {6, 3}, 7);
  DLManagedTensorVersioned* m = to_dlpack_versioned(view);
  EXPECT_EQ(m->version.major, 1u);
  EXPECT_EQ(m->flags, 0u);
  EXPECT_EQ(m->dl_tensor.data, view.data_ptr());
  EXPECT_EQ(m->dl_tensor.dtype.code, kDLBfloat);
  EXPECT_EQ(m->dl_tensor.strides[0], 6);
  EXPECT_EQ(m->dl_tensor.strides[1], 3);
  Tensor back = from_dlpack_versioned(m);  // consumes m
  EXPECT_EQ(back.impl()->storage().get(), base.impl()->storage().get());
  EXPECT_EQ(back.storage_offset(), 7);
  EXPECT_EQ(back.strides(), view.strides());

  DLManagedTensor* legacy = to_dlpack_legacy(view, /*copy=*/true);
  EXPECT_NE(legacy->dl_tensor.data, view.data_ptr());
  EXPECT_EQ(legacy->dl_tensor.strides[0], 2);
  legacy->deleter(legacy);
}
