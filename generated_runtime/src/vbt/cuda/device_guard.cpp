// Device queries and DeviceGuard (device_guard.h): thin wrappers over cudaGetDevice/cudaSetDevice.
#include "vbt/cuda/device_guard.h"

#include "vbt/cuda/cuda_error.h"

namespace vbt::cuda {

int device_count() {
  int n = 0;
  cudaError_t status = cudaGetDeviceCount(&n);
  if (status != cudaSuccess) {
    // No device, no driver (cudaErrorInsufficientDriver, cudaErrorNoDevice), a stub libcuda, or a driver
    // that cannot initialise: like torch.cuda.device_count(), report 0 devices instead of failing.
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

int current_device() {
  int d = 0;
  VBT_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

void set_device(int device_index) { VBT_CUDA_CHECK(cudaSetDevice(device_index)); }

DeviceGuard::DeviceGuard(int device_index) {
  if (device_index < 0) return;
  previous_ = current_device();
  if (previous_ != device_index) set_device(device_index);
}

DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0) (void)cudaSetDevice(previous_);  // never throw from a destructor
}

}  // namespace vbt::cuda
