// DLPack conversion: vibetensor Tensor <-> DLManagedTensor[Versioned] (structs in vbt/interop/dlpack.h).
// Export policy: zero-copy; the managed tensor holds a reference to the Tensor (hence its Storage)
// until its deleter runs. `data` already points at the first element (byte_offset = 0), as PyTorch
// and NumPy expect; shape and strides are copied into the managed tensor. copy=true exports a fresh
// contiguous copy (versioned: flag IS_COPIED).
// Note [DLPack CUDA import]: vbt_core has no CUDA dependency; the CUDA backend's Python binding registers
// its device count (set_cuda_device_count_fn). Then a kDLCUDA tensor with a valid device id is imported
// zero-copy as a tensor on cuda:<device_id> (never copied: READ_ONLY or misaligned CUDA data is refused);
// otherwise CUDA tensors are refused with an error saying the build has no CUDA backend. CUDA pinned host
// and managed memory are refused. Stream ordering (the `stream` argument of __dlpack__) is the binding's job.
// Import policy: zero-copy for writable, element-aligned CPU data; the producer's deleter runs exactly
// once, when the last Storage viewing the memory dies. READ_ONLY or misaligned data is copied and the
// deleter runs at once (vibetensor tensors are always writable). Strides and byte_offset are kept
// (byte_offset becomes the storage offset when it is a multiple of the element size). A managed tensor
// that vibetensor itself exported comes back as a view of the original Storage (same storage offset).
// Errors (unsupported device/dtype/version, negative strides, bad shapes) throw vbt::Error BEFORE
// ownership is taken: on a throw the caller still owns the managed tensor.
#pragma once
#include "vbt/core/tensor_impl.h"
#include "vbt/interop/dlpack.h"

namespace vbt::interop {

DLDevice to_dlpack_device(Device d);
DLDataType to_dlpack_dtype(ScalarType t);

DLManagedTensorVersioned* to_dlpack_versioned(const Tensor& t, bool copy = false);
DLManagedTensor* to_dlpack_legacy(const Tensor& t, bool copy = false);

Tensor from_dlpack_versioned(DLManagedTensorVersioned* managed);
Tensor from_dlpack_legacy(DLManagedTensor* managed);

// Foreign deleters may need a lock of their runtime (a Python producer's needs the GIL). The runner,
// when set, is called with the deleter to run; the Python binding installs one that takes the GIL.
using ForeignDeleterRunner = void (*)(void (*fn)(void*), void* arg);
void set_foreign_deleter_runner(ForeignDeleterRunner runner);

// Note [DLPack CUDA import]: enables importing CUDA tensors; fn returns the number of visible devices.
using CudaDeviceCountFn = int (*)();
void set_cuda_device_count_fn(CudaDeviceCountFn fn);

}  // namespace vbt::interop
