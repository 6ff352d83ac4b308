// DLPack export/import (policy in vbt/interop/dlpack_convert.h). Units: sizes/strides in elements,
// byte_offset and nbytes in bytes. import_dltensor() validates everything before it builds a Storage,
// so a rejected managed tensor is never released here.
#include "vbt/interop/dlpack_convert.h"

#include <atomic>
#include <cstring>
#include <functional>

#include "contiguous_bytes.h"
#include "vbt/dispatch/dispatcher.h"

namespace vbt::interop {

namespace {

constexpr int32_t kMaxDlpackDims = 64;

std::atomic<ForeignDeleterRunner> g_deleter_runner{nullptr};
std::atomic<CudaDeviceCountFn> g_cuda_device_count{nullptr};

void run_foreign_deleter(void (*fn)(void*), void* arg) {
  ForeignDeleterRunner runner = g_deleter_runner.load();
  if (runner) runner(fn, arg);
  else fn(arg);
}

// Everything an exported managed tensor owns; `Managed` is the legacy or versioned struct.
template <typename Managed>
struct ExportHolder {
  Managed managed{};
  Tensor tensor;  // keeps the Storage alive
  Shape shape, strides;
};

template <typename Managed>
void export_deleter(Managed* self) {
  delete static_cast<ExportHolder<Managed>*>(self->manager_ctx);
}

template <typename Managed>
ExportHolder<Managed>* make_export(const Tensor& src, bool copy) {
  VBT_CHECK_VALUE(src.defined(), "to_dlpack: undefined tensor");
  Tensor t = src;
  if (copy && src.device().type == DeviceType::CPU) {
    t = empty(src.sizes(), src.dtype(), src.device());
    copy_to_contiguous_bytes(src, t.data_ptr());
  } else if (copy) {  // device memory: a contiguous copy by the device's copy_ kernel
    t = empty(src.sizes(), src.dtype(), src.device());
    call_op("copy_", {t, src});
  }
  auto* h = new ExportHolder<Managed>();
  h->tensor = t;
  h->shape = t.sizes();
  h->strides = t.strides();
  DLTensor& dl = h->managed.dl_tensor;
  dl.data = t.data_ptr();
  dl.device = to_dlpack_device(t.device());
  dl.ndim = static_cast<int32_t>(t.dim());
  dl.dtype = to_dlpack_dtype(t.dtype());
  dl.shape = h->shape.data();
  dl.strides = h->strides.data();
  dl.byte_offset = 0;
  h->managed.manager_ctx = h;
  h->managed.deleter = &export_deleter<Managed>;
  return h;
}

ScalarType scalar_type_from_dlpack(DLDataType d) {
  VBT_CHECK_TYPE(d.lanes == 1, "from_dlpack: vector dtypes (lanes=", d.lanes, ") are not supported");
  switch (d.code) {
    case kDLBool:
      if (d.bits == 8) return ScalarType::Bool;
      break;
    case kDLUInt:
      if (d.bits == 8) return ScalarType::UInt8;
      break;
    case kDLInt:
      if (d.bits == 8) return ScalarType::Int8;
      if (d.bits == 16) return ScalarType::Int16;
      if (d.bits == 32) return ScalarType::Int32;
      if (d.bits == 64) return ScalarType::Int64;
      break;
    case kDLFloat:
      if (d.bits == 16) return ScalarType::Float16;
      if (d.bits == 32) return ScalarType::Float32;
      if (d.bits == 64) return ScalarType::Float64;
      break;
    case kDLBfloat:
      if (d.bits == 16) return ScalarType::BFloat16;
      break;
    default: break;
  }
  throw_error(ErrorKind::Type, "from_dlpack: unsupported DLPack dtype (code ", int(d.code), ", ", int(d.bits),
              " bits); supported: bool, uint8, int8/16/32/64, float16/32/64, bfloat16");
}

// The vibetensor device of an importable DLPack device (CPU; CUDA when the CUDA backend registered its
// device count, Note [DLPack CUDA import] in dlpack_convert.h).
Device device_for_import(DLDevice dev) {
  if (dev.device_type == kDLCPU) return Device{};
  CudaDeviceCountFn count_fn = g_cuda_device_count.load();
  const bool cuda_like =
      dev.device_type == kDLCUDA || dev.device_type == kDLCUDAManaged || dev.device_type == kDLCUDAHost;
  if (cuda_like && !count_fn)
    throw_error(ErrorKind::Runtime, "from_dlpack: the tensor is on a CUDA device (DLPack device type ",
                int(dev.device_type), ", id ", dev.device_id,
                "), but this vibetensor build has no CUDA backend; copy it to the CPU first");
  if (dev.device_type == kDLCUDA) {
    const int count = count_fn();
    VBT_CHECK(dev.device_id >= 0 && dev.device_id < count, "from_dlpack: the tensor is on CUDA device ",
              dev.device_id, ", but this process sees ", count, " CUDA device(s)");
    return Device{DeviceType::CUDA, static_cast<int16_t>(dev.device_id)};
  }
  if (cuda_like)
    throw_error(ErrorKind::Runtime, "from_dlpack: DLPack device type ", int(dev.device_type),
                dev.device_type == kDLCUDAHost ? " (CUDA pinned host memory)" : " (CUDA managed memory)",
                " is not supported; vibetensor imports CPU (1) and CUDA (2) tensors");
  throw_error(ErrorKind::Runtime, "from_dlpack: unsupported DLPack device type ", int(dev.device_type),
              count_fn ? " (this build accepts CPU and CUDA tensors)" : " (this build accepts CPU tensors only)");
}

// Builds a Tensor over dl's memory. `release` runs once when the last Storage dies, or right away when
// the data has to be copied (read-only or misaligned). Throws before touching `release` on bad input.
Tensor import_dltensor(const DLTensor& dl, bool read_only, std::function<void()> release) {
  const Device device = device_for_import(dl.device);
  const ScalarType dtype = scalar_type_from_dlpack(dl.dtype);
  VBT_CHECK_VALUE(dl.ndim >= 0 && dl.ndim <= kMaxDlpackDims, "from_dlpack: invalid ndim ", dl.ndim);
  VBT_CHECK_VALUE(dl.ndim == 0 || dl.shape != nullptr, "from_dlpack: shape is NULL for a ", dl.ndim, "-d tensor");
  const int64_t item = itemsize(dtype);
  Shape sizes(dl.ndim), strides;
  for (int32_t d = 0; d < dl.ndim; ++d) {
    sizes[d] = dl.shape[d];
    VBT_CHECK_VALUE(sizes[d] >= 0, "from_dlpack: negative dimension ", sizes[d], " in shape");
  }
  if (dl.strides) {
    strides.assign(dl.strides, dl.strides + dl.ndim);
  } else {
    strides = contiguous_strides(sizes);
  }
  // Extent in elements: (numel == 0) -> 0 bytes, else 1 + sum (size - 1) * stride; overflow is an error.
  bool empty_tensor = false;
  __int128 extent = 1;
  for (int32_t d = 0; d < dl.ndim; ++d) {
    if (sizes[d] == 0) empty_tensor = true;
    if (sizes[d] > 1)
      VBT_CHECK_VALUE(strides[d] >= 0, "from_dlpack: negative strides are not supported (stride ", strides[d],
                      " in dim ", d, "); make a copy first");
    extent += static_cast<__int128>(sizes[d] > 0 ? sizes[d] - 1 : 0) * (sizes[d] > 1 ? strides[d] : 0);
  }
  VBT_CHECK_VALUE(extent * item < (static_cast<__int128>(1) << 62), "from_dlpack: tensor extent overflows");
  // Dimensions of size <= 1 may carry any stride; normalise negative ones so geometry stays non-negative.
  for (int32_t d = 0; d < dl.ndim; ++d)
    if (sizes[d] <= 1 && strides[d] < 0) strides[d] = 0;
  char* first = static_cast<char*>(dl.data) + dl.byte_offset;
  VBT_CHECK_VALUE(empty_tensor || dl.data != nullptr, "from_dlpack: data is NULL for a non-empty tensor");

  const bool misaligned = reinterpret_cast<uintptr_t>(first) % static_cast<uintptr_t>(item) != 0;
  if (device.type != DeviceType::CPU) {
    // Device memory is never copied on the host; vibetensor tensors are writable and element-aligned.
    VBT_CHECK(!read_only, "from_dlpack: the CUDA tensor is marked read-only, but vibetensor tensors are always "
              "writable; make a copy on the producer's side first");
    VBT_CHECK(!misaligned, "from_dlpack: the CUDA tensor's data is not aligned to its element size; make a copy "
              "on the producer's side first");
  }
  if (read_only || misaligned) {
    // View the foreign memory without owning it, copy out, then release the producer right away.
    auto view_st = std::make_shared<StorageImpl>();
    view_st->data_ptr.data = first;
    view_st->nbytes = empty_tensor ? 0 : static_cast<size_t>(extent * item);
    Tensor view(std::make_shared<TensorImpl>(view_st, dtype, sizes, strides, 0));
    Tensor out = empty(sizes, dtype);
    copy_to_contiguous_bytes(view, out.data_ptr());
    release();
    return out;
  }
  // Keep the producer's byte_offset as our storage offset when it is a whole number of elements.
  const bool offset_in_elements = dl.byte_offset % static_cast<uint64_t>(item) == 0;
  char* base = offset_in_elements ? static_cast<char*>(dl.data) : first;
  const int64_t offset = offset_in_elements ? static_cast<int64_t>(dl.byte_offset / item) : 0;
  auto st = std::make_shared<StorageImpl>();
  st->data_ptr = wrap_foreign_memory(base, device, std::move(release));
  st->nbytes = empty_tensor ? static_cast<size_t>(offset * item) : static_cast<size_t>((offset + extent) * item);
  return Tensor(std::make_shared<TensorImpl>(std::move(st), dtype, std::move(sizes), std::move(strides), offset));
}

// A managed tensor we exported ourselves: return a view on the original Storage, then release it.
template <typename Managed>
Tensor reimport_own_export(Managed* managed) {
  auto* h = static_cast<ExportHolder<Managed>*>(managed->manager_ctx);
  const Tensor& t = h->tensor;
  Tensor out(std::make_shared<TensorImpl>(t.impl()->storage(), t.dtype(), t.sizes(), t.strides(), t.storage_offset()));
  managed->deleter(managed);
  return out;
}

}  // namespace

void set_foreign_deleter_runner(ForeignDeleterRunner runner) { g_deleter_runner.store(runner); }

void set_cuda_device_count_fn(CudaDeviceCountFn fn) { g_cuda_device_count.store(fn); }

DLDevice to_dlpack_device(Device d) {
  if (d.type == DeviceType::CUDA) return DLDevice{kDLCUDA, d.index < 0 ? 0 : d.index};
  return DLDevice{kDLCPU, 0};
}

DLDataType to_dlpack_dtype(ScalarType t) {
  auto mk = [](DLDataTypeCode c, int bits) { return DLDataType{static_cast<uint8_t>(c), static_cast<uint8_t>(bits), 1}; };
  switch (t) {
    case ScalarType::Bool: return mk(kDLBool, 8);
    case ScalarType::UInt8: return mk(kDLUInt, 8);
    case ScalarType::Int8: return mk(kDLInt, 8);
    case ScalarType::Int16: return mk(kDLInt, 16);
    case ScalarType::Int32: return mk(kDLInt, 32);
    case ScalarType::Int64: return mk(kDLInt, 64);
    case ScalarType::Float16: return mk(kDLFloat, 16);
    case ScalarType::BFloat16: return mk(kDLBfloat, 16);
    case ScalarType::Float32: return mk(kDLFloat, 32);
    case ScalarType::Float64: return mk(kDLFloat, 64);
  }
  VBT_INTERNAL_ASSERT(false, "to_dlpack_dtype: unhandled ScalarType");
}

DLManagedTensorVersioned* to_dlpack_versioned(const Tensor& t, bool copy) {
  auto* h = make_export<DLManagedTensorVersioned>(t, copy);
  h->managed.version = DLPackVersion{DLPACK_MAJOR_VERSION, DLPACK_MINOR_VERSION};
  h->managed.flags = copy ? DLPACK_FLAG_BITMASK_IS_COPIED : 0;
  return &h->managed;
}

DLManagedTensor* to_dlpack_legacy(const Tensor& t, bool copy) {
  return &make_export<DLManagedTensor>(t, copy)->managed;
}

Tensor from_dlpack_versioned(DLManagedTensorVersioned* managed) {
  VBT_CHECK_VALUE(managed != nullptr, "from_dlpack: NULL managed tensor");
  VBT_CHECK_VALUE(managed->version.major == DLPACK_MAJOR_VERSION, "from_dlpack: unsupported DLPack version ",
                  managed->version.major, ".", managed->version.minor, " (this build reads ", DLPACK_MAJOR_VERSION, ".x)");
  VBT_CHECK_VALUE(!(managed->flags & DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED),
                  "from_dlpack: sub-byte dtypes are not supported");
  if (managed->deleter == &export_deleter<DLManagedTensorVersioned> && !(managed->flags & DLPACK_FLAG_BITMASK_READ_ONLY))
    return reimport_own_export(managed);
  return import_dltensor(managed->dl_tensor, (managed->flags & DLPACK_FLAG_BITMASK_READ_ONLY) != 0, [managed] {
    run_foreign_deleter([](void* p) {
      auto* m = static_cast<DLManagedTensorVersioned*>(p);
      if (m->deleter) m->deleter(m);
    }, managed);
  });
}

Tensor from_dlpack_legacy(DLManagedTensor* managed) {
  VBT_CHECK_VALUE(managed != nullptr, "from_dlpack: NULL managed tensor");
  if (managed->deleter == &export_deleter<DLManagedTensor>) return reimport_own_export(managed);
  return import_dltensor(managed->dl_tensor, false, [managed] {
    run_foreign_deleter([](void* p) {
      auto* m = static_cast<DLManagedTensor*>(p);
      if (m->deleter) m->deleter(m);
    }, managed);
  });
}

}  // namespace vbt::interop
