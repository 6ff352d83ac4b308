// VBT_CUDA_CHECK(expr): a CUDA runtime call that must succeed; on failure throws vbt::Error (RuntimeError)
// naming the call, the CUDA error and the file:line. Only for code compiled with CUDA enabled.
#pragma once
#include <cuda_runtime_api.h>

#include "vbt/core/error.h"

#define VBT_CUDA_CHECK(expr)                                                                            \
  do {                                                                                                  \
    cudaError_t vbt_cuda_status_ = (expr);                                                              \
    if (vbt_cuda_status_ != cudaSuccess) {                                                              \
      (void)cudaGetLastError(); /* reset the non-sticky error state */                                  \
      ::vbt::throw_error(::vbt::ErrorKind::Runtime, "CUDA error: ", cudaGetErrorString(vbt_cuda_status_), \
                         " (", #expr, " at ", __FILE__, ":", __LINE__, ")");                            \
    }                                                                                                   \
  } while (0)
