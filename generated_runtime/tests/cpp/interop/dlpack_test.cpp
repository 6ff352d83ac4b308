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

// Note [DLPack CUDA import]: with a CUDA device count registered, a kDLCUDA tensor is imported zero-copy onto
// cuda:<device_id> (the memory is never touched here: no device needed); bad ids, read-only data and other
// CUDA memory kinds are refused without taking ownership. Without the registration: "no CUDA backend".
TEST(DLPack, CudaImportIsZeroCopyOnTheProducersDevice) {
  set_cuda_device_count_fn([] { return 2; });
  struct Reset {
    ~Reset() { set_cuda_device_count_fn(nullptr); }
  } reset;
  FakeProducer p;
  p.managed.dl_tensor.device = {kDLCUDA, 1};
  {
    Tensor t = from_dlpack_versioned(&p.managed);
    EXPECT_EQ(t.device(), (Device{DeviceType::CUDA, 1}));
    EXPECT_EQ(t.impl()->storage()->data_ptr.device, (Device{DeviceType::CUDA, 1}));
    EXPECT_EQ(t.sizes(), (Shape{3, 4}));
    EXPECT_EQ(t.strides(), (Shape{8, 2}));
    EXPECT_EQ(t.storage_offset(), 3);
    EXPECT_EQ(t.data_ptr(), p.buffer.data() + 3);
    EXPECT_EQ(p.deleter_calls, 0);
  }
  EXPECT_EQ(p.deleter_calls, 1);

  FakeProducer bad_id, read_only, pinned;
  bad_id.managed.dl_tensor.device = {kDLCUDA, 2};
  read_only.managed.dl_tensor.device = {kDLCUDA, 0};
  read_only.managed.flags = DLPACK_FLAG_BITMASK_READ_ONLY;
  pinned.managed.dl_tensor.device = {kDLCUDAHost, 0};
  auto message = [](FakeProducer& f) {
    try {
      from_dlpack_versioned(&f.managed);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(message(bad_id).find("sees 2 CUDA device(s)"), std::string::npos) << message(bad_id);
  EXPECT_NE(message(read_only).find("read-only"), std::string::npos) << message(read_only);
  EXPECT_NE(message(pinned).find("not supported"), std::string::npos) << message(pinned);
  for (auto* f : {&bad_id, &read_only, &pinned}) EXPECT_EQ(f->deleter_calls, 0);

  set_cuda_device_count_fn(nullptr);
  FakeProducer no_backend;
  no_backend.managed.dl_tensor.device = {kDLCUDA, 0};
  EXPECT_NE(message(no_backend).find("no CUDA backend"), std::string::npos) << message(no_backend);
  EXPECT_EQ(no_backend.deleter_calls, 0);
}
